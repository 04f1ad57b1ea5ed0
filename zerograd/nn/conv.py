"""Convolution layers: ``Conv2d``, ``Deconv2d`` (transposed) and ``Conv1d``.

All three take DeZero's arguments ``(out_channels, kernel_size, stride=1, pad=0,
nobias=False, dtype=np.float32, in_channels=None)`` and add ``dilation`` and ``groups``.
When ``in_channels`` is None the weight is drawn at the first call, from ``x.shape[1]``;
``in_channels`` is read from ``W`` once W exists (a :class:`~zerograd.nn.layer.LazySize`),
so weights set by hand or loaded before the first call size the layer. Integer and bool
inputs are cast to ``dtype``.
The default initialiser is DeZero's, ``randn(*W.shape) * sqrt(1 / fan_in)`` with
fan_in = (in_channels / groups) * kernel area, computed in ``dtype`` (float32 stays float32).
"""

from __future__ import annotations

import types
from typing import Any

import numpy as np
from numpy.typing import DTypeLike

from zerograd import functions as F
from zerograd.backend import get_array_module
from zerograd.backend.array_utils import pair
from zerograd.core.variable import Parameter, Variable
from zerograd.errors import ShapeError
from zerograd.nn import init
from zerograd.nn.layer import Layer, LazySize, float_input

__all__ = ["Conv2d", "Deconv2d", "Conv1d"]

# A kernel size, stride, padding or dilation: one int for every spatial axis, or one per
# axis (a pair for the 2-D layers).
Size = int | tuple[int, ...] | list[int]


def _positive_int(layer: str, name: str, value: Any) -> int:
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{layer}: {name} must be a positive int, got {value!r}")
    return int(value)


class _ConvBase(Layer):
    """What the three convolution layers share: lazy weights, bias, checks and repr.

    Subclasses set ``_n_spatial`` (1 or 2) and implement ``_weight_shape``,
    ``_in_channels_of`` and ``forward``.
    """

    _n_spatial = 2
    in_channels = LazySize("W", read=lambda layer, shape: layer._in_channels_of(shape))

    def __init__(self, out_channels: int, kernel_size: Size, stride: Size = 1, pad: Size = 0,
                 nobias: bool = False, dtype: DTypeLike = np.float32,
                 in_channels: int | None = None, *, dilation: Size = 1, groups: int = 1,
                 initializer: init.InitializerLike = None) -> None:
        super().__init__()
        name = type(self).__name__
        self.out_channels = _positive_int(name, "out_channels", out_channels)
        self.groups = _positive_int(name, "groups", groups)
        if self.out_channels % self.groups:
            raise ValueError(f"{name}: out_channels={self.out_channels} is not divisible by "
                             f"groups={self.groups}")
        self.kernel_size = self._size(kernel_size)
        self.stride = self._size(stride)
        self.pad = self._size(pad)
        self.dilation = self._size(dilation)
        self.dtype = np.dtype(dtype)
        self.initializer = init.get_initializer(initializer, default=init.dezero_default())
        self.in_channels = None
        self.W = Parameter(None, name="W")
        if in_channels is not None:
            self._set_in_channels(in_channels)
            self._init_W()
        if nobias:
            self.b = None
        else:
            self.b = Parameter(np.zeros(self.out_channels, dtype=self.dtype), name="b")

    # Any: a pair for the 2-D layers, an int for Conv1d, which class-level _n_spatial
    # decides (not something a type checker follows).
    def _size(self, value: Size) -> Any:
        """An int or pair for 2-D layers (as given to the op); an int for 1-D layers."""
        if self._n_spatial == 2:
            return pair(value)
        if isinstance(value, (tuple, list)) and len(value) == 1:
            value = value[0]
        if not isinstance(value, (int, np.integer)):
            raise ValueError(f"{type(self).__name__}: expected an int, got {value!r}")
        return int(value)

    def _set_in_channels(self, in_channels: int) -> None:
        name = type(self).__name__
        in_channels = _positive_int(name, "in_channels", in_channels)
        if in_channels % self.groups:
            raise ShapeError(f"{name}: in_channels={in_channels} is not divisible by "
                             f"groups={self.groups}")
        self.in_channels = in_channels

    def _kernel_area(self) -> int:
        return int(np.prod(self.kernel_size))

    def _weight_shape(self, in_channels: int) -> tuple:
        """W's shape for inputs with ``in_channels`` channels."""
        raise NotImplementedError

    def _in_channels_of(self, weight_shape: tuple) -> int:
        """The input channels a weight of ``weight_shape`` is made for."""
        raise NotImplementedError

    def _init_W(self, xp: types.ModuleType = np) -> None:
        shape = self._weight_shape(self.in_channels)
        # DeZero's scale: 1 / sqrt(inputs seen by one output) = (C / groups) * kernel area.
        fan_in = self.in_channels // self.groups * self._kernel_area()
        fan_out = self.out_channels // self.groups * self._kernel_area()
        W = self.initializer(shape, self.dtype, fan_in=fan_in, fan_out=fan_out)
        self.W.data = W if xp is np else xp.asarray(W)

    def _prepare(self, x: Any) -> Any:
        """The input cast to a float dtype, its rank and channels checked against W (which
        may have been set or loaded before this call); W drawn at the first call."""
        x = float_input(x, self.dtype)
        ndim = 2 + self._n_spatial
        if x.ndim != ndim:
            layout = "(N, C, H, W)" if self._n_spatial == 2 else "(N, C, L)"
            raise ShapeError(f"{type(self).__name__}: input must be {ndim}-D {layout}, got "
                             f"{x.dtype} {tuple(x.shape)}")
        if self.W.data is None:
            self._set_in_channels(x.shape[1])
            self._init_W(get_array_module(x))
        elif x.shape[1] % self.groups:
            raise ShapeError(f"{type(self).__name__}: input {x.dtype} {tuple(x.shape)} has "
                             f"{x.shape[1]} channels, not divisible by groups={self.groups}")
        else:
            self._check_shape("W", self._weight_shape(x.shape[1]), x,
                              "in_channels", 1)
        return x

    def extra_repr(self) -> str:
        text = (f"in_channels={self.in_channels}, out_channels={self.out_channels}, "
                f"kernel_size={self.kernel_size}, stride={self.stride}, pad={self.pad}")
        if self.dilation not in (1, (1, 1)):
            text += f", dilation={self.dilation}"
        if self.groups != 1:
            text += f", groups={self.groups}"
        if self.b is None:
            text += ", nobias=True"
        if self.dtype != np.float32:
            text += f", dtype={self.dtype}"
        return text


