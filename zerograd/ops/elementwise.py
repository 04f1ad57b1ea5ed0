"""Elementwise math. Unary ops map x of any shape to the same shape; binary ops broadcast.

Kink conventions (where the derivative is not defined, what backward returns):

* ``abs'(0) = 0`` (the subgradient of least magnitude, as NumPy's ``sign``);
* ``sqrt'(0) = inf`` (the limit; PyTorch agrees);
* ``maximum``/``minimum`` ties split the gradient half and half between the two inputs;
* ``clip`` passes the gradient to x on the closed interval ``x_min <= x <= x_max`` (DeZero);
* ``power(x, y)``: d/dy is 0 where x == 0 (x ** y is flat there for y > 0), and d/dx is 0
  where y == 0 (x ** 0 == 1 for every x, including 0).
"""

from __future__ import annotations

import math

import numpy as np

from zerograd.backend import get_array_module
from zerograd.core.function import Function
from zerograd.core.variable import Variable, is_array
from zerograd.errors import DTypeError, ShapeError
from zerograd.ops._operands import scalar_operand
from zerograd.ops._special import erf_array, erfc_array

__all__ = ["square", "exp", "log", "sin", "cos", "tanh",
           "sqrt", "abs", "power", "maximum", "minimum", "where", "clip",
           "log1p", "expm1", "log2", "log10", "sinh", "cosh", "arcsin", "arccos", "arctan",
           "erf", "erfc",
           "Square", "Exp", "Log", "Sin", "SinGrad", "Cos", "Tanh", "TanhGrad",
           "Sqrt", "Abs", "Power", "Maximum", "Minimum", "Where", "Clip", "ClipBetween",
           "Log1p", "Expm1", "Log2", "Log10", "Sinh", "Cosh", "Arcsin", "Arccos", "Arctan",
           "Erf", "Erfc"]

_LN2 = math.log(2.0)
_LN10 = math.log(10.0)
_TWO_OVER_SQRT_PI = 2.0 / math.sqrt(math.pi)


def _binary_operands(x0, x1):
    """Turn a scalar on either side of a binary op into an array of the other side's dtype."""
    if isinstance(x0, Variable) or is_array(x0):
        return x0, scalar_operand(x1, x0)
    if isinstance(x1, Variable) or is_array(x1):
        return scalar_operand(x0, x1), x1
    return x0, x1


class Square(Function):
    """y = x ** 2; dy/dx = 2x."""

    retain_inputs = (0,)
    retain_outputs = ()

    def forward(self, x):
        return x * x

    def backward(self, gy):
        (x,) = self.inputs
        return gy * x * 2

    def backward_arrays(self, gy):
        return gy * self.inputs[0]._data * 2

    def to_onnx(self, g, x):
        return g.op("Mul", x, x)


def square(x) -> Variable:
    """x ** 2, elementwise."""
    return Square()(x)


class Exp(Function):
    """y = exp(x); dy/dx = y (keeps its output, not its input)."""

    retain_inputs = ()
    retain_outputs = (0,)

    def forward(self, x):
        return np.exp(x)

    def backward(self, gy):
        return gy * self.output

    def backward_arrays(self, gy):
        return gy * self.output._data

    def to_onnx(self, g, x):
        return g.op("Exp", x)


def exp(x) -> Variable:
    """e ** x, elementwise."""
    return Exp()(x)


class Log(Function):
    """y = log(x) (natural); dy/dx = 1 / x. log(0) = -inf, as NumPy."""

    retain_inputs = (0,)
    retain_outputs = ()

    def forward(self, x):
        return np.log(x)

    def backward(self, gy):
        (x,) = self.inputs
        return gy / x

    def backward_arrays(self, gy):
        return gy / self.inputs[0]._data

    def to_onnx(self, g, x):
        return g.op("Log", x)


def log(x) -> Variable:
    """Natural logarithm, elementwise."""
    return Log()(x)


class Sin(Function):
    """y = sin(x); dy/dx = cos(x)."""

    retain_inputs = (0,)
    retain_outputs = ()

    def forward(self, x):
        return np.sin(x)

    def backward(self, gy):
        (x,) = self.inputs
        return SinGrad()(x, gy)

    def backward_arrays(self, gy):
        return gy * np.cos(self.inputs[0]._data)

    def to_onnx(self, g, x):
        return g.op("Sin", x)


