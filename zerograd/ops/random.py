"""Ops that draw random numbers: dropout.

The mask is drawn from the *global* ``xp.random`` state exactly as DeZero draws it
(``xp.random.rand(*x.shape) > dropout_ratio``), so a script seeded with ``np.random.seed``
prints the same numbers under zerograd and DeZero.
"""

from __future__ import annotations

from zerograd._config import Config
from zerograd.backend import get_array_module
from zerograd.core.function import Function, as_variable
from zerograd.core.variable import Variable
from zerograd.errors import DTypeError

__all__ = ["dropout", "Dropout"]


class Dropout(Function):
    """y = x * mask / (1 - ratio) for a fixed boolean ``mask``; dy/dx = mask / (1 - ratio)."""

    retain_inputs = ()  # the mask is its own
    retain_outputs = ()
    saved = ("mask",)  # released with the graph (Function.release)

    def __init__(self, mask, dropout_ratio: float) -> None:
        self.mask = mask
        self.dropout_ratio = dropout_ratio

    def forward(self, x):
        # The scale in x's dtype (float32 stays float32); dividing, not multiplying by the
        # reciprocal, reproduces DeZero's numbers bit for bit.
        self.scale = get_array_module(x).asarray(1.0 - self.dropout_ratio, dtype=x.dtype)
        if self.dropout_ratio == 1.0:
            return x * self.mask  # all dropped: zeros (no 0 / 0)
        return x * self.mask / self.scale

    def backward(self, gy):
        if self.dropout_ratio == 1.0:
            return gy * self.mask
        return gy * self.mask / self.scale


def dropout(x, dropout_ratio: float = 0.5) -> Variable:
    """Inverted dropout: zero each element with probability ``dropout_ratio`` and scale the
    survivors by 1 / (1 - dropout_ratio), in train mode; the identity under ``test_mode()``.

    mask = xp.random.rand(*x.shape) > dropout_ratio (the global RNG, as DeZero).
    x: any float shape -> same shape.
    """
    if not 0.0 <= dropout_ratio <= 1.0:
        raise ValueError(f"dropout: dropout_ratio must be in [0, 1], got {dropout_ratio}")
    x = as_variable(x)
    if not Config.train:
        return x
    if x.dtype.kind != "f":
        raise DTypeError(f"dropout: x must be a float array, got {x.dtype} {x.shape}")
    xp = get_array_module(x.data)
    mask = xp.asarray(xp.random.rand(*x.shape) > dropout_ratio)
    return Dropout(mask, dropout_ratio)(x)


