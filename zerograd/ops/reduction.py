"""Reductions: sum, mean, max/min, prod, cumsum, var/std, norm, argmax/argmin.

Every reduction takes NumPy's ``axis`` (None: all axes; an int or a tuple, negatives allowed)
and ``keepdims``. Backward re-inserts the reduced axes (``reshape_sum_backward``) and
broadcasts the gradient back to the input's shape.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from zerograd.backend import get_array_module
from zerograd.backend.array_utils import normalize_axes, reshape_sum_backward
from zerograd.core.broadcast import broadcast_to
from zerograd.core.function import Function
from zerograd.core.variable import Variable
from zerograd.errors import ShapeError
from zerograd.ops.shape import reshape

__all__ = ["sum", "average", "mean", "max", "min", "prod", "cumsum", "var", "std", "norm",
           "argmax", "argmin",
           "Sum", "Mean", "Max", "Min", "Prod", "CumSum", "Var", "Std", "Norm"]


def _axis_arg(axis):
    """A list of axes becomes a tuple (NumPy accepts only ints and tuples)."""
    if isinstance(axis, list):
        return tuple(axis)
    return axis


def _reduced_count(shape: tuple, axis) -> int:
    """How many elements of ``shape`` each output element of a reduction over ``axis`` sees."""
    if not shape:
        return 1  # a 0-d array: NumPy reduces its one element for axis None, 0 or -1
    count = 1
    for a in normalize_axes(axis, len(shape)):
        count *= shape[a]
    return count


def _grad_to_input(gy, x_shape: tuple, axis, keepdims: bool):
    """gy (the reduced shape) with the reduced axes re-inserted, broadcast to ``x_shape``."""
    return broadcast_to(reshape_sum_backward(gy, x_shape, axis, keepdims), x_shape)


def _keepdims_view(y, x_shape: tuple, axis, keepdims: bool):
    """Array ``y`` (a reduction of an ``x_shape`` array) with its reduced axes as size 1."""
    return reshape_sum_backward(y, x_shape, axis, keepdims)


def _lower_reduction(g, op_type: str, x: str, node: Any) -> str:
    """The ONNX ``op_type`` reduction of ``node`` (with ``axis`` and ``keepdims``)."""
    ndim = node.inputs[0].ndim
    if ndim == 0:  # NumPy reduces a 0-d array to itself; ONNX has no axis to name
        return g.op("Identity", x)
    return g.reduce(op_type, x, normalize_axes(node.axis, ndim), node.keepdims)


def _lower_variance(g, x: str, node: Any) -> str:
    """sum((x - mean(x))^2) / (N - ddof) over ``node.axis``, as ONNX nodes."""
    v = node.inputs[0]
    if v.ndim == 0:
        return g.op("Sub", x, x)  # one element: its variance is 0 (ddof is 0 here)
    axes = normalize_axes(node.axis, v.ndim)
    centred = g.op("Sub", x, g.reduce("ReduceMean", x, axes, keepdims=True))
    total = g.reduce("ReduceSum", g.op("Mul", centred, centred), axes, node.keepdims)
    dof = _reduced_count(v.shape, node.axis) - node.ddof
    return g.op("Div", total, g.constant(dof, dtype=v.dtype))


class Sum(Function):
    """y = x.sum(axis, keepdims). x: any shape -> the reduced shape."""

    retain_inputs = ()
    retain_outputs = ()

    def __init__(self, axis=None, keepdims: bool = False) -> None:
        self.axis = axis
        self.keepdims = keepdims

    def forward(self, x):
        self.x_shape = x.shape
        return x.sum(axis=self.axis, keepdims=self.keepdims)

    def backward(self, gy):
        gy = reshape_sum_backward(gy, self.x_shape, self.axis, self.keepdims)
        return broadcast_to(gy, self.x_shape)

    def to_onnx(self, g, x):
        return _lower_reduction(g, "ReduceSum", x, self)


def sum(x, axis=None, keepdims: bool = False) -> Variable:
    """Sum of elements over ``axis`` (None: all; int or tuple; negatives allowed)."""
    return Sum(_axis_arg(axis), keepdims)(x)


class Mean(Function):
    """y = x.mean(axis, keepdims); dy/dx = 1 / count for every element of the group."""

    retain_inputs = ()
    retain_outputs = ()

    def __init__(self, axis=None, keepdims: bool = False) -> None:
        self.axis = axis
        self.keepdims = keepdims

    def forward(self, x):
        self.x_shape = x.shape
        return x.mean(axis=self.axis, keepdims=self.keepdims)

    def backward(self, gy):
        count = _reduced_count(self.x_shape, self.axis)
        # Scale before broadcasting: the reduced array is the smaller one.
        return _grad_to_input(gy * (1.0 / (count or 1)), self.x_shape, self.axis, self.keepdims)

    def to_onnx(self, g, x):
        return _lower_reduction(g, "ReduceMean", x, self)


def average(x, axis=None, keepdims: bool = False) -> Variable:
    """Arithmetic mean over ``axis``: sum(x, axis) / count. x: any shape -> the reduced shape.

    Integer input gives a float64 mean (NumPy's rule); float32 stays float32.
    """
    return Mean(_axis_arg(axis), keepdims)(x)


class Max(Function):
    """y = x.max(axis, keepdims).

    The gradient goes to the elements equal to the extremum; tied elements *share* it
    equally, so the gradient of each output element sums to 1 (DeZero gives each tie the
    full gradient). A NaN extremum sends the gradient to the NaN elements.
    """

    retain_inputs = (0,)  # the elements equal to the extremum get the gradient
    retain_outputs = (0,)

    def __init__(self, axis=None, keepdims: bool = False) -> None:
        self.axis = axis
        self.keepdims = keepdims

    def forward(self, x):
        return self._reduce(x)

    def _reduce(self, x):
        return x.max(axis=self.axis, keepdims=self.keepdims)

    def backward(self, gy):
        (x,) = self.inputs
        xp = get_array_module(x.data)
        y = _keepdims_view(self.output.data, x.shape, self.axis, self.keepdims)
        mask = x.data == y
        count = mask.sum(axis=self.axis, keepdims=True)
        if not count.all():  # a NaN extremum equals nothing, itself included
            mask |= xp.isnan(x.data) & xp.isnan(y)
            count = mask.sum(axis=self.axis, keepdims=True)
        dtype = gy.dtype if gy.dtype.kind == "f" else x.dtype
        # The share of each element is constant in x (piecewise), so a plain array suffices.
        share = mask.astype(dtype) / count.astype(dtype)
        return _grad_to_input(gy, x.shape, self.axis, self.keepdims) * share

    def to_onnx(self, g, x):
        return _lower_reduction(g, "ReduceMin" if isinstance(self, Min) else "ReduceMax", x,
                                self)


def max(x, axis=None, keepdims: bool = False) -> Variable:
    """Maximum over ``axis``. Tied maxima split the gradient equally (total 1 per output).

    x: any shape -> the reduced shape. ``max([1, 3, 3])`` has gradient ``[0, .5, .5]``.
    """
    return Max(_axis_arg(axis), keepdims)(x)


class Min(Max):
    """y = x.min(axis, keepdims); tied minima share the gradient (see :class:`Max`)."""

    def _reduce(self, x):
        return x.min(axis=self.axis, keepdims=self.keepdims)


def min(x, axis=None, keepdims: bool = False) -> Variable:
    """Minimum over ``axis``. Tied minima split the gradient equally (total 1 per output)."""
    return Min(_axis_arg(axis), keepdims)(x)


def _moved_to_last(x, axis):
    """x with the ``axis`` axes moved to the end and merged: (rest..., K), plus undo info."""
    xp = get_array_module(x)
    axes = normalize_axes(axis, x.ndim) if x.ndim else ()  # 0-d: one group of one element
    rest = [a for a in range(x.ndim) if a not in axes]
    moved = xp.transpose(x, rest + list(axes))
    rest_shape = tuple(x.shape[a] for a in rest)
    count = _reduced_count(x.shape, axis)
    return moved.reshape(rest_shape + (count,)), (rest + list(axes), moved.shape)


def _moved_back(flat, order, moved_shape):
    """Undo :func:`_moved_to_last`: (rest..., K) back to the original axis order."""
    xp = get_array_module(flat)
    inverse = [0] * len(order)
    for position, a in enumerate(order):
        inverse[a] = position
    return xp.transpose(flat.reshape(moved_shape), inverse)


def _multilinear_product(a, b):
    """The product of two polynomials in t_1..t_n in which every t_r**2 is 0.

    A polynomial is an array (2**n, ...): entry T holds the coefficient of the monomial
    prod_{r in T} t_r, the set T written as a bit mask. Only products of distinct t's
    survive, so (ab)_T = sum_{U subset of T} a_U b_{T-U}.
    """
    xp = get_array_module(a)
    terms = []
    for T in range(len(a)):
        U, total = T, a[T] * b[0]
        while U:  # every other subset U of T, by the bit trick U -> (U - 1) & T
            U = (U - 1) & T
            total = total + a[U] * b[T ^ U]
        terms.append(total)
    return xp.stack(terms)


def _running_products(f):
    """P_k = f_0 f_1 ... f_k along the last axis, for polynomials f of shape (2**n, ..., K).

    By doubling (Hillis and Steele's scan): after the step with shift s, P_k holds the
    product of the up-to-2s factors that end at k, so log2(K) whole-array products do it.
    """
    xp = get_array_module(f)
    if len(f) == 1:  # numbers, not polynomials: NumPy's cumprod is that scan
        return xp.cumprod(f, axis=-1)
    shift = 1
    while shift < f.shape[-1]:
        f = xp.concatenate([f[..., :shift], _multilinear_product(f[..., :-shift], f[..., shift:])],
                           axis=-1)
        shift *= 2
    return f


def _products_of_others(x, gs, axis):
    """h_k = sum over distinct i_1..i_n, all != k, of g_1[i_1]...g_n[i_n] prod_{j not in
    {k, i_1, ..., i_n}} x_j, within each reduction group: the (n+1)-th derivative of prod,
    contracted with g_1..g_n. n = 0 gives prod's gradient, n = 1 its Hessian times g_1.

    Dividing prod by the x's left out would give nan wherever x has a zero, so the sums are
    read off a product of polynomials instead. Give element j the factor
    f_j = x_j + t_1 g_1[j] + ... + t_n g_n[j], with t_r**2 = 0: in prod_{j != k} f_j every
    element contributes either its x_j or one g_r[j], each t_r at most once, so the
    coefficient of t_1...t_n is exactly h_k. With the running products L_k = f_0...f_{k-1}
    from the left and R_k = f_{k+1}...f_{K-1} from the right, h_k is the t_1...t_n
    coefficient of L_k R_k. No division, so every order is exact with zeros in x.
    """
    xp = get_array_module(x)
    xf, (order, moved_shape) = _moved_to_last(x, axis)
    K, full = xf.shape[-1], 2 ** len(gs) - 1
    factors = xp.zeros((full + 1,) + xf.shape, dtype=xp.result_type(x, *gs))
    factors[0] = xf
    for r, g in enumerate(gs):
        factors[1 << r] = _moved_to_last(xp.broadcast_to(g, x.shape), axis)[0]
    one = xp.zeros_like(factors[..., :1])  # the polynomial 1, for the ends of the groups
    one[0] = 1
    left = xp.concatenate([one, _running_products(factors)], axis=-1)[..., :K]
    from_right = xp.flip(_running_products(xp.flip(factors, axis=-1)), axis=-1)
    right = xp.concatenate([from_right, one], axis=-1)[..., 1:]
    h = left[0] * right[full]
    for U in range(1, full + 1):
        h = h + left[U] * right[full ^ U]
    return _moved_back(h, order, moved_shape)


class Prod(Function):
    """y = x.prod(axis, keepdims); dy/dx_i = prod_{j != i} x_j (exact with zeros in x)."""

    retain_inputs = (0,)
    retain_outputs = ()

    def __init__(self, axis=None, keepdims: bool = False) -> None:
        self.axis = axis
        self.keepdims = keepdims

    def forward(self, x):
        return x.prod(axis=self.axis, keepdims=self.keepdims)

    def backward(self, gy):
        (x,) = self.inputs
        others = ProductOfOthers(self.axis)(x)
        return _grad_to_input(gy, x.shape, self.axis, self.keepdims) * others

    def to_onnx(self, g, x):
        return _lower_reduction(g, "ReduceProd", x, self)


def prod(x, axis=None, keepdims: bool = False) -> Variable:
    """Product of elements over ``axis``; dy/dx_i = prod_{j != i} x_j, exact where x has zeros.

    x: any shape -> the reduced shape. Derivatives of every order are exact where x has
    zeros: none divides by x (see :class:`ProductOfOthers`).
    """
    return Prod(_axis_arg(axis), keepdims)(x)


class ProductOfOthers(Function):
    """h_k = sum over distinct i_1..i_n, all != k, of g_1[i_1]...g_n[i_n] prod_{j not in
    {k, i_1, ..., i_n}} x_j over the ``axis`` group; inputs x, g_1, ..., g_n (shape of x).

    It is the (n+1)-th derivative of prod contracted with g_1..g_n, one free index k left:
    with no g, p_k = prod_{j != k} x_j (the gradient of prod); with one, the Hessian of prod
    applied to g_1. That derivative tensor is symmetric and multilinear in the g's, so the
    backward is the same Function with one direction more: d<u, h>/dx is
    ProductOfOthers(x, u, g_1, ..., g_n), and d<u, h>/dg_r is ProductOfOthers(x, u, and the
    g's but g_r). Every order is computed without dividing by x (see
    :func:`_products_of_others`), so all of them are exact where x has zeros.
    """

    # retain_inputs: x and every g, however many there are; set in forward.
    retain_outputs = ()

    def __init__(self, axis=None) -> None:
        self.axis = axis

    def forward(self, x, *gs):
        self.retain_inputs = tuple(range(1 + len(gs)))
        return _products_of_others(x, gs, self.axis)

    def backward(self, gh):
        x, *gs = self.inputs
        gx = ProductOfOthers(self.axis)(x, gh, *gs) if self.needs_grad(0) else None
        ggs = [ProductOfOthers(self.axis)(x, gh, *gs[:r], *gs[r + 1:])
               if self.needs_grad(r + 1) else None for r in range(len(gs))]
        return (gx, *ggs)


class CumSum(Function):
    """y = cumsum(x, axis) (``reverse``: summed from the end); the gradient is the reverse."""

    retain_inputs = ()
    retain_outputs = ()

    def __init__(self, axis: int, reverse: bool = False) -> None:
        self.axis = axis
        self.reverse = reverse

    def forward(self, x):
        xp = get_array_module(x)
        if self.reverse:
            return xp.flip(xp.cumsum(xp.flip(x, self.axis), axis=self.axis), self.axis)
        return xp.cumsum(x, axis=self.axis)

    def backward(self, gy):
        return CumSum(self.axis, not self.reverse)(gy)

    def to_onnx(self, g, x):
        return g.op("CumSum", x, g.constant(self.axis), reverse=int(self.reverse))


def cumsum(x, axis: int | None = None) -> Variable:
    """Cumulative sum along ``axis``: y_i = sum_{j <= i} x_j. None: over the flattened x.

    x: any shape -> same shape (``(x.size,)`` for axis None). The gradient is the cumulative
    sum from the end.
    """
    if axis is None:
        x = reshape(x, (-1,))
        axis = 0
    return CumSum(int(axis))(x)


class Var(Function):
    """y = mean((x - mean(x))^2) * N / (N - ddof); dy/dx = 2 (x - mean(x)) / (N - ddof)."""

    retain_inputs = (0,)
    retain_outputs = ()

    def __init__(self, axis=None, keepdims: bool = False, ddof: int = 0) -> None:
        self.axis = axis
        self.keepdims = keepdims
        self.ddof = ddof

    def forward(self, x):
        _check_degrees_of_freedom("var", x, self.axis, self.ddof)
        return x.var(axis=self.axis, keepdims=self.keepdims, ddof=self.ddof)

    def backward(self, gy):
        (x,) = self.inputs
        dof = _reduced_count(x.shape, self.axis) - self.ddof
        centred = x - mean(x, self.axis, keepdims=True)
        gy = _grad_to_input(gy, x.shape, self.axis, self.keepdims)
        return gy * centred * (2.0 / dof)

    def to_onnx(self, g, x):
        return _lower_variance(g, x, self)


def var(x, axis=None, keepdims: bool = False, ddof: int = 0) -> Variable:
    """Variance over ``axis``: sum((x - mean(x))^2) / (N - ddof).

    ddof=0 is the population variance, ddof=1 the unbiased estimate. x: any shape -> the
    reduced shape. ``N - ddof <= 0`` raises ShapeError.
    """
    return Var(_axis_arg(axis), keepdims, int(ddof))(x)


class Std(Function):
    """y = sqrt(var(x, ddof)); dy/dx = (x - mean(x)) / ((N - ddof) y), 0 where y = 0."""

    retain_inputs = (0,)
    retain_outputs = (0,)

    def __init__(self, axis=None, keepdims: bool = False, ddof: int = 0) -> None:
        self.axis = axis
        self.keepdims = keepdims
        self.ddof = ddof

    def forward(self, x):
        _check_degrees_of_freedom("std", x, self.axis, self.ddof)
        return x.std(axis=self.axis, keepdims=self.keepdims, ddof=self.ddof)

    def backward(self, gy):
        (x,) = self.inputs
        dof = _reduced_count(x.shape, self.axis) - self.ddof
        y = _nonzero(self.output)  # a constant group has y = 0 and x - mean = 0: gradient 0
        y = broadcast_to(reshape_sum_backward(y, x.shape, self.axis, self.keepdims), x.shape)
        centred = x - mean(x, self.axis, keepdims=True)
        gy = _grad_to_input(gy, x.shape, self.axis, self.keepdims)
        return gy * centred / (y * float(dof))

    def to_onnx(self, g, x):
        return g.op("Sqrt", _lower_variance(g, x, self))


def std(x, axis=None, keepdims: bool = False, ddof: int = 0) -> Variable:
    """Standard deviation over ``axis``: sqrt(var(x, axis, ddof)).

    The gradient is 0 (not NaN) for a group whose elements are all equal.
    """
    return Std(_axis_arg(axis), keepdims, int(ddof))(x)


def _nonzero(y: Variable) -> Variable:
    """y with its zeros replaced by ones (a safe divisor), still differentiable in y."""
    zeros = y.data == 0
    if not zeros.any():
        return y
    return y + zeros.astype(y.dtype)


def _check_degrees_of_freedom(op: str, x, axis, ddof: int) -> None:
    count = _reduced_count(x.shape, axis)
    if ddof < 0 or count - ddof <= 0:
        raise ShapeError(
            f"{op}: ddof={ddof} leaves {count - ddof} degrees of freedom for groups of {count} "
            f"element(s) (x: {x.dtype} {x.shape}, axis={axis}); need 0 <= ddof < {count}"
        )


_NORM_ORDS = (None, 2, "fro", 1)


class Norm(Function):
    """y = ||x||_ord over ``axis`` (ord 2: sqrt(sum x^2), ord 1: sum |x|).

    The 2-norm is rescaled by max|x| when x^2 would overflow or underflow. Gradients:
    x / y for ord 2 (0 where y = 0) and sign(x) for ord 1.
    """

    retain_inputs = (0,)
    retain_outputs = (0,)

    def __init__(self, ord=2, axis=None, keepdims: bool = False) -> None:
        self.ord = ord
        self.axis = axis
        self.keepdims = keepdims

    def forward(self, x):
        xp = get_array_module(x)
        if self.ord == 1:
            return xp.abs(x).sum(axis=self.axis, keepdims=self.keepdims)
        with np.errstate(over="ignore", under="ignore"):  # detected below, then rescaled
            y = xp.sqrt((x * x).sum(axis=self.axis, keepdims=self.keepdims))
        if y.size and not (xp.isfinite(y).all() and (y > 0).all()):
            y = self._rescaled(x, xp)
        return y

    def _rescaled(self, x, xp):
        """sqrt(sum (x/m)^2) * m with m = max|x|: no overflow, no underflow to 0."""
        scale = xp.abs(x).max(axis=self.axis, keepdims=True)
        scale = xp.where(xp.isfinite(scale) & (scale > 0), scale, 1).astype(scale.dtype)
        scaled = x / scale
        y = xp.sqrt((scaled * scaled).sum(axis=self.axis, keepdims=True)) * scale
        if not self.keepdims:
            axes = normalize_axes(self.axis, x.ndim)
            y = y.reshape(tuple(n for a, n in enumerate(y.shape) if a not in axes))
        return y

    def backward(self, gy):
        (x,) = self.inputs
        gy = _grad_to_input(gy, x.shape, self.axis, self.keepdims)
        if self.ord == 1:
            xp = get_array_module(x.data)
            return gy * xp.sign(x.data)
        y = _nonzero(self.output)
        y = broadcast_to(reshape_sum_backward(y, x.shape, self.axis, self.keepdims), x.shape)
        return gy * x / y

    def to_onnx(self, g, x):
        return _lower_reduction(g, "ReduceL1" if self.ord == 1 else "ReduceL2", x, self)


def norm(x, ord=2, axis=None, keepdims: bool = False) -> Variable:
    """Vector norm over ``axis``: ord 2 (or 'fro', None) sqrt(sum x^2), ord 1 sum |x|.

    With axis None the norm is over all elements (the Frobenius norm of a matrix, not
    NumPy's spectral ``norm(A, 2)``). Stable for huge and tiny x; the gradient x / ||x|| is 0
    at x = 0. x: any shape -> the reduced shape.
    """
    if ord not in _NORM_ORDS:
        raise ValueError(f"norm: ord={ord!r} is not supported; use 2 (or 'fro', None) or 1")
    return Norm(1 if ord == 1 else 2, _axis_arg(axis), keepdims)(x)


# -- composed from the ops above, and aliases ------------------------------------------


mean = average


def _arg_extremum(op: str, x, axis, keepdims: bool):
    data = x.data if isinstance(x, Variable) else x
    xp = get_array_module(data)
    data = xp.asarray(data)
    if isinstance(axis, (tuple, list)):
        raise ShapeError(f"{op}: axis must be None or one int, got {axis!r} (x: {data.shape})")
    try:
        index = getattr(data, op)(axis=axis, keepdims=keepdims)
    except ValueError as e:
        raise ShapeError(f"{op}: {e} (x: {data.dtype} {data.shape}, axis={axis})") from e
    return xp.asarray(index)


def argmax(x, axis: int | None = None, keepdims: bool = False):
    """Indices of the maxima along ``axis`` (None: into the flattened x), as a plain int array.

    Not differentiable. x: a Variable or an array; the first of tied maxima wins.
    """
    return _arg_extremum("argmax", x, axis, keepdims)


def argmin(x, axis: int | None = None, keepdims: bool = False):
    """Indices of the minima along ``axis`` (None: flattened), as a plain int array."""
    return _arg_extremum("argmin", x, axis, keepdims)
