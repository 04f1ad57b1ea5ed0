"""Arithmetic: add, sub, mul, div, neg, pow (constant exponent).

Broadcasting is allowed everywhere; backward returns gradients in the broadcast shape and
the engine sums them back to each input's shape.

A Python (or NumPy) scalar operand does not become a graph input: the op keeps it as a
constant (``AddConstant``, ``MulConstant``, ...). NumPy 2 treats a Python scalar as *weak*,
so ``float32 Variable * 2.0`` stays float32, and one-input ops are cheaper to run and to
differentiate.
"""

from __future__ import annotations

import numpy as np

from zerograd.core.function import Function
from zerograd.core.variable import Variable
from zerograd.errors import DTypeError

__all__ = ["add", "sub", "rsub", "mul", "div", "rdiv", "neg", "pow",
           "Add", "Sub", "Mul", "Div", "Neg", "Pow"]

_PY_SCALARS = (int, float, complex)


# The scalar operands most programs write (x * 2, x + 0.5): taken as they are, without a call.
_PLAIN_NUMBERS = (float, int)


def _as_scalar(x):
    """``x`` as a Python scalar if it is a Python or NumPy scalar, else None.

    A NumPy bool (``np.bool_``) is not a scalar constant here: it is what a comparison of
    0-d arrays returns (``x.data > 0``), i.e. a 0-d mask, and it takes the same path as an
    n-d boolean mask (a constant array input of ``Mul``). Turned into a Python ``True`` it
    would become ``MulConstant(True)``, whose own backward (``gy * True``) is refused, so
    double backward through ``relu``/``clip`` of a 0-d input would fail.
    """
    if type(x) is float or type(x) is int:
        return x
    if isinstance(x, np.bool_):
        return None
    if isinstance(x, np.generic):
        return x.item()  # weak like a Python scalar: float32 * np.sqrt(2) stays float32
    if isinstance(x, _PY_SCALARS) and not isinstance(x, bool):
        return x
    return None


class Add(Function):
    """y = x0 + x1."""

    retain_inputs = ()  # only the shapes (the engine keeps those)
    retain_outputs = ()

    def forward(self, x0, x1):
        return x0 + x1

    def backward(self, gy):
        return gy, gy

    def to_onnx(self, g, x0, x1):
        return g.op("Add", x0, x1)


class Sub(Function):
    """y = x0 - x1."""

    retain_inputs = ()
    retain_outputs = ()

    def forward(self, x0, x1):
        return x0 - x1

    def backward(self, gy):
        return gy, (-gy if self.needs_grad(1) else None)

    backward_arrays = backward  # the same code computes it on arrays

    def to_onnx(self, g, x0, x1):
        return g.op("Sub", x0, x1)


class Mul(Function):
    """y = x0 * x1."""

    retain_inputs = (0, 1)  # each gradient is gy times the other operand
    retain_outputs = ()

    def forward(self, x0, x1):
        return x0 * x1

    def backward(self, gy):
        x0, x1 = self.inputs
        gx0 = gy * x1 if x0.requires_grad else None
        gx1 = gy * x0 if x1.requires_grad else None
        return gx0, gx1

    def backward_arrays(self, gy):
        x0, x1 = self.inputs
        gx0 = gy * x1._data if x0.requires_grad else None
        gx1 = gy * x0._data if x1.requires_grad else None
        return gx0, gx1

    def to_onnx(self, g, x0, x1):
        return g.op("Mul", x0, x1)


class Div(Function):
    """y = x0 / x1."""

    retain_inputs = (0, 1)
    retain_outputs = ()

    def forward(self, x0, x1):
        return x0 / x1

    def backward(self, gy):
        x0, x1 = self.inputs
        gx0 = gy / x1
        gx1 = -gx0 * x0 / x1 if x1.requires_grad else None
        return gx0, gx1

    def backward_arrays(self, gy):
        x0, x1 = self.inputs[0]._data, self.inputs[1]._data
        gx0 = gy / x1
        gx1 = -gx0 * x0 / x1 if self.inputs[1].requires_grad else None
        return gx0, gx1

    def to_onnx(self, g, x0, x1):
        return g.op("Div", x0, x1)


