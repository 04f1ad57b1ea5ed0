"""Losses and metrics: squared and absolute errors, cross-entropies, divergences, accuracy.

Conventions shared by the family:

* DeZero's losses (``mean_squared_error``, ``softmax_cross_entropy``,
  ``sigmoid_cross_entropy``, ``binary_cross_entropy``) keep DeZero's reductions: they sum
  over everything and divide by the *batch size* ``len(x)``.
* The PyTorch-style losses (``cross_entropy``, ``nll_loss``, ``huber_loss``, ``l1_loss``,
  ``kl_div``) take ``reduction='mean' | 'sum' | 'none'`` with PyTorch's meaning.
* Labels are integer class ids; out-of-range or non-integer labels raise ``LabelError`` or
  ``DTypeError`` naming the op, the labels found and the number of classes.
* Everything that exponentiates logits goes through a max-shifted log-sum-exp, so logits
  of any magnitude give finite values and gradients.

Nothing here imports the activation or reduction families beyond ``sum`` at import time:
the softmax pieces the losses need are the small private Functions below.
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from zerograd.backend import get_array_module
from zerograd.core.function import Function, as_variable
from zerograd.core.variable import Variable
from zerograd.errors import DTypeError, ShapeError, ZerogradError
from zerograd.ops._operands import constant
from zerograd.ops.activation import log_softmax, sigmoid, softmax
from zerograd.ops.arithmetic import MulConstant
from zerograd.ops.elementwise import clip, exp, log
from zerograd.ops.reduction import sum as sum_
from zerograd.ops.shape import reshape

__all__ = [
    "mean_squared_error", "mean_squared_error_simple", "softmax_cross_entropy",
    "softmax_cross_entropy_simple", "sigmoid_cross_entropy", "binary_cross_entropy",
    "accuracy", "nll_loss", "cross_entropy", "huber_loss", "l1_loss", "kl_div",
    "cosine_similarity",
    "MeanSquaredError", "MeanSquaredErrorGrad", "SoftmaxCrossEntropy", "SoftmaxCrossEntropyGrad",
    "SigmoidCrossEntropy", "BinaryCrossEntropy",
    "SelectLabel", "SelectLabelGrad", "HuberLoss", "L1Loss", "KLDiv", "ClampedNorm",
    "LabelError",
]

_REDUCTIONS = ("mean", "sum", "none")


class LabelError(ZerogradError, ValueError):
    """Class labels outside ``[0, n_classes)`` (a ValueError)."""


# -- validation helpers ------------------------------------------------------------------
def _check_labels(op: str, t, n_classes: int, ignore_index: int | None = None) -> None:
    """Raise unless ``t`` holds integer class ids in [0, n_classes) (``ignore_index`` aside)."""
    if t.dtype.kind not in "iu":
        raise DTypeError(
            f"{op}: labels t must be integer class ids, got dtype {t.dtype} with shape "
            f"{t.shape}; convert them with t.astype(int)"
        )
    used = t if ignore_index is None else t[t != ignore_index]
    if used.size == 0:
        return
    low, high = int(used.min()), int(used.max())
    if low < 0 or high >= n_classes:
        ignored = "" if ignore_index is None else f" (ignore_index={ignore_index} excluded)"
        raise LabelError(
            f"{op}: labels must lie in [0, {n_classes}) for {n_classes} classes, found labels "
            f"in [{low}, {high}]{ignored}; t has shape {t.shape}"
        )


def _check_reduction(op: str, reduction: str, allowed=_REDUCTIONS) -> None:
    if reduction not in allowed:
        raise ValueError(f"{op}: reduction must be one of {allowed}, got {reduction!r}")


def _batch_size(op: str, x) -> int:
    if x.ndim == 0:
        raise ShapeError(
            f"{op}: the input must have a batch axis (DeZero divides by len(x)), got a 0-d "
            f"{x.dtype} array"
        )
    return len(x)


def _float_like(t, x):
    """Targets ``t`` as an array of ``x``'s float dtype (integer targets never promote)."""
    return t if t.dtype == x.dtype else t.astype(x.dtype)


def _target_like(t: Variable, x: Variable):
    """Backward's view of the target: a Variable shaped like x when it needs a gradient (so
    the formula stays differentiable in t), else a constant array of x's dtype and shape."""
    if t.requires_grad:
        return t if t.shape == x.shape else reshape(t, x.shape)
    return _float_like(t.data.reshape(x.shape), x.data)


