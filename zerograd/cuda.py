"""``zerograd.cuda``: DeZero's GPU helpers. CuPy is imported lazily, on first use.

``gpu_enable`` is True when CuPy imports and sees a GPU; ``cupy`` / ``cp`` is the module
(or None). Both are computed on first access, not at ``import zerograd``.
"""

from zerograd.backend import as_cupy, as_numpy, cupy_module, get_array_module
from zerograd.core.variable import Variable  # noqa: F401 - dezero.cuda has it too

# gpu_enable, cupy and cp are module attributes computed on access (see __getattr__).
__all__ = ["as_cupy", "as_numpy", "get_array_module"]


def __getattr__(name: str):
    if name == "gpu_enable":
        return cupy_module() is not None
    if name in ("cupy", "cp"):
        return cupy_module()
    raise AttributeError(f"module 'zerograd.cuda' has no attribute {name!r}")
