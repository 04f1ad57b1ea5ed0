"""Optional compiled kernels (numba), beside the NumPy reference kernels.

Install with ``pip install zerograd[fast]``. The pure-NumPy kernels in ``zerograd/ops`` stay
the reference: every kernel here computes the same values (bitwise where the arithmetic is
the same, see each kernel's docstring) and is tested against them.

This module itself never imports numba: ``import zerograd`` stays NumPy-only. The kernels live
in submodules (``zerograd._fast.pooling``, ``.im2col``, ``.elementwise``, ``.indexing``,
``.recurrent``, ``.optim``, ``.products``) that import numba when they are first imported;
an op asks :func:`available` first.

The switch, read once per process from the environment and changeable at run time:

- ``ZEROGRAD_FAST=0``: never use the kernels (the NumPy path, e.g. for CI's second run);
- ``ZEROGRAD_FAST=1``: use them, and fail loudly if numba cannot be imported;
- unset (or ``auto``): use them if numba imports.

``with numpy_only():`` forces the NumPy path in the calling thread for a block.

Ops ask :func:`use` at the kernel call: ``if fast.use("gelu", x): <kernel> else: <NumPy>``.
It says yes only where the kernel is known to pay (:data:`THRESHOLDS`), so small arrays never
import numba and the NumPy path stays what every other case runs.

Compiled kernels are cached on disk (numba's ``cache=True``) in :func:`cache_dir`, so a
second process loads them instead of compiling.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np

__all__ = ["available", "use", "numpy_only", "mode", "cache_dir", "FastPathError", "THRESHOLDS",
           "NEVER"]

_MODES = {"0": "off", "1": "on", "": "auto", "auto": "auto"}


class FastPathError(ImportError):
    """ZEROGRAD_FAST=1 asked for the compiled kernels but numba cannot be imported."""


# ``os.environ.get`` costs about 0.6 us (four Python-level calls: get, __getitem__ and the
# key's encoding and the value's decoding), and ``use`` asks on every dispatch: 5% of an
# LSTM(100) training step at batch 1. So the setting is read from the mapping os.environ
# keeps (``os.environ._data``, encoded keys and values; what ``os.environ[...] = ...``,
# ``del`` and pytest's monkeypatch.setenv update) and each raw value is parsed once. The
# result is what ``os.environ.get`` would give; where the mapping is not there (another
# Python implementation), os.environ.get is used.
_ENVIRON_DATA = getattr(os.environ, "_data", None)
_ENVIRON_KEY = (os.environ.encodekey("ZEROGRAD_FAST") if _ENVIRON_DATA is not None
                and hasattr(os.environ, "encodekey") else None)
_parsed_modes: dict = {}  # raw value (None: unset) -> mode


def mode() -> str:
    """'off', 'on' or 'auto', from ZEROGRAD_FAST (read on every call, so that a test or a
    script can change it at any time)."""
    if _ENVIRON_KEY is not None:
        raw_value = _ENVIRON_DATA.get(_ENVIRON_KEY)  # type: ignore[union-attr]
        parsed = _parsed_modes.get(raw_value)
        if parsed is not None:
            return parsed
        decode = os.environ.decodevalue
        text = "" if raw_value is None else decode(raw_value)
    else:
        raw_value = text = os.environ.get("ZEROGRAD_FAST", "")
    raw = text.strip().lower()
    if raw not in _MODES:
        raise ValueError(f"ZEROGRAD_FAST must be 0, 1 or auto (or unset), got {raw!r}")
    _parsed_modes[raw_value] = _MODES[raw]
    return _MODES[raw]


_numba_imports: bool | None = None  # None: not tried yet


def _numba_importable() -> bool:
    """Whether numba imports (tried once; importing it costs about 0.3 s, paid here, on the
    first question, never at ``import zerograd``)."""
    global _numba_imports
    if _numba_imports is None:
        try:
            from zerograd._fast import _numba  # noqa: F401  (imports numba, sets the cache)
        except ImportError:
            _numba_imports = False
        else:
            _numba_imports = True
    return _numba_imports


class _ThreadState(threading.local):
    def __init__(self) -> None:
        self.numpy_only = False


_state = _ThreadState()


def available() -> bool:
    """Whether ops should call the compiled kernels now: numba imports, ZEROGRAD_FAST is not
    0 and no :func:`numpy_only` block is active in this thread."""
    if _state.numpy_only:
        return False
    wanted = mode()
    if wanted == "off":
        return False
    if _numba_importable():
        return True
    if wanted == "on":
        raise FastPathError("ZEROGRAD_FAST=1 but numba cannot be imported; install it with "
                            "pip install 'zerograd[fast]' or unset ZEROGRAD_FAST")
    return False


# Where each wired kernel pays: (lowest, highest) size of the op's main array, in elements
# (None: no upper bound). Measured as the best of 200 calls, float32 (docs/performance.md):
# - "gelu" (x): the kernel is 3-7x faster from 16 elements on; below 1024 elements the gain
#   is under 25 us a call, not worth importing numba (0.3 s) for.
# - "scatter_rows" (gy, ids repeating; one pass over the ids since 2026-12-02): 1024
#   elements 6.1 against 8.8 us, 6400: 6.5 against 20.6, 640000: 85 against 826 (64
#   columns, best of 5 x 50, float32); at 640 elements np.add.at is as fast (5.8 vs 6.2).
# - "lstm_step" (the cell state, N*H): the forward calls libm's scalar exp and tanh where
#   NumPy uses SIMD ones, so it wins only for small states (N*H = 10: 3.9 vs 8.1 us; 100:
#   8.2 vs 8.5 us; 4096: 168 vs 37 us).
# - "lstm_step_grad" (the cell state): 1.6-4x faster at every size measured (10 to 65536).
NEVER = 1 << 62  # a lowest size no array reaches: the kernel stays off unless opted in
THRESHOLDS: dict[str, tuple[int, int | None]] = {
    "gelu": (1024, None),
    "scatter_rows": (1024, None),
    "lstm_step": (1, 128),
    "lstm_step_grad": (1, None),
    # - "outer_row" (the product a^T b of a (1, K) and a (1, G), K*G elements: a cell's
    #   weight gradient at batch 1): best of 5, float32, us: 1024 elements 0.69 against
    #   1.16; 4096: 0.77 against 1.65; 40000: 1.75 against 7.54; 262144: 9.3 against 48;
    #   4e6: 196 against 222. Below 1024 the gain is under the dispatch's 1 us.
    "outer_row": (1024, None),
    # - "add_scaled" (an optimizer's parameter, w += scale * x): one pass instead of two,
    #   twice as fast from 65536 elements on (6 us a call there, 105 against 223 us at 2^20
    #   float32); at 16384 elements and fewer the gain is under 2 us a call.
    "add_scaled": (1 << 16, None),
    # - "adam" (the parameter): Adam's three in-place lines (12 NumPy calls) in one pass,
    #   bitwise the same; best of 200, float32: 4000 elements 3.4 against 9.1 us, 40000: 7.9
    #   against 45.5, 400000: 79 against 491; below 4096 the gain is under 6 us a call.
    "adam": (4096, None),
    # - "lstm_sequence" (the cell state, N*H): LSTMSequence's forward and backward loops
    #   with the elementwise work between NumPy's exp/tanh calls compiled (bitwise forward).
    #   Faster at every size measured, per step (CPU time, us, forward / backward with the
    #   Wh gradient): N*H = 1: 8.0 / 4.1 against 12.7 / 11.6; (32, 128): 116 / 145 against
    #   147 / 203; (128, 512): 3435 / 6092 against 3501 / 7308 (bench_lstm_parts.py sizes).
    "lstm_sequence": (1, None),
    # - "gru_sequence" (the state, N*H): GRUSequence's loops, the same design (bitwise
    #   forward and backward). Per step, forward / backward: N*H = 1: 4.2 / 2.6 against
    #   9.7 / 6.2 us; (32, 128): 56 / 89 against 66 / 98; (128, 512): 2694 / 4793 against
    #   2987 / 5061.
    "gru_sequence": (1, None),
    # - "max_pool_2x2" (x, or gy in backward): 2-3x faster forward, 1.1-2x backward, from a
    #   few hundred elements on; below 4096 elements the gain is under 20 us a call.
    "max_pool_2x2": (4096, None),
    # - "relu" (x in forward, gy in backward): one pass, 2-4x faster than np.maximum(x, 0)
    #   and gy * (y > 0) on the CNN's activations; the gain is under 20 us below 4096.
    "relu": (4096, None),
    # - "conv_patches" (x, or gy for the input gradient): compact patch matrices and their
    #   scatter-add, which let the three products skip whole-row patches' extra columns.
    #   Small CNN step in training processes of their own (fresh process per run, quiet
    #   machine, wall time, best of 5 x 10 steps after 40): 9.8-11.1 against 14.2-16.7 ms
    #   with 2 OpenBLAS threads, 14.7-15.1 against 20.0-20.1 with one, and 0 page faults a
    #   step against 400-700 (docs/performance.md, "Third round"). From 4096 elements on.
    "conv_patches": (4096, None),
    # - "rows_by_rows" (one row of gy's matrix, N*OH*OW elements, in a convolution's weight
    #   gradient with 3-15 patch rows and at most 32 channels a group, the shape checked by
    #   ``ops/_im2col.few_rows_product``): gy @ col^T, best of 7, float32, us: (16, 78400)
    #   by (9, 78400) 320 against 935; (16, 10000) by 9: 45 against 115; (16, 1000) by 9:
    #   7 against 4.
    "rows_by_rows": (8192, None),
}
_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


def use(kernel: str, *arrays) -> bool:
    """Whether an op should call the compiled ``kernel`` (a key of :data:`THRESHOLDS`) for
    these arrays: every array a NumPy ndarray (not CuPy), all of one float32/float64 dtype,
    the first one's size inside the kernel's range, and :func:`available`.

    The cheap checks come first, so a call that will run NumPy anyway never imports numba."""
    low, high = THRESHOLDS[kernel]
    size = arrays[0].size
    if size < low or (high is not None and size > high):
        return False
    dtype = arrays[0].dtype
    if dtype not in _FLOATS:
        return False
    for a in arrays:
        if type(a) is not np.ndarray or a.dtype != dtype:
            return False
    return available()


@contextlib.contextmanager
def numpy_only() -> Iterator[None]:
    """Use the NumPy kernels in this thread inside the block (to compare both paths)."""
    previous = _state.numpy_only
    _state.numpy_only = True
    try:
        yield
    finally:
        _state.numpy_only = previous


def cache_dir() -> Path:
    """Where compiled kernels are cached: ``$ZEROGRAD_CACHE/numba`` if ZEROGRAD_CACHE is set,
    else ``$NUMBA_CACHE_DIR`` if the user set numba's own variable, else
    ``$XDG_CACHE_HOME/zerograd/numba`` (default ``~/.cache/zerograd/numba``).

    A per-user folder, not numba's default ``__pycache__`` beside the source, which is
    read-only when zerograd is installed in a system site-packages."""
    root = os.environ.get("ZEROGRAD_CACHE")
    if root:
        return Path(root).expanduser() / "numba"
    if os.environ.get("NUMBA_CACHE_DIR"):
        return Path(os.environ["NUMBA_CACHE_DIR"]).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "zerograd" / "numba"