class Neg(Function):
    """y = -x."""

    retain_inputs = ()
    retain_outputs = ()

    def forward(self, x):
        return -x

    def backward(self, gy):
        return -gy

    backward_arrays = backward  # the same code computes it on arrays

    def to_onnx(self, g, x):
        return g.op("Neg", x)


def neg(x) -> Variable:
    """-x."""
    return Neg()(x)


class AddConstant(Function):
    """y = x + c for a scalar constant c."""

    retain_inputs = ()
    retain_outputs = ()

    def __init__(self, c) -> None:
        self.c = c

    def forward(self, x):
        return x + self.c

    def backward(self, gy):
        return gy

    def to_onnx(self, g, x):
        return g.op("Add", x, g.scalar(self.c, like=self.inputs[0]))


class MulConstant(Function):
    """y = x * c for a scalar constant c."""

    retain_inputs = ()
    retain_outputs = ()

    def __init__(self, c) -> None:
        self.c = c

    def forward(self, x):
        return x * self.c

    def backward(self, gy):
        # What `gy * self.c` does (mul of a Variable and a scalar), without the operator's
        # dispatch and mul's tests: every backward through a scaled value comes here.
        return MulConstant(self.c)(gy)

    def backward_arrays(self, gy):
        return gy * self.c

    def to_onnx(self, g, x):
        return g.op("Mul", x, g.scalar(self.c, like=self.inputs[0]))


class RSubConstant(Function):
    """y = c - x for a scalar constant c."""

    retain_inputs = ()
    retain_outputs = ()

    def __init__(self, c) -> None:
        self.c = c

    def forward(self, x):
        return self.c - x

    def backward(self, gy):
        return -gy

    backward_arrays = backward  # the same code computes it on arrays

    def to_onnx(self, g, x):
        return g.op("Sub", g.scalar(self.c, like=self.inputs[0]), x)


class DivConstant(Function):
    """y = x / c for a scalar constant c."""

    retain_inputs = ()
    retain_outputs = ()

    def __init__(self, c) -> None:
        self.c = c

    def forward(self, x):
        return x / self.c

    def backward(self, gy):
        return gy / self.c

    backward_arrays = backward  # the same code computes it on arrays

    def to_onnx(self, g, x):
        return g.op("Div", x, g.scalar(self.c, like=self.inputs[0]))


class RDivConstant(Function):
    """y = c / x for a scalar constant c; dy/dx = -c / x^2 = -y / x."""

    retain_inputs = (0,)  # -y / x
    retain_outputs = (0,)

    def __init__(self, c) -> None:
        self.c = c

    def forward(self, x):
        return self.c / x

    def backward(self, gy):
        (x,) = self.inputs
        return -gy * self.output / x

    def backward_arrays(self, gy):
        return -gy * self.output._data / self.inputs[0]._data

    def to_onnx(self, g, x):
        return g.op("Div", g.scalar(self.c, like=self.inputs[0]), x)


class Pow(Function):
    """y = x ** c for a constant exponent c (a scalar or an array that is not a Variable)."""

    retain_inputs = (0,)
    retain_outputs = ()

    def __init__(self, c) -> None:
        self.c = c

    def forward(self, x):
        return x ** self.c

    def backward(self, gy):
        return PowGrad(self.c)(self.inputs[0], gy)

    def backward_arrays(self, gy):
        return _pow_grad(self.inputs[0]._data, gy, self.c)

    def to_onnx(self, g, x):
        # The exponent (a scalar or an array) becomes a constant of x's dtype.
        return g.op("Pow", x, g.scalar(self.c, like=self.inputs[0]))


def _squares(c) -> bool:
    return isinstance(c, _PY_SCALARS) and c == 2


