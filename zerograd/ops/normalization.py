"""Normalization: batch_norm (DeZero's ``batch_nrom`` too), layer_norm, group_norm.

All three standardise x over some axes, xhat = (x - mean) / sqrt(var + eps) with the biased
variance, then apply a per-feature affine map gamma * xhat + beta. They share the backward
of standardisation,

    dx = (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat)) / sqrt(var + eps),

written once (:func:`_standardize_backward`) for raw arrays (first order, fast) and for
Variables (``create_graph=True``, where mean and variance are rebuilt as a graph of x so
that the second derivative is exact).
"""

from __future__ import annotations

import math

import numpy as np

from zerograd._config import Config
from zerograd.core.function import Function, as_variable
from zerograd.core.variable import Variable
from zerograd.errors import DTypeError, ShapeError
from zerograd.ops.shape import reshape

__all__ = ["batch_norm", "batch_nrom", "layer_norm", "group_norm",
           "BatchNorm", "Standardize", "LayerNorm", "GroupNorm"]


# -- shared pieces ---------------------------------------------------------------------------
def _standardize_graph(x: Variable, axes: tuple, eps: float):
    """(xhat, 1/sqrt(var + eps)) over ``axes`` (keepdims) as a graph of x."""
    inv_m = 1.0 / math.prod(x.shape[a] for a in axes)
    xc = x - x.sum(axis=axes, keepdims=True) * inv_m
    var = (xc * xc).sum(axis=axes, keepdims=True) * inv_m
    inv_std = (var + eps) ** -0.5
    return xc * inv_std, inv_std


def _standardize_backward(gxhat, xhat, inv_std, axes: tuple):
    """dL/dx from dL/dxhat for xhat standardised over ``axes`` (arrays or Variables alike)."""
    inv_m = 1.0 / math.prod(xhat.shape[a] for a in axes)
    mean_g = gxhat.sum(axis=axes, keepdims=True) * inv_m
    mean_gx = (gxhat * xhat).sum(axis=axes, keepdims=True) * inv_m
    return (gxhat - mean_g - xhat * mean_gx) * inv_std


def _standardize_array(x, axes: tuple, eps: float):
    """(xhat, mean, var, inv_std) over ``axes`` for an array, statistics with keepdims."""
    mean = x.mean(axis=axes, keepdims=True)
    xc = x - mean
    var = (xc * xc).mean(axis=axes, keepdims=True)
    inv_std = 1 / np.sqrt(var + x.dtype.type(eps))
    return xc * inv_std, mean, var, inv_std


def _check_float(op: str, x) -> None:
    if x.dtype.kind != "f":
        raise DTypeError(f"{op}: x must be a float array, got {x.dtype} {x.shape}")


def _constant(a) -> Variable:
    return Variable(a, requires_grad=False)


# -- standardisation over trailing axes (layer and group norm) ------------------------------
class Standardize(Function):
    """y = (x - mean) / sqrt(var + eps), mean and biased var over ``axes`` (keepdims)."""

    def __init__(self, axes: tuple, eps: float) -> None:
        self.axes = tuple(axes)
        self.eps = eps

    def forward(self, x):
        xhat, _, _, self.inv_std = _standardize_array(x, self.axes, self.eps)
        return xhat

    def backward(self, gy):
        if Config.enable_backprop:
            xhat, inv_std = _standardize_graph(self.inputs[0], self.axes, self.eps)
            return _standardize_backward(gy, xhat, inv_std, self.axes)
        gx = _standardize_backward(gy.data, self.output.data, self.inv_std, self.axes)
        return _constant(gx)


class LayerNorm(Standardize):
    """Standardisation over the trailing ``n_axes`` axes of x (one sample, one position)."""

    def __init__(self, n_axes: int, eps: float) -> None:
        super().__init__(tuple(range(-n_axes, 0)), eps)


class GroupNorm(Standardize):
    """Standardisation of x (N, G, M) over its last axis: one statistic per (sample, group)."""

    def __init__(self, eps: float) -> None:
        super().__init__((2,), eps)


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
    """

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
            inv_std = np.ones(self.param_shape, x.dtype)
            xhat = x - mu
        elif self.batch_stats:
            xhat, mu, var, inv_std = _standardize_array(x, self.axes, self.eps)
            if Config.train and has_running:
                self._update_running_stats(mu, var, m)
        else:
            dtype = x.dtype
            mu = self.avg_mean.reshape(self.param_shape).astype(dtype)
            inv_std = 1 / np.sqrt(self.avg_var.reshape(self.param_shape).astype(dtype)
                                  + dtype.type(self.eps))
            xhat = (x - mu) * inv_std
        self.mu, self.inv_std = mu, inv_std
        return xhat * gamma.reshape(self.param_shape) + beta.reshape(self.param_shape)

    def _update_running_stats(self, mu, var, m: int) -> None:
        unbiased = m / max(m - 1, 1)  # DeZero's clamp: one value per channel keeps var * 1
        self.avg_mean *= self.decay
        self.avg_mean += (1 - self.decay) * mu.ravel()
        self.avg_var *= self.decay
        self.avg_var += (1 - self.decay) * unbiased * var.ravel()

    def backward(self, gy):
        if not Config.enable_backprop:
            return self._backward_arrays(gy.data)
        # create_graph: statistics and xhat as a graph of x, for exact second derivatives.
        x, gamma, _ = self.inputs
        if self.batch_stats:
            xhat, inv_std = _standardize_graph(x, self.axes, self.eps)
        else:
            xhat, inv_std = (x - self.mu) * self.inv_std, self.inv_std
        gx = ggamma = gbeta = None
        if self.needs_grad(0):
            gxhat = gy * reshape(gamma, self.param_shape)
            if self.batch_stats:
                gx = _standardize_backward(gxhat, xhat, inv_std, self.axes)
            else:
                gx = gxhat * inv_std
        if self.needs_grad(1):
            ggamma = (gy * xhat).sum(axis=self.axes)
        if self.needs_grad(2):
            gbeta = gy.sum(axis=self.axes)
        return gx, ggamma, gbeta

    def _backward_arrays(self, gy):
        """First-order backward on raw arrays, with as few passes over x as the math allows:
        with dxhat = gamma gy, mean(dxhat) = gamma gbeta / m and mean(dxhat xhat) =
        gamma ggamma / m, so gx = gamma inv_std (gy - (gbeta + xhat ggamma) / m)."""
        x, gamma, _ = self.inputs
        xhat = (x.data - self.mu) * self.inv_std
        gbeta = gy.sum(axis=self.axes)
        ggamma = (gy * xhat).sum(axis=self.axes)
        gx = None
        if self.needs_grad(0):
            shape = self.param_shape
            scale = gamma.data.reshape(shape) * self.inv_std
            if self.batch_stats:
                inv_m = 1.0 / (x.size // x.shape[1])
                gx = xhat
                gx *= ggamma.reshape(shape) * inv_m
                gx += gbeta.reshape(shape) * inv_m
                np.subtract(gy, gx, out=gx)
                gx *= scale
            else:
                gx = gy * scale
        return (None if gx is None else _constant(gx),
                _constant(ggamma) if self.needs_grad(1) else None,
                _constant(gbeta) if self.needs_grad(2) else None)


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
