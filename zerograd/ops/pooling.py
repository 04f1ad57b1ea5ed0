"""Pooling: max, average and adaptive average pooling over NCHW batches.

Every kernel here loops over the KH*KW window offsets only: each step is one strided
NumPy operation over the whole batch, and no (N, C, KH, KW, OH, OW) patch array is built.
Max pooling keeps the argmax of each window as a small integer (its offset in the window),
not the window itself; its gradient scatters to that offset and the gradient's gradient
gathers from it, so derivatives of any order work.
"""

from __future__ import annotations

import numpy as np

import zerograd._fast as fast
from zerograd.backend import get_array_module
from zerograd.backend.array_utils import get_conv_outsize, pair
from zerograd.core.function import Function
from zerograd.core.variable import Variable
from zerograd.errors import DTypeError, ShapeError, describe
from zerograd.ops import reduction
from zerograd.ops._im2col import crop_image, pad_image
from zerograd.ops.conv import im2col
from zerograd.ops.linalg import matmul
from zerograd.ops.shape import reshape, transpose

__all__ = ["pooling", "max_pool2d", "pooling_simple", "average_pooling", "adaptive_avg_pool2d",
           "Pooling", "Pooling2DGrad", "Pooling2DWithIndexes", "AveragePooling",
           "AveragePoolingGrad"]


