"""Pooling layers: ``MaxPool2d``, ``AvgPool2d`` and ``AdaptiveAvgPool2d`` (no parameters).

Layer forms of :func:`zerograd.functions.pooling`, :func:`~zerograd.functions.average_pooling`
and :func:`~zerograd.functions.adaptive_avg_pool2d`, so that pooling can sit in a
``Sequential`` and show up in ``summary()``. As in PyTorch, ``stride`` defaults to the
kernel size (DeZero's functions default to stride 1; pass ``stride=1`` for that).
"""

from __future__ import annotations

from zerograd import functions as F
from zerograd.backend.array_utils import pair
from zerograd.core.variable import Variable
from zerograd.nn.layer import Layer

__all__ = ["MaxPool2d", "AvgPool2d", "AdaptiveAvgPool2d"]


class _Pool2d(Layer):
    def __init__(self, kernel_size, stride=None, pad=0, ceil_mode: bool = False) -> None:
        super().__init__()
        self.kernel_size = pair(kernel_size)
        self.stride = self.kernel_size if stride is None else pair(stride)
        self.pad = pair(pad)
        self.ceil_mode = bool(ceil_mode)
        if min(self.kernel_size) < 1 or min(self.stride) < 1 or min(self.pad) < 0:
            raise ValueError(f"{type(self).__name__}: kernel_size {self.kernel_size} and "
                             f"stride {self.stride} must be >= 1 and pad {self.pad} >= 0")

    def extra_repr(self) -> str:
        text = f"kernel_size={self.kernel_size}, stride={self.stride}, pad={self.pad}"
        return text + (", ceil_mode=True" if self.ceil_mode else "")


class MaxPool2d(_Pool2d):
    """Max pooling: x (N, C, H, W) -> (N, C, OH, OW), OH = (H + 2*PH - KH) // SH + 1
    (rounded up with ``ceil_mode``). Padding never wins the max. ``stride`` defaults to
    ``kernel_size``."""

    def forward(self, x) -> Variable:
        return F.pooling(x, self.kernel_size, self.stride, self.pad, self.ceil_mode)


class AvgPool2d(_Pool2d):
    """Average pooling: x (N, C, H, W) -> (N, C, OH, OW), the mean of each window.

    Padding counts as zeros in the mean (DeZero's and PyTorch's default);
    ``count_include_pad=False`` averages the real elements only. ``stride`` defaults to
    ``kernel_size``.
    """

    def __init__(self, kernel_size, stride=None, pad=0, ceil_mode: bool = False,
                 count_include_pad: bool = True) -> None:
        super().__init__(kernel_size, stride, pad, ceil_mode)
        self.count_include_pad = bool(count_include_pad)

    def forward(self, x) -> Variable:
        return F.average_pooling(x, self.kernel_size, self.stride, self.pad, self.ceil_mode,
                                 self.count_include_pad)

    def extra_repr(self) -> str:
        text = super().extra_repr()
        return text + ("" if self.count_include_pad else ", count_include_pad=False")


class AdaptiveAvgPool2d(Layer):
    """Average pooling to a fixed size: x (N, C, H, W) -> (N, C, OH, OW) whatever H and W.

    ``output_size`` is an int or (OH, OW) (None keeps that axis); bin i covers rows
    [floor(i*H/OH), ceil((i+1)*H/OH)). ``AdaptiveAvgPool2d(1)`` is global average pooling.
    """

    def __init__(self, output_size) -> None:
        super().__init__()
        if output_size is None or isinstance(output_size, int):
            output_size = (output_size, output_size)
        output_size = tuple(output_size)
        if len(output_size) != 2 or any(s is not None and int(s) < 1 for s in output_size):
            raise ValueError(f"AdaptiveAvgPool2d: output_size must be a positive int or a pair "
                             f"of them (None keeps an axis), got {output_size!r}")
        self.output_size = output_size

    def forward(self, x) -> Variable:
        return F.adaptive_avg_pool2d(x, self.output_size)

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"
