"""Activations (sigmoid, relu and friends, gelu, ...) and the softmax family.

Unary activations map x of any shape to the same shape. The softmax family normalises over
``axis`` (default 1, DeZero's) and keeps the shape (``logsumexp`` reduces it).

Many activations here come in pairs: ``Act`` (forward on arrays, backward ``gy * ActGrad(x)``)
and ``ActGrad``, whose forward computes f'(x) in a few array passes and whose backward gives
f''(x) with zerograd ops. First-order backward then costs two nodes, while
``create_graph=True`` still yields derivatives of any order.

Kink conventions: relu'(0) = 0; leaky_relu'(0) = slope; elu'(0) = alpha (selu: scale*alpha);
hard_sigmoid'(+-3) = 0. Masks are applied by multiplication, not ``np.where``, which is several
times slower on unsorted masks.
"""

from __future__ import annotations

import functools
import math

import numpy as np

import zerograd._fast as fast
from zerograd.backend.array_utils import logsumexp as logsumexp_array
from zerograd.backend.array_utils import reshape_sum_backward
from zerograd.core.function import Function
from zerograd.core.variable import Variable
from zerograd.errors import ShapeError
from zerograd.ops._special import normal_cdf_array, sigmoid_array
from zerograd.ops.elementwise import exp, minimum, tanh
from zerograd.ops.reduction import sum as sum_
from zerograd.ops.shape import reshape

__all__ = ["sigmoid", "sigmoid_simple", "relu", "leaky_relu", "softplus", "gelu", "elu", "selu",
           "silu", "swish", "mish", "hard_sigmoid",
           "softmax", "softmax_simple", "log_softmax", "logsumexp",
           "Sigmoid", "ReLU", "LeakyReLU", "Softplus", "GELU", "GELUGrad", "GELUTanh",
           "GELUTanhGrad", "ELU", "ELUGrad", "SELU", "SiLU", "SiLUGrad", "Mish", "MishGrad",
           "HardSigmoid", "Softmax", "LogSoftmax", "LogSumExp",
           "SigmoidGrad", "SoftmaxGrad", "LogSoftmaxGrad"]

_INV_SQRT2 = 1.0 / math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_GELU_TANH_CUBIC = 0.044715
# SELU's constants (Klambauer et al., 2017), the fixed point of unit mean and variance.
_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946


def _softplus_array(x):
    """log(1 + e^x) as max(x, 0) + log1p(e^-|x|): no overflow, accurate for x << 0."""
    shape = x.shape
    x = _float_vector(x)
    tail = np.abs(x)
    np.negative(tail, out=tail)
    np.exp(tail, out=tail)
    np.log1p(tail, out=tail)
    tail += np.maximum(x, 0)
    return tail.reshape(shape)


def _float_vector(x):
    """x as a 1-d float array (integers compute in float64), a view when possible."""
    if x.dtype.kind != "f":
        x = x.astype(np.float64)
    return x.reshape(-1)


def _as_float(x):
    return x if x.dtype.kind == "f" else x.astype(np.float64)


def _on_flat_view(forward):
    """Run a unary ``forward`` on a 1-d view of x and reshape back: the in-place ufuncs
    (``out=``) that save temporaries need arrays, and NumPy gives scalars for 0-d input."""

    @functools.wraps(forward)
    def wrapper(self, x):
        return forward(self, _float_vector(x)).reshape(x.shape)

    return wrapper


def _positive_mask(x, dtype):
    return (x > 0).astype(dtype)


# -- sigmoid, relu and the rectifier family ------------------------------------------------
class Sigmoid(Function):
    """y = 1 / (1 + exp(-x)), computed stably; dy/dx = y (1 - y) (keeps its output)."""

    retain_inputs = ()
    retain_outputs = (0,)

    def forward(self, x):
        return sigmoid_array(x)

    def backward(self, gy):
        return SigmoidGrad()(self.output, gy)

    def backward_arrays(self, gy):
        return _sigmoid_grad(self.output._data, gy)

    def to_onnx(self, g, x):
        return g.op("Sigmoid", x)