class Conv2d(_ConvBase):
    """2-D convolution: x (N, C, H, W) -> (N, out_channels, OH, OW).

    ``W`` is (out_channels, C / groups, KH, KW) and ``b`` (out_channels,);
    OH = (H + 2*PH - DH*(KH - 1) - 1) // SH + 1. ``kernel_size``, ``stride``, ``pad`` and
    ``dilation`` are ints or (h, w) pairs. See :func:`zerograd.functions.conv2d`.
    """

    def _weight_shape(self, in_channels: int) -> tuple:
        return (self.out_channels, in_channels // self.groups, *self.kernel_size)

    def _in_channels_of(self, weight_shape: tuple) -> int:
        return weight_shape[1] * self.groups

    def forward(self, x: Variable | np.ndarray) -> Variable:
        x = self._prepare(x)
        return F.conv2d(x, self.W, self.b, self.stride, self.pad, dilation=self.dilation,
                        groups=self.groups)


class Deconv2d(_ConvBase):
    """Transposed 2-D convolution: x (N, C, H, W) -> (N, out_channels, OH, OW).

    ``W`` is (C, out_channels / groups, KH, KW) (DeZero's and PyTorch's layout) and ``b``
    (out_channels,); OH = SH*(H - 1) + DH*(KH - 1) + 1 - 2*PH, or ``outsize`` (OH, OW) when
    given (at most SH - 1 larger). The usual upsampler: kernel 4, stride 2, pad 1 doubles
    H and W. DeZero's initialiser scale is sqrt(1 / (C * KH * KW)).
    """

    def __init__(self, out_channels: int, kernel_size: Size, stride: Size = 1, pad: Size = 0,
                 nobias: bool = False, dtype: DTypeLike = np.float32,
                 in_channels: int | None = None, *, outsize: Size | None = None,
                 dilation: Size = 1, groups: int = 1,
                 initializer: init.InitializerLike = None) -> None:
        super().__init__(out_channels, kernel_size, stride, pad, nobias, dtype, in_channels,
                         dilation=dilation, groups=groups, initializer=initializer)
        self.outsize = None if outsize is None else pair(outsize)

    def _weight_shape(self, in_channels: int) -> tuple:
        return (in_channels, self.out_channels // self.groups, *self.kernel_size)

    def _in_channels_of(self, weight_shape: tuple) -> int:
        return weight_shape[0]

    def forward(self, x: Variable | np.ndarray) -> Variable:
        x = self._prepare(x)
        return F.deconv2d(x, self.W, self.b, self.stride, self.pad, self.outsize,
                          dilation=self.dilation, groups=self.groups)


class Conv1d(_ConvBase):
    """1-D convolution: x (N, C, L) -> (N, out_channels, OL).

    ``W`` is (out_channels, C / groups, K) and ``b`` (out_channels,);
    OL = (L + 2*P - D*(K - 1) - 1) // S + 1. ``kernel_size``, ``stride``, ``pad`` and
    ``dilation`` are ints. See :func:`zerograd.functions.conv1d`.
    """

    _n_spatial = 1

    def _kernel_area(self) -> int:
        return self.kernel_size

    def _weight_shape(self, in_channels: int) -> tuple:
        return (self.out_channels, in_channels // self.groups, self.kernel_size)

    def _in_channels_of(self, weight_shape: tuple) -> int:
        return weight_shape[1] * self.groups

    def forward(self, x: Variable | np.ndarray) -> Variable:
        x = self._prepare(x)
        return F.conv1d(x, self.W, self.b, self.stride, self.pad, self.dilation, self.groups)