def sin(x) -> Variable:
    """Sine (radians), elementwise."""
    return Sin()(x)


class SinGrad(Function):
    """gx = gy cos(x), sin's first derivative, in one node instead of a Cos and a Mul.

    d/dx = -gy sin(x); d/dgy = cos(x). The next order is written with the same ops, in the
    same order, as the two nodes it replaces (``ggx * gy * -sin(x)``, ``ggx * cos(x)``), so
    every derivative of sin has the values it had before, bit for bit.
    """

    retain_inputs = (0, 1)
    retain_outputs = ()

    def forward(self, x, gy):
        return gy * np.cos(x)

    def backward(self, ggx):
        x, gy = self.inputs
        g_x = ggx * gy * -sin(x) if self.needs_grad(0) else None
        g_gy = ggx * cos(x) if self.needs_grad(1) else None
        return g_x, g_gy


class Cos(Function):
    """y = cos(x); dy/dx = -sin(x)."""

    retain_inputs = (0,)
    retain_outputs = ()

    def forward(self, x):
        return np.cos(x)

    def backward(self, gy):
        (x,) = self.inputs
        return gy * -sin(x)

    def backward_arrays(self, gy):
        return gy * -np.sin(self.inputs[0]._data)

    def to_onnx(self, g, x):
        return g.op("Cos", x)


def cos(x) -> Variable:
    """Cosine (radians), elementwise."""
    return Cos()(x)


class Tanh(Function):
    """y = tanh(x); dy/dx = 1 - y^2 (keeps its output)."""

    retain_inputs = ()
    retain_outputs = (0,)

    def forward(self, x):
        return np.tanh(x)

    def backward(self, gy):
        return TanhGrad()(self.output, gy)

    def backward_arrays(self, gy):
        return _tanh_grad(self.output._data, gy)

    def to_onnx(self, g, x):
        return g.op("Tanh", x)


def tanh(x) -> Variable:
    """Hyperbolic tangent, elementwise."""
    return Tanh()(x)


def _tanh_grad(y, gy):
    """gy (1 - y^2) on arrays (TanhGrad's forward)."""
    gx = 1 - y * y
    gx *= gy
    return gx


class TanhGrad(Function):
    """gx = gy (1 - y^2) from tanh's output y, in one node (recurrent nets call tanh often).

    d/dy = -2 gy y; d/dgy = 1 - y^2 (another TanhGrad), so every order is differentiable.
    """

    retain_inputs = (0, 1)
    retain_outputs = ()

    def forward(self, y, gy):
        return _tanh_grad(y, gy)

    def backward(self, ggx):
        y, gy = self.inputs
        g_y = ggx * gy * y * -2 if self.needs_grad(0) else None
        g_gy = TanhGrad()(y, ggx) if self.needs_grad(1) else None
        return g_y, g_gy


class Sqrt(Function):
    """y = sqrt(x); dy/dx = 1 / (2y) (keeps its output). At x = 0 the gradient is inf."""

    retain_inputs = ()
    retain_outputs = (0,)

    def forward(self, x):
        return np.sqrt(x)

    def backward(self, gy):
        return gy / (self.output * 2)

    def backward_arrays(self, gy):
        return gy / (self.output._data * 2)

    def to_onnx(self, g, x):
        return g.op("Sqrt", x)


def sqrt(x) -> Variable:
    """sqrt(x), elementwise; dy/dx = 1 / (2 sqrt(x)), inf at x = 0. x: any shape -> same."""
    return Sqrt()(x)


class Abs(Function):
    """y = |x|; dy/dx = sign(x), 0 at x = 0."""

    retain_inputs = (0,)
    retain_outputs = ()

    def forward(self, x):
        return np.abs(x)

    def backward(self, gy):
        (x,) = self.inputs
        return gy * np.sign(x.data)

    def to_onnx(self, g, x):
        return g.op("Abs", x)


def abs(x) -> Variable:  # NumPy's name; it shadows the builtin only inside this module and F
    """|x|, elementwise; dy/dx = sign(x), with abs'(0) = 0. x: any shape -> same shape."""
    return Abs()(x)


