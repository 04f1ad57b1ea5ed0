"""Convolution ops: conv2d, deconv2d (transposed convolution), conv1d, im2col/col2im.

Layouts (NCHW, as DeZero): x is (N, C, H, W); a convolution weight W is
(OC, C / groups, KH, KW); a transposed-convolution weight is (C, OC / groups, KH, KW).
The array kernels (patch matrices, one product per group, scatter-adds) are in the private
``ops/_im2col.py``; this module holds the ops built on them.

Gradients are written with differentiable ops (``gx`` is a transposed convolution, ``gW`` is
:class:`Conv2DGradW`, whose backward is again conv2d/deconv2d), so derivatives of any order
work (DeZero's third-order gradient fails: its Conv2DGradW.backward reads a weak reference
as if it were the Variable). What one node needs from another is passed explicitly: conv2d
hands its kept patch matrix to Conv2DGradW, which drops it after use.
"""

from __future__ import annotations

import numpy as np

from zerograd.backend import get_array_module
from zerograd.backend.array_utils import pair
from zerograd.core.broadcast import broadcast_to
from zerograd.core.function import Function
from zerograd.core.variable import Variable
from zerograd.errors import DTypeError, ShapeError, describe
from zerograd.ops._im2col import (
    Geometry,
    channel_major,
    check_window,
    col2im_array,
    conv_forward,
    conv_grad_weight,
    conv_out_hw,
    conv_transpose,
    im2col_array,
    xp_matmul,
)
from zerograd.ops.linalg import matmul
from zerograd.ops.shape import reshape, transpose

__all__ = ["im2col", "col2im", "conv2d", "conv2d_simple", "deconv2d", "conv1d",
           "Im2col", "Col2im", "Conv2d", "Deconv2d", "Conv2DGradW", "BiasGrad"]


# Patches up to this size are kept from forward for the weight gradient (saving one im2col);
# larger ones are recomputed, so that activations stay O(input) for big images.
PATCH_CACHE_BYTES = 32 * 2**20


# -- validation ----------------------------------------------------------------------------
def _check_float(op: str, **arrays) -> None:
    for name, a in arrays.items():
        if a is not None and a.dtype.kind != "f":
            raise DTypeError(f"{op}: {name} must be a floating-point array, got "
                             f"{describe([a])} (inputs: "
                             f"{describe([v for v in arrays.values() if v is not None])})")


def _check_conv_inputs(op: str, x, W, b, groups: int, transposed: bool) -> None:
    _check_float(op, x=x, W=W, b=b)
    if x.ndim != 4 or W.ndim != 4:
        raise ShapeError(f"{op}: x must be 4-D (N, C, H, W) and W 4-D, got x {describe([x])} "
                         f"and W {describe([W])}")
    C = x.shape[1]
    if transposed:
        out_channels = W.shape[1] * groups
        if W.shape[0] != C or C % groups:
            raise ShapeError(
                f"{op}: W has shape {W.shape}, x has shape {x.shape} with groups={groups}; "
                f"W must be (C, OC/groups, KH, KW) with C = x.shape[1] = {C} divisible by "
                f"groups")
    else:
        out_channels = W.shape[0]
        if W.shape[1] * groups != C or out_channels % groups:
            raise ShapeError(
                f"{op}: W has shape {W.shape}, x has shape {x.shape} with groups={groups}; "
                f"W must be (OC, C/groups, KH, KW) with C = x.shape[1] = {C} and OC both "
                f"divisible by groups")
    if b is not None and b.shape != (out_channels,):
        raise ShapeError(f"{op}: b has shape {b.shape}; expected ({out_channels},), one bias "
                         f"per output channel (x {x.shape}, W {W.shape})")


def _check_grad_weight_inputs(x, gy, kernel, geo: Geometry) -> None:
    """Conv2DGradW's (x, gy): gy must be what the convolution of x makes (batch, size) with
    channels a multiple of the groups. A gy of another size would pair each output pixel
    with the wrong patch and give a weight gradient of the right shape, silently wrong."""
    _check_float("Conv2DGradW", x=x, gy=gy)
    if x.ndim != 4 or gy.ndim != 4:
        raise ShapeError(f"Conv2DGradW: x and gy must be 4-D (N, C, H, W), got x "
                         f"{describe([x])} and gy {describe([gy])}")
    out_hw = conv_out_hw("Conv2DGradW", x.shape[2:], tuple(kernel), geo.stride, geo.pad,
                         geo.dilation)
    expected = (x.shape[0], gy.shape[1]) + out_hw
    if gy.shape != expected or x.shape[1] % geo.groups or gy.shape[1] % geo.groups:
        raise ShapeError(
            f"Conv2DGradW: gy {describe([gy])}, x {describe([x])}; a {kernel[0]}x"
            f"{kernel[1]} convolution with stride {geo.stride}, pad {geo.pad}, dilation "
            f"{geo.dilation} maps x to gy of shape {expected}, with both channel counts "
            f"divisible by groups={geo.groups}")