def sigmoid(x) -> Variable:
    """1 / (1 + exp(-x)), elementwise, stable for any |x| (no overflow, no nan).

    Computed as 1 / (1 + e^-x) with e^-x allowed to overflow to inf for x << 0 (giving the
    correct 0): full relative accuracy everywhere, no nan, no warning.
    dy/dx = y (1 - y). x: any shape -> same shape.
    """
    return Sigmoid()(x)


def _sigmoid_grad(y, gy):
    """gy y (1 - y) on arrays (SigmoidGrad's forward)."""
    gx = 1 - y
    gx *= y
    gx *= gy
    return gx


class SigmoidGrad(Function):
    """gx = gy y (1 - y) from sigmoid's output y, in one node (LSTM gates call it a lot).

    d/dy = gy (1 - 2y); d/dgy = y (1 - y) (another SigmoidGrad): differentiable to any order.
    """

    retain_inputs = (0, 1)
    retain_outputs = ()

    def forward(self, y, gy):
        return _sigmoid_grad(y, gy)

    def backward(self, ggx):
        y, gy = self.inputs
        g_y = ggx * gy * (1 - y * 2) if self.needs_grad(0) else None
        g_gy = SigmoidGrad()(y, ggx) if self.needs_grad(1) else None
        return g_y, g_gy


class ReLU(Function):
    """y = max(x, 0); dy/dx = 1 for x > 0, else 0 (relu'(0) = 0). Keeps its output.

    Backward is one node, ReLUGrad(y, gy) = gy * (y > 0)."""

    retain_inputs = ()  # the mask y > 0 is taken from the output
    retain_outputs = (0,)

    def forward(self, x):
        if fast.use("relu", x):
            from zerograd._fast import relu as fast_relu  # imports numba (see GELU.forward)

            return fast_relu.relu(x)
        return np.maximum(x, 0)

    def backward(self, gy):
        return ReLUGrad()(self.output, gy)

    def backward_arrays(self, gy):
        return _relu_grad(self.output._data, gy)

    def to_onnx(self, g, x):
        return g.op("Relu", x)


def _relu_grad(y, gy):
    """gy * (y > 0) on arrays (ReLUGrad's forward), compiled where that is faster."""
    if fast.use("relu", gy, y):
        from zerograd._fast import relu as fast_relu  # imports numba (see GELU.forward)

        return fast_relu.relu_grad(y, gy)
    return gy * (y > 0)


class ReLUGrad(Function):
    """gx = gy * (y > 0) from relu's output y, in one node (one array pass with the
    compiled kernel, no Mul node and no mask array to keep).

    It is linear in gy with a factor that is constant in y wherever it is differentiable
    (relu'' = 0): d/dgy is ReLUGrad(y) again and d/dy is zero (None), so every order is
    exact."""

    retain_inputs = (0,)  # y's values (the mask); of gy nothing
    retain_outputs = ()

    def forward(self, y, gy):
        return _relu_grad(y, gy)

    def backward(self, ggx):
        y = self.inputs[0]
        return None, ReLUGrad()(y, ggx) if self.needs_grad(1) else None


def relu(x) -> Variable:
    """max(x, 0), elementwise; dy/dx = [x > 0], so relu'(0) = 0. x: any shape -> same."""
    return ReLU()(x)


class LeakyReLU(Function):
    """y = x for x > 0, slope * x otherwise; dy/dx = 1 or slope (slope at x = 0)."""

    retain_inputs = (0,)
    retain_outputs = ()

    def __init__(self, slope: float) -> None:
        self.slope = slope

    def forward(self, x):
        if 0 <= self.slope <= 1:
            return np.maximum(x, x * self.slope)
        return x * self._factor(x)

    def backward(self, gy):
        (x,) = self.inputs
        return gy * self._factor(x.data)

    def to_onnx(self, g, x):
        return g.op("LeakyRelu", x, alpha=float(self.slope))

    def _factor(self, x):
        """1 where x > 0, slope elsewhere (as an array of x's float dtype)."""
        dtype = x.dtype if x.dtype.kind == "f" else np.float64
        factor = _positive_mask(x, dtype)
        factor *= 1 - self.slope
        factor += self.slope
        return factor


