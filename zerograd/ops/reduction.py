"""Reductions: sum (the rest of the family arrives with the operator library)."""

from __future__ import annotations

from zerograd.backend.array_utils import reshape_sum_backward
from zerograd.core.broadcast import broadcast_to
from zerograd.core.function import Function
from zerograd.core.variable import Variable

__all__ = ["sum", "Sum"]


class Sum(Function):
    """y = x.sum(axis, keepdims). x: any shape -> the reduced shape."""

    def __init__(self, axis=None, keepdims: bool = False) -> None:
        self.axis = axis
        self.keepdims = keepdims

    def forward(self, x):
        self.x_shape = x.shape
        return x.sum(axis=self.axis, keepdims=self.keepdims)

    def backward(self, gy):
        gy = reshape_sum_backward(gy, self.x_shape, self.axis, self.keepdims)
        return broadcast_to(gy, self.x_shape)


def sum(x, axis=None, keepdims: bool = False) -> Variable:
    """Sum of elements over ``axis`` (None: all; int or tuple; negatives allowed)."""
    if isinstance(axis, list):
        axis = tuple(axis)
    return Sum(axis, keepdims)(x)