class _Windows:
    """Where the pooling windows lie: sizes, strides, padding (top/left and bottom/right)."""

    def __init__(self, op: str, kernel_size, stride, pad, ceil_mode: bool) -> None:
        self.op = op
        self.kernel = pair(kernel_size)
        self.stride = pair(stride)
        self.pad = pair(pad)
        self.ceil_mode = bool(ceil_mode)
        if min(self.kernel) < 1 or min(self.stride) < 1 or min(self.pad) < 0:
            raise ValueError(f"{op}: kernel_size {self.kernel} and stride {self.stride} must be "
                             f">= 1 and pad {self.pad} >= 0")

    def fit(self, x) -> None:
        """Check x and work out the output size and the padding for this input."""
        op = self.op
        if x.ndim != 4:
            raise ShapeError(f"{op}: x must be 4-D (N, C, H, W), got {describe([x])}")
        if x.dtype.kind != "f":
            raise DTypeError(f"{op}: x must be a floating-point array, got {describe([x])}")
        self.in_hw = x.shape[2:]
        out, end_pad = [], []
        for a in range(2):
            k, s, p, n = self.kernel[a], self.stride[a], self.pad[a], self.in_hw[a]
            o = get_conv_outsize(n, k, s, p, ceil_mode=self.ceil_mode)
            if o < 1:
                raise ShapeError(f"{op}: a {self.kernel} window does not fit an input of "
                                 f"{tuple(self.in_hw)} with pad {self.pad} ({describe([x])})")
            out.append(o)
            # ceil_mode: the last window may run past the padding; pad a little more there.
            end_pad.append(max(p, (o - 1) * s + k - n - p))
        self.out_hw = tuple(out)
        self.pad_h = (self.pad[0], end_pad[0])
        self.pad_w = (self.pad[1], end_pad[1])
        self.padded_hw = (self.in_hw[0] + sum(self.pad_h), self.in_hw[1] + sum(self.pad_w))
        self.disjoint = self.stride[0] >= self.kernel[0] and self.stride[1] >= self.kernel[1]
        # conv2d's outputs are channel-major views; gradients laid out the same way flow
        # back into conv2d's backward without a transposing copy.
        self.channel_major = x.shape[0] > 1 and x.strides[1] > x.strides[0]
        # Windows that tile the padded input exactly write every element once.
        self.tiling = (self.stride == self.kernel and self.padded_hw
                       == (self.out_hw[0] * self.kernel[0], self.out_hw[1] * self.kernel[1]))

    def onnx_attributes(self) -> dict:
        """The window attributes of ONNX MaxPool/AveragePool for the input ``fit`` saw.

        The ceil_mode overhang is given as extra bottom/right padding (ceil_mode=0), so the
        output size is this op's for certain, whatever rounding rule the runtime follows.
        """
        return {"kernel_shape": list(self.kernel), "strides": list(self.stride),
                "pads": [self.pad_h[0], self.pad_w[0], self.pad_h[1], self.pad_w[1]]}

    def zeros(self, xp, batch_channels, dtype, fill: bool = True):
        """A zero padded batch (N, C, HP, WP) in the input's memory order; uninitialised
        if not ``fill``."""
        N, C = batch_channels
        make = xp.zeros if fill else xp.empty
        if self.channel_major:
            return make((C, N, *self.padded_hw), dtype=dtype).transpose(1, 0, 2, 3)
        return make((N, C, *self.padded_hw), dtype=dtype)

    def offsets(self):
        """(k, strided-window-slices) for every window offset k = i*KW + j."""
        (KH, KW), (sh, sw), (OH, OW) = self.kernel, self.stride, self.out_hw
        for i in range(KH):
            rows = slice(i, i + sh * (OH - 1) + 1, sh)
            for j in range(KW):
                yield i * KW + j, (Ellipsis, rows, slice(j, j + sw * (OW - 1) + 1, sw))

    def padded(self, x, value: float = 0.0):
        return pad_image(x, self.pad_h, self.pad_w, value)

    def crop(self, padded):
        return crop_image(padded, self.pad_h[0], self.pad_w[0], self.in_hw)

    def compiled_2x2(self, a) -> bool:
        """Whether max pooling's compiled 2x2/2 kernels (``zerograd._fast.pooling``) take
        ``a``: 2x2 windows, stride 2, no padding (ceil_mode's overhang pads), NumPy, numba."""
        return (self.kernel == self.stride == (2, 2) and self.pad_h == self.pad_w == (0, 0)
                and fast.use("max_pool_2x2", a))

    def window_counts(self, include_pad: bool):
        """(OH, OW) number of elements each window averages over (a separable product)."""
        counts = []
        for a, pads in enumerate((self.pad_h, self.pad_w)):
            k, s, n, o = self.kernel[a], self.stride[a], self.in_hw[a], self.out_hw[a]
            start = np.arange(o) * s  # in padded coordinates
            stop = start + k
            if include_pad:  # padding counts, the ceil_mode overhang does not (PyTorch's rule)
                lo, hi = 0, n + 2 * pads[0]
            else:
                lo, hi = pads[0], pads[0] + n
            counts.append(np.minimum(stop, hi) - np.maximum(start, lo))
        return np.outer(counts[0], counts[1])


# -- max pooling -------------------------------------------------------------------------
class Pooling(Function):
    """Max pooling: y[n, c, y, x] = max of the window at (y*SH - PH, x*SW - PW).

    x (N, C, H, W) -> (N, C, OH, OW). Padding is -inf (it never wins). Keeps ``indexes``
    (N, C, OH, OW): the argmax's offset i*KW + j inside its window (first one on ties).
    """

    retain_inputs = ()  # the argmax indexes are its own
    retain_outputs = ()
    saved = ("indexes",)  # released with the graph (Function.release)

    def __init__(self, kernel_size, stride=1, pad=0, ceil_mode: bool = False) -> None:
        self.windows = _Windows("pooling", kernel_size, stride, pad, ceil_mode)
        self.kernel_size, self.stride, self.pad = kernel_size, stride, pad

    def forward(self, x):
        win = self.windows
        win.fit(x)
        if win.compiled_2x2(x):
            # One vectorised pass instead of four strided ones; it imports numba, so only here.
            from zerograd._fast import pooling as fast_pooling

            y, self.indexes = fast_pooling.max_pool_2x2(x)
            return y
        xp = get_array_module(x)
        padded = win.padded(x, -np.inf)
        index_dtype = np.uint8 if win.kernel[0] * win.kernel[1] <= 256 else np.int32
        views = [(k, padded[window]) for k, window in win.offsets()]
        first = views[0][1]
        indexes = xp.zeros(first.shape, dtype=index_dtype)
        y = first.copy(order="K") if len(views) == 1 else None
        for k, v in views[1:]:
            larger = v > (first if y is None else y)
            # The first maximum allocates y (in x's memory order); later ones work in place.
            y = xp.maximum(first, v) if y is None else xp.maximum(y, v, out=y)
            # indexes = where(larger, k, indexes), as arithmetic: masked writes with a random
            # mask are several times slower in NumPy. (Wrap-around in uint8 is harmless.)
            indexes += larger * (indexes.dtype.type(k) - indexes)
        self.indexes = indexes
        return y

    def backward(self, gy):
        return Pooling2DGrad(self)(gy)

    def to_onnx(self, g, x):
        return g.op("MaxPool", x, **self.windows.onnx_attributes())


