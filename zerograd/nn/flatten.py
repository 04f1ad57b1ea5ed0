"""``Flatten``: keep the batch axis, join the rest."""

from __future__ import annotations

from zerograd import functions as F
from zerograd.core.variable import Variable
from zerograd.errors import ShapeError
from zerograd.nn.layer import Layer

__all__ = ["Flatten"]


class Flatten(Layer):
    """x (N, d1, d2, ...) -> (N, d1 * d2 * ...), as DeZero's ``F.flatten``."""

    def forward(self, x) -> Variable:
        if x.ndim < 1:
            raise ShapeError(f"Flatten: input must have a batch axis, got a 0-d input {x.shape}")
        return F.reshape(x, (x.shape[0], -1))
