"""``Linear``: y = x W + b, with the input size inferred at the first call."""

from __future__ import annotations

import numpy as np

from zerograd import functions as F
from zerograd.backend import get_array_module
from zerograd.core.variable import Parameter, Variable
from zerograd.nn import init
from zerograd.nn.layer import Layer, LazySize, float_input

__all__ = ["Linear"]


class Linear(Layer):
    """Fully connected layer: x (N, in_size) -> (N, out_size) = x @ W + b.

    ``W`` has shape (in_size, out_size) and ``b`` (out_size,). When ``in_size`` is None it is
    read from ``x.shape[-1]`` at the first call, and ``W`` is drawn then. The default
    initialiser is DeZero's: ``np.random.randn(in, out)`` scaled by ``sqrt(1 / in)``, kept in
    ``dtype`` (float32 by default), so a script seeded with ``np.random.seed`` draws the same
    weights as on DeZero. ``initializer`` takes any :mod:`zerograd.nn.init` initialiser or
    name; ``b`` starts at zero.

    ``in_size`` is read from ``W`` once W exists, so weights set by hand
    (``layer.W.data = ...``) or loaded (``load_weights``) before the first call size the
    layer; an input that does not fit them raises ShapeError. Integer and bool inputs are
    cast to ``dtype`` (a float32 layer gives float32).
    """

    in_size = LazySize("W", read=lambda layer, shape: shape[0])

    def __init__(self, out_size: int, nobias: bool = False, dtype=np.float32,
                 in_size: int | None = None, initializer=None) -> None:
        super().__init__()
        self.in_size = in_size
        self.out_size = int(out_size)
        self.dtype = np.dtype(dtype)
        self.initializer = init.get_initializer(initializer, default=init.dezero_default())
        self.W = Parameter(None, name="W")
        if in_size is not None:
            self._init_W()
        if nobias:
            self.b = None
        else:
            self.b = Parameter(np.zeros(self.out_size, dtype=self.dtype), name="b")

    def _init_W(self, xp=np) -> None:
        shape = (int(self.in_size), self.out_size)
        W = self.initializer(shape, self.dtype, fan_in=shape[0], fan_out=shape[1])
        self.W.data = W if xp is np else xp.asarray(W)

    def forward(self, x) -> Variable:
        x = float_input(x, self.dtype)
        if self.W.data is None:
            self.in_size = x.shape[-1]
            self._init_W(get_array_module(x))
        else:
            self._check_shape("W", (x.shape[-1], self.out_size), x,
                              "in_size", -1)
        return F.linear(x, self.W, self.b)

    def extra_repr(self) -> str:
        text = f"in_size={self.in_size}, out_size={self.out_size}"
        if self.b is None:
            text += ", nobias=True"
        if self.dtype != np.float32:
            text += f", dtype={self.dtype}"
        return text