def _reduce(elementwise: Variable, reduction: str, count: int | None = None) -> Variable:
    """Apply a PyTorch ``reduction`` to per-element losses; 'mean' divides by ``count``."""
    if reduction == "none":
        return elementwise
    total = sum_(elementwise)
    if reduction == "sum":
        return total
    count = elementwise.size if count is None else count
    return total / float(max(count, 1))


def _reduce_array(values, reduction: str, count: int | None = None):
    if reduction == "none":
        return values
    total = values.sum()
    if reduction == "sum":
        return total
    count = values.size if count is None else count
    return total / values.dtype.type(max(count, 1))


class _SubtractAtLabels(Function):
    """y = x with ``value`` subtracted at (i, t[i]) of a (N, C) x: softmax minus a one-hot,
    without materialising the one-hot. dy/dx is the identity."""

    retain_inputs = ()
    retain_outputs = ()

    def __init__(self, t, value: float = 1.0) -> None:
        self.t = t
        self.value = value

    def forward(self, x):
        xp = get_array_module(x)
        y = x.copy()
        y[xp.arange(len(self.t)), self.t] -= x.dtype.type(self.value)
        return y

    def backward(self, gy):
        return gy


# -- mean squared error ------------------------------------------------------------------
class MeanSquaredError(Function):
    """y = sum((x0 - x1)^2) / len(x0 - x1); dy/dx0 = 2 (x0 - x1) / len, dy/dx1 = -dy/dx0."""

    retain_inputs = (0, 1)
    retain_outputs = ()

    def forward(self, x0, x1):
        diff = x0 - x1
        self.batch = _batch_size("mean_squared_error", diff)
        return (diff * diff).sum() / diff.dtype.type(self.batch)

    def backward(self, gy):
        x0, x1 = self.inputs
        # Gradients in the broadcast shape of diff; the engine sums each back to its input.
        gx0 = MeanSquaredErrorGrad(2.0 / self.batch)(x0, x1, gy)
        return gx0, (-gx0 if self.needs_grad(1) else None)

    def backward_arrays(self, gy):
        x0, x1 = self.inputs
        gx0 = MeanSquaredErrorGrad(2.0 / self.batch).forward(x0._data, x1._data, gy)
        return gx0, (-gx0 if x1.requires_grad else None)


class MeanSquaredErrorGrad(Function):
    """gx0 = gy (x0 - x1) scale (scale = 2 / batch): the MSE's derivative in x0, in one node
    instead of a Sub, a Mul and a MulConstant (two Function calls fewer in every training
    step that ends in this loss).

    The next order is written with the ops of those three nodes, in their order (the
    MulConstant's backward, then the Mul's: ``g * diff`` for gy, ``g * gy`` for the
    difference, which the Sub hands to x0 and, negated, to x1). Against a constant
    target every derivative has the values of the unfused graph, bit for bit; where both
    inputs depend on one variable the engine adds that variable's terms in another order,
    and the higher derivatives agree to rounding.
    """

    retain_inputs = (0, 1, 2)
    retain_outputs = ()

    def __init__(self, scale: float) -> None:
        self.scale = scale

    def forward(self, x0, x1, gy):
        return gy * (x0 - x1) * self.scale

    def backward(self, ggx):
        x0, x1, gy = self.inputs
        g = MulConstant(self.scale)(ggx)
        g_gy = g * (x0 - x1) if gy.requires_grad else None
        g_diff = g * gy if (x0.requires_grad or x1.requires_grad) else None
        g_x1 = -g_diff if g_diff is not None and x1.requires_grad else None
        return g_diff, g_x1, g_gy


def mean_squared_error(x0, x1) -> Variable:
    """DeZero's MSE: sum((x0 - x1)^2) / len(x0 - x1), i.e. summed over features and averaged
    over the batch axis (not the element mean). x0, x1: broadcastable, at least 1-D -> ().
    Different shapes warn (UserWarning), as PyTorch's mse_loss does."""
    _warn_if_shapes_differ("mean_squared_error", x0, x1, ("x0", "x1"))
    return MeanSquaredError()(x0, x1)


def mean_squared_error_simple(x0, x1) -> Variable:
    """The same loss built from elementary nodes: sum(diff ** 2) / len(diff). -> ()."""
    _warn_if_shapes_differ("mean_squared_error_simple", x0, x1, ("x0", "x1"))
    x0, x1 = as_variable(x0), as_variable(x1)
    diff = x0 - x1
    return sum_(diff ** 2) / float(_batch_size("mean_squared_error_simple", diff))


