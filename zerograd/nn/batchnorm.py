"""Normalisation layers with per-channel statistics: ``BatchNorm`` and ``GroupNorm``.

``BatchNorm`` keeps DeZero's attribute names (``gamma``, ``beta``, ``avg_mean``,
``avg_var``), so DeZero-format weight files load by key, but its running statistics are
*buffers*: saved and loaded with the weights, moved by ``to_gpu``, never handed to an
optimizer (DeZero stored them as Parameters).
"""

from __future__ import annotations

import types

import numpy as np
from numpy.typing import DTypeLike

from zerograd import functions as F
from zerograd._config import test_mode
from zerograd.backend import get_array_module
from zerograd.core.variable import Parameter, Variable
from zerograd.errors import ShapeError
from zerograd.nn.layer import Layer, LazySize, float_input

__all__ = ["BatchNorm", "GroupNorm"]


class BatchNorm(Layer):
    """Batch normalisation over axis 1 (Ioffe & Szegedy, 2015).

    y = gamma * (x - mean) / sqrt(var + eps) + beta per channel; x is (N, C) or
    (N, C, H, W) (any (N, C, ...)) -> same shape. In training (``layer.training`` and
    ``Config.train`` both true) mean and var are the batch's, and the running statistics
    move towards them: ``avg = decay * avg + (1 - decay) * batch`` (the variance with the
    unbiased m/(m-1) factor). Otherwise (``model.eval()`` or ``with test_mode():``) the
    running statistics are used.

    ``size`` (C) is read from ``x.shape[1]`` at the first call when None (DeZero's
    ``BatchNorm()``). ``decay`` is DeZero's and Chainer's name; ``momentum`` is PyTorch's
    (``momentum = 1 - decay``): give one of them. ``dtype`` defaults to the first input's.
    Parameters ``gamma`` (ones) and ``beta`` (zeros); buffers ``avg_mean`` (zeros) and
    ``avg_var`` (ones), all of shape (C,).

    ``size`` is read from those four once any exists, so statistics and weights set or
    loaded before the first call size the layer; the first call creates only the missing
    ones (as DeZero does), in the dtype of those present. Integer and bool inputs are cast
    to the layer's dtype (float32 when nothing fixes it yet).
    """

    _ENTRIES = ("gamma", "beta", "avg_mean", "avg_var")
    size = LazySize(*_ENTRIES, read=lambda layer, shape: shape[0])
    # The running statistics, buffers registered in __init__ (NumPy arrays, CuPy arrays
    # after to_gpu(), None until the size is known).
    avg_mean: np.ndarray | None
    avg_var: np.ndarray | None

    def __init__(self, size: int | None = None, decay: float | None = None, eps: float = 2e-5,
                 *, momentum: float | None = None, dtype: DTypeLike | None = None) -> None:
        super().__init__()
        if decay is not None and momentum is not None:
            raise ValueError(f"BatchNorm: give decay or momentum (momentum = 1 - decay), not "
                             f"both (decay={decay}, momentum={momentum})")
        if momentum is not None:
            decay = 1.0 - momentum
        self.decay = 0.9 if decay is None else float(decay)
        if not 0.0 <= self.decay <= 1.0:
            raise ValueError(f"BatchNorm: decay must lie in [0, 1] (momentum = 1 - decay), "
                             f"got {self.decay}")
        self.eps = float(eps)
        if self.eps <= 0:
            raise ValueError(f"BatchNorm: eps must be positive, got {eps}")
        self.dtype = None if dtype is None else np.dtype(dtype)
        self.size = None
        self.gamma = Parameter(None, name="gamma")
        self.beta = Parameter(None, name="beta")
        self.register_buffer("avg_mean", None)
        self.register_buffer("avg_var", None)
        if size is not None:
            self._init_params(int(size), self.dtype or np.dtype(np.float32), np)

    @property
    def momentum(self) -> float:
        """PyTorch's name for ``1 - decay``."""
        return 1.0 - self.decay

    def _init_params(self, size: int, dtype: DTypeLike, xp: types.ModuleType) -> None:
        """Create the entries (of ``_ENTRIES``) not set or loaded already."""
        if size < 1:
            raise ValueError(f"BatchNorm: size must be positive, got {size}")
        self.size = size
        self.dtype = np.dtype(dtype)
        if self.gamma.data is None:
            self.gamma.data = xp.ones(size, dtype=dtype)
        if self.beta.data is None:
            self.beta.data = xp.zeros(size, dtype=dtype)
        if self.avg_mean is None:
            self.avg_mean = xp.zeros(size, dtype=dtype)
        if self.avg_var is None:
            self.avg_var = xp.ones(size, dtype=dtype)

    def _known_dtype(self) -> np.dtype | None:
        """The dtype of the first entry that holds an array, else ``self.dtype`` (or None)."""
        for name in self._ENTRIES:
            value = getattr(self, name)
            data = value.data if isinstance(value, Variable) else value
            if data is not None:
                return data.dtype
        return self.dtype

    def forward(self, x: Variable | np.ndarray) -> Variable:
        x = float_input(x, self._known_dtype() or np.float32)
        if x.ndim < 2:
            raise ShapeError(f"BatchNorm: input must be (N, C) or (N, C, H, W), got "
                             f"{x.dtype} {tuple(x.shape)}")
        if self._missing(*self._ENTRIES):
            # Size and dtype from the entries already there, else from the input.
            size = x.shape[1] if self.size is None else self.size
            self._init_params(size, self._known_dtype() or x.dtype, get_array_module(x))
        for name in self._ENTRIES:
            self._check_shape(name, (x.shape[1],), x, "size", 1)
        if self.training:
            return F.batch_norm(x, self.gamma, self.beta, self.avg_mean, self.avg_var,
                                self.decay, self.eps)
        with test_mode():  # eval(): use the running statistics whatever Config.train says
            return F.batch_norm(x, self.gamma, self.beta, self.avg_mean, self.avg_var,
                                self.decay, self.eps)

    def extra_repr(self) -> str:
        return f"size={self.size}, decay={self.decay}, eps={self.eps}"