def _pow_grad(x, gy, c):
    """gy * c * x ** (c - 1) on arrays, as ``gy * x * 2`` for c = 2 (PowGrad's forward)."""
    if _squares(c):
        return gy * x * 2
    return gy * (x ** (c - 1) * c)


class PowGrad(Function):
    """gx = gy * c * x ** (c - 1), pow's first derivative, in one node (``gy * x * 2`` for
    c = 2) instead of a Pow, a MulConstant and a Mul: a backward of ``x ** 2`` is one op call.

    The next order is written with the ops the unfused graph would run, in its order, so
    every derivative of pow keeps its values bit for bit: d/dgy = c * x ** (c - 1) and
    d/dx = PowGrad(c - 1)(x, ggx * gy * c), the derivative of ``x ** (c - 1)`` (for c = 2:
    ``ggx * 2`` times gy and x).
    """

    retain_inputs = (0, 1)
    retain_outputs = ()

    def __init__(self, c) -> None:
        self.c = c

    def forward(self, x, gy):
        return _pow_grad(x, gy, self.c)

    def backward(self, ggx):
        x, gy = self.inputs
        c = self.c
        if _squares(c):
            g = ggx * 2
            return (g * gy if self.needs_grad(0) else None,
                    g * x if self.needs_grad(1) else None)
        g_x = PowGrad(c - 1)(x, ggx * gy * c) if self.needs_grad(0) else None
        g_gy = ggx * (x ** (c - 1) * c) if self.needs_grad(1) else None
        return g_x, g_gy


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
    scalar = _as_scalar(c)
    return Pow(c if scalar is None else scalar)(x)


def add(x0, x1) -> Variable:
    """x0 + x1 with NumPy broadcasting. Either side may be a Variable, array or scalar."""
    if isinstance(x1, Variable):  # first: the graph's own ops (x * y) take one test
        return Add()(x0, x1)
    c = x1 if type(x1) in _PLAIN_NUMBERS else _as_scalar(x1)
    if c is not None:
        return AddConstant(c)(x0)
    return Add()(x0, x1)


def sub(x0, x1) -> Variable:
    """x0 - x1 with broadcasting."""
    if isinstance(x1, Variable):  # first: the graph's own ops (x * y) take one test
        return Sub()(x0, x1)
    c = x1 if type(x1) in _PLAIN_NUMBERS else _as_scalar(x1)
    if c is not None:
        return AddConstant(-c)(x0)
    return Sub()(x0, x1)


def rsub(x0, x1) -> Variable:
    """x1 - x0 (the reflected form, for ``scalar - Variable``)."""
    c = x1 if type(x1) in _PLAIN_NUMBERS else _as_scalar(x1)
    if c is not None:
        return RSubConstant(c)(x0)
    return Sub()(x1, x0)


def mul(x0, x1) -> Variable:
    """x0 * x1 (elementwise) with broadcasting."""
    if isinstance(x1, Variable):  # first: the graph's own ops (x * y) take one test
        return Mul()(x0, x1)
    c = x1 if type(x1) in _PLAIN_NUMBERS else _as_scalar(x1)
    if c is not None:
        return MulConstant(c)(x0)
    return Mul()(x0, x1)


def div(x0, x1) -> Variable:
    """x0 / x1 (true division) with broadcasting."""
    if isinstance(x1, Variable):  # first: the graph's own ops (x * y) take one test
        return Div()(x0, x1)
    c = x1 if type(x1) in _PLAIN_NUMBERS else _as_scalar(x1)
    if c is not None:
        return DivConstant(c)(x0)
    return Div()(x0, x1)


def rdiv(x0, x1) -> Variable:
    """x1 / x0 (the reflected form, for ``scalar / Variable``)."""
    c = x1 if type(x1) in _PLAIN_NUMBERS else _as_scalar(x1)
    if c is not None:
        return RDivConstant(c)(x0)
    return Div()(x1, x0)


