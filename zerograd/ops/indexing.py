"""Indexing: get_item (``x[slices]``) and its gradient, a scatter-add."""

from __future__ import annotations

import numpy as np

from zerograd.backend import get_array_module
from zerograd.core.function import Function
from zerograd.core.variable import Variable

__all__ = ["get_item", "GetItem", "GetItemGrad"]


def _is_basic_index(slices) -> bool:
    """True if ``slices`` uses only basic indexing (views; no element is picked twice)."""
    items = slices if isinstance(slices, tuple) else (slices,)
    return all(s is None or s is Ellipsis or isinstance(s, (slice, int, np.integer))
               for s in items)


class GetItem(Function):
    """y = x[slices] (basic or advanced NumPy indexing)."""

    def __init__(self, slices) -> None:
        self.slices = slices

    def forward(self, x):
        return x[self.slices]

    def backward(self, gy):
        (x,) = self.inputs
        return GetItemGrad(self.slices, x.shape)(gy)


class GetItemGrad(Function):
    """gx = zeros(in_shape) with gy added at ``slices`` (repeated indices accumulate)."""

    def __init__(self, slices, in_shape: tuple) -> None:
        self.slices = slices
        self.in_shape = in_shape

    def forward(self, gy):
        xp = get_array_module(gy)
        gx = xp.zeros(self.in_shape, dtype=gy.dtype)
        if _is_basic_index(self.slices):
            gx[self.slices] = gy
        elif xp is np:
            np.add.at(gx, self.slices, gy)
        else:
            import cupyx

            cupyx.scatter_add(gx, self.slices, gy)
        return gx

    def backward(self, ggx):
        return get_item(ggx, self.slices)


def get_item(x, slices) -> Variable:
    """``x[slices]``; the gradient scatters back (adding where an index repeats)."""
    if isinstance(slices, Variable):
        slices = slices.data
    return GetItem(slices)(x)
