"""Optional compiled kernels (numba), beside the NumPy reference kernels.

Install with ``pip install zerograd[fast]``. The pure-NumPy kernels in ``zerograd/ops`` stay
the reference: every kernel here computes the same values (bitwise where the arithmetic is
the same, see each kernel's docstring) and is tested against them.

This module itself never imports numba: ``import zerograd`` stays NumPy-only. The kernels live
in submodules (``zerograd._fast.pooling``, ``.im2col``, ``.elementwise``, ``.indexing``,
``.recurrent``) that import numba when they are first imported; an op asks
:func:`available` first.

The switch, read once per process from the environment and changeable at run time:

- ``ZEROGRAD_FAST=0``: never use the kernels (the NumPy path, e.g. for CI's second run);
- ``ZEROGRAD_FAST=1``: use them, and fail loudly if numba cannot be imported;
- unset (or ``auto``): use them if numba imports.

``with numpy_only():`` forces the NumPy path in the calling thread for a block.

Compiled kernels are cached on disk (numba's ``cache=True``) in :func:`cache_dir`, so a
second process loads them instead of compiling.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from pathlib import Path

__all__ = ["available", "numpy_only", "mode", "cache_dir", "FastPathError"]

_MODES = {"0": "off", "1": "on", "": "auto", "auto": "auto"}


class FastPathError(ImportError):
    """ZEROGRAD_FAST=1 asked for the compiled kernels but numba cannot be imported."""


def mode() -> str:
    """'off', 'on' or 'auto', from ZEROGRAD_FAST (read on every call: cheap, and lets a test
    or a script change it)."""
    raw = os.environ.get("ZEROGRAD_FAST", "").strip().lower()
    if raw not in _MODES:
        raise ValueError(f"ZEROGRAD_FAST must be 0, 1 or auto (or unset), got {raw!r}")
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
