"""Normalization: batch_norm (DeZero's ``batch_nrom`` too), layer_norm, group_norm.

All three standardise x over some axes, xhat = (x - mean) * s with s = 1 / sqrt(var + eps)
and the biased variance, then apply a per-feature affine map gamma * xhat + beta.

Their backward follows the Grad-node protocol (Chainer's ``BatchNormalizationGrad``): the
op's backward calls a Grad :class:`~zerograd.core.function.Function` whose ``forward`` is the
fast raw-array kernel and whose ``backward`` is the next order, written on Variables:

* :class:`StandardizeGrad` (x, gy) -> gx = s * P(gy), with the projection
  ``P(g) = g - mean(g) - xhat * mean(g * xhat)`` over the standardised axes. P is
  symmetric, so the gradient in gy of <v, gx> is StandardizeGrad(x, v) again; the
  gradient in x is the closed form of :func:`_standardize_grad_x`.
* :class:`BatchNormGrad` (x, gamma, gy) -> (gx, ggamma, gbeta), built from the same pieces.

Each derivative is written once; every order is exact.
"""

from __future__ import annotations

import math

import numpy as np

from zerograd._config import Config
from zerograd.core.broadcast import broadcast_to
from zerograd.core.function import Function, as_variable
from zerograd.core.variable import Variable
from zerograd.errors import DTypeError, ShapeError
from zerograd.ops.shape import reshape

__all__ = ["batch_norm", "batch_nrom", "layer_norm", "group_norm",
           "BatchNorm", "BatchNormGrad", "Standardize", "StandardizeGrad", "LayerNorm",
           "GroupNorm"]


# -- shared pieces ---------------------------------------------------------------------------
def _mean(a, axes: tuple):
    """mean over ``axes`` with keepdims, of an array or a Variable alike."""
    return a.sum(axis=axes, keepdims=True) * (1.0 / math.prod(a.shape[i] for i in axes))


def _standardize_graph(x: Variable, axes: tuple, eps: float):
    """(xhat, s = 1/sqrt(var + eps)) over ``axes`` (keepdims) as a graph of x."""
    xc = x - _mean(x, axes)
    s = (_mean(xc * xc, axes) + eps) ** -0.5
    return xc * s, s


def _standardize_array(x, axes: tuple, eps: float):
    """(xhat, mean, var, s) over ``axes`` for an array, statistics with keepdims."""
    mean = x.mean(axis=axes, keepdims=True)
    xc = x - mean
    var = (xc * xc).mean(axis=axes, keepdims=True)
    s = 1 / np.sqrt(var + x.dtype.type(eps))
    return xc * s, mean, var, s


def _project(g, xhat, axes: tuple):
    """P(g) = g - mean(g) - xhat * mean(g * xhat) over ``axes`` (arrays or Variables)."""
    return g - _mean(g, axes) - xhat * _mean(g * xhat, axes)


def _standardize_grad_x(xhat, s, g, v, axes: tuple):
    """d/dx <v, s P(g)>, the gradient in x of StandardizeGrad's output against ``v``.

    With a = mean(g xhat), b = mean(v xhat) (bars for means over ``axes``), from
    ds/dx = -s^2 xhat / m and dxhat/dx = s P:
    -s^2 [xhat (mean(v g) - v_bar g_bar - 3 a b) + b (g - g_bar) + a (v - v_bar)].
    """
    g_bar, v_bar = _mean(g, axes), _mean(v, axes)
    a, b = _mean(g * xhat, axes), _mean(v * xhat, axes)
    inner = xhat * (_mean(v * g, axes) - v_bar * g_bar - a * b * 3) \
        + b * (g - g_bar) + a * (v - v_bar)
    return -(s * s) * inner


def _standardize_onnx(g, x: str, axes: tuple, eps: float, dtype) -> str:
    """(x - mean) * (1 / sqrt(var + eps)) over ``axes`` as ONNX nodes, in this module's
    order of operations (the biased variance of the centred values)."""
    mean = g.reduce("ReduceMean", x, axes, keepdims=True)
    xc = g.op("Sub", x, mean)
    var = g.reduce("ReduceMean", g.op("Mul", xc, xc), axes, keepdims=True)
    s = g.op("Reciprocal", g.op("Sqrt", g.op("Add", var, g.constant(eps, dtype=dtype))))
    return g.op("Mul", xc, s)


