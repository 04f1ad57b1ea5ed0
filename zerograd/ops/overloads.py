"""Operator overloading and array-like methods on Variable (DeZero's ``setup_variable``).

The methods are installed here, after the ops exist, because ``core`` must not import
``ops``. ``zerograd`` calls :func:`setup_variable` at import time.
"""

from __future__ import annotations

import operator
from typing import Any

import numpy as np

from zerograd.backend import get_array_module
from zerograd.core.variable import Variable, is_array
from zerograd.ops import arithmetic, elementwise, indexing, linalg, reduction
from zerograd.ops import shape as shape_ops
from zerograd.ops._operands import scalar_operand


def _reshape(self, *shape: Any) -> Variable:
    """``x.reshape(2, 3)`` or ``x.reshape((2, 3))``."""
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        return shape_ops.reshape(self, shape[0])
    return shape_ops.reshape(self, shape)


def _transpose(self, *axes: Any) -> Variable:
    """``x.transpose()``, ``x.transpose(1, 0)``, ``x.transpose((1, 0))`` or ``(None)``."""
    if len(axes) == 0:
        return shape_ops.transpose(self, None)
    if len(axes) == 1 and (isinstance(axes[0], (tuple, list)) or axes[0] is None):
        return shape_ops.transpose(self, axes[0])
    return shape_ops.transpose(self, axes)


def _sum(self, axis=None, keepdims: bool = False) -> Variable:
    return reduction.sum(self, axis, keepdims)


def _max(self, axis=None, keepdims: bool = False) -> Variable:
    return reduction.max(self, axis, keepdims)


def _min(self, axis=None, keepdims: bool = False) -> Variable:
    return reduction.min(self, axis, keepdims)


def _mean(self, axis=None, keepdims: bool = False) -> Variable:
    return reduction.mean(self, axis, keepdims)


def _rmatmul(self, other) -> Variable:
    return linalg.matmul(other, self)


def _pow(self, exponent) -> Variable:
    """``x ** 2`` (a constant exponent: arithmetic's Pow) or ``x ** y`` (both differentiable)."""
    if isinstance(exponent, Variable):
        return elementwise.power(self, exponent)
    return arithmetic.pow(self, exponent)


def _rpow(self, base) -> Variable:
    """``2 ** x``: differentiable in the exponent."""
    return elementwise.power(scalar_operand(base, self), self)


def _comparison(compare):
    """A comparison operator on Variables: a plain boolean ndarray, never a Variable.

    The other side may be a Variable, an array or a scalar; anything else gives
    NotImplemented, so ``x == None`` or ``x == "a"`` is False (identity), as for any object.
    """

    def method(self, other):
        if isinstance(other, Variable):
            other = other.data
        elif not (is_array(other) or isinstance(other, (int, float, bool, np.generic))):
            return NotImplemented
        result = compare(self.data, other)
        return get_array_module(self.data).asarray(result)  # 0-d inputs: an array, not np.bool_

    method.__name__ = f"__{compare.__name__}__"
    method.__doc__ = f"Elementwise ``{compare.__name__}`` as a boolean ndarray (no graph)."
    return method


def _abs(self) -> Variable:
    return elementwise.abs(self)


def setup_variable() -> None:
    """Install operators and array-like methods on :class:`Variable`.

    ``core/variable.py`` declares each of them for type checkers (under TYPE_CHECKING), so
    that ``x + y`` or ``x.sum()`` type-checks as a Variable; this is where they come from.
    """
    methods = {
        "__add__": arithmetic.add, "__radd__": arithmetic.add,
        "__sub__": arithmetic.sub, "__rsub__": arithmetic.rsub,
        "__mul__": arithmetic.mul, "__rmul__": arithmetic.mul,
        "__truediv__": arithmetic.div, "__rtruediv__": arithmetic.rdiv,
        "__neg__": arithmetic.neg,
        "__pow__": _pow, "__rpow__": _rpow,
        "__matmul__": linalg.matmul, "__rmatmul__": _rmatmul,
        "__getitem__": indexing.get_item,
        "matmul": linalg.matmul, "dot": linalg.matmul,
        "reshape": _reshape, "transpose": _transpose,
        "T": property(lambda self: shape_ops.transpose(self)),
        "sum": _sum,
        "max": _max, "min": _min,  # DeZero installs F.max / F.min as methods too
        "mean": _mean,
        "flatten": lambda self: shape_ops.flatten(self),
        "squeeze": lambda self, axis=None: shape_ops.squeeze(self, axis),
        "__abs__": _abs,
        "__lt__": _comparison(operator.lt), "__le__": _comparison(operator.le),
        "__gt__": _comparison(operator.gt), "__ge__": _comparison(operator.ge),
        "__eq__": _comparison(operator.eq), "__ne__": _comparison(operator.ne),
        # Defining __eq__ must not make Variables unhashable: graphs, optimizers and user
        # code keep them in sets and dicts, by identity.
        "__hash__": object.__hash__,
    }
    for name, method in methods.items():
        setattr(Variable, name, method)