def leaky_relu(x, slope: float = 0.2) -> Variable:
    """x for x > 0, slope * x otherwise (DeZero's default slope 0.2).

    dy/dx = 1 for x > 0, slope for x <= 0 (slope at the kink). x: any shape -> same.
    """
    return LeakyReLU(float(slope))(x)


class Softplus(Function):
    """y = log(1 + exp(x)), computed stably; dy/dx = sigmoid(x)."""

    retain_inputs = (0,)
    retain_outputs = ()

    def forward(self, x):
        return _softplus_array(x)

    def backward(self, gy):
        (x,) = self.inputs
        return gy * sigmoid(x)

    def to_onnx(self, g, x):
        return g.op("Softplus", x)


def softplus(x) -> Variable:
    """log(1 + exp(x)) = max(x, 0) + log1p(exp(-|x|)): no overflow for any |x|.

    dy/dx = sigmoid(x). x: any shape -> same shape.
    """
    return Softplus()(x)


class ELU(Function):
    """y = scale * (x if x > 0 else alpha (e^x - 1)); dy/dx = scale or scale*alpha*e^x."""

    retain_inputs = (0,)
    retain_outputs = ()

    def __init__(self, alpha: float = 1.0, scale: float = 1.0) -> None:
        self.alpha = alpha
        self.scale = scale

    @_on_flat_view
    def forward(self, x):
        # The clamp keeps expm1 from overflowing for x >> 0.
        y = np.minimum(x, 0)
        np.expm1(y, out=y)
        y *= self.alpha
        y += np.maximum(x, 0)
        if self.scale != 1.0:
            y *= self.scale
        return y

    def backward(self, gy):
        (x,) = self.inputs
        return gy * ELUGrad(self.alpha, self.scale)(x)

    def to_onnx(self, g, x):
        if type(self) is SELU:
            return g.op("Selu", x, alpha=float(self.alpha), gamma=float(self.scale))
        y = g.op("Elu", x, alpha=float(self.alpha))
        if self.scale != 1.0:
            y = g.op("Mul", y, g.scalar(self.scale, like=self.inputs[0]))
        return y


def elu(x, alpha: float = 1.0) -> Variable:
    """x for x > 0, alpha (exp(x) - 1) otherwise.

    dy/dx = 1 for x > 0, alpha exp(x) for x <= 0 (alpha at the kink). x: any shape -> same.
    """
    return ELU(float(alpha))(x)


class ELUGrad(Function):
    """y = ELU'(x) = scale for x > 0, scale * alpha * e^x for x <= 0."""

    retain_inputs = (0,)
    retain_outputs = ()

    def __init__(self, alpha: float, scale: float) -> None:
        self.alpha = alpha
        self.scale = scale

    @_on_flat_view
    def forward(self, x):
        # alpha e^min(x,0) + [x > 0] (1 - alpha): alpha e^x below 0, exactly 1 above.
        y = np.minimum(x, 0)
        np.exp(y, out=y)
        y *= self.alpha
        y += _positive_mask(x, y.dtype) * (1 - self.alpha)
        if self.scale != 1.0:
            y *= self.scale
        return y

    def backward(self, ggx):
        (x,) = self.inputs
        # d/dx ELU'(x) = scale * alpha * e^x below 0, 0 above.
        below = ~(x.data > 0)
        return ggx * exp(minimum(x, 0.0)) * below * (self.alpha * self.scale)


class SELU(ELU):
    """y = scale * elu(x, alpha) with SELU's fixed alpha and scale."""

    def __init__(self) -> None:
        super().__init__(_SELU_ALPHA, _SELU_SCALE)


def selu(x) -> Variable:
    """scale * elu(x, alpha) with alpha = 1.6732632..., scale = 1.0507009... (self-normalising).

    dy/dx = scale for x > 0, scale alpha exp(x) for x <= 0. x: any shape -> same shape.
    """
    return SELU()(x)