def _check_float(op: str, x) -> None:
    if x.dtype.kind != "f":
        raise DTypeError(f"{op}: x must be a float array, got {x.dtype} {x.shape}")


class StandardizeGrad(Function):
    """gx = s * (gy - mean(gy) - xhat * mean(gy * xhat)) over ``axes``: the gradient of
    standardisation, from inputs (x, gy).

    ``stats``: (xhat, s) of x as arrays, when the forward pass has them (saves recomputing
    them); the backward rebuilds them as a graph of x. Backward: d/dgy is StandardizeGrad
    again (P is symmetric), d/dx is :func:`_standardize_grad_x`.
    """

    retain_inputs = (0, 1)
    retain_outputs = ()
    saved = ("stats",)

    def __init__(self, axes: tuple, eps: float, stats: tuple | None = None) -> None:
        self.axes = tuple(axes)
        self.eps = eps
        self.stats = stats

    def forward(self, x, gy):
        if self.stats is None:
            xhat, _, _, s = _standardize_array(x, self.axes, self.eps)
        else:
            xhat, s = self.stats
            self.stats = None  # used once: the backward works from x
        return _project(gy, xhat, self.axes) * s

    def backward(self, ggx):
        x, gy = self.inputs
        g_x = g_gy = None
        if self.needs_grad(0):
            xhat, s = _standardize_graph(x, self.axes, self.eps)
            g_x = _standardize_grad_x(xhat, s, gy, ggx, self.axes)
        if self.needs_grad(1):
            g_gy = StandardizeGrad(self.axes, self.eps)(x, ggx)
        return g_x, g_gy


# -- standardisation over trailing axes (layer and group norm) ------------------------------
class Standardize(Function):
    """y = (x - mean) / sqrt(var + eps), mean and biased var over ``axes`` (keepdims).

    Backward: :class:`StandardizeGrad` (x, gy), handed this forward's xhat and s.
    """

    retain_inputs = (0,)
    retain_outputs = (0,)
    saved = ("s",)

    def __init__(self, axes: tuple, eps: float) -> None:
        self.axes = tuple(axes)
        self.eps = eps

    def forward(self, x):
        xhat, _, _, self.s = _standardize_array(x, self.axes, self.eps)
        return xhat

    def backward(self, gy):
        stats = None if self.s is None else (self.output.data, self.s)
        return StandardizeGrad(self.axes, self.eps, stats)(self.inputs[0], gy)

    def to_onnx(self, g, x):
        return _standardize_onnx(g, x, self.axes, self.eps, self.inputs[0].dtype)


class LayerNorm(Standardize):
    """Standardisation over the trailing ``n_axes`` axes of x (one sample, one position)."""

    def __init__(self, n_axes: int, eps: float) -> None:
        super().__init__(tuple(range(-n_axes, 0)), eps)

    def to_onnx(self, g, x):
        v = self.inputs[0]
        if g.opset < 17:  # LayerNormalization is new in opset 17
            return _standardize_onnx(g, x, self.axes, self.eps, v.dtype)
        # gamma and beta are separate nodes (layer_norm applies them after this op), so
        # the scale here is ones.
        ones = g.constant(np.ones(v.shape[self.axes[0]:]), dtype=v.dtype)
        return g.op("LayerNormalization", x, ones, axis=self.axes[0], epsilon=self.eps)


def _affine(y: Variable, gamma, beta, shape: tuple) -> Variable:
    """y * gamma + beta with gamma and beta reshaped to ``shape`` (None skips a term)."""
    if gamma is not None:
        y = y * reshape(as_variable(gamma), shape)
    if beta is not None:
        y = y + reshape(as_variable(beta), shape)
    return y