# -- softmax cross-entropy (DeZero) ------------------------------------------------------
class SoftmaxCrossEntropy(Function):
    """y = -mean_i log softmax(x)[i, t_i] for logits x (N, C) and integer labels t (N,).

    dy/dx = (softmax(x) - onehot(t)) / N, computed by :class:`SoftmaxCrossEntropyGrad`
    from the exponentials this forward pass already has; the one-hot is never built.
    """

    retain_inputs = (0,)
    retain_outputs = ()
    saved = ("exp_shifted", "row_sum")

    def forward(self, x, t):
        if x.ndim != 2:
            raise ShapeError(
                f"softmax_cross_entropy: x must be (N, C) logits, got {x.dtype} {x.shape}")
        n, n_classes = x.shape
        t = t.ravel()
        if t.size != n:
            raise ShapeError(
                f"softmax_cross_entropy: {t.size} labels for {n} rows of x {x.shape}; t must "
                f"hold one class id per row"
            )
        _check_labels("softmax_cross_entropy", t, n_classes)
        xp = get_array_module(x)
        self.t = t
        # Keep exp(x - max) and its row sums: backward's softmax is then one multiplication
        # (the memory PyTorch spends on its saved log-softmax, too).
        row_max = x.max(axis=1, keepdims=True)
        self.exp_shifted = np.exp(x - row_max)
        self.row_sum = self.exp_shifted.sum(axis=1, keepdims=True)
        log_z = row_max[:, 0] + np.log(self.row_sum[:, 0])
        picked = x[xp.arange(n), t] - log_z
        return -picked.sum() / x.dtype.type(n)

    def backward(self, gy):
        stats = None if self.exp_shifted is None else (self.exp_shifted, self.row_sum)
        return SoftmaxCrossEntropyGrad(self.t, stats)(self.inputs[0], gy), None


def softmax_cross_entropy(x, t) -> Variable:
    """Mean cross-entropy of softmax(x) against integer labels, computed via log-sum-exp.

    y = -(1/N) sum_i (x[i, t_i] - log sum_c exp(x[i, c])). x: (N, C) logits; t: N integer
    class ids of any shape (raveled) -> (). Stable for logits of any magnitude.
    """
    return SoftmaxCrossEntropy()(x, t)


def cross_entropy(x, t, label_smoothing: float = 0.0, ignore_index: int = -100,
                  reduction: str = "mean") -> Variable:
    """Cross-entropy of softmax(x) over axis 1 against labels or class probabilities.

    PyTorch's semantics. x: (N, C), (N, C, d1, ...) or (C,) logits. t is either integer
    labels shaped like x without axis 1, or probabilities shaped like x. With eps =
    label_smoothing the target is q = (1 - eps) target + eps / C, and
    loss_n = -sum_c q[n, c] log softmax(x)[n, c]. Labels equal to ``ignore_index`` give 0 and
    are left out of the 'mean' (which divides by the number of kept labels, or by the number
    of samples for probability targets). Stable for logits of any magnitude.
    """
    _check_reduction("cross_entropy", reduction)
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"cross_entropy: label_smoothing must be in [0, 1], got {label_smoothing}")
    x = as_variable(x)
    if x.dtype.kind != "f":
        raise DTypeError(f"cross_entropy: logits must be floats, got {x.dtype} {x.shape}")
    target_is_prob = x.ndim >= 1 and getattr(t, "shape", None) == x.shape and \
        getattr(t, "dtype", np.dtype(int)).kind == "f"
    if target_is_prob:
        return _soft_cross_entropy(x, t, label_smoothing, reduction)
    x, t_data, unbatched = _as_batched("cross_entropy", x, t)
    if (x.ndim == 2 and reduction == "mean" and label_smoothing == 0 and t_data.ndim == 1
            and len(t_data) == len(x) and not (t_data == ignore_index).any()):
        _check_labels("cross_entropy", t_data, x.shape[1])  # errors name this op
        return SoftmaxCrossEntropy()(x, t_data)  # the common case: one fused node
    n_classes = x.shape[1]
    log_p = log_softmax(x, axis=1)
    losses, n_kept = _per_label_nll("cross_entropy", log_p, t_data, ignore_index)
    if label_smoothing > 0:
        smooth = -sum_(log_p, axis=1) * (1.0 / n_classes)
        if n_kept != t_data.size:
            smooth = smooth * (t_data != ignore_index)
        losses = losses * (1.0 - label_smoothing) + smooth * label_smoothing
    if unbatched and reduction == "none":
        losses = reshape(losses, ())
    return _reduce(losses, reduction, n_kept)