class Power(Function):
    """y = x0 ** x1 with both sides differentiable.

    dy/dx0 = x1 * x0 ** (x1 - 1) (0 where x1 == 0, even at x0 == 0);
    dy/dx1 = y * log(x0) (0 where x0 == 0).
    """

    retain_inputs = (0, 1)
    retain_outputs = (0,)

    def forward(self, x0, x1):
        return x0 ** x1

    def backward(self, gy):
        x0, x1 = self.inputs
        gx0 = gx1 = None
        if self.needs_grad(0):
            exponent = x1 - 1
            zero_to_zero = (x1.data == 0) & (x0.data == 0)
            if zero_to_zero.any():
                # d/dx x^0 = 0 at x = 0 too: 0 * 0^0 there, not 0 * 0^-1 = 0 * inf = nan.
                exponent = where(zero_to_zero, 0.0, exponent)
            gx0 = gy * x1 * power(x0, exponent)
        if self.needs_grad(1):
            base = x0
            zero_base = x0.data == 0
            if zero_base.any():
                # 0 ** y is flat in y (for y > 0): use log(1) = 0 instead of log(0) = -inf.
                base = where(zero_base, 1.0, x0)
            gx1 = gy * self.output * log(base)
        return gx0, gx1

    def to_onnx(self, g, x0, x1):
        return g.op("Pow", x0, x1)


def power(x, y) -> Variable:
    """x ** y elementwise with broadcasting, differentiable in both x and y.

    dy/dx = y x^(y-1); d/dy = x^y log(x) (nan for x < 0, 0 at x == 0). Either side may be a
    Variable, an array or a scalar (``power(2, x)``); a scalar takes the other side's dtype.
    ``x ** y`` with a Variable exponent and ``2 ** x`` call this function.
    """
    x, y = _binary_operands(x, y)
    return Power()(x, y)


class Maximum(Function):
    """y = max(x0, x1) elementwise; ties give each input half of the gradient."""

    retain_inputs = (0, 1)
    retain_outputs = ()

    def forward(self, x0, x1):
        return np.maximum(x0, x1)

    def backward(self, gy):
        x0, x1 = self.inputs
        share0 = _winner_share(np.greater(x0.data, x1.data), x0.data == x1.data, gy.dtype)
        return _split(gy, share0, self)

    def to_onnx(self, g, x0, x1):
        return g.op("Max", x0, x1)


def maximum(x0, x1) -> Variable:
    """max(x0, x1) elementwise with broadcasting; a tie splits the gradient half/half."""
    x0, x1 = _binary_operands(x0, x1)
    return Maximum()(x0, x1)


class Minimum(Function):
    """y = min(x0, x1) elementwise; ties give each input half of the gradient."""

    retain_inputs = (0, 1)
    retain_outputs = ()

    def forward(self, x0, x1):
        return np.minimum(x0, x1)

    def backward(self, gy):
        x0, x1 = self.inputs
        share0 = _winner_share(np.less(x0.data, x1.data), x0.data == x1.data, gy.dtype)
        return _split(gy, share0, self)

    def to_onnx(self, g, x0, x1):
        return g.op("Min", x0, x1)


def minimum(x0, x1) -> Variable:
    """min(x0, x1) elementwise with broadcasting; a tie splits the gradient half/half."""
    x0, x1 = _binary_operands(x0, x1)
    return Minimum()(x0, x1)


def _winner_share(wins, ties, dtype):
    """x0's share of the gradient: 1 where it wins, 1/2 where it ties, 0 where it loses."""
    share = wins.astype(dtype)
    share += ties * share.dtype.type(0.5)
    return share


def _split(gy, share0, f: Function):
    gx0 = gy * share0 if f.needs_grad(0) else None
    gx1 = gy * (1 - share0) if f.needs_grad(1) else None
    return gx0, gx1


