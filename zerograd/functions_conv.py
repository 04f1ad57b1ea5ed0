"""``zerograd.functions_conv``: DeZero's ``dezero.functions_conv`` names (re-exports only).

The convolution family lives in ``zerograd.ops.conv``, pooling in ``zerograd.ops.pooling``.
"""

from zerograd import cuda
from zerograd.backend.array_utils import get_conv_outsize, get_deconv_outsize, pair
from zerograd.core.broadcast import broadcast_to
from zerograd.core.function import Function, as_variable
from zerograd.ops.conv import (
    Col2im,
    Conv2d,
    Conv2DGradW,
    Deconv2d,
    Im2col,
    col2im,
    col2im_array,
    conv1d,
    conv2d,
    conv2d_simple,
    deconv2d,
    im2col,
    im2col_array,
)
from zerograd.ops.linalg import linear
from zerograd.ops.pooling import (
    AveragePooling,
    AveragePoolingGrad,
    Pooling,
    Pooling2DGrad,
    Pooling2DWithIndexes,
    adaptive_avg_pool2d,
    average_pooling,
    max_pool2d,
    pooling,
    pooling_simple,
)

__all__ = [
    # DeZero's 19
    "conv2d", "deconv2d", "conv2d_simple", "pooling", "pooling_simple", "average_pooling",
    "im2col", "col2im", "im2col_array", "col2im_array",
    "Conv2d", "Deconv2d", "Conv2DGradW", "Pooling", "Pooling2DGrad", "Pooling2DWithIndexes",
    "AveragePooling", "Im2col", "Col2im",
    # zerograd's additions
    "conv1d", "max_pool2d", "adaptive_avg_pool2d", "AveragePoolingGrad",
    # what DeZero's module imports at its top level (so ``dezero.functions_conv.linear``
    # and friends resolve here too)
    "pair", "get_conv_outsize", "get_deconv_outsize", "cuda", "Function", "as_variable",
    "broadcast_to", "linear",
]
