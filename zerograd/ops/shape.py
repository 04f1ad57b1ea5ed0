"""Shape ops: reshape, transpose, broadcast_to, sum_to. They move data, never change it."""

from __future__ import annotations

import numpy as np

from zerograd.core.broadcast import BroadcastTo, SumTo, broadcast_to, sum_to
from zerograd.core.function import Function, as_variable
from zerograd.core.variable import Variable

__all__ = ["reshape", "transpose", "broadcast_to", "sum_to",
           "Reshape", "Transpose", "BroadcastTo", "SumTo"]


class Reshape(Function):
    """y = x.reshape(shape); the gradient is reshaped back."""

    def __init__(self, shape: tuple) -> None:
        self.shape = shape

    def forward(self, x):
        self.x_shape = x.shape
        return x.reshape(self.shape)

    def backward(self, gy):
        return reshape(gy, self.x_shape)


class Transpose(Function):
    """y = x.transpose(axes) (axes None reverses them); the gradient uses the inverse order."""

    def __init__(self, axes=None) -> None:
        self.axes = axes

    def forward(self, x):
        return x.transpose(self.axes)

    def backward(self, gy):
        if self.axes is None:
            return transpose(gy)
        ndim = len(self.axes)
        inverse = tuple(np.argsort([a % ndim for a in self.axes]))
        return transpose(gy, inverse)


def reshape(x, shape) -> Variable:
    """x with a new shape (one entry may be -1). Returns x itself if the shape is unchanged."""
    if isinstance(shape, (int, np.integer)):
        shape = (int(shape),)
    shape = tuple(shape)
    if x.shape == shape:
        return as_variable(x)
    return Reshape(shape)(x)


def transpose(x, axes=None) -> Variable:
    """Permute the axes of x (None: reverse them), like ``ndarray.transpose``."""
    if axes is not None:
        axes = tuple(int(a) for a in axes)
    return Transpose(axes)(x)


# Re-exported so that the shape family is complete in one place.
_ = (BroadcastTo, SumTo, broadcast_to, sum_to)