def pooling(x, kernel_size, stride=1, pad=0, ceil_mode: bool = False) -> Variable:
    """Max pooling (DeZero's name and defaults: stride 1). x (N, C, H, W) -> (N, C, OH, OW),
    ``y[n, c, y, x] = max_{i, j} xpad[n, c, y*SH + i, x*SW + j]``, padding -inf,
    OH = (H + 2PH - KH) // SH + 1 (rounded up with ``ceil_mode``; a window must start
    inside the input or its left padding). The gradient goes to the argmax only."""
    return Pooling(kernel_size, stride, pad, ceil_mode)(x)


def max_pool2d(x, kernel_size, stride=None, pad=0, ceil_mode: bool = False) -> Variable:
    """Max pooling with PyTorch's default stride (= kernel_size); otherwise :func:`pooling`."""
    return Pooling(kernel_size, kernel_size if stride is None else stride, pad, ceil_mode)(x)


class Pooling2DGrad(Function):
    """gx = gy scattered to the argmax of each window (adding where windows overlap).

    gy (N, C, OH, OW) -> (N, C, H, W). Its gradient gathers at the same argmax
    (:class:`Pooling2DWithIndexes`)."""

    retain_inputs = ()
    retain_outputs = ()

    def __init__(self, mpool2d: Pooling) -> None:
        self.mpool2d = mpool2d
        self.windows = mpool2d.windows
        self.indexes = mpool2d.indexes

    def forward(self, gy):
        win = self.windows
        if win.compiled_2x2(gy):
            from zerograd._fast import pooling as fast_pooling  # imports numba (see Pooling)

            return fast_pooling.max_pool_2x2_backward(gy, self.indexes, win.in_hw)
        xp = get_array_module(gy)
        padded = win.zeros(xp, gy.shape[:2], gy.dtype, fill=not win.tiling)
        # Multiplying by the 0/1 mask beats masked writes (np.where, where=) several times.
        if win.disjoint:  # each input element lies in at most one window: plain writes
            for k, window in win.offsets():
                xp.multiply(gy, self.indexes == k, out=padded[window])
        else:
            for k, window in win.offsets():
                padded[window] += gy * (self.indexes == k)
        return win.crop(padded)

    def backward(self, ggx):
        return Pooling2DWithIndexes(self.mpool2d)(ggx)


class Pooling2DWithIndexes(Function):
    """y = x picked at the argmax positions stored by a max pooling: x (N, C, H, W) ->
    (N, C, OH, OW). Linear; its gradient is :class:`Pooling2DGrad`."""

    retain_inputs = ()
    retain_outputs = ()

    def __init__(self, mpool2d: Pooling) -> None:
        self.mpool2d = mpool2d
        self.windows = mpool2d.windows
        self.indexes = mpool2d.indexes

    def forward(self, x):
        win = self.windows
        padded = win.padded(x)
        y = None
        for k, window in win.offsets():
            picked = padded[window] * (self.indexes == k)
            if y is None:
                y = picked
            else:
                y += picked
        return y

    def backward(self, gy):
        return Pooling2DGrad(self.mpool2d)(gy)


