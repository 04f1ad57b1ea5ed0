"""Linear algebra: matmul (NumPy semantics: 1-D, 2-D and batched N-D with broadcasting)."""

from __future__ import annotations

import numpy as np

from zerograd.core.function import Function
from zerograd.core.variable import Variable
from zerograd.errors import ShapeError
from zerograd.ops.shape import reshape, sum_to, transpose

__all__ = ["matmul", "MatMul"]


def swap_last_two(x) -> Variable:
    """x with its last two axes exchanged (``x.mT``)."""
    if x.ndim == 2:
        return transpose(x)
    axes = list(range(x.ndim))
    axes[-1], axes[-2] = axes[-2], axes[-1]
    return transpose(x, axes)


class MatMul(Function):
    """y = x @ W (``numpy.matmul``).

    x: (..., n, k), W: (..., k, m) -> (..., n, m), batch axes broadcast. A 1-D x is a row
    (k,), a 1-D W a column (k,), and that axis is dropped from y, as in NumPy.
    """

    def forward(self, x, W):
        if x.ndim == 0 or W.ndim == 0:
            raise ShapeError(
                f"matmul: operands must be at least 1-D, got x {x.dtype} {x.shape} and "
                f"W {W.dtype} {W.shape}"
            )
        k_axis = -2 if W.ndim > 1 else 0
        if x.shape[-1] != W.shape[k_axis]:
            raise ShapeError(
                f"matmul: x has shape {x.shape}, W has shape {W.shape}; x.shape[-1] must equal "
                f"W.shape[{k_axis}] (dtypes {x.dtype}, {W.dtype})"
            )
        return x @ W

    def backward(self, gy):
        x, W = self.inputs
        if x.ndim > 1 and W.ndim > 1:
            gx = matmul(gy, swap_last_two(W)) if self.needs_grad(0) else None
            gW = matmul(swap_last_two(x), gy) if self.needs_grad(1) else None
            return gx, gW  # the engine sums broadcast batch axes away
        # A 1-D operand: promote it to a matrix (row x, column W), differentiate the
        # matrix product, then reduce to the promoted shape and drop the added axis.
        x2 = reshape(x, (1, x.shape[0])) if x.ndim == 1 else x
        W2 = reshape(W, (W.shape[0], 1)) if W.ndim == 1 else W
        batch = np.broadcast_shapes(x2.shape[:-2], W2.shape[:-2])
        gy = reshape(gy, (*batch, x2.shape[-2], W2.shape[-1]))
        gx = gW = None
        if self.needs_grad(0):
            gx = reshape(sum_to(matmul(gy, swap_last_two(W2)), x2.shape), x.shape)
        if self.needs_grad(1):
            gW = reshape(sum_to(matmul(swap_last_two(x2), gy), W2.shape), W.shape)
        return gx, gW


def matmul(x, W) -> Variable:
    """Matrix product ``x @ W`` with NumPy's rules (batched, broadcast, 1-D operands)."""
    return MatMul()(x, W)
