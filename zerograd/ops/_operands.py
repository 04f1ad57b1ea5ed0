"""Turning the non-Variable operand of a binary op into an array of the right dtype."""

from __future__ import annotations

import numpy as np

from zerograd.backend import get_array_module
from zerograd.core.function import _new_variable
from zerograd.core.variable import Variable, is_array

_PY_SCALARS = (int, float, complex)


def constant(data) -> Variable:
    """A Variable that needs no gradient (what ops wrap plain arrays and scalars in)."""
    return _new_variable(data, None, 0, False)


def scalar_operand(x1, x0):
    """The operand ``x1`` of a binary op whose other operand is ``x0`` (a Variable).

    Variables and arrays pass through. A scalar is *weak*, as NumPy 2 treats Python
    scalars: it becomes a 0-d array of the dtype NumPy would give ``x0.data <op> x1``, so
    ``float32 Variable * 2.0`` stays float32. NumPy scalars (``np.float64(2)``) are treated
    as weak too, so that ``x * np.sqrt(2)`` does not silently turn float32 into float64.
    """
    if isinstance(x1, Variable) or is_array(x1):
        return x1
    if isinstance(x1, np.generic):
        x1 = x1.item()
    if not isinstance(x1, _PY_SCALARS):
        return x1  # Function.__call__ raises a clear error naming the op
    data = x0.data if isinstance(x0, Variable) else np.asarray(x0)
    dtype = data.dtype
    if not (dtype.kind == "f" and type(x1) is not complex):
        dtype = np.result_type(dtype, x1)
    return constant(get_array_module(data).asarray(x1, dtype=dtype))