# -- average pooling ---------------------------------------------------------------------
class AveragePooling(Function):
    """y = mean of each window. x (N, C, H, W) -> (N, C, OH, OW).

    DeZero's convention (``count_include_pad=True``): padding counts as zeros, so a window
    of KH*KW elements divides by KH*KW; with ``ceil_mode`` the overhang past the padding is
    not counted (PyTorch's rule). ``count_include_pad=False`` divides by the real elements.
    """

    retain_inputs = ()  # linear
    retain_outputs = ()

    def __init__(self, kernel_size, stride=1, pad=0, ceil_mode: bool = False,
                 count_include_pad: bool = True) -> None:
        self.windows = _Windows("average_pooling", kernel_size, stride, pad, ceil_mode)
        self.kernel_size, self.stride, self.pad = kernel_size, stride, pad
        self.count_include_pad = count_include_pad

    def _divisor(self, dtype):
        win = self.windows
        counts = win.window_counts(self.count_include_pad)
        if (counts == counts.flat[0]).all():
            return float(counts.flat[0])  # a Python float keeps float32 float32
        if counts.min() < 1:
            raise ShapeError(f"average_pooling: some {win.kernel} window holds no input "
                             f"element (input {tuple(win.in_hw)}, pad {win.pad}); reduce pad")
        return counts.astype(dtype)

    def forward(self, x):
        win = self.windows
        win.fit(x)
        padded = win.padded(x)
        y = None
        for _, window in win.offsets():
            if y is None:
                y = padded[window].copy()
            else:
                y += padded[window]
        self.divisor = self._divisor(x.dtype)
        y /= self.divisor if isinstance(self.divisor, float) else _to_module(self.divisor, x)
        return y

    def backward(self, gy):
        return AveragePoolingGrad(self)(gy)

    def to_onnx(self, g, x):
        win = self.windows
        if not self.count_include_pad:  # ONNX counts the real elements only, as here
            return g.op("AveragePool", x, count_include_pad=0, **win.onnx_attributes())
        # ONNX counts every padded element, the ceil_mode overhang (padded explicitly
        # there) too; zerograd counts padding but not the overhang. Average over the full
        # KH*KW window, then rescale the windows that counted fewer.
        y = g.op("AveragePool", x, count_include_pad=1, **win.onnx_attributes())
        full = win.kernel[0] * win.kernel[1]
        if isinstance(self.divisor, float) and self.divisor == full:
            return y
        dtype = self.inputs[0].dtype
        return g.op("Mul", y, g.constant(full / win.window_counts(True), dtype=dtype))


def average_pooling(x, kernel_size, stride=1, pad=0, ceil_mode: bool = False,
                    count_include_pad: bool = True) -> Variable:
    """Average pooling (DeZero's defaults): x (N, C, H, W) -> (N, C, OH, OW), the mean of
    each KH x KW window (non-square kernels work). Padding counts as zeros in the mean
    (DeZero and PyTorch's default); ``count_include_pad=False`` averages real elements only.
    """
    return AveragePooling(kernel_size, stride, pad, ceil_mode, count_include_pad)(x)


class AveragePoolingGrad(Function):
    """gx = gy / divisor spread evenly over each window: gy (N, C, OH, OW) -> (N, C, H, W).
    Linear; its gradient is the average pooling itself."""

    retain_inputs = ()
    retain_outputs = ()

    def __init__(self, apool2d: AveragePooling) -> None:
        self.apool2d = apool2d
        self.windows = apool2d.windows
        self.divisor = apool2d.divisor

    def forward(self, gy):
        win = self.windows
        xp = get_array_module(gy)
        divisor = self.divisor
        share = gy / (divisor if isinstance(divisor, float) else _to_module(divisor, gy))
        padded = win.zeros(xp, gy.shape[:2], gy.dtype)
        for _, window in win.offsets():
            padded[window] += share
        return win.crop(padded)

    def backward(self, ggx):
        a = self.apool2d
        return AveragePooling(a.kernel_size, a.stride, a.pad, a.windows.ceil_mode,
                              a.count_include_pad)(ggx)