def layer_norm(x, gamma=None, beta=None, eps: float = 1e-5,
               normalized_shape: tuple | None = None) -> Variable:
    """Layer normalisation: standardise each sample over its trailing axes, then scale/shift.

    y = (x - mean) / sqrt(var + eps) * gamma + beta, mean and biased var over the last
    len(normalized_shape) axes (default: the last axis). x: (..., *normalized_shape);
    gamma, beta: normalized_shape or None -> x.shape.
    """
    x = as_variable(x)
    _check_float("layer_norm", x)
    for name, p in (("gamma", gamma), ("beta", beta)):
        if isinstance(p, (tuple, list, int, np.integer)):
            # PyTorch's layer_norm(x, normalized_shape, weight, bias) takes the shape second;
            # here the second argument is DeZero-style gamma (an array), so say which is which.
            raise DTypeError(
                f"layer_norm: {name} is {p!r}, a shape, not an array; the signature is "
                f"layer_norm(x, gamma=None, beta=None, eps=1e-5, normalized_shape=None) with "
                f"gamma, beta arrays of normalized_shape; for PyTorch's layer_norm(x, {p!r}) "
                f"write layer_norm(x, normalized_shape={p!r}) (x {x.dtype} {x.shape})")
    if normalized_shape is None:
        normalized_shape = (x.shape[-1],) if x.ndim else ()
    elif isinstance(normalized_shape, (int, np.integer)):
        normalized_shape = (int(normalized_shape),)
    normalized_shape = tuple(normalized_shape)
    k = len(normalized_shape)
    if k == 0 or x.ndim < k or x.shape[x.ndim - k:] != normalized_shape:
        raise ShapeError(
            f"layer_norm: x {x.dtype} {x.shape} must end with normalized_shape "
            f"{normalized_shape} (at least one axis)"
        )
    for name, p in (("gamma", gamma), ("beta", beta)):
        if p is not None and tuple(p.shape) != normalized_shape:
            raise ShapeError(
                f"layer_norm: {name} has shape {tuple(p.shape)}, expected normalized_shape "
                f"{normalized_shape} (x {x.shape})"
            )
    return _affine(LayerNorm(k, eps)(x), gamma, beta, normalized_shape)


class GroupNorm(Standardize):
    """Standardisation of x (N, G, M) over its last axis: one statistic per (sample, group)."""

    def __init__(self, eps: float) -> None:
        super().__init__((2,), eps)


def group_norm(x, num_groups: int, gamma=None, beta=None, eps: float = 1e-5) -> Variable:
    """Group normalisation: standardise each sample over groups of channels (and space).

    Channels split into ``num_groups`` equal groups; each (sample, group) is standardised
    over its channels and spatial positions, then y = xhat * gamma[c] + beta[c].
    x: (N, C, *spatial) with C divisible by num_groups; gamma, beta: (C,) or None -> x.shape.
    """
    x = as_variable(x)
    _check_float("group_norm", x)
    if x.ndim < 2:
        raise ShapeError(f"group_norm: x must be (N, C, ...), got {x.dtype} {x.shape}")
    n, c = x.shape[:2]
    if num_groups < 1 or c % num_groups:
        raise ShapeError(
            f"group_norm: {c} channels (x {x.shape}) cannot be split into {num_groups} equal "
            f"groups"
        )
    for name, p in (("gamma", gamma), ("beta", beta)):
        if p is not None and tuple(p.shape) != (c,):
            raise ShapeError(f"group_norm: {name} has shape {tuple(p.shape)}, expected ({c},)")
    grouped = reshape(x, (n, num_groups, -1))
    y = reshape(GroupNorm(eps)(grouped), x.shape)
    return _affine(y, gamma, beta, (1, c) + (1,) * (x.ndim - 2))