class HardSigmoid(Function):
    """y = clip(x / 6 + 1/2, 0, 1) (PyTorch's); dy/dx = 1/6 on -3 < x < 3, else 0."""

    retain_inputs = (0,)
    retain_outputs = ()

    def forward(self, x):
        return np.clip(x * (1 / 6) + 0.5, 0, 1)

    def backward(self, gy):
        (x,) = self.inputs
        inside = np.abs(x.data) < 3
        return gy * inside * (1 / 6)

    def to_onnx(self, g, x):
        # ONNX's HardSigmoid is max(0, min(1, alpha x + beta)): the same line.
        return g.op("HardSigmoid", x, alpha=1 / 6, beta=0.5)


def hard_sigmoid(x) -> Variable:
    """clip(x / 6 + 1/2, 0, 1) (PyTorch's hardsigmoid, not Chainer's 0.2x + 0.5).

    dy/dx = 1/6 for -3 < x < 3, 0 otherwise (0 at the kinks +-3). x: any shape -> same.
    """
    return HardSigmoid()(x)


# -- smooth gated activations: gelu, silu, mish --------------------------------------------
class GELU(Function):
    """y = x Phi(x) = x/2 (1 + erf(x / sqrt 2)) (exact, erf-based); dy/dx = Phi + x phi.

    Keeps Phi(x) from the forward pass for backward: one array of memory instead of a
    second erfc evaluation (about 30 array passes).
    """

    retain_inputs = (0,)
    retain_outputs = ()
    saved = ("cdf",)  # released with the graph (Function.release)

    def forward(self, x):
        if fast.use("gelu", x):
            # One compiled pass per element (imports numba, so never at import time).
            from zerograd._fast import elementwise

            y, self.cdf = elementwise.gelu(x, keep_cdf=True)
            return y
        self.cdf = normal_cdf_array(x)
        return x * self.cdf

    def backward(self, gy):
        (x,) = self.inputs
        return gy * GELUGrad(self.cdf)(x)

    def backward_arrays(self, gy):
        x = self.inputs[0]._data
        if gy.shape == x.shape and gy.dtype == x.dtype and fast.use("gelu", x, self.cdf):
            from zerograd._fast import elementwise  # imports numba (see GELU.forward)

            # gy times the derivative in the one pass that computes it: the Mul's pass and
            # its temporary are saved; the product is the one backward's Mul rounds.
            return elementwise.gelu_backward(x, gy, self.cdf)
        return gy * GELUGrad(self.cdf).forward(x)

    def to_onnx(self, g, x):
        if g.opset >= 20:  # the opset that added Gelu
            return g.op("Gelu", x, approximate="none")
        like = self.inputs[0]
        cdf = g.op("Mul", g.op("Add", g.op("Erf", g.op("Mul", x, g.scalar(_INV_SQRT2, like))),
                               g.scalar(1, like)), g.scalar(0.5, like))
        return g.op("Mul", x, cdf)


class GELUGrad(Function):
    """y = Phi(x) + x phi(x), phi(x) = exp(-x^2/2) / sqrt(2 pi); dy/dx = phi(x) (2 - x^2)."""

    retain_inputs = (0,)
    retain_outputs = ()

    def __init__(self, cdf=None) -> None:
        self.cdf = cdf  # Phi(x) if the caller already has it

    @_on_flat_view
    def forward(self, x):
        if fast.use("gelu", x, *(() if self.cdf is None else (self.cdf,))):
            from zerograd._fast import elementwise  # imports numba (see GELU.forward)

            cdf, self.cdf = self.cdf, None
            return elementwise.gelu_grad(x, None if cdf is None else cdf.reshape(-1))
        cdf = normal_cdf_array(x) if self.cdf is None else self.cdf.reshape(-1)
        self.cdf = None
        y = x * x
        y *= -0.5
        np.exp(y, out=y)
        y *= x
        y *= _INV_SQRT_2PI
        y += cdf
        return y

    def backward(self, ggx):
        (x,) = self.inputs
        x2 = x * x
        return ggx * exp(x2 * -0.5) * (2 - x2) * _INV_SQRT_2PI