class Where(Function):
    """y = x if condition else y (NumPy's where, broadcasting all three).

    The condition is a constant; the gradient goes to x where it holds, to y elsewhere, and
    is exactly 0 in the branch not taken (even if the incoming gradient is inf or nan).
    """

    retain_inputs = ()  # the condition is a constant kept on the op
    retain_outputs = ()

    def __init__(self, condition) -> None:
        self.condition = condition

    def forward(self, x, y):
        return get_array_module(x).where(self.condition, x, y)

    def backward(self, gy):
        c = self.condition
        gx = where(c, gy, 0.0) if self.needs_grad(0) else None
        gy_other = where(c, 0.0, gy) if self.needs_grad(1) else None
        return gx, gy_other

    def to_onnx(self, g, x, y):
        return g.op("Where", g.constant(self.condition, dtype=bool), x, y)


def where(condition, x, y) -> Variable:
    """x where ``condition`` holds, else y; condition, x and y broadcast together.

    condition: a boolean (or integer) array or Variable, never differentiated. x, y:
    Variables, arrays or scalars; the gradient of each is the incoming gradient where its
    branch is taken and 0 elsewhere. Output shape: broadcast(condition, x, y).
    """
    if isinstance(condition, Variable):
        condition = condition.data
    if not is_array(condition):
        condition = np.asarray(condition)
    if condition.dtype.kind not in "bui":
        raise DTypeError(
            f"where: condition must be a boolean (or integer) array, got {condition.dtype} "
            f"{condition.shape}; compare first, e.g. where(x > 0, ...)"
        )
    x, y = _binary_operands(x, y)
    shapes = [condition.shape, getattr(x, "shape", ()), getattr(y, "shape", ())]
    try:
        np.broadcast_shapes(*shapes)
    except ValueError:
        raise ShapeError(
            f"where: condition {shapes[0]}, x {shapes[1]} and y {shapes[2]} do not broadcast "
            "together; they must broadcast to one shape"
        ) from None
    return Where(condition)(x, y)


class Clip(Function):
    """y = clip(x, x_min, x_max) with constant bounds (DeZero's ``Clip(x_min, x_max)``).

    dy/dx = 1 on the closed interval x_min <= x <= x_max, 0 outside. A bound may be None.
    """

    retain_inputs = (0,)
    retain_outputs = ()

    def __init__(self, x_min, x_max) -> None:
        self.x_min = x_min
        self.x_max = x_max

    def forward(self, x):
        return np.clip(x, self.x_min, self.x_max)

    def backward(self, gy):
        (x,) = self.inputs
        return gy * _inside(x.data, self.x_min, self.x_max)

    def to_onnx(self, g, x):
        # np.clip(x, lo, hi) is min(max(x, lo), hi); array bounds broadcast, which ONNX's
        # Clip (scalar bounds only) does not do, so they go through Max and Min.
        like = self.inputs[0]
        y = x
        if self.x_min is not None:
            lo = g.constant(self.x_min, dtype=like.dtype)
            y = g.op("Clip", y, lo) if np.ndim(self.x_min) == 0 else g.op("Max", y, lo)
        if self.x_max is not None:
            hi = g.constant(self.x_max, dtype=like.dtype)
            y = g.op("Clip", y, None, hi) if np.ndim(self.x_max) == 0 else g.op("Min", y, hi)
        return y


class ClipBetween(Function):
    """y = min(max(x, x_min), x_max) with differentiable bounds (inputs x, x_min, x_max).

    The gradient goes to x on x_min <= x <= x_max (as :class:`Clip`), to x_min where x is
    below it, to x_max where the result is x_max and x is not inside: exactly one input
    receives each element's gradient.
    """

    retain_inputs = (0, 1, 2)
    retain_outputs = ()

    def forward(self, x, x_min, x_max):
        return np.minimum(np.maximum(x, x_min), x_max)

    def backward(self, gy):
        x, lo, hi = (v.data for v in self.inputs)
        inside = _inside(x, lo, hi)
        below = (x < lo) & (lo <= hi)
        gx = gy * inside if self.needs_grad(0) else None
        g_lo = gy * below if self.needs_grad(1) else None
        g_hi = gy * ~(inside | below) if self.needs_grad(2) else None
        return gx, g_lo, g_hi

    def to_onnx(self, g, x, x_min, x_max):
        return g.op("Min", g.op("Max", x, x_min), x_max)