# -- batch normalisation -----------------------------------------------------------------------
class BatchNorm(Function):
    """y = gamma * (x - mu) / sqrt(var + eps) + beta per channel (axis 1).

    Train mode (``Config.train``): mu, var are the batch statistics over every axis but 1,
    and the running ``mean``/``var`` arrays are updated in place,
    ``mean = decay * mean + (1 - decay) * mu``,
    ``var = decay * var + (1 - decay) * m / (m - 1) * var_batch`` (m values per channel).
    Test mode: mu, var are the running statistics (frozen; backward still works).
    An empty batch (m = 0) gives an empty output and leaves the running statistics
    untouched, as PyTorch does. One value per channel (m = 1) trains as in DeZero (xhat = 0,
    output beta); PyTorch refuses that in training.

    Backward: with batch statistics :class:`BatchNormGrad` (x, gamma, gy); with frozen
    statistics the map is affine in x and its gradients are written directly on Variables.
    """

    retain_inputs = (0, 1)
    retain_outputs = ()
    saved = ("mu", "s")

    def __init__(self, mean, var, decay: float = 0.9, eps: float = 2e-5) -> None:
        self.avg_mean = mean.data if isinstance(mean, Variable) else mean
        self.avg_var = var.data if isinstance(var, Variable) else var
        self.decay = decay
        self.eps = eps

    def forward(self, x, gamma, beta):
        if x.ndim < 2:
            raise ShapeError(
                f"batch_norm: x must be (N, C) or (N, C, H, W), got {x.dtype} {x.shape}")
        _check_float("batch_norm", x)
        c = x.shape[1]
        for name, a in (("gamma", gamma), ("beta", beta), ("mean", self.avg_mean),
                        ("var", self.avg_var)):
            if a is not None and a.shape != (c,):
                raise ShapeError(
                    f"batch_norm: {name} has shape {a.shape}, expected ({c},) for x {x.shape} "
                    f"(one value per channel, axis 1)"
                )
        self.axes = (0,) + tuple(range(2, x.ndim))
        self.param_shape = (1, c) + (1,) * (x.ndim - 2)
        has_running = self.avg_mean is not None and self.avg_var is not None
        m = x.size // c if c else 0  # values per channel
        self.batch_stats = (Config.train or not has_running) and m > 0
        if m == 0:
            # An empty batch has no statistics: the output is empty whatever is used, and
            # the running statistics stay as they are (a mean of nothing would make them
            # nan forever). PyTorch does the same (it refuses only m = 1 in training).
            # Gradients: empty for x, 0 for gamma and beta.
            mu = np.zeros(self.param_shape, x.dtype)
            s = np.ones(self.param_shape, x.dtype)
            xhat = x - mu
        elif self.batch_stats:
            xhat, mu, var, s = _standardize_array(x, self.axes, self.eps)
            if Config.train and has_running:
                self._update_running_stats(mu, var, m)
        else:
            dtype = x.dtype
            mu = self.avg_mean.reshape(self.param_shape).astype(dtype)
            s = 1 / np.sqrt(self.avg_var.reshape(self.param_shape).astype(dtype)
                            + dtype.type(self.eps))
            xhat = (x - mu) * s
        self.mu, self.s = mu, s
        return xhat * gamma.reshape(self.param_shape) + beta.reshape(self.param_shape)

    def _update_running_stats(self, mu, var, m: int) -> None:
        unbiased = m / max(m - 1, 1)  # DeZero's clamp: one value per channel keeps var * 1
        self.avg_mean *= self.decay
        self.avg_mean += (1 - self.decay) * mu.ravel()
        self.avg_var *= self.decay
        self.avg_var += (1 - self.decay) * unbiased * var.ravel()

    def backward(self, gy):
        x, gamma, _ = self.inputs
        if self.batch_stats:
            gx, ggamma, gbeta = BatchNormGrad(self.axes, self.eps, (self.mu, self.s))(
                x, gamma, gy)
        else:
            # Frozen statistics: y = gamma (x - mu) s + beta, affine in x.
            gx = gy * (reshape(gamma, self.param_shape) * self.s)
            ggamma = (gy * ((x - self.mu) * self.s)).sum(axis=self.axes)
            gbeta = gy.sum(axis=self.axes)
        return (gx if self.needs_grad(0) else None, ggamma if self.needs_grad(1) else None,
                gbeta if self.needs_grad(2) else None)

    def to_onnx(self, g, x, gamma, beta):
        dtype = self.inputs[0].dtype
        if self.batch_stats:  # no running statistics: the batch's own, as in forward
            shape = g.constant(np.array(self.param_shape, dtype=np.int64))
            xhat = _standardize_onnx(g, x, self.axes, self.eps, dtype)
            return g.op("Add", g.op("Mul", xhat, g.op("Reshape", gamma, shape)),
                        g.op("Reshape", beta, shape))
        # Inference with the running statistics: ONNX's own operator. They are attributes
        # of the node, not inputs: g.buffer names them by the layer's buffers (bn/avg_mean).
        mean = g.buffer(self.avg_mean, dtype=dtype)
        var = g.buffer(self.avg_var, dtype=dtype)
        return g.op("BatchNormalization", x, gamma, beta, mean, var, epsilon=self.eps)