class GELUTanh(Function):
    """y = x/2 (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) (the tanh approximation)."""

    retain_inputs = (0,)
    retain_outputs = ()

    @_on_flat_view
    def forward(self, x):
        y = _gelu_tanh_inner(x)
        np.tanh(y, out=y)
        y += 1
        y *= x
        y *= 0.5
        return y

    def backward(self, gy):
        (x,) = self.inputs
        return gy * GELUTanhGrad()(x)

    def to_onnx(self, g, x):
        if g.opset >= 20:
            return g.op("Gelu", x, approximate="tanh")
        like = self.inputs[0]
        cube = g.op("Mul", g.op("Mul", x, x), x)
        inner = g.op("Mul", g.op("Add", x, g.op("Mul", cube, g.scalar(_GELU_TANH_CUBIC, like))),
                     g.scalar(_SQRT_2_OVER_PI, like))
        half = g.op("Mul", x, g.scalar(0.5, like))
        return g.op("Mul", half, g.op("Add", g.op("Tanh", inner), g.scalar(1, like)))


def gelu(x, approximate: str = "none") -> Variable:
    """Gaussian error linear unit, x Phi(x), Phi the standard normal CDF.

    approximate='none' (default, PyTorch's): the exact x/2 (1 + erf(x / sqrt 2)), evaluated
    as x/2 erfc(-x / sqrt 2) so that the tail x << 0 keeps its relative accuracy.
    approximate='tanh': x/2 (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))).
    dy/dx = Phi(x) + x phi(x) (exact form). x: any shape -> same shape.
    """
    if approximate == "none":
        return GELU()(x)
    if approximate == "tanh":
        return GELUTanh()(x)
    raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")


def _gelu_tanh_inner(x):
    """g(x) = sqrt(2/pi) (x + 0.044715 x^3) (a new array, or a Variable for a Variable)."""
    return (x * x * _GELU_TANH_CUBIC + 1) * x * _SQRT_2_OVER_PI


def _gelu_tanh_slope(x):
    """g'(x) = sqrt(2/pi) (1 + 3 * 0.044715 x^2) (a new array, or a Variable)."""
    return (x * x * (3 * _GELU_TANH_CUBIC) + 1) * _SQRT_2_OVER_PI


class GELUTanhGrad(Function):
    """y = (1 + T)/2 + x/2 (1 - T^2) g'(x) with T = tanh(g(x)); its derivative in backward."""

    retain_inputs = (0,)
    retain_outputs = ()

    @_on_flat_view
    def forward(self, x):
        t = _gelu_tanh_inner(x)
        np.tanh(t, out=t)
        y = t * t
        np.subtract(1, y, out=y)
        y *= _gelu_tanh_slope(x)
        y *= x
        y += t
        y += 1
        y *= 0.5
        return y

    def backward(self, ggx):
        (x,) = self.inputs
        # f'' = (1 - T^2) [g' + x/2 (g'' - 2 T g'^2)], g'' = 6 * 0.044715 * sqrt(2/pi) x.
        t = tanh(_gelu_tanh_inner(x))
        slope = _gelu_tanh_slope(x)
        curvature = x * (6 * _GELU_TANH_CUBIC * _SQRT_2_OVER_PI)
        return ggx * (1 - t * t) * (slope + x * 0.5 * (curvature - 2 * t * slope * slope))


class SiLU(Function):
    """y = x sigmoid(x); dy/dx = s (1 + x (1 - s)) with s = sigmoid(x).

    Keeps s from the forward pass for backward (one array of memory for half the passes).
    """

    retain_inputs = (0,)
    retain_outputs = ()
    saved = ("s",)  # released with the graph (Function.release)

    def forward(self, x):
        self.s = sigmoid_array(x)
        return x * self.s

    def backward(self, gy):
        (x,) = self.inputs
        return gy * SiLUGrad(self.s)(x)

    def to_onnx(self, g, x):
        return g.op("Mul", x, g.op("Sigmoid", x))


def silu(x) -> Variable:
    """x sigmoid(x) (also called swish); dy/dx = s (1 + x (1 - s)), s = sigmoid(x)."""
    return SiLU()(x)


