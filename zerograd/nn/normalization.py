"""``LayerNorm``: normalise over the trailing axes, then scale and shift."""

from __future__ import annotations

import numpy as np

from zerograd import functions as F
from zerograd.core.variable import Parameter, Variable
from zerograd.errors import ShapeError
from zerograd.nn.layer import Layer

__all__ = ["LayerNorm"]


class LayerNorm(Layer):
    """y = (x - mean) / sqrt(var + eps) * gamma + beta over the last ``len(normalized_shape)``
    axes of x (Ba, Kiros & Hinton, 2016). x: (..., *normalized_shape) -> same shape.

    ``gamma`` starts at ones and ``beta`` at zeros, both of shape ``normalized_shape``. With
    ``normalized_shape=None`` the last axis of the first input fixes it (lazy, like Linear).
    """

    def __init__(self, normalized_shape: int | tuple | None = None, eps: float = 1e-5,
                 dtype=np.float32) -> None:
        super().__init__()
        self.eps = float(eps)
        self.dtype = np.dtype(dtype)
        self.gamma = Parameter(None, name="gamma")
        self.beta = Parameter(None, name="beta")
        self.normalized_shape = None
        if normalized_shape is not None:
            self._init_params(normalized_shape)

    def _init_params(self, normalized_shape) -> None:
        if isinstance(normalized_shape, (int, np.integer)):
            normalized_shape = (int(normalized_shape),)
        self.normalized_shape = tuple(int(s) for s in normalized_shape)
        self.gamma.data = np.ones(self.normalized_shape, dtype=self.dtype)
        self.beta.data = np.zeros(self.normalized_shape, dtype=self.dtype)

    def forward(self, x) -> Variable:
        if self.normalized_shape is None:
            self._init_params(x.shape[-1])
        n = len(self.normalized_shape)
        if tuple(x.shape[x.ndim - n:]) != self.normalized_shape or x.ndim < n:
            raise ShapeError(
                f"LayerNorm: input {x.dtype} {tuple(x.shape)} must end with the normalized "
                f"shape {self.normalized_shape}"
            )
        return F.layer_norm(x, self.gamma, self.beta, eps=self.eps,
                            normalized_shape=self.normalized_shape)

    def extra_repr(self) -> str:
        return f"{self.normalized_shape}, eps={self.eps}"
