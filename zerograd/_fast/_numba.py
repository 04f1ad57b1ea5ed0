"""numba, configured for zerograd's kernels: one decorator, ``kernel``.

Every kernel is ``numba.njit`` with

- ``cache=True`` in zerograd's own cache folder (:func:`zerograd._fast.cache_dir`). numba
  picks a function's cache location when the function is decorated, from
  ``numba.config.CACHE_DIR`` (what its documented ``NUMBA_CACHE_DIR`` variable sets), so the
  decorator points that setting at zerograd's folder for the moment of decoration only: the
  user's own numba functions keep numba's usual location. If the folder cannot be created or
  written, numba's own fallbacks apply (``__pycache__`` beside the source, then a per-user
  folder); if none is writable the kernel compiles in every process (a warning says so).
- ``error_model="numpy"``: a float division by zero gives inf/nan as in NumPy, not a Python
  exception (which would also keep LLVM from vectorising the loops).
- no ``fastmath``: the kernels must round like the NumPy path (no reassociation, no FMA
  contraction, NaN and inf kept). The exceptions are explicit: the polynomials of the
  kernels' own exp, sigmoid and tanh (``elementwise._muladd``), which have error bounds of
  their own and no NumPy counterpart to match, and ``reassociate=True`` for the sums of
  ``products.py``, whose NumPy counterpart is a BLAS product with an order of its own.
"""

from __future__ import annotations

import warnings

import numba
from numba.core import config as numba_config

from zerograd._fast import cache_dir

prange = numba.prange

__all__ = ["kernel", "prange", "numba"]


def kernel(fn=None, *, parallel: bool = False, reassociate: bool = False):
    """``@kernel`` or ``@kernel(parallel=True)``: a cached numba kernel (see the module doc).

    ``parallel=True`` turns ``prange`` loops into threads (numba's thread pool); with
    ``parallel=False`` they are plain loops. ``reassociate=True`` lets LLVM reorder
    additions (fastmath's "reassoc" flag alone: no FMA contraction, NaN and inf kept), which
    it needs to vectorise a running sum; only for kernels whose NumPy counterpart has no
    fixed order of additions either (a BLAS product)."""

    def decorate(f):
        options = dict(cache=True, error_model="numpy", parallel=parallel, nogil=True)
        if reassociate:
            options["fastmath"] = {"reassoc"}
        previous = numba_config.CACHE_DIR
        numba_config.CACHE_DIR = str(cache_dir())
        try:
            return numba.njit(**options)(f)
        except RuntimeError as e:  # "cannot cache function ...: no locator available"
            warnings.warn(f"zerograd._fast: {f.__name__} cannot be cached in {cache_dir()} "
                          f"({e}); it compiles in every process", RuntimeWarning, stacklevel=3)
            options["cache"] = False
            return numba.njit(**options)(f)
        finally:
            numba_config.CACHE_DIR = previous

    return decorate if fn is None else decorate(fn)
