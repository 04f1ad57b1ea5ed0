"""Attention: scaled dot-product attention, with boolean or additive masks."""

from __future__ import annotations

import math

import numpy as np

from zerograd.core.function import Function, as_variable
from zerograd.core.variable import Variable
from zerograd.errors import DTypeError, ShapeError
from zerograd.ops.linalg import matmul
from zerograd.ops.shape import transpose

__all__ = ["scaled_dot_product_attention", "MaskedSoftmax"]


class MaskedSoftmax(Function):
    """y = softmax over the last axis of x with masked entries excluded (weight 0).

    ``keep`` (boolean, broadcastable to x; None keeps all) marks the entries that take part;
    entries equal to -inf are excluded too. A row with nothing left gets all-zero weights
    (not nan). dy/dx: gx = y * (gy - sum(y * gy)), written with the output y so that it can
    be differentiated again.
    """

    retain_inputs = ()
    retain_outputs = (0,)

    def __init__(self, keep=None) -> None:
        self.keep = keep

    def forward(self, x):
        if self.keep is not None:
            x = np.where(self.keep, x, x.dtype.type(-np.inf))
        row_max = x.max(axis=-1, keepdims=True)
        # A fully masked row has max -inf: shift by 0 instead so that exp gives 0, not nan.
        row_max = np.where(np.isfinite(row_max), row_max, x.dtype.type(0))
        e = np.exp(x - row_max)
        total = e.sum(axis=-1, keepdims=True)
        return e / np.where(total > 0, total, x.dtype.type(1))

    def backward(self, gy):
        y = self.output
        yg = y * gy
        return yg - y * yg.sum(axis=-1, keepdims=True)

    def to_onnx(self, g, x):
        # forward, node by node: ONNX Softmax would give nan for a row with nothing left.
        dtype = self.inputs[0].dtype
        zero, one = g.constant(0, dtype=dtype), g.constant(1, dtype=dtype)
        if self.keep is not None:  # the mask is a constant of the graph
            x = g.op("Where", g.constant(self.keep, dtype=bool), x,
                     g.constant(-np.inf, dtype=dtype))
        row_max = g.reduce("ReduceMax", x, [-1], keepdims=True)
        row_max = g.op("Where", g.op("IsInf", row_max), zero, row_max)
        e = g.op("Exp", g.op("Sub", x, row_max))
        total = g.reduce("ReduceSum", e, [-1], keepdims=True)
        return g.op("Div", e, g.op("Where", g.op("Greater", total, zero), total, one))


def scaled_dot_product_attention(q, k, v, mask=None, scale: float | None = None) -> Variable:
    """softmax(q k^T * scale + mask) v, with scale = 1 / sqrt(D) by default.

    q: (..., Lq, D), k: (..., Lk, D), v: (..., Lk, Dv) (batch axes broadcast) ->
    (..., Lq, Dv). ``mask``, broadcastable to (..., Lq, Lk): boolean with True = attend
    (PyTorch's convention), or a float array added to the scores (0 to keep, -inf to drop).
    A query whose keys are all masked attends to nothing: its output row is 0 (not nan),
    and so are its gradients.
    """
    q, k, v = as_variable(q), as_variable(k), as_variable(v)
    if q.ndim < 2 or k.ndim < 2 or v.ndim < 2:
        raise ShapeError(
            f"scaled_dot_product_attention: q, k, v must be at least 2-D (..., L, D), got "
            f"q {q.shape}, k {k.shape}, v {v.shape}"
        )
    if q.shape[-1] != k.shape[-1] or k.shape[-2] != v.shape[-2]:
        raise ShapeError(
            f"scaled_dot_product_attention: need q (..., Lq, D), k (..., Lk, D), "
            f"v (..., Lk, Dv); got q {q.shape}, k {k.shape}, v {v.shape}"
        )
    for name, a in (("q", q), ("k", k), ("v", v)):
        if a.dtype.kind != "f":
            raise DTypeError(f"scaled_dot_product_attention: {name} must be float, got {a.dtype}")
    if scale is None:
        scale = 1.0 / math.sqrt(q.shape[-1])
    scores = matmul(q, _swap_last_two(k)) * float(scale)
    keep = None
    if mask is not None:
        mask = mask.data if isinstance(mask, Variable) else np.asarray(mask)
        try:
            np.broadcast_shapes(mask.shape, scores.shape)
        except ValueError:
            raise ShapeError(
                f"scaled_dot_product_attention: mask {mask.dtype} {mask.shape} does not "
                f"broadcast to the scores (..., Lq, Lk) = {scores.shape}"
            ) from None
        if mask.dtype == np.bool_:
            keep = mask
        elif mask.dtype.kind == "f":
            scores = scores + mask.astype(scores.dtype, copy=False)
        else:
            raise DTypeError(
                f"scaled_dot_product_attention: mask must be boolean (True = attend) or "
                f"float (added to the scores), got {mask.dtype}"
            )
    weights = MaskedSoftmax(keep)(scores)
    return matmul(weights, v)


def _swap_last_two(x: Variable) -> Variable:
    axes = list(range(x.ndim))
    axes[-1], axes[-2] = axes[-2], axes[-1]
    return transpose(x, axes)