class SoftmaxCrossEntropyGrad(Function):
    """gx = (softmax(x) - onehot(t)) * gy / N from inputs (x, gy): the gradient of
    :class:`SoftmaxCrossEntropy`.

    ``stats``: (exp(x - max), its row sums) from the forward pass, or None (recomputed).
    Backward: d/dx is softmax's own backward applied to ggx gy / N; d/dgy is
    <ggx, softmax(x) - onehot(t)> / N; both on Variables, so every order is exact.
    """

    retain_inputs = (0, 1)
    retain_outputs = ()
    saved = ("stats",)

    def __init__(self, t, stats: tuple | None = None) -> None:
        self.t = t
        self.stats = stats

    def forward(self, x, gy):
        n = len(self.t)
        if self.stats is None:
            exp_shifted = np.exp(x - x.max(axis=1, keepdims=True))
            row_sum = exp_shifted.sum(axis=1, keepdims=True)
        else:
            exp_shifted, row_sum = self.stats
            self.stats = None  # used once: the backward works from x
        scale = gy * x.dtype.type(1.0 / n)
        gx = exp_shifted * (scale / row_sum)
        gx[get_array_module(x).arange(n), self.t] -= scale
        return gx

    def backward(self, ggx):
        x, gy = self.inputs
        n = len(self.t)
        p = softmax(x, axis=1)
        g_x = g_gy = None
        if self.needs_grad(0):
            u = ggx * (gy * (1.0 / n))
            g_x = p * (u - sum_(p * u, axis=1, keepdims=True))
        if self.needs_grad(1):
            g_gy = sum_(ggx * _SubtractAtLabels(self.t)(p)) * (1.0 / n)
        return g_x, g_gy


def softmax_cross_entropy_simple(x, t) -> Variable:
    """DeZero's composed version: softmax -> clip(1e-15, 1) -> log -> pick t -> mean over N.

    x: (N, C), t: (N,) integer labels -> (). Kept for compatibility; prefer
    ``softmax_cross_entropy`` (one node, no clipping needed).
    """
    x = as_variable(x)
    t_data = t.data if isinstance(t, Variable) else np.asarray(t)
    n = _batch_size("softmax_cross_entropy_simple", x)
    _check_labels("softmax_cross_entropy_simple", t_data.ravel(), x.shape[1])
    p = clip(softmax(x), 1e-15, 1.0)
    log_p = log(p)
    xp = get_array_module(x.data)
    picked = log_p[xp.arange(n), t_data.ravel()]
    return -1 * sum_(picked) / float(n)


# -- sigmoid / binary cross-entropy ------------------------------------------------------
class SigmoidCrossEntropy(Function):
    """y = sum(max(x, 0) - x t + log1p(exp(-|x|))) / len(x) (the logits form: no log(0));
    dy/dx = (sigmoid(x) - t) / len(x), dy/dt = -x / len(x)."""

    retain_inputs = (0, 1)
    retain_outputs = ()

    def forward(self, x, t):
        if t.ndim != x.ndim:
            t = t.reshape(x.shape)  # DeZero's convenience: labels (N,) for logits (N, 1)
        t = _float_like(t, x)
        self.batch = _batch_size("sigmoid_cross_entropy", x)
        losses = np.maximum(x, 0) - x * t + np.log1p(np.exp(-np.abs(x)))
        return losses.sum() / x.dtype.type(self.batch)

    def backward(self, gy):
        x, t = self.inputs
        scale = gy * (1.0 / self.batch)
        gx = (sigmoid(x) - _target_like(t, x)) * scale
        gt = None
        if self.needs_grad(1):
            gt = reshape(-x * scale, t.shape)
        return gx, gt


def sigmoid_cross_entropy(x, t) -> Variable:
    """Binary cross-entropy of sigmoid(x) against targets t in [0, 1], from logits.

    y = (1/N) sum(max(x, 0) - x t + log1p(exp(-|x|))), N = len(x). x: (N, ...) logits; t:
    same size (reshaped to x if its ndim differs, as DeZero) -> (). Finite for any x.
    """
    return SigmoidCrossEntropy()(x, t)


def _probability_eps(dtype) -> float:
    # 1 - 1e-15 rounds to 1.0 in float32, which would give log(0); use the dtype's epsilon.
    return max(1e-15, float(np.finfo(dtype).eps))


