"""Arithmetic: add, sub, mul, div, neg, pow (constant exponent).

Broadcasting is allowed everywhere; backward returns gradients in the broadcast shape and
the engine sums them back to each input's shape.
"""

from __future__ import annotations

import numpy as np

from zerograd.core.function import Function
from zerograd.core.variable import Variable
from zerograd.errors import DTypeError
from zerograd.ops._operands import scalar_operand

__all__ = ["add", "sub", "rsub", "mul", "div", "rdiv", "neg", "pow",
           "Add", "Sub", "Mul", "Div", "Neg", "Pow"]


class Add(Function):
    """y = x0 + x1."""

    def forward(self, x0, x1):
        return x0 + x1

    def backward(self, gy):
        return gy, gy


class Sub(Function):
    """y = x0 - x1."""

    def forward(self, x0, x1):
        return x0 - x1

    def backward(self, gy):
        return gy, (-gy if self.needs_grad(1) else None)


class Mul(Function):
    """y = x0 * x1."""

    def forward(self, x0, x1):
        return x0 * x1

    def backward(self, gy):
        x0, x1 = self.inputs
        gx0 = gy * x1 if x0.requires_grad else None
        gx1 = gy * x0 if x1.requires_grad else None
        return gx0, gx1


class Div(Function):
    """y = x0 / x1."""

    def forward(self, x0, x1):
        return x0 / x1

    def backward(self, gy):
        x0, x1 = self.inputs
        gx0 = gy / x1
        gx1 = -gx0 * x0 / x1 if x1.requires_grad else None
        return gx0, gx1


class Neg(Function):
    """y = -x."""

    def forward(self, x):
        return -x

    def backward(self, gy):
        return -gy


class Pow(Function):
    """y = x ** c for a constant exponent c (a scalar or an array that is not a Variable)."""

    def __init__(self, c) -> None:
        self.c = c

    def forward(self, x):
        return x ** self.c

    def backward(self, gy):
        (x,) = self.inputs
        c = self.c
        return c * x ** (c - 1) * gy


def add(x0, x1) -> Variable:
    """x0 + x1 with NumPy broadcasting. Either side may be a Variable, array or scalar."""
    return Add()(x0, scalar_operand(x1, x0))


def sub(x0, x1) -> Variable:
    """x0 - x1 with broadcasting."""
    return Sub()(x0, scalar_operand(x1, x0))


def rsub(x0, x1) -> Variable:
    """x1 - x0 (the reflected form, for ``scalar - Variable``)."""
    return Sub()(scalar_operand(x1, x0), x0)


def mul(x0, x1) -> Variable:
    """x0 * x1 (elementwise) with broadcasting."""
    return Mul()(x0, scalar_operand(x1, x0))


def div(x0, x1) -> Variable:
    """x0 / x1 (true division) with broadcasting."""
    return Div()(x0, scalar_operand(x1, x0))


def rdiv(x0, x1) -> Variable:
    """x1 / x0 (the reflected form, for ``scalar / Variable``)."""
    return Div()(scalar_operand(x1, x0), x0)


def neg(x) -> Variable:
    """-x."""
    return Neg()(x)


def pow(x, c) -> Variable:
    """x ** c for a constant exponent ``c``; dy/dx = c * x ** (c - 1).

    For an exponent that is itself differentiated, use ``F.power(x, y)``.
    """
    if isinstance(c, Variable):
        raise DTypeError(
            f"pow: the exponent must be a constant (a scalar or an ndarray), got a Variable of "
            f"shape {c.shape} and dtype {c.dtype} (base: {getattr(x, 'shape', ())}); use "
            f"F.power(x, y) to differentiate with respect to the exponent"
        )
    if isinstance(c, np.generic):
        c = c.item()  # weak, like a Python scalar: float32 ** np.float64(2) stays float32
    return Pow(c)(x)
