"""Array-module resolution: NumPy always, CuPy when it is installed and a GPU is present.

CuPy is imported lazily, on the first question that needs it, so ``import zerograd``
costs nothing extra on a machine without it.
"""

from __future__ import annotations

import types

import numpy as np

_cupy: types.ModuleType | None = None
_cupy_checked = False


def cupy_module() -> types.ModuleType | None:
    """The ``cupy`` module if it imports and sees a GPU, else ``None`` (checked once)."""
    global _cupy, _cupy_checked
    if not _cupy_checked:
        _cupy_checked = True
        try:
            import cupy

            if cupy.cuda.runtime.getDeviceCount() > 0:
                _cupy = cupy
        except Exception:  # ImportError, or CUDA present but unusable
            _cupy = None
    return _cupy


def gpu_available() -> bool:
    return cupy_module() is not None


def _unwrap(x):
    """The array inside a Variable; anything else unchanged.

    (Arrays have a ``.data`` attribute too, a buffer, so only Variables are unwrapped.)
    """
    if isinstance(x, np.ndarray):
        return x
    if hasattr(x, "creator") and hasattr(x, "requires_grad"):
        return x.data
    return x


def get_array_module(x) -> types.ModuleType:
    """``numpy`` or ``cupy``, whichever owns ``x`` (a Variable or an array)."""
    data = _unwrap(x)
    if isinstance(data, (np.ndarray, np.generic)) or _looks_like_numpy(data):
        return np
    cp = cupy_module()
    if cp is not None:
        return cp.get_array_module(data)
    return np


def _looks_like_numpy(data) -> bool:
    # Without asking CuPy yet: anything that is not a CuPy array is NumPy's business.
    return type(data).__module__.split(".")[0] != "cupy"


def as_numpy(x) -> np.ndarray:
    """A NumPy array from a Variable, a CuPy array, a NumPy array or a scalar."""
    data = _unwrap(x)
    if np.isscalar(data):
        return np.array(data)
    if isinstance(data, np.ndarray):
        return data
    cp = cupy_module()
    if cp is not None and isinstance(data, cp.ndarray):
        return cp.asnumpy(data)
    return np.asarray(data)


def as_cupy(x):
    """A CuPy array from a Variable or an array; a clear error where CuPy cannot run."""
    cp = cupy_module()
    if cp is None:
        raise RuntimeError(
            "CuPy cannot be loaded or sees no GPU: install CuPy for your CUDA version "
            "(pip install cupy-cuda12x) on a machine with an NVIDIA GPU"
        )
    return cp.asarray(_unwrap(x))