def _to_module(a, like):
    """NumPy array ``a`` moved to the array module of ``like`` (a no-op on the CPU)."""
    xp = get_array_module(like)
    return a if xp is np else xp.asarray(a)


# -- public functions --------------------------------------------------------------------


def pooling_simple(x, kernel_size, stride=1, pad=0) -> Variable:
    """Max pooling composed of differentiable nodes, as in DeZero's book (step 57):
    ``im2col`` (N*OH*OW*C, KH*KW) -> max over each row -> NCHW. Note: im2col pads with
    zeros, so with ``pad > 0`` a window of negative values pools to 0 (``pooling`` pads with
    -inf). Ties send the gradient to every maximal element."""
    if x.ndim != 4:
        raise ShapeError(f"pooling_simple: x must be 4-D (N, C, H, W), got {describe([x])}")
    N, C, H, W = x.shape
    (KH, KW), (SH, SW), (PH, PW) = pair(kernel_size), pair(stride), pair(pad)
    OH = get_conv_outsize(H, KH, SH, PH)
    OW = get_conv_outsize(W, KW, SW, PW)
    col = reshape(im2col(x, (KH, KW), (SH, SW), (PH, PW), to_matrix=True), (-1, KH * KW))
    y = reduction.max(col, axis=1)
    return transpose(reshape(y, (N, OH, OW, C)), (0, 3, 1, 2))


def _averaging_matrix(in_size: int, out_size: int, dtype):
    """(out, in) matrix whose row i averages PyTorch's adaptive bin
    [floor(i*in/out), ceil((i+1)*in/out))."""
    start = (np.arange(out_size) * in_size) // out_size
    stop = -((-(np.arange(1, out_size + 1) * in_size)) // out_size)
    positions = np.arange(in_size)
    inside = (positions >= start[:, None]) & (positions < stop[:, None])
    return (inside / (stop - start)[:, None]).astype(dtype)


def adaptive_avg_pool2d(x, output_size) -> Variable:
    """Average pooling to a fixed ``output_size`` (an int or (OH, OW); None keeps that size).
    x (N, C, H, W) -> (N, C, OH, OW); bin i covers rows [floor(i*H/OH), ceil((i+1)*H/OH))
    (PyTorch's bins). Divisible sizes run as average_pooling, others as two products with
    constant averaging matrices: ``A_h @ x @ A_w.T``."""
    if x.ndim != 4:
        raise ShapeError(f"adaptive_avg_pool2d: x must be 4-D (N, C, H, W), got "
                         f"{describe([x])}")
    H, W = x.shape[2:]
    if isinstance(output_size, (int, np.integer)) or output_size is None:
        output_size = (output_size, output_size)
    OH, OW = (H if output_size[0] is None else int(output_size[0]),
              W if output_size[1] is None else int(output_size[1]))
    if OH < 1 or OW < 1:
        raise ValueError(f"adaptive_avg_pool2d: output_size must be positive, got {output_size}")
    if H % OH == 0 and W % OW == 0:
        kernel = (H // OH, W // OW)
        return average_pooling(x, kernel, kernel)
    if x.dtype.kind != "f":
        raise DTypeError(f"adaptive_avg_pool2d: x must be a floating-point array, got "
                         f"{describe([x])}")
    A_h = _to_module(_averaging_matrix(H, OH, x.dtype), x)
    A_w_t = _to_module(_averaging_matrix(W, OW, x.dtype).T.copy(), x)
    return matmul(matmul(A_h, x), A_w_t)