class BinaryCrossEntropy(Function):
    """y = -sum(t log p + (1 - t) log(1 - p)) / len(p), p clipped to [eps, 1 - eps];
    dy/dp = (p - t) / (p (1 - p)) / len(p) inside the clip range, 0 outside."""

    retain_inputs = (0, 1)
    retain_outputs = ()
    saved = ("p_clipped", "inside")  # released with the graph (Function.release)

    def forward(self, p, t):
        if p.dtype.kind != "f":
            raise DTypeError(f"binary_cross_entropy: p must be float probabilities, got {p.dtype}")
        if t.ndim != p.ndim:
            t = t.reshape(p.shape)
        t = _float_like(t, p)
        self.batch = _batch_size("binary_cross_entropy", p)
        eps = _probability_eps(p.dtype)
        self.p_clipped = np.clip(p, eps, 1 - eps)
        self.inside = (p >= eps) & (p <= 1 - eps)
        pc = self.p_clipped
        losses = t * np.log(pc) + (1 - t) * np.log1p(-pc)
        return -losses.sum() / p.dtype.type(self.batch)

    def backward(self, gy):
        p, t = self.inputs
        scale = gy * (1.0 / self.batch)
        # p + (constant offset) equals the clipped p and has p's derivative, so the formula
        # below stays differentiable; outside the clip range the mask zeroes it.
        pc = p + (self.p_clipped - p.data)
        gp = (pc - _target_like(t, p)) / (pc * (1 - pc)) * self.inside * scale
        gt = None
        if self.needs_grad(1):
            gt = reshape((log(1 - pc) - log(pc)) * scale, t.shape)
        return gp, gt


def binary_cross_entropy(p, t) -> Variable:
    """Binary cross-entropy of probabilities p against targets t.

    y = -(1/N) sum(t log p + (1 - t) log(1 - p)), N = len(p), with p clipped symmetrically
    to [eps, 1 - eps] (eps = max(1e-15, machine epsilon of p's dtype)). p: (N, ...); t: same
    size -> (). Prefer ``sigmoid_cross_entropy`` on logits.
    """
    return BinaryCrossEntropy()(p, t)


# -- accuracy ------------------------------------------------------------------------------
def accuracy(y, t) -> Variable:
    """Fraction of rows whose argmax matches the label: mean(argmax(y, axis=1) == t).

    y: (N, C) scores; t: N integer labels in [0, C) -> () Variable (not differentiable), as
    DeZero. Float labels and labels out of range are errors (DeZero counts them as misses).
    """
    y_data = y.data if isinstance(y, Variable) else np.asarray(y)
    t_data = t.data if isinstance(t, Variable) else np.asarray(t)
    if y_data.ndim < 2:
        raise ShapeError(f"accuracy: y must be (N, C) scores, got {y_data.dtype} {y_data.shape}")
    if t_data.dtype.kind not in "iu":
        # A float label compares equal to the argmax only by accident of rounding, and a
        # bool label is not a class id: both are mistakes that would still give a number.
        raise DTypeError(f"accuracy: t must hold integer class ids, got {t_data.dtype} "
                         f"{t_data.shape} (y {y_data.dtype} {y_data.shape})")
    n_classes = y_data.shape[1]
    if t_data.size and (t_data.min() < 0 or t_data.max() >= n_classes):
        # Such a label can never match an argmax: it would count as a silent miss.
        raise ShapeError(f"accuracy: labels range over [{int(t_data.min())}, "
                         f"{int(t_data.max())}] but y {y_data.shape} has {n_classes} classes; "
                         f"expected 0 <= t < {n_classes}")
    pred = y_data.argmax(axis=1)
    if pred.size != t_data.size:
        raise ShapeError(
            f"accuracy: {t_data.size} labels for predictions of shape {pred.shape} "
            f"(y {y_data.shape}); expected one label per row"
        )
    acc = (pred.reshape(t_data.shape) == t_data).mean()
    return constant(get_array_module(y_data).asarray(acc))


# -- negative log-likelihood and cross-entropy (PyTorch semantics) -----------------------
def _label_index(t, keep):
    """Labels as an index array along axis 1 (ignored entries point at class 0)."""
    xp = get_array_module(t)
    safe = t if keep is None else xp.where(keep, t, 0)
    return xp.expand_dims(safe, 1)


class SelectLabel(Function):
    """y[n, *d] = x[n, t[n, *d], *d] for x (N, C, *d); 0 where the label is ignored."""

    retain_inputs = ()
    retain_outputs = ()

    def __init__(self, index, keep) -> None:
        self.index = index  # (N, 1, *d) class ids
        self.keep = keep    # (N, *d) bool, or None when nothing is ignored

    def forward(self, x):
        xp = get_array_module(x)
        self.x_shape = x.shape
        y = xp.take_along_axis(x, self.index, axis=1)[:, 0]
        if self.keep is not None:
            y = xp.where(self.keep, y, x.dtype.type(0))
        return y

    def backward(self, gy):
        return SelectLabelGrad(self.index, self.keep, self.x_shape)(gy)