def clip(x, x_min, x_max) -> Variable:
    """x clipped to [x_min, x_max] elementwise; dy/dx = 1 where x_min <= x <= x_max, else 0.

    DeZero's signature. Bounds are scalars, arrays (broadcast against x) or None (no bound);
    if either bound is a Variable, the bounds are differentiable too (each element's
    gradient goes to whichever of x, x_min, x_max the output equals; x on ties).
    """
    if isinstance(x_min, Variable) or isinstance(x_max, Variable):
        xp = get_array_module(x)
        data = x.data if isinstance(x, Variable) else np.asarray(x)
        dtype = data.dtype if data.dtype.kind == "f" else np.dtype(np.float64)
        if x_min is None:
            x_min = xp.asarray(-np.inf, dtype=dtype)
        if x_max is None:
            x_max = xp.asarray(np.inf, dtype=dtype)
        return ClipBetween()(x, scalar_operand(x_min, x), scalar_operand(x_max, x))
    if isinstance(x_min, np.generic):
        x_min = x_min.item()  # weak, like a Python float: keeps float32 data float32
    if isinstance(x_max, np.generic):
        x_max = x_max.item()
    return Clip(x_min, x_max)(x)


def _inside(x, lo, hi):
    """The boolean mask lo <= x <= hi (a None bound is no bound)."""
    if lo is None:
        return x <= hi
    if hi is None:
        return x >= lo
    return (x >= lo) & (x <= hi)


class Log1p(Function):
    """y = log(1 + x), accurate for tiny x; dy/dx = 1 / (1 + x)."""

    retain_inputs = (0,)
    retain_outputs = ()

    def forward(self, x):
        return np.log1p(x)

    def backward(self, gy):
        (x,) = self.inputs
        return gy / (x + 1)

    def to_onnx(self, g, x):
        return g.op("Log", g.op("Add", x, g.scalar(1, like=self.inputs[0])))


def log1p(x) -> Variable:
    """log(1 + x), accurate for |x| << 1; dy/dx = 1 / (1 + x). x: any shape -> same."""
    return Log1p()(x)


class Expm1(Function):
    """y = exp(x) - 1, accurate for tiny x; dy/dx = exp(x) = y + 1 (keeps its output)."""

    retain_inputs = ()
    retain_outputs = (0,)

    def forward(self, x):
        return np.expm1(x)

    def backward(self, gy):
        return gy * (self.output + 1)

    def to_onnx(self, g, x):
        return g.op("Sub", g.op("Exp", x), g.scalar(1, like=self.inputs[0]))


def expm1(x) -> Variable:
    """exp(x) - 1, accurate for |x| << 1; dy/dx = exp(x). x: any shape -> same."""
    return Expm1()(x)


class Log2(Function):
    """y = log2(x); dy/dx = 1 / (x ln 2)."""

    retain_inputs = (0,)
    retain_outputs = ()

    def forward(self, x):
        return np.log2(x)

    def backward(self, gy):
        (x,) = self.inputs
        return gy / (x * _LN2)

    def to_onnx(self, g, x):
        return g.op("Div", g.op("Log", x), g.scalar(_LN2, like=self.inputs[0]))


def log2(x) -> Variable:
    """Base-2 logarithm; dy/dx = 1 / (x ln 2). x: any shape -> same."""
    return Log2()(x)


class Log10(Function):
    """y = log10(x); dy/dx = 1 / (x ln 10)."""

    retain_inputs = (0,)
    retain_outputs = ()

    def forward(self, x):
        return np.log10(x)

    def backward(self, gy):
        (x,) = self.inputs
        return gy / (x * _LN10)

    def to_onnx(self, g, x):
        return g.op("Div", g.op("Log", x), g.scalar(_LN10, like=self.inputs[0]))


def log10(x) -> Variable:
    """Base-10 logarithm; dy/dx = 1 / (x ln 10). x: any shape -> same."""
    return Log10()(x)


class Sinh(Function):
    """y = sinh(x); dy/dx = cosh(x)."""

    retain_inputs = (0,)
    retain_outputs = ()

    def forward(self, x):
        return np.sinh(x)

    def backward(self, gy):
        (x,) = self.inputs
        return gy * cosh(x)

    def to_onnx(self, g, x):
        return g.op("Sinh", x)