def _add_bias(y, b):
    if b is not None:
        y += b.reshape(1, -1, 1, 1).astype(y.dtype, copy=False)
    return y


class BiasGrad(Function):
    """gb = gy summed over the batch and the pixels: (N, OC, H, W) -> (OC,).
    A matrix-vector product with ones (faster than ndarray.sum over three axes)."""

    retain_inputs = ()  # backward reads only gy's shape
    retain_outputs = ()

    def forward(self, gy):
        self.gy_shape = gy.shape
        N, OC, H, W = gy.shape
        xp = get_array_module(gy)
        if gy.transpose(1, 0, 2, 3).flags.c_contiguous:  # channel-major: one product
            return xp_matmul(channel_major(gy)[0], xp.ones(N * H * W, dtype=gy.dtype))
        rows = xp.ascontiguousarray(gy).reshape(N * OC, H * W)
        return xp_matmul(rows, xp.ones(H * W, dtype=gy.dtype)).reshape(N, OC).sum(axis=0)

    def backward(self, ggb):
        return broadcast_to(reshape(ggb, (1, -1, 1, 1)), self.gy_shape)


class Conv2d(Function):
    """y = conv2d(x, W) + b. x (N, C, H, W), W (OC, C/g, KH, KW), b (OC,) -> (N, OC, OH, OW).

    Backward: gx = deconv2d(gy, W) (skipped when x is a constant, e.g. the input batch),
    gW = Conv2DGradW(x, gy), gb = gy.sum((0, 2, 3)); all differentiable.

    When the call records the graph and W wants a gradient (``needs_input_grad[1]``, set by
    ``Function.__call__`` because the op asks for it), forward keeps x's patch matrix, if
    small enough, for the weight gradient, which then skips one im2col. The patches are
    handed to Conv2DGradW explicitly and dropped after use; otherwise they live in a scratch
    buffer (no allocation per call).
    """

    forward_needs_input_grad = True

    retain_inputs = (0, 1)  # x for gW, W for gx; never b
    retain_outputs = ()
    saved = ("patches",)
    patches = None

    def __init__(self, stride=1, pad=0, dilation=1, groups=1) -> None:
        geo = Geometry(stride, pad, dilation, groups, "conv2d")
        self.geometry = geo
        self.stride, self.pad, self.dilation, self.groups = (geo.stride, geo.pad, geo.dilation,
                                                             geo.groups)

    def forward(self, x, W, b=None):
        _check_conv_inputs("conv2d", x, W, b, self.groups, transposed=False)
        out_hw = conv_out_hw("conv2d", x.shape[2:], W.shape[2:], self.stride, self.pad,
                         self.dilation)
        geo = self.geometry
        rows = W.shape[1] * W.shape[2] * W.shape[3]
        columns = x.shape[0] * out_hw[0] * geo.row_length(x.shape[3], out_hw[1])
        # Keep the patches for gW if they are small and worth keeping: with stride 1 only
        # when there are at least as many patch rows as output channels per group. With
        # fewer (conv1 of the small CNN: 9 rows, 16 channels) the NumPy path's gW wants
        # compact patches, not forward's whole rows, and with the compiled (compact) ones
        # rebuilding them costs less than a kept array's freshly mapped memory: keeping
        # them there made 650 page faults a step instead of 0-300 and the step 10% slower.
        keep = (self.needs_input_grad[1]
                and self.groups * (rows + 1) * columns * x.dtype.itemsize <= PATCH_CACHE_BYTES
                and (geo.stride != (1, 1) or geo.wide_grad(rows, W.shape[0] // self.groups)))
        y, col = conv_forward(x, W, b, geo, out_hw, scratch=not keep)
        if keep:
            self.patches = (x, col)  # Conv2DGradW reuses them if x is still this array
        return y

    def backward(self, gy):
        x, W = self.inputs[:2]
        gx = gW = None
        if self.needs_grad(0):
            gx = Deconv2d(self.stride, self.pad, x.shape[2:], self.dilation, self.groups)(gy, W)
        if self.needs_grad(1):
            gW = Conv2DGradW(kernel=W.shape[2:], geometry=self.geometry,
                             patches=self.patches)(x, gy)
        self.patches = None  # used once; a second backward recomputes them
        if len(self.inputs) == 2:
            return gx, gW
        gb = BiasGrad()(gy) if self.needs_grad(2) else None
        return gx, gW, gb

    def to_onnx(self, g, x, W, b=None):
        # ONNX Conv has zerograd's weight layout (OC, C/groups, KH, KW); pads are
        # (top, left, bottom, right), symmetric here.
        (ph, pw), kernel = self.pad, list(self.inputs[1].shape[2:])
        return g.op("Conv", *([x, W] if b is None else [x, W, b]), kernel_shape=kernel,
                    strides=list(self.stride), pads=[ph, pw, ph, pw],
                    dilations=list(self.dilation), group=self.groups)


def conv2d(x, W, b=None, stride=1, pad=0, *, dilation=1, groups=1) -> Variable:
    """2-D convolution (cross-correlation, as every DL framework), NCHW.

    ``y[n, o, y, x] = b[o] + sum_{c, i, j} W[o, c, i, j] * xpad[n, g*C/g + c, y*SH + i*DH,
    x*SW + j*DW]`` where g is o's group. x (N, C, H, W), W (OC, C/groups, KH, KW),
    b (OC,) or None -> (N, OC, OH, OW), OH = (H + 2PH - DH*(KH-1) - 1) // SH + 1.
    stride, pad, dilation: int or pair.
    """
    f = Conv2d(stride, pad, dilation, groups)
    return f(x, W) if b is None else f(x, W, b)


class Deconv2d(Function):
    """Transposed convolution (the gradient of conv2d in x), plus bias.

    x (N, C, H, W), W (C, OC/g, KH, KW), b (OC,) -> (N, OC, OH, OW) with
    OH = SH*(H-1) + DH*(KH-1) + 1 - 2*PH unless ``outsize`` picks a larger one (up to
    SH - 1 more, the rows a strided convolution would drop).
    """

    retain_inputs = (0, 1)  # x for gW, W for gx; never b
    retain_outputs = ()

    def __init__(self, stride=1, pad=0, outsize=None, dilation=1, groups=1) -> None:
        geo = Geometry(stride, pad, dilation, groups, "deconv2d")
        self.geometry = geo
        self.stride, self.pad, self.dilation, self.groups = (geo.stride, geo.pad, geo.dilation,
                                                             geo.groups)
        self.outsize = None if outsize is None else pair(outsize)

    def _out_hw(self, in_hw, kernel) -> tuple[int, int]:
        base = tuple(self.stride[a] * (in_hw[a] - 1) + self.dilation[a] * (kernel[a] - 1) + 1
                     - 2 * self.pad[a] for a in range(2))
        if self.outsize is None:
            out = base
        else:
            out = self.outsize
            for a in range(2):
                if not base[a] <= out[a] < base[a] + self.stride[a]:
                    raise ShapeError(
                        f"deconv2d: outsize {out} does not fit input {tuple(in_hw)}, kernel "
                        f"{tuple(kernel)}, stride {self.stride}, pad {self.pad}: each size must "
                        f"lie in [{base[a]}, {base[a] + self.stride[a] - 1}]")
        if min(out) < 1:
            raise ShapeError(f"deconv2d: output size {out} is empty (input {tuple(in_hw)}, "
                             f"kernel {tuple(kernel)}, stride {self.stride}, pad {self.pad})")
        return out

    def forward(self, x, W, b=None):
        _check_conv_inputs("deconv2d", x, W, b, self.groups, transposed=True)
        out_hw = self._out_hw(x.shape[2:], W.shape[2:])
        return _add_bias(conv_transpose(x, W, self.geometry, out_hw), b)

    def backward(self, gy):
        x, W = self.inputs[:2]
        gx = gW = None
        if self.needs_grad(0):
            gx = Conv2d(self.stride, self.pad, self.dilation, self.groups)(gy, W)
        if self.needs_grad(1):
            # deconv2d(x, W) is conv2d's transpose with gy in the role of the image.
            gW = Conv2DGradW(kernel=W.shape[2:], geometry=self.geometry)(gy, x)
        if len(self.inputs) == 2:
            return gx, gW
        gb = BiasGrad()(gy) if self.needs_grad(2) else None
        return gx, gW, gb

    def to_onnx(self, g, x, W, b=None):
        # ONNX ConvTranspose takes zerograd's weight layout (C, OC/groups, KH, KW). Its
        # output is S*(H-1) + D*(K-1) + 1 - 2P + output_padding: the rows ``outsize`` adds
        # beyond the base size are that output_padding.
        in_hw, kernel = self.inputs[0].shape[2:], self.inputs[1].shape[2:]
        out = self._out_hw(in_hw, kernel)
        base = [self.stride[a] * (in_hw[a] - 1) + self.dilation[a] * (kernel[a] - 1) + 1
                - 2 * self.pad[a] for a in range(2)]
        (ph, pw) = self.pad
        return g.op("ConvTranspose", *([x, W] if b is None else [x, W, b]),
                    kernel_shape=list(kernel), strides=list(self.stride),
                    pads=[ph, pw, ph, pw], dilations=list(self.dilation), group=self.groups,
                    output_padding=[out[a] - base[a] for a in range(2)])


def deconv2d(x, W, b=None, stride=1, pad=0, outsize=None, *, dilation=1,
             groups=1) -> Variable:
    """Transposed convolution (the gradient of conv2d with respect to its input), NCHW.

    x (N, C, H, W), W (C, OC/groups, KH, KW) (PyTorch's conv_transpose2d layout), b (OC,) or
    None -> (N, OC, OH, OW) with OH = SH*(H-1) + DH*(KH-1) + 1 - 2PH, or ``outsize`` (OH, OW)
    (at most SH-1 larger; resolves the size a strided conv2d maps onto H).
    """
    f = Deconv2d(stride, pad, outsize, dilation, groups)
    return f(x, W) if b is None else f(x, W, b)


class Conv2DGradW(Function):
    """gW = the weight gradient of a convolution: inputs (x, gy) -> W's shape.

    ``gW[o, c, i, j] = sum_{n, y, x} gy[n, o, y, x] * xpad[n, c, y*SH + i*DH, x*SW + j*DW]``
    (per group). It is bilinear, so its backward is a deconv2d (for x) and a conv2d (for gy):
    differentiable to any order.

    Given explicitly: ``kernel`` (KH, KW), the convolution's ``geometry`` and, optionally,
    ``patches`` = (x, its patch matrix) kept by Conv2d's forward (used if x is that very
    array, then dropped). DeZero's form ``Conv2DGradW(conv)`` reads the kernel size and the
    geometry from the conv op once, here.
    """

    retain_inputs = (0, 1)
    retain_outputs = ()
    saved = ("patches",)

    def __init__(self, conv=None, *, kernel=None, geometry=None, patches=None) -> None:
        if conv is not None:  # DeZero's signature
            kernel = conv.inputs[1].shape[2:]
            geometry = getattr(conv, "geometry", None) or Geometry(
                conv.stride, conv.pad, getattr(conv, "dilation", 1), getattr(conv, "groups", 1))
        if kernel is None or geometry is None:
            raise ValueError("Conv2DGradW: pass the conv op (DeZero's Conv2DGradW(conv)), or "
                             "kernel=(KH, KW) and geometry= explicitly")
        self.kernel = tuple(kernel)
        self.geometry = geometry
        self.patches = patches
        self.stride, self.pad, self.dilation, self.groups = (geometry.stride, geometry.pad,
                                                             geometry.dilation, geometry.groups)

    def forward(self, x, gy):
        _check_grad_weight_inputs(x, gy, self.kernel, self.geometry)
        col = None
        if self.patches is not None and self.patches[0] is x:
            col = self.patches[1]
        self.patches = None  # used once
        return conv_grad_weight(x, gy, self.geometry, self.kernel, col)

    def backward(self, ggW):
        x, gy = self.inputs
        gx = ggy = None
        if self.needs_grad(0):
            gx = Deconv2d(self.stride, self.pad, x.shape[2:], self.dilation,
                          self.groups)(gy, ggW)
        if self.needs_grad(1):
            ggy = Conv2d(self.stride, self.pad, self.dilation, self.groups)(x, ggW)
        return gx, ggy


class Im2col(Function):
    """y = the patches of x (N, C, H, W); see :func:`im2col_array`. Backward: col2im."""

    retain_inputs = ()  # linear: backward reads only the input's shape
    retain_outputs = ()

    def __init__(self, kernel_size, stride, pad, to_matrix: bool, dilation=1) -> None:
        self.kernel_size, self.stride, self.pad = kernel_size, stride, pad
        self.to_matrix, self.dilation = to_matrix, dilation

    def forward(self, x):
        self.input_shape = x.shape
        return im2col_array(x, self.kernel_size, self.stride, self.pad, self.to_matrix,
                            self.dilation)

    def backward(self, gy):
        return col2im(gy, self.input_shape, self.kernel_size, self.stride, self.pad,
                      self.to_matrix, dilation=self.dilation)

    def to_onnx(self, g, x):
        # A grouped Conv whose kernel is the identity copies the patches exactly: output
        # channel c*KH*KW + i*KW + j of group c reads x[c] at window offset (i, j).
        _, C, H, W = self.input_shape
        (KH, KW), stride, pad, dilation = (pair(self.kernel_size), pair(self.stride),
                                           pair(self.pad), pair(self.dilation))
        OH, OW = conv_out_hw("im2col", (H, W), (KH, KW), stride, pad, dilation)
        dtype = self.inputs[0].dtype
        col = g.op("Conv", x, g.constant(_identity_kernel(C, KH, KW, dtype), dtype=dtype),
                   kernel_shape=[KH, KW], strides=list(stride),
                   pads=[pad[0], pad[1], pad[0], pad[1]], dilations=list(dilation), group=C)
        if not self.to_matrix:  # (N, C*KH*KW, OH, OW) -> (N, C, KH, KW, OH, OW)
            return g.op("Reshape", col, g.constant([-1, C, KH, KW, OH, OW]))
        rows = g.op("Transpose", col, perm=[0, 2, 3, 1])  # (N, OH, OW, C*KH*KW)
        return g.op("Reshape", rows, g.constant([-1, C * KH * KW]))


def im2col(x, kernel_size, stride=1, pad=0, to_matrix: bool = True, *, dilation=1) -> Variable:
    """Image patches: x (N, C, H, W) -> (N, C, KH, KW, OH, OW), or the (N*OH*OW, C*KH*KW)
    matrix when ``to_matrix``; ``col[n, c, i, j, y, x] = xpad[n, c, y*S + i*D, x*S + j*D]``
    with zero padding. The gradient is :func:`col2im`."""
    check_window("im2col", kernel=pair(kernel_size), stride=pair(stride), pad=pair(pad),
                  dilation=pair(dilation))
    return Im2col(kernel_size, stride, pad, to_matrix, dilation)(x)


def _identity_kernel(C: int, KH: int, KW: int, dtype) -> np.ndarray:
    """(C*KH*KW, 1, KH, KW) weights: output channel c*KH*KW + k has a single 1 at offset k."""
    eye = np.eye(KH * KW, dtype=dtype).reshape(KH * KW, 1, KH, KW)
    return np.tile(eye, (C, 1, 1, 1))


class Col2im(Function):
    """y = the patches x summed back into an image of ``input_shape``. Backward: im2col."""

    retain_inputs = ()  # linear
    retain_outputs = ()

    def __init__(self, input_shape, kernel_size, stride, pad, to_matrix: bool,
                 dilation=1) -> None:
        self.input_shape = tuple(input_shape)
        self.kernel_size, self.stride, self.pad = kernel_size, stride, pad
        self.to_matrix, self.dilation = to_matrix, dilation

    def forward(self, x):
        return col2im_array(x, self.input_shape, self.kernel_size, self.stride, self.pad,
                            self.to_matrix, self.dilation)

    def backward(self, gy):
        return im2col(gy, self.kernel_size, self.stride, self.pad, self.to_matrix,
                      dilation=self.dilation)

    def to_onnx(self, g, x):
        # im2col's adjoint: a grouped ConvTranspose with the identity kernel adds every
        # patch element back where it came from; output_padding restores the rows and
        # columns no window reached.
        _, C, H, W = self.input_shape
        (KH, KW), stride, pad, dilation = (pair(self.kernel_size), pair(self.stride),
                                           pair(self.pad), pair(self.dilation))
        OH, OW = conv_out_hw("col2im", (H, W), (KH, KW), stride, pad, dilation)
        dtype = self.inputs[0].dtype
        if self.to_matrix:  # (N*OH*OW, C*KH*KW) -> (N, C*KH*KW, OH, OW)
            x = g.op("Transpose", g.op("Reshape", x, g.constant([-1, OH, OW, C * KH * KW])),
                     perm=[0, 3, 1, 2])
        else:
            x = g.op("Reshape", x, g.constant([-1, C * KH * KW, OH, OW]))
        base = [stride[a] * (n - 1) + dilation[a] * (k - 1) + 1 - 2 * pad[a]
                for a, (n, k) in enumerate(((OH, KH), (OW, KW)))]
        return g.op("ConvTranspose", x,
                    g.constant(_identity_kernel(C, KH, KW, dtype), dtype=dtype),
                    kernel_shape=[KH, KW], strides=list(stride),
                    pads=[pad[0], pad[1], pad[0], pad[1]], dilations=list(dilation), group=C,
                    output_padding=[H - base[0], W - base[1]])


def col2im(x, input_shape, kernel_size, stride=1, pad=0, to_matrix: bool = True, *,
           dilation=1) -> Variable:
    """The adjoint of :func:`im2col`: patches (N, C, KH, KW, OH, OW) or (N*OH*OW, C*KH*KW)
    summed back into an image of ``input_shape`` (N, C, H, W)."""
    check_window("col2im", kernel=pair(kernel_size), stride=pair(stride), pad=pair(pad),
                  dilation=pair(dilation))
    return Col2im(input_shape, kernel_size, stride, pad, to_matrix, dilation)(x)


# -- composed and 1-D convolutions -----------------------------------------------------------
def conv2d_simple(x, W, b=None, stride=1, pad=0) -> Variable:
    """conv2d composed of differentiable nodes, as in DeZero's book (step 57):
    ``im2col(x)`` (N*OH*OW, C*KH*KW) @ ``W.reshape(OC, -1).T`` + b, reshaped to NCHW.
    Same values and shapes as :func:`conv2d`; slower and heavier (kept for teaching)."""
    if x.ndim != 4 or W.ndim != 4:
        raise ShapeError(f"conv2d_simple: x must be 4-D (N, C, H, W) and W 4-D (OC, C, KH, KW), "
                         f"got x {describe([x])} and W {describe([W])}")
    N, C, H, Wd = x.shape
    OC, _, KH, KW = W.shape
    stride_p, pad_p = pair(stride), pair(pad)
    OH, OW = conv_out_hw("conv2d_simple", (H, Wd), (KH, KW), stride_p, pad_p, (1, 1))
    col = im2col(x, (KH, KW), stride, pad, to_matrix=True)
    t = matmul(col, transpose(reshape(W, (OC, -1))))
    if b is not None:
        t = t + b
    return transpose(reshape(t, (N, OH, OW, OC)), (0, 3, 1, 2))


def _one(op: str, name: str, value) -> int:
    if isinstance(value, (tuple, list)):
        if len(value) != 1:
            raise ValueError(f"{op}: {name} must be an int or a 1-tuple, got {value!r}")
        value = value[0]
    if not isinstance(value, (int, np.integer)):
        raise ValueError(f"{op}: {name} must be an int, got {value!r}")
    return int(value)


def conv1d(x, W, b=None, stride=1, pad=0, dilation=1, groups=1) -> Variable:
    """1-D convolution (cross-correlation): x (N, C, L), W (OC, C/groups, K), b (OC,) or
    None -> (N, OC, OL), OL = (L + 2P - D*(K-1) - 1) // S + 1. Runs as a conv2d of height 1."""
    if x.ndim != 3 or W.ndim != 3:
        raise ShapeError(f"conv1d: x must be 3-D (N, C, L) and W 3-D (OC, C/groups, K), got "
                         f"x {describe([x])} and W {describe([W])}")
    s, p, d = (_one("conv1d", "stride", stride), _one("conv1d", "pad", pad),
               _one("conv1d", "dilation", dilation))
    N, C, L = x.shape
    OC, Cg, K = W.shape
    y = conv2d(reshape(x, (N, C, 1, L)), reshape(W, (OC, Cg, 1, K)), b, (1, s), (0, p),
               dilation=(1, d), groups=groups)
    return reshape(y, (N, OC, y.shape[3]))