class SelectLabelGrad(Function):
    """gx = zeros(x_shape) with gy placed at the selected labels (the transpose of select)."""

    retain_inputs = ()
    retain_outputs = ()

    def __init__(self, index, keep, x_shape: tuple) -> None:
        self.index = index
        self.keep = keep
        self.x_shape = x_shape

    def forward(self, gy):
        xp = get_array_module(gy)
        gx = xp.zeros(self.x_shape, dtype=gy.dtype)
        if self.keep is not None:
            gy = xp.where(self.keep, gy, gy.dtype.type(0))
        xp.put_along_axis(gx, self.index, xp.expand_dims(gy, 1), axis=1)
        return gx

    def backward(self, ggx):
        return SelectLabel(self.index, self.keep)(ggx)


def _as_batched(op: str, x, t):
    """(x, t, unbatched) with a (C,) input and 0-d label promoted to (1, C) and (1,)."""
    t_data = t.data if isinstance(t, Variable) else t
    t_data = get_array_module(x.data).asarray(t_data)
    if x.ndim == 1:
        return reshape(x, (1, x.shape[0])), t_data.reshape((1,) + t_data.shape), True
    if x.ndim == 0:
        raise ShapeError(f"{op}: input must be (C,), (N, C) or (N, C, d1, ...), got a 0-d array")
    return x, t_data, False


def _check_label_shape(op: str, x, t) -> None:
    expected = (x.shape[0],) + x.shape[2:]
    if t.shape != expected:
        raise ShapeError(
            f"{op}: input {x.shape} needs labels of shape {expected} (the input without its "
            f"class axis 1), got t {t.dtype} {t.shape}"
        )


def _per_label_nll(op: str, log_probs: Variable, t, ignore_index: int):
    """(-log_probs at the labels, number of kept labels), shaped like t (ignored -> 0)."""
    _check_label_shape(op, log_probs, t)
    _check_labels(op, t, log_probs.shape[1], ignore_index)
    keep = t != ignore_index
    n_kept = int(keep.sum())
    if n_kept == keep.size:
        keep = None
    return -SelectLabel(_label_index(t, keep), keep)(log_probs), n_kept


def nll_loss(log_probs, t, ignore_index: int = -100, reduction: str = "mean") -> Variable:
    """Negative log-likelihood of integer labels under log-probabilities (PyTorch's nll_loss).

    loss_n = -log_probs[n, t_n] (0 where t_n == ignore_index). log_probs: (N, C),
    (N, C, d1, ...) or (C,); t: the same without axis 1. 'mean' divides by the number of
    non-ignored labels (0 if all are ignored, where PyTorch gives nan), 'sum' sums,
    'none' returns the per-label losses shaped like t.
    """
    _check_reduction("nll_loss", reduction)
    log_probs = as_variable(log_probs)
    log_probs, t_data, unbatched = _as_batched("nll_loss", log_probs, t)
    losses, n_kept = _per_label_nll("nll_loss", log_probs, t_data, ignore_index)
    if unbatched and reduction == "none":
        losses = reshape(losses, ())
    return _reduce(losses, reduction, n_kept)


def _soft_cross_entropy(x: Variable, t, label_smoothing: float, reduction: str) -> Variable:
    """cross_entropy with probability targets t (same shape as x): no labels to ignore."""
    if not isinstance(t, Variable):
        t = t.astype(x.dtype, copy=False)
    axis = 0 if x.ndim == 1 else 1
    n_classes = x.shape[axis]
    if label_smoothing > 0:
        t = t * (1.0 - label_smoothing) + label_smoothing / n_classes
    losses = -sum_(log_softmax(x, axis=axis) * t, axis=axis)
    return _reduce(losses, reduction)


# -- regression losses -------------------------------------------------------------------
def _check_same_shape(op: str, x, t) -> None:
    try:
        np.broadcast_shapes(x.shape, t.shape)
    except ValueError:
        raise ShapeError(
            f"{op}: input {x.dtype} {x.shape} and target {t.dtype} {t.shape} do not broadcast"
        ) from None


