"""``LayerNorm``: normalise over the trailing axes, then scale and shift."""

from __future__ import annotations

import numpy as np

from zerograd import functions as F
from zerograd.backend import get_array_module
from zerograd.core.variable import Parameter, Variable
from zerograd.errors import ShapeError
from zerograd.nn.layer import Layer, LazySize, float_input

__all__ = ["LayerNorm"]


class LayerNorm(Layer):
    """y = (x - mean) / sqrt(var + eps) * gamma + beta over the last ``len(normalized_shape)``
    axes of x (Ba, Kiros & Hinton, 2016). x: (..., *normalized_shape) -> same shape.

    ``gamma`` starts at ones and ``beta`` at zeros, both of shape ``normalized_shape``. With
    ``normalized_shape=None`` the last axis of the first input fixes it (lazy, like Linear);
    ``normalized_shape`` is read from ``gamma`` (or ``beta``) once they exist, so weights set
    or loaded before the first call size the layer, and the first call creates only the
    one still missing. Integer and bool inputs are cast to ``dtype``.
    """

    normalized_shape = LazySize("gamma", "beta", read=lambda layer, shape: shape)

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

    def _init_params(self, normalized_shape, xp=np) -> None:
        """Create gamma and beta of ``normalized_shape``, those not set or loaded already."""
        if isinstance(normalized_shape, (int, np.integer)):
            normalized_shape = (int(normalized_shape),)
        self.normalized_shape = tuple(int(s) for s in normalized_shape)
        if self.gamma.data is None:
            self.gamma.data = xp.ones(self.normalized_shape, dtype=self.dtype)
        if self.beta.data is None:
            self.beta.data = xp.zeros(self.normalized_shape, dtype=self.dtype)

    def forward(self, x) -> Variable:
        x = float_input(x, self.dtype)
        if self._missing("gamma", "beta"):
            # The shape comes from a weight already there, else from the input's last axis.
            shape = self.normalized_shape
            self._init_params(x.shape[-1] if shape is None else shape, get_array_module(x))
        shape = self.normalized_shape
        n = len(shape)
        if tuple(x.shape[x.ndim - n:]) != shape or x.ndim < n:
            raise ShapeError(
                f"LayerNorm: input {x.dtype} {tuple(x.shape)} must end with the normalized "
                f"shape {shape} (gamma {tuple(self.gamma.shape)})"
            )
        if tuple(self.beta.shape) != shape:
            raise ShapeError(f"LayerNorm: gamma has shape {shape} but beta "
                             f"{tuple(self.beta.shape)}; both must have the normalized shape")
        return F.layer_norm(x, self.gamma, self.beta, eps=self.eps,
                            normalized_shape=self.normalized_shape)

    def extra_repr(self) -> str:
        return f"{self.normalized_shape}, eps={self.eps}"