class SiLUGrad(Function):
    """y = s (1 + x (1 - s)), s = sigmoid(x); dy/dx = s (1 - s) (2 + x (1 - 2 s))."""

    retain_inputs = (0,)
    retain_outputs = ()

    def __init__(self, s=None) -> None:
        self.s = s  # sigmoid(x) if the caller already has it

    @_on_flat_view
    def forward(self, x):
        s = sigmoid_array(x) if self.s is None else self.s.reshape(-1)
        self.s = None
        y = 1 - s
        y *= x
        y += 1
        y *= s
        return y

    def backward(self, ggx):
        (x,) = self.inputs
        s = sigmoid(x)
        return ggx * s * (1 - s) * (2 + x * (1 - 2 * s))


class Mish(Function):
    """y = x tanh(softplus(x)); dy/dx = T + x (1 - T^2) sigmoid(x), T = tanh(softplus(x))."""

    retain_inputs = (0,)
    retain_outputs = ()

    @_on_flat_view
    def forward(self, x):
        y = _softplus_array(x)
        np.tanh(y, out=y)
        y *= x
        return y

    def backward(self, gy):
        (x,) = self.inputs
        return gy * MishGrad()(x)

    def to_onnx(self, g, x):
        if g.opset >= 18:  # the opset that added Mish
            return g.op("Mish", x)
        return g.op("Mul", x, g.op("Tanh", g.op("Softplus", x)))


def mish(x) -> Variable:
    """x tanh(softplus(x)), stable for any |x|. x: any shape -> same shape."""
    return Mish()(x)


class MishGrad(Function):
    """y = T + x D with T = tanh(softplus(x)), D = (1 - T^2) sigmoid(x)."""

    retain_inputs = (0,)
    retain_outputs = ()

    @_on_flat_view
    def forward(self, x):
        t = _softplus_array(x)
        np.tanh(t, out=t)
        y = t * t
        np.subtract(1, y, out=y)
        y *= sigmoid_array(x)
        y *= x
        y += t
        return y

    def backward(self, ggx):
        (x,) = self.inputs
        # T' = D, D' = D (1 - s - 2 T s), so y' = 2 D + x D (1 - s - 2 T s).
        s = sigmoid(x)
        t = tanh(softplus(x))
        d = (1 - t * t) * s
        return ggx * d * (2 + x * (1 - s - 2 * t * s))


# -- the softmax family -----------------------------------------------------------------------
class Softmax(Function):
    """y = exp(x - max) / sum(exp(x - max)) over ``axis``; gx = y gy - y sum(y gy)."""

    retain_inputs = ()
    retain_outputs = (0,)

    def __init__(self, axis=1) -> None:
        self.axis = axis

    def forward(self, x):
        x = _as_float(x)
        y = x - _finite_max(x, self.axis)
        np.exp(y, out=y)
        y /= y.sum(axis=self.axis, keepdims=True)
        return y

    def backward(self, gy):
        return SoftmaxGrad(self.axis)(self.output, gy)

    def to_onnx(self, g, x):
        axes = _onnx_axes(self.axis, self.inputs[0].ndim)
        if len(axes) == 1:
            return g.op("Softmax", x, axis=axes[0])
        # Several axes (or all): ONNX's Softmax takes one, so spell out the shifted form.
        shifted = g.op("Exp", g.op("Sub", x, g.reduce("ReduceMax", x, axes, keepdims=True)))
        return g.op("Div", shifted, g.reduce("ReduceSum", shifted, axes, keepdims=True))


def softmax(x, axis=1) -> Variable:
    """exp(x) / sum(exp(x)) over ``axis`` (int or tuple; DeZero's default 1), max-shifted.

    Stable for any magnitude; dy/dx as a vector-Jacobian product: gx = y (gy - sum(y gy)).
    x: any shape -> same shape.
    """
    axis = _axis(axis)
    vector = _scalar_as_vector("softmax", x, axis)
    if vector is not None:
        return reshape(Softmax(0)(vector), ())
    return Softmax(axis)(x)