def sinh(x) -> Variable:
    """Hyperbolic sine; dy/dx = cosh(x). x: any shape -> same."""
    return Sinh()(x)


class Cosh(Function):
    """y = cosh(x); dy/dx = sinh(x)."""

    retain_inputs = (0,)
    retain_outputs = ()

    def forward(self, x):
        return np.cosh(x)

    def backward(self, gy):
        (x,) = self.inputs
        return gy * sinh(x)

    def to_onnx(self, g, x):
        return g.op("Cosh", x)


def cosh(x) -> Variable:
    """Hyperbolic cosine; dy/dx = sinh(x). x: any shape -> same."""
    return Cosh()(x)


class Arcsin(Function):
    """y = arcsin(x) for |x| <= 1; dy/dx = 1 / sqrt(1 - x^2)."""

    retain_inputs = (0,)
    retain_outputs = ()

    def forward(self, x):
        return np.arcsin(x)

    def backward(self, gy):
        (x,) = self.inputs
        return gy / sqrt(1 - x * x)

    def to_onnx(self, g, x):
        return g.op("Asin", x)


def arcsin(x) -> Variable:
    """Inverse sine for |x| <= 1; dy/dx = 1 / sqrt(1 - x^2) (inf at |x| = 1)."""
    return Arcsin()(x)


class Arccos(Function):
    """y = arccos(x) for |x| <= 1; dy/dx = -1 / sqrt(1 - x^2)."""

    retain_inputs = (0,)
    retain_outputs = ()

    def forward(self, x):
        return np.arccos(x)

    def backward(self, gy):
        (x,) = self.inputs
        return -gy / sqrt(1 - x * x)

    def to_onnx(self, g, x):
        return g.op("Acos", x)


def arccos(x) -> Variable:
    """Inverse cosine for |x| <= 1; dy/dx = -1 / sqrt(1 - x^2) (-inf at |x| = 1)."""
    return Arccos()(x)


class Arctan(Function):
    """y = arctan(x); dy/dx = 1 / (1 + x^2)."""

    retain_inputs = (0,)
    retain_outputs = ()

    def forward(self, x):
        return np.arctan(x)

    def backward(self, gy):
        (x,) = self.inputs
        return gy / (x * x + 1)

    def to_onnx(self, g, x):
        return g.op("Atan", x)


def arctan(x) -> Variable:
    """Inverse tangent; dy/dx = 1 / (1 + x^2). x: any shape -> same."""
    return Arctan()(x)


class Erf(Function):
    """y = erf(x) = 2/sqrt(pi) * integral_0^x exp(-t^2) dt; dy/dx = 2/sqrt(pi) exp(-x^2)."""

    retain_inputs = (0,)
    retain_outputs = ()

    def forward(self, x):
        return erf_array(x)

    def backward(self, gy):
        (x,) = self.inputs
        return gy * exp(-(x * x)) * _TWO_OVER_SQRT_PI

    def to_onnx(self, g, x):
        return g.op("Erf", x)


def erf(x) -> Variable:
    """Error function 2/sqrt(pi) int_0^x exp(-t^2) dt; dy/dx = 2/sqrt(pi) exp(-x^2).

    Relative error below 1e-13 in float64 (NumPy has no erf; see ``ops/_special.py``).
    """
    return Erf()(x)


class Erfc(Function):
    """y = erfc(x) = 1 - erf(x), relatively accurate in the tail; dy/dx = -2/sqrt(pi) e^-x^2."""

    retain_inputs = (0,)
    retain_outputs = ()

    def forward(self, x):
        return erfc_array(x)

    def backward(self, gy):
        (x,) = self.inputs
        return gy * exp(-(x * x)) * -_TWO_OVER_SQRT_PI

    def to_onnx(self, g, x):
        return g.op("Sub", g.scalar(1, like=self.inputs[0]), g.op("Erf", x))


def erfc(x) -> Variable:
    """Complementary error function 1 - erf(x), without cancellation for large x.

    dy/dx = -2/sqrt(pi) exp(-x^2). erfc(27) ~ 5e-319 is still resolved in float64.
    """
    return Erfc()(x)
