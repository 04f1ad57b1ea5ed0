"""``Dropout``: the layer form of ``F.dropout``."""

from __future__ import annotations

from zerograd import functions as F
from zerograd.core.function import as_variable
from zerograd.core.variable import Variable
from zerograd.nn.layer import Layer

__all__ = ["Dropout"]


class Dropout(Layer):
    """Inverted dropout with drop probability ``ratio``: x (any shape) -> same shape.

    Active only while ``self.training`` (``train()``/``eval()``) *and* ``Config.train``
    (``test_mode()``) are both true; otherwise the identity. The mask is DeZero's draw,
    ``np.random.rand(*x.shape) > ratio``, from the global random state.
    """

    def __init__(self, ratio: float = 0.5) -> None:
        super().__init__()
        if not 0.0 <= ratio < 1.0:
            raise ValueError(f"Dropout: ratio must be in [0, 1), got {ratio}")
        self.ratio = float(ratio)

    def forward(self, x) -> Variable:
        if not self.training:
            return as_variable(x)
        return F.dropout(x, self.ratio)

    def extra_repr(self) -> str:
        return f"ratio={self.ratio}"