class SoftmaxGrad(Function):
    """gx = y (gy - sum(y gy)) over ``axis``, from softmax's output y, in one node.

    With s = sum(y gy) and upstream u: d/dy = u (gy - s) - gy sum(u y); d/dgy = y (u - sum(u y))
    (another SoftmaxGrad), so every order is differentiable.
    """

    retain_inputs = (0, 1)
    retain_outputs = ()

    def __init__(self, axis) -> None:
        self.axis = axis

    def forward(self, y, gy):
        gx = y * gy
        gx -= y * gx.sum(axis=self.axis, keepdims=True)
        return gx

    def backward(self, ggx):
        y, gy = self.inputs
        g_y = g_gy = None
        if self.needs_grad(0):
            s = sum_(y * gy, axis=self.axis, keepdims=True)
            g_y = ggx * (gy - s) - gy * sum_(ggx * y, axis=self.axis, keepdims=True)
        if self.needs_grad(1):
            g_gy = SoftmaxGrad(self.axis)(y, ggx)
        return g_y, g_gy


class LogSoftmax(Function):
    """y = x - logsumexp(x) over ``axis``; gx = gy - exp(y) sum(gy)."""

    retain_inputs = ()
    retain_outputs = (0,)

    def __init__(self, axis=1) -> None:
        self.axis = axis

    def forward(self, x):
        # (x - max) - log(sum(exp(x - max))): subtracting logsumexp(x) from x instead would
        # round both to the spacing of x's magnitude (1e-3 at 1e4 in float32).
        x = _as_float(x)
        y = x - _finite_max(x, self.axis)
        y -= np.log(np.exp(y).sum(axis=self.axis, keepdims=True))
        return y

    def backward(self, gy):
        return LogSoftmaxGrad(self.axis)(self.output, gy)

    def to_onnx(self, g, x):
        axes = _onnx_axes(self.axis, self.inputs[0].ndim)
        if len(axes) == 1:
            return g.op("LogSoftmax", x, axis=axes[0])
        shifted = g.op("Sub", x, g.reduce("ReduceMax", x, axes, keepdims=True))
        total = g.reduce("ReduceSum", g.op("Exp", shifted), axes, keepdims=True)
        return g.op("Sub", shifted, g.op("Log", total))


def log_softmax(x, axis=1) -> Variable:
    """x - logsumexp(x, axis): log-probabilities, stable for any magnitude.

    gx = gy - softmax(x) sum(gy). x: any shape -> same shape.
    """
    axis = _axis(axis)
    vector = _scalar_as_vector("log_softmax", x, axis)
    if vector is not None:
        return reshape(LogSoftmax(0)(vector), ())
    return LogSoftmax(axis)(x)


class LogSoftmaxGrad(Function):
    """gx = gy - exp(y) sum(gy) over ``axis``, from log_softmax's output y, in one node.

    With p = exp(y), S = sum(gy) and upstream u: d/dy = -u p S; d/dgy = u - sum(u p).
    """

    retain_inputs = (0, 1)
    retain_outputs = ()

    def __init__(self, axis) -> None:
        self.axis = axis

    def forward(self, y, gy):
        gx = np.exp(y)
        gx *= -gy.sum(axis=self.axis, keepdims=True)
        gx += gy
        return gx

    def backward(self, ggx):
        y, gy = self.inputs
        p = exp(y)
        g_y = g_gy = None
        if self.needs_grad(0):
            g_y = -ggx * p * sum_(gy, axis=self.axis, keepdims=True)
        if self.needs_grad(1):
            g_gy = ggx - sum_(ggx * p, axis=self.axis, keepdims=True)
        return g_y, g_gy


class LogSumExp(Function):
    """y = log(sum(exp(x), axis)) computed with the max shift; dy/dx = softmax(x)."""

    retain_inputs = (0,)
    retain_outputs = ()

    def __init__(self, axis=1, keepdims: bool = False) -> None:
        self.axis = axis
        self.keepdims = keepdims

    def forward(self, x):
        self.x_shape = x.shape
        with np.errstate(divide="ignore"):  # log(0) = -inf is the answer for all -inf input
            y = logsumexp_array(_as_float(x), self.axis)
        if not self.keepdims:
            y = y.reshape(_reduced_shape(x.shape, self.axis))
        return y

    def backward(self, gy):
        (x,) = self.inputs
        gy = reshape_sum_backward(gy, self.x_shape, self.axis, self.keepdims)
        # softmax(x) afresh rather than exp(x - y): y is rounded to the spacing of its
        # magnitude (1e-3 at 1e4 in float32), and exp would carry that error into the grad.
        return gy * softmax(x, self.axis)

    def to_onnx(self, g, x):
        # m + log(sum(exp(x - m))), m the max, as forward computes it.
        axes = _onnx_axes(self.axis, self.inputs[0].ndim)
        m = g.reduce("ReduceMax", x, axes, keepdims=True)
        total = g.reduce("ReduceSum", g.op("Exp", g.op("Sub", x, m)), axes, keepdims=True)
        y = g.op("Add", g.op("Log", total), m)
        return y if self.keepdims else g.squeeze(y, axes)