def _warn_if_shapes_differ(op: str, x, t, names=("input", "target")) -> None:
    """Warn, as PyTorch does, when a regression loss's two sides have different shapes.

    They still broadcast, but (N, 1) against (N,) broadcasts to (N, N): every prediction
    is compared with every target, and the loss trains towards the mean target without
    any error. Called from the public functions, so the warning points at the caller.
    """
    x_shape, t_shape = tuple(np.shape(x)), tuple(np.shape(t))
    if x_shape == t_shape:
        return
    try:
        broadcast = np.broadcast_shapes(x_shape, t_shape)
    except ValueError:
        return  # the op itself raises a ShapeError naming both shapes
    if math.prod(broadcast) == math.prod(x_shape) == math.prod(t_shape):
        # The shapes differ only by axes of length 1 (the book's step 59 compares a (1, 1)
        # prediction with a (1,) target): each prediction still meets exactly its own
        # target, so the loss is the intended one. PyTorch warns here too; we stay quiet.
        return
    shape = f"broadcast to {broadcast}"
    warnings.warn(
        f"{op}: {names[0]} shape {x_shape} differs from {names[1]} shape {t_shape}; they "
        f"{shape}, which is likely not what was meant (PyTorch warns the same). Reshape one "
        f"so that the shapes match.", UserWarning, stacklevel=3)


class HuberLoss(Function):
    """y = reduce(h(x - t)), h(d) = d^2 / 2 if |d| <= delta else delta (|d| - delta / 2);
    dh/dd = clip(d, -delta, delta)."""

    retain_inputs = (0, 1)  # x - t (its masks are its own)
    retain_outputs = ()
    saved = ("quadratic", "linear_slope")  # released with the graph (Function.release)

    def __init__(self, delta: float, reduction: str) -> None:
        self.delta = float(delta)
        self.reduction = reduction

    def forward(self, x, t):
        _check_same_shape("huber_loss", x, t)
        t = _float_like(t, x)
        d = x - t
        abs_d = np.abs(d)
        self.quadratic = abs_d <= self.delta
        # The slope outside the quadratic zone is the constant +-delta.
        self.linear_slope = np.where(self.quadratic, 0, np.sign(d) * self.delta).astype(d.dtype)
        delta = self.delta
        h = np.where(self.quadratic, 0.5 * d * d, delta * (abs_d - 0.5 * delta)).astype(d.dtype)
        self.size = h.size
        return _reduce_array(h, self.reduction)

    def backward(self, gy):
        x, t = self.inputs
        if self.reduction == "mean":
            gy = gy * (1.0 / self.size)
        # An integer target must not promote the gradient: cast it when it is a constant.
        d = x - t if t.requires_grad else x - _float_like(t.data, x.data)
        slope = d * self.quadratic + self.linear_slope
        gx = gy * slope
        return gx, (-gx if self.needs_grad(1) else None)


def huber_loss(x, t, delta: float = 1.0, reduction: str = "mean") -> Variable:
    """Huber (smooth-L1 scaled by delta) loss, PyTorch's HuberLoss.

    h(d) = 0.5 d^2 for |d| <= delta, delta (|d| - delta / 2) otherwise, d = x - t.
    x, t: broadcastable -> () for 'mean' (over elements) or 'sum', the broadcast shape for
    'none'.
    """
    _check_reduction("huber_loss", reduction)
    if delta <= 0:
        raise ValueError(f"huber_loss: delta must be positive, got {delta}")
    _warn_if_shapes_differ("huber_loss", x, t)
    return HuberLoss(delta, reduction)(x, t)


class L1Loss(Function):
    """y = reduce(|x - t|); dy/dx = sign(x - t) (0 where x == t), dy/dt = -dy/dx."""

    retain_inputs = ()  # only the sign it keeps
    retain_outputs = ()
    saved = ("sign",)  # released with the graph (Function.release)

    def __init__(self, reduction: str) -> None:
        self.reduction = reduction

    def forward(self, x, t):
        _check_same_shape("l1_loss", x, t)
        d = x - _float_like(t, x)
        self.sign = np.sign(d)
        return _reduce_array(np.abs(d), self.reduction)

    def backward(self, gy):
        if self.reduction == "mean":
            gy = gy * (1.0 / self.sign.size)
        gx = gy * self.sign
        return gx, (-gx if self.needs_grad(1) else None)


def l1_loss(x, t, reduction: str = "mean") -> Variable:
    """Mean absolute error (PyTorch's L1Loss): reduce(|x - t|). x, t: broadcastable -> ()
    ('mean' over elements, 'sum') or the broadcast shape ('none'). Gradient 0 at x == t."""
    _check_reduction("l1_loss", reduction)
    _warn_if_shapes_differ("l1_loss", x, t)
    return L1Loss(reduction)(x, t)