class GroupNorm(Layer):
    """Group normalisation (Wu & He, 2018): channels split into ``num_groups`` groups, each
    (sample, group) standardised over its channels and positions, then scaled and shifted
    per channel. x (N, C, ...) -> same shape; behaves the same in training and inference.

    ``num_channels`` (C, divisible by ``num_groups``) is read from ``x.shape[1]`` at the
    first call when None, and from ``gamma`` (or ``beta``) once they exist, so weights set
    or loaded before the first call size the layer. Parameters ``gamma`` (ones) and
    ``beta`` (zeros) of shape (C,). Integer and bool inputs are cast to ``dtype``.
    """

    num_channels = LazySize("gamma", "beta", read=lambda layer, shape: shape[0])

    def __init__(self, num_groups: int, num_channels: int | None = None, eps: float = 1e-5,
                 dtype: DTypeLike = np.float32) -> None:
        super().__init__()
        if not isinstance(num_groups, (int, np.integer)) or num_groups < 1:
            raise ValueError(f"GroupNorm: num_groups must be a positive int, got {num_groups!r}")
        self.num_groups = int(num_groups)
        self.eps = float(eps)
        self.dtype = np.dtype(dtype)
        self.num_channels = None
        self.gamma = Parameter(None, name="gamma")
        self.beta = Parameter(None, name="beta")
        if num_channels is not None:
            self._init_params(int(num_channels), np)

    def _init_params(self, num_channels: int, xp: types.ModuleType) -> None:
        if num_channels % self.num_groups:
            raise ShapeError(f"GroupNorm: {num_channels} channels cannot be split into "
                             f"{self.num_groups} equal groups")
        self.num_channels = num_channels
        if self.gamma.data is None:
            self.gamma.data = xp.ones(num_channels, dtype=self.dtype)
        if self.beta.data is None:
            self.beta.data = xp.zeros(num_channels, dtype=self.dtype)

    def forward(self, x: Variable | np.ndarray) -> Variable:
        x = float_input(x, self.dtype)
        if x.ndim < 2:
            raise ShapeError(f"GroupNorm: input must be (N, C, ...), got {x.dtype} "
                             f"{tuple(x.shape)}")
        if self._missing("gamma", "beta"):
            # The channel count from a weight already there, else from the input.
            C = x.shape[1] if self.num_channels is None else self.num_channels
            self._init_params(C, get_array_module(x))
        for name in ("gamma", "beta"):
            self._check_shape(name, (x.shape[1],), x, "num_channels", 1)
        return F.group_norm(x, self.num_groups, self.gamma, self.beta, self.eps)

    def extra_repr(self) -> str:
        return f"num_groups={self.num_groups}, num_channels={self.num_channels}, eps={self.eps}"