def logsumexp(x, axis=1, keepdims: bool = False) -> Variable:
    """log(sum(exp(x), axis)), computed as m + log(sum(exp(x - m))) with m the max.

    axis: int, tuple or None (all elements); default 1 as the rest of the softmax family.
    x: shape S -> S without ``axis`` (kept as size 1 with keepdims). dy/dx = softmax(x).
    """
    axis = _axis(axis)
    vector = _scalar_as_vector("logsumexp", x, axis)
    if vector is not None:
        return reshape(LogSumExp(0)(vector), ())
    return LogSumExp(axis, keepdims)(x)


def _finite_max(x, axis):
    """max over ``axis`` (keepdims), 0 where it is not finite (a row of -inf stays finite)."""
    shift = x.max(axis=axis, keepdims=True)
    return np.where(np.isfinite(shift), shift, 0)


def _onnx_axes(axis, ndim: int) -> list[int]:
    """An op's ``axis`` (int, tuple or None for all) as the list of axes an ONNX node takes."""
    if axis is None:
        return list(range(ndim))
    return [int(a) % ndim for a in (axis if isinstance(axis, tuple) else (axis,))]


def _reduced_shape(shape: tuple, axis) -> tuple:
    ndim = len(shape)
    if axis is None:
        return ()
    given = axis if isinstance(axis, tuple) else (axis,)
    axes = {a % ndim for a in given} if ndim else set()
    return tuple(s for i, s in enumerate(shape) if i not in axes)


def _axis(axis):
    if isinstance(axis, list):
        return tuple(axis)
    return axis


def _scalar_as_vector(op: str, x, axis):
    """For a 0-d ``x``: x as a one-element vector (to work on along axis 0), else None.

    PyTorch's rule: a 0-d tensor has one element along axis 0 (or -1), so softmax of it is
    1, log_softmax 0 and logsumexp the element itself. NumPy alone would accept axis=0 (an
    int) but not (0,), and then hand back NumPy scalars that the in-place kernels refuse.
    Any other axis is an error naming the op.
    """
    if getattr(x, "ndim", None) != 0:
        return None
    axes = () if axis is None else axis if isinstance(axis, tuple) else (axis,)
    if not all(isinstance(a, (int, np.integer)) and a in (0, -1) for a in axes):
        raise ShapeError(f"{op}: axis {axis!r} is out of range for a 0-d input (shape ()); "
                         f"a 0-d input has one element along axis 0 (or -1), so axis must be "
                         f"0, -1 or None")
    return reshape(x, (1,))


# -- DeZero's composed versions and aliases ----------------------------------------------


def sigmoid_simple(x) -> Variable:
    """DeZero's sigmoid composed of nodes: 1 / (1 + exp(-x)).

    exp(-x) overflows to inf for x < -88 (float32) / -709 (float64); the value is then 0
    (correct) but NumPy warns. Prefer :func:`sigmoid`.
    """
    return 1 / (exp(-x) + 1)


swish = silu


def softmax_simple(x, axis=1) -> Variable:
    """DeZero's softmax composed of nodes, exp(x) / sum(exp(x), axis), without the max shift.

    Overflows (nan) once exp(x) does, e.g. x = 1000; prefer :func:`softmax`.
    """
    axis = _axis(axis)
    vector = _scalar_as_vector("softmax_simple", x, axis)
    if vector is not None:
        return reshape(softmax_simple(vector, 0), ())
    y = exp(x)
    return y / sum_(y, axis=axis, keepdims=True)