# -- divergences and similarities --------------------------------------------------------
class KLDiv(Function):
    """Pointwise KL(p || q) = p (log p - log q) with 0 where p == 0, from log_q and p
    (or log p when ``log_target``); reduced by ``reduction``."""

    retain_inputs = (0, 1)
    retain_outputs = ()
    saved = ("positive", "safe_p")  # released with the graph (Function.release)

    def __init__(self, reduction: str, log_target: bool) -> None:
        self.reduction = reduction
        self.log_target = log_target

    def forward(self, log_q, p):
        _check_same_shape("kl_div", log_q, p)
        p = _float_like(p, log_q)
        if self.log_target:
            pointwise = np.exp(p) * (p - log_q)
        else:
            positive = p > 0
            safe_p = np.where(positive, p, 1)
            pointwise = np.where(positive, p * (np.log(safe_p) - log_q), 0).astype(log_q.dtype)
            self.positive = positive
            self.safe_p = safe_p
        self.size = pointwise.size
        self.batch = log_q.shape[0] if log_q.ndim else 1
        if self.reduction == "batchmean":
            return pointwise.sum() / log_q.dtype.type(self.batch)
        return _reduce_array(pointwise, self.reduction)

    def backward(self, gy):
        log_q, p = self.inputs
        if self.reduction == "batchmean":
            gy = gy * (1.0 / self.batch)
        elif self.reduction == "mean":
            gy = gy * (1.0 / self.size)
        if self.log_target:
            target = exp(p) if p.requires_grad else constant(np.exp(p.data))
        else:
            target = p
        g_log_q = -target * gy
        g_p = None
        if self.needs_grad(1):
            if self.log_target:
                g_p = target * (p - log_q + 1) * gy
            else:
                # log p only where p > 0 (the offset keeps log's argument at 1 elsewhere).
                safe_p = p + (self.safe_p - p.data)
                g_p = (log(safe_p) - log_q + 1) * self.positive * gy
        return g_log_q, g_p


def kl_div(log_q, p, reduction: str = "batchmean", log_target: bool = False) -> Variable:
    """Kullback-Leibler divergence KL(p || q) with PyTorch's argument convention.

    The *first* argument is the model's log-probabilities log q, the second the target
    distribution p (or log p with ``log_target=True``): pointwise p (log p - log q), 0 where
    p == 0. 'batchmean' (default) sums and divides by len(log_q), which is the true KL per
    sample; 'sum'; 'mean' divides by the element count; 'none' keeps the pointwise terms.
    log_q, p: broadcastable -> () or the broadcast shape.
    """
    _check_reduction("kl_div", reduction, ("batchmean", "sum", "mean", "none"))
    return KLDiv(reduction, log_target)(log_q, p)


class ClampedNorm(Function):
    """y = max(||x||_2 over axis (keepdims), eps); dy/dx = x / y where the norm exceeds eps."""

    retain_inputs = (0,)
    retain_outputs = (0,)
    saved = ("above",)  # released with the graph (Function.release)

    def __init__(self, axis: int, eps: float) -> None:
        self.axis = axis
        self.eps = eps

    def forward(self, x):
        norm = np.sqrt((x * x).sum(axis=self.axis, keepdims=True))
        self.above = norm > self.eps
        return np.maximum(norm, x.dtype.type(self.eps))

    def backward(self, gy):
        (x,) = self.inputs
        return gy * self.above * x / self.output


def cosine_similarity(x1, x2, axis: int = 1, eps: float = 1e-8) -> Variable:
    """Cosine of the angle between x1 and x2 along ``axis`` (PyTorch's cosine_similarity).

    y = sum(x1 x2, axis) / (max(||x1||, eps) max(||x2||, eps)). x1, x2: broadcastable ->
    the broadcast shape without ``axis``.
    """
    x1, x2 = as_variable(x1), as_variable(x2)
    try:
        shape = np.broadcast_shapes(x1.shape, x2.shape)
    except ValueError:
        raise ShapeError(
            f"cosine_similarity: x1 {x1.dtype} {x1.shape} and x2 {x2.dtype} {x2.shape} do not "
            f"broadcast"
        ) from None
    ndim = len(shape)
    if not -ndim <= axis < ndim:
        raise ShapeError(f"cosine_similarity: axis {axis} is out of range for shape {shape}")
    axis %= ndim
    if x1.ndim != ndim or x2.ndim != ndim:
        x1, x2 = reshape(x1, (1,) * (ndim - x1.ndim) + x1.shape), \
            reshape(x2, (1,) * (ndim - x2.ndim) + x2.shape)
    dot = sum_(x1 * x2, axis=axis, keepdims=True)
    y = dot / (ClampedNorm(axis, eps)(x1) * ClampedNorm(axis, eps)(x2))
    return reshape(y, shape[:axis] + shape[axis + 1:])


