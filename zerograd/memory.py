"""How the process reuses freed memory: glibc's malloc kept from unmapping a step's arrays.

A training or inference step allocates its large arrays (activations, gradients, the
whole-sequence ops' buffers: megabytes each) and frees them at its end; the next step asks
for the same sizes again. glibc's malloc decides per request whether memory comes from its
heap or from a fresh ``mmap``, and how much freed memory at the top of the heap it hands
back to the kernel (its *trim threshold*). Both thresholds start at 128 KiB and adapt to the
largest array freed so far, but the trim threshold stays at twice that size: a step that
frees more than twice its largest array at once gives the pages back, and the next step
faults every 4 KiB page in again. On the machines of docs/performance.md a minor fault costs
about 4 us, so a whole-sequence LSTM forward at (32, 64, 128) paid 2,500 faults, 12 ms of
its 24, in a process of its own, and nothing when an earlier workload in the same process
happened to have raised the thresholds (a bias between benchmarks and training scripts).

So ``import zerograd`` fixes the two thresholds where glibc's adaptation would end up for
such programs, :data:`MMAP_THRESHOLD` (arrays below 32 MiB come from the heap: glibc's own
upper limit for the adaptive threshold) and :data:`TRIM_THRESHOLD` (up to 128 MiB of freed
memory stays mapped for the next step). Calling ``mallopt`` turns glibc's adaptation off,
which is what keeps the thresholds where they are set. The cost is memory the process keeps
but does not use: at most the trim threshold at the heap's top, given back by
:func:`release_freed_memory` or as soon as more than that is free.

Left alone: a C library other than glibc (musl, macOS, Windows: nothing to do there), a
process whose user chose glibc's settings (any ``MALLOC_TRIM_THRESHOLD_``,
``MALLOC_MMAP_THRESHOLD_``, ``MALLOC_TOP_PAD_``, ``MALLOC_MMAP_MAX_`` or a ``glibc.malloc``
entry in ``GLIBC_TUNABLES``), and ``ZEROGRAD_MALLOC=system``. PyTorch's performance tuning
guide gives the same advice in another form (preload jemalloc or tcmalloc); this needs no
other library.
"""

from __future__ import annotations

import ctypes
import os
from typing import Any

__all__ = ["MMAP_THRESHOLD", "TRIM_THRESHOLD", "keep_freed_memory", "release_freed_memory",
           "settings"]

MMAP_THRESHOLD = 32 << 20  # bytes: smaller arrays come from the heap (glibc's adaptive cap)
TRIM_THRESHOLD = 128 << 20  # bytes of freed memory kept mapped at the heap's top

# mallopt's parameter numbers (<malloc.h>).
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3

# The environment variables through which a user sets glibc's malloc directly.
_GLIBC_VARIABLES = ("MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_THRESHOLD_", "MALLOC_TOP_PAD_",
                    "MALLOC_MMAP_MAX_")
_MODES = {"": "keep", "1": "keep", "keep": "keep", "0": "system", "system": "system"}

# What this process did: filled in by keep_freed_memory and configure.
_state: dict[str, Any] = {"applied": False, "reason": "not configured yet",
                          "mmap_threshold": None, "trim_threshold": None}


def _glibc():
    """glibc itself (a ctypes library), or None where the C library is another one."""
    try:
        version = os.confstr("CS_GNU_LIBC_VERSION")
    except (AttributeError, ValueError, OSError):  # not a POSIX system, or not glibc
        return None
    if not version or not version.startswith("glibc"):
        return None
    try:
        libc = ctypes.CDLL(None)
        libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
        libc.malloc_trim.argtypes = [ctypes.c_size_t]
    except (OSError, AttributeError):
        return None
    return libc


def _bytes(name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**31:
        raise ValueError(f"zerograd.memory.keep_freed_memory: {name} must be a number of "
                         f"bytes in [0, 2**31) (mallopt takes an int), got {value!r}")
    return value


def keep_freed_memory(mmap_threshold: int = MMAP_THRESHOLD,
                      trim_threshold: int = TRIM_THRESHOLD) -> bool:
    """Keep freed memory mapped for the next allocations: arrays below ``mmap_threshold``
    bytes come from glibc's heap, and up to ``trim_threshold`` bytes of freed memory at its
    top stay mapped. ``import zerograd`` calls this with the defaults (see the module
    docstring); call it again to choose other sizes. Returns whether the settings took
    effect (False where the C library is not glibc)."""
    mmap_threshold = _bytes("mmap_threshold", mmap_threshold)
    trim_threshold = _bytes("trim_threshold", trim_threshold)
    libc = _glibc()
    if libc is None:
        _state.update(applied=False, reason="the C library is not glibc")
        return False
    if not (libc.mallopt(_M_MMAP_THRESHOLD, mmap_threshold)
            and libc.mallopt(_M_TRIM_THRESHOLD, trim_threshold)):
        # mallopt returns 0 for a value this glibc does not accept.
        _state.update(applied=False, reason=f"glibc's mallopt refused mmap_threshold="
                                            f"{mmap_threshold} or trim_threshold={trim_threshold}")
        return False
    _state.update(applied=True, reason="set by zerograd", mmap_threshold=mmap_threshold,
                  trim_threshold=trim_threshold)
    return True


def release_freed_memory() -> bool:
    """Give the freed memory that the process keeps back to the kernel now (glibc's
    ``malloc_trim``), e.g. after training, before a long idle period. Returns whether any
    was given back (False where the C library is not glibc)."""
    libc = _glibc()
    return bool(libc is not None and libc.malloc_trim(0))


def settings() -> dict[str, Any]:
    """What this process's allocator settings are: ``applied`` (whether zerograd set them),
    ``reason`` (why or why not), ``mmap_threshold`` and ``trim_threshold`` (bytes, or None
    where zerograd did not set them)."""
    return dict(_state)


def _user_settings() -> str | None:
    """The first glibc malloc setting the user made in the environment, if any."""
    for name in _GLIBC_VARIABLES:
        if name in os.environ:
            return name
    if "glibc.malloc." in os.environ.get("GLIBC_TUNABLES", ""):
        return "GLIBC_TUNABLES"
    return None


def configure() -> None:
    """Apply ``ZEROGRAD_MALLOC`` (``keep``, the default, or ``system``): called once by
    ``import zerograd``."""
    raw = os.environ.get("ZEROGRAD_MALLOC", "").strip().lower()
    if raw not in _MODES:
        raise ValueError(f"ZEROGRAD_MALLOC must be keep (or 1, or unset) or system (or 0), "
                         f"got {raw!r}")
    if _MODES[raw] == "system":
        _state.update(applied=False, reason="ZEROGRAD_MALLOC=system")
        return
    user = _user_settings()
    if user is not None:
        _state.update(applied=False, reason=f"the environment sets glibc's malloc ({user})")
        return
    keep_freed_memory()