class BatchNormGrad(Function):
    """The gradients of batch normalisation with batch statistics, from (x, gamma, gy):
    gx = gamma * s * P(gy), ggamma = sum(gy * xhat), gbeta = sum(gy) over ``axes``.

    Forward is the raw-array kernel: with P as in :class:`StandardizeGrad`,
    mean(gamma gy) = gamma gbeta / m and mean(gamma gy xhat) = gamma ggamma / m, so
    gx = gamma s (gy - (gbeta + xhat ggamma) / m), three passes over x. ``stats``: (mu, s)
    of x from the forward pass (None: recomputed). Backward: each output's gradient in x,
    gamma and gy, from StandardizeGrad and :func:`_standardize_grad_x`.
    """

    retain_inputs = (0, 1, 2)
    retain_outputs = ()
    saved = ("stats",)

    def __init__(self, axes: tuple, eps: float, stats: tuple | None = None) -> None:
        self.axes = tuple(axes)
        self.eps = eps
        self.stats = stats

    def forward(self, x, gamma, gy):
        if self.stats is None:
            _, mu, _, s = _standardize_array(x, self.axes, self.eps)
        else:
            mu, s = self.stats
            self.stats = None  # used once: the backward works from x
        shape = s.shape
        xhat = (x - mu) * s
        gbeta = gy.sum(axis=self.axes)
        ggamma = (gy * xhat).sum(axis=self.axes)
        inv_m = 1.0 / (x.size // x.shape[1])
        gx = xhat
        gx *= ggamma.reshape(shape) * inv_m
        gx += gbeta.reshape(shape) * inv_m
        np.subtract(gy, gx, out=gx)
        gx *= gamma.reshape(shape) * s
        return gx, ggamma, gbeta

    def backward(self, ggx, gggamma, ggbeta):
        x, gamma, gy = self.inputs
        axes, eps = self.axes, self.eps
        shape = (1, x.shape[1]) + (1,) * (x.ndim - 2)
        xhat, s = _standardize_graph(x, axes, eps)
        g_x = g_gamma = g_gy = None

        def add(total, term):
            return term if total is None else total + term

        if ggx is not None:  # gx = gamma s P(gy), linear in gamma and in gy
            v = ggx * reshape(gamma, shape)
            if self.needs_grad(0):
                g_x = _standardize_grad_x(xhat, s, gy, v, axes)
            if self.needs_grad(1):
                g_gamma = (ggx * StandardizeGrad(axes, eps)(x, gy)).sum(axis=axes)
            if self.needs_grad(2):
                g_gy = StandardizeGrad(axes, eps)(x, v)
        if gggamma is not None:  # ggamma = sum(gy xhat); dxhat/dx is s P, StandardizeGrad
            w = reshape(gggamma, shape)
            if self.needs_grad(0):
                g_x = add(g_x, StandardizeGrad(axes, eps)(x, gy * w))
            if self.needs_grad(2):
                g_gy = add(g_gy, xhat * w)
        if ggbeta is not None and self.needs_grad(2):  # gbeta = sum(gy)
            g_gy = add(g_gy, broadcast_to(reshape(ggbeta, shape), gy.shape))
        return g_x, g_gamma, g_gy


def batch_norm(x, gamma, beta, mean, var, decay: float = 0.9, eps: float = 2e-5) -> Variable:
    """Batch normalisation per channel (DeZero's ``batch_nrom``, spelled correctly).

    y = gamma * (x - mu) / sqrt(var + eps) + beta. x: (N, C) or (N, C, H, W) (any
    (N, C, ...)); gamma, beta, mean, var: (C,) -> x.shape. In train mode mu/var are the batch
    statistics and the running ``mean``/``var`` ndarrays are updated in place (decay, and
    the unbiased m/(m-1) correction for var); under ``test_mode()`` the running statistics
    are used. ``mean``/``var`` may be None: batch statistics are then always used.
    """
    return BatchNorm(mean, var, decay, eps)(x, gamma, beta)


# DeZero's (misspelled) name for the same function.
batch_nrom = batch_norm
