"""Convolution: im2col/col2im, conv2d, deconv2d (transposed convolution), conv1d.

Layouts (NCHW, as DeZero): x is (N, C, H, W); a convolution weight W is
(OC, C / groups, KH, KW); a transposed-convolution weight is (C, OC / groups, KH, KW).

How it is fast: the patches of x are read through a strided *view* (no Python loop, no
copy) and copied once into a (groups, C/g*KH*KW, N*OH*OW) matrix; one matrix product per
group (not one per image) gives y, laid out channel-major (OC, N, OH, OW) and returned as
its NCHW view. With stride 1 the patches are copied as whole padded rows (long contiguous
runs; the few extra columns are dropped). The input gradient is a flipped convolution or a
scatter-add over the KH*KW kernel offsets (one strided or contiguous add over the whole
batch each), whichever copies less; the bias rides in the product as a row of ones.

Gradients are written with differentiable ops (``gx`` is a transposed convolution, ``gW`` is
:class:`Conv2DGradW`, whose backward is again conv2d/deconv2d), so derivatives of any order
work (DeZero's third-order gradient fails, its bug 6).
"""

from __future__ import annotations

import threading

import numpy as np

from zerograd._config import _state
from zerograd.backend import get_array_module
from zerograd.backend.array_utils import get_conv_outsize, pair
from zerograd.core.broadcast import broadcast_to
from zerograd.core.function import Function
from zerograd.core.variable import Variable
from zerograd.errors import DTypeError, ShapeError, describe
from zerograd.ops.linalg import matmul
from zerograd.ops.shape import reshape, transpose

__all__ = ["im2col", "col2im", "conv2d", "conv2d_simple", "deconv2d", "conv1d",
           "Im2col", "Col2im", "Conv2d", "Deconv2d", "Conv2DGradW", "BiasGrad"]


# -- array level --------------------------------------------------------------------------
def pad_image(x, pad_h: tuple[int, int], pad_w: tuple[int, int], value: float = 0.0):
    """x (N, C, H, W) with ``pad_h`` = (top, bottom) rows and ``pad_w`` = (left, right)
    columns of ``value`` around each image; ``x`` itself when there is nothing to add."""
    if pad_h == (0, 0) and pad_w == (0, 0):
        return x
    xp = get_array_module(x)
    N, C, H, W = x.shape
    shape = (N, C, H + pad_h[0] + pad_h[1], W + pad_w[0] + pad_w[1])
    # zeros() is a lazily zeroed allocation: cheaper than full() for the common case.
    out = xp.zeros(shape, dtype=x.dtype) if value == 0 else xp.full(shape, value, dtype=x.dtype)
    out[:, :, pad_h[0]:pad_h[0] + H, pad_w[0]:pad_w[0] + W] = x
    return out


def window_view(x_padded, kernel: tuple[int, int], out_hw: tuple[int, int],
                stride: tuple[int, int], dilation: tuple[int, int] = (1, 1)):
    """Read-only strided view (N, C, KH, KW, OH, OW) of a padded batch, without copying:
    ``view[n, c, i, j, y, x] = x_padded[n, c, y*SH + i*DH, x*SW + j*DW]``."""
    N, C = x_padded.shape[:2]
    s_n, s_c, s_h, s_w = x_padded.strides
    shape = (N, C, kernel[0], kernel[1], out_hw[0], out_hw[1])
    strides = (s_n, s_c, s_h * dilation[0], s_w * dilation[1], s_h * stride[0], s_w * stride[1])
    return strided_view(x_padded, shape, strides)


def strided_view(a, shape, strides):
    """A read-only view of ``a`` with the given shape and byte strides (no copy)."""
    xp = get_array_module(a)
    if xp is np:
        return np.lib.stride_tricks.as_strided(a, shape, strides, writeable=False)
    return xp.lib.stride_tricks.as_strided(a, shape, strides)


def scatter_windows(col, padded_hw: tuple[int, int], stride: tuple[int, int],
                    dilation: tuple[int, int] = (1, 1)):
    """The adjoint of :func:`window_view`: a zero padded batch (N, C, HP, WP) with every
    patch of ``col`` (N, C, KH, KW, OH, OW) added back where it was read from.

    One strided add per kernel offset (KH*KW of them), each over the whole batch."""
    xp = get_array_module(col)
    N, C, KH, KW, OH, OW = col.shape
    sh, sw = stride
    dh, dw = dilation
    img = xp.zeros((N, C, padded_hw[0], padded_hw[1]), dtype=col.dtype)
    for i in range(KH):
        top = i * dh
        rows = slice(top, top + sh * (OH - 1) + 1, sh)
        for j in range(KW):
            left = j * dw
            img[:, :, rows, left:left + sw * (OW - 1) + 1:sw] += col[:, :, i, j]
    return img


def crop_image(img, pad_h: int, pad_w: int, hw: tuple[int, int]):
    """The (H, W) interior of a padded batch, as a compact array in img's memory order."""
    if img.shape[2:] == tuple(hw):
        return img
    return img[:, :, pad_h:pad_h + hw[0], pad_w:pad_w + hw[1]].copy(order="K")


def _check_window(op: str, **pairs) -> None:
    """Each (h, w) pair at least its minimum: kernel, stride, dilation >= 1 and pad >= 0.
    A zero stride would divide by zero in the output size, a zero kernel give no patches."""
    for name, value in pairs.items():
        low = 0 if name == "pad" else 1
        if min(value) < low:
            described = ", ".join(f"{k} {v}" for k, v in pairs.items())
            raise ValueError(f"{op}: {name} must be >= {low} in both directions, got "
                             f"{name}={value} ({described})")


def _out_hw(op: str, hw, kernel, stride, pad, dilation) -> tuple[int, int]:
    _check_window(op, kernel=kernel, stride=stride, pad=pad, dilation=dilation)
    out = tuple(get_conv_outsize(hw[a], kernel[a], stride[a], pad[a], dilation[a])
                for a in range(2))
    if out[0] < 1 or out[1] < 1:
        raise ShapeError(
            f"{op}: a {kernel[0]}x{kernel[1]} kernel (dilation {dilation}) does not fit an "
            f"{hw[0]}x{hw[1]} input with pad {pad} and stride {stride}: output would be "
            f"{out[0]}x{out[1]}"
        )
    return out


def im2col_array(img, kernel_size, stride, pad, to_matrix: bool = True, dilation=1):
    """Image patches of ``img`` (N, C, H, W) as a new array.

    Returns (N, C, KH, KW, OH, OW), or with ``to_matrix`` the (N*OH*OW, C*KH*KW) matrix
    whose rows are the patches (DeZero's layout). Zero padding.
    """
    kernel, stride, pad, dilation = pair(kernel_size), pair(stride), pair(pad), pair(dilation)
    if img.ndim != 4:
        raise ShapeError(f"im2col: img must be 4-D (N, C, H, W), got {describe([img])}")
    N, C, H, W = img.shape
    OH, OW = _out_hw("im2col", (H, W), kernel, stride, pad, dilation)
    padded = pad_image(img, (pad[0], pad[0]), (pad[1], pad[1]))
    col = window_view(padded, kernel, (OH, OW), stride, dilation)
    if to_matrix:
        # copy() lays the transposed view out contiguously; the reshape is then free.
        # The row length spelled out: -1 cannot be inferred from an empty batch.
        rows = N * OH * OW
        return col.transpose(0, 4, 5, 1, 2, 3).copy().reshape(rows, C * kernel[0] * kernel[1])
    return col.copy()


def col2im_array(col, img_shape, kernel_size, stride, pad, to_matrix: bool = True,
                 dilation=1):
    """Sum the patches ``col`` back into an image of ``img_shape`` (N, C, H, W): the
    adjoint of :func:`im2col_array` (overlapping patches add up).

    col: (N, C, KH, KW, OH, OW), or the (N*OH*OW, C*KH*KW) matrix when ``to_matrix``.
    """
    kernel, stride, pad, dilation = pair(kernel_size), pair(stride), pair(pad), pair(dilation)
    N, C, H, W = img_shape
    OH, OW = _out_hw("col2im", (H, W), kernel, stride, pad, dilation)
    expected = ((N * OH * OW, C * kernel[0] * kernel[1]) if to_matrix
                else (N, C, kernel[0], kernel[1], OH, OW))
    if tuple(col.shape) != expected:
        raise ShapeError(f"col2im: col has shape {tuple(col.shape)}; for img_shape "
                         f"{tuple(img_shape)} and kernel {kernel} expected {expected}")
    if to_matrix:
        col = col.reshape(N, OH, OW, C, kernel[0], kernel[1]).transpose(0, 3, 4, 5, 1, 2)
    padded = scatter_windows(col, (H + 2 * pad[0], W + 2 * pad[1]), stride, dilation)
    return crop_image(padded, pad[0], pad[1], (H, W))


# -- the three array kernels of a convolution ----------------------------------------------
class _Geometry:
    """stride, pad, dilation (pairs) and groups of a convolution."""

    def __init__(self, stride, pad, dilation, groups, op: str = "conv2d") -> None:
        self.stride = pair(stride)
        self.pad = pair(pad)
        self.dilation = pair(dilation)
        if not isinstance(groups, (int, np.integer)) or groups < 1:
            raise ValueError(f"{op}: groups must be a positive int, got {groups!r}")
        self.groups = int(groups)
        _check_window(op, stride=self.stride, pad=self.pad, dilation=self.dilation)

    def row_length(self, in_w: int, out_w: int) -> int:
        """Columns per output row in the patch matrix: the padded width for stride 1 (see
        :meth:`patches`), else the output width."""
        return in_w + 2 * self.pad[1] if self.stride == (1, 1) else out_w

    def wide_grad(self, rows: int, out_channels: int) -> bool:
        """Whether the weight gradient pairs whole-row patches with gy widened to match
        (stride 1 and at least as many patch rows as gy has channels per group); else it
        uses compact patches, which then copy less than widening gy would."""
        return self.stride == (1, 1) and rows >= out_channels

    def patches(self, x, kernel, out_hw, ones_row: bool = False, scratch: bool = False,
                wide: bool = True):
        """(groups, C/g*KH*KW [+ 1], N*OH*L): the patch matrix of x, rows (c, i, j) and
        columns (n, y, x), copied once from a strided view; L is :meth:`row_length`.

        With stride 1, kernel offset (i, j) reads whole padded rows: for each image and
        channel the run of OH*WP elements starting at (i*DH, j*DW) of the flattened padded
        image. The copy then moves long contiguous runs instead of OW-long pieces; the
        WP - OW extra columns per row are junk that the caller drops (forward) or multiplies
        by zeros (weight gradient). With ``ones_row`` each group gets a last row of ones, so
        that a bias rides along in the product instead of costing a pass over the output.
        ``scratch``: the result may live in the per-thread scratch buffer (a temporary).
        ``wide=False`` forces compact patches (row length OW) for stride 1 too.
        """
        (ph, pw), (KH, KW), (OH, OW) = self.pad, kernel, out_hw
        N, C = x.shape[:2]
        g, Cg = self.groups, C // self.groups
        rows = Cg * KH * KW
        xp = get_array_module(x)
        # One copy per kernel offset (KH*KW of them, each over the whole batch): NumPy moves
        # these 4-D blocks about twice as fast as one 6-D transposing copy.
        dh, dw = self.dilation
        if self.stride == (1, 1) and wide:
            # One spare row at the bottom keeps the last offsets' runs inside each image.
            padded = pad_image(x, (ph, ph + 1), (pw, pw))
            WP = padded.shape[3]
            run = OH * WP
            flat = padded.reshape(N, g, Cg, -1)
            col = _new_array(xp, (g, rows + ones_row, N, run), x.dtype,
                             "patches" if scratch else None)
            blocks = col[:, :rows].reshape(g, Cg, KH, KW, N, run)
            for i in range(KH):
                for j in range(KW):
                    start = i * dh * WP + j * dw
                    blocks[:, :, i, j] = flat[..., start:start + run].transpose(1, 2, 0, 3)
        else:
            padded = pad_image(x, (ph, ph), (pw, pw))
            padded = padded.reshape(N, g, Cg, *padded.shape[2:])
            sh, sw = self.stride
            col = _new_array(xp, (g, rows + ones_row, N, OH * OW), x.dtype,
                             "patches" if scratch else None)
            blocks = col[:, :rows].reshape(g, Cg, KH, KW, N, OH, OW)
            for i in range(KH):
                for j in range(KW):
                    window = padded[..., i * dh:i * dh + sh * (OH - 1) + 1:sh,
                                    j * dw:j * dw + sw * (OW - 1) + 1:sw]
                    blocks[:, :, i, j] = window.transpose(1, 2, 0, 3, 4)
        if ones_row:
            col[:, rows] = 1
        return col.reshape(g, rows + ones_row, -1)


# Patches up to this size are kept from forward for the weight gradient (saving one im2col);
# larger ones are recomputed, so that activations stay O(input) for big images.
PATCH_CACHE_BYTES = 32 * 2**20
# Temporaries up to this size reuse one buffer per thread and purpose.
SCRATCH_BYTES = 64 * 2**20
_scratch = threading.local()


def _new_array(xp, shape, dtype, scratch: str | None = None):
    """An uninitialised array; with ``scratch`` (a purpose: "patches", "gy", "product") and
    NumPy, at most SCRATCH_BYTES, a view of a buffer this thread reuses for every temporary
    of that purpose. A fresh multi-megabyte array costs a page fault per 4 KiB on first
    touch (on this project's VMs as much as the copy or product that fills it); a reused
    buffer's pages stay mapped. Each purpose has at most one live array at a time: every
    such temporary dies inside the op that made it."""
    nbytes = int(np.prod(shape)) * np.dtype(dtype).itemsize
    if scratch is None or xp is not np or nbytes > SCRATCH_BYTES:
        return xp.empty(shape, dtype=dtype)
    buffer = getattr(_scratch, scratch, None)
    if buffer is None or buffer.nbytes < nbytes:
        buffer = np.empty(nbytes, dtype=np.uint8)
        setattr(_scratch, scratch, buffer)
    return buffer[:nbytes].view(dtype).reshape(shape)


def _product(a, b, scratch: str | None = None):
    """``a @ b``; with ``scratch`` the result is a temporary in that scratch buffer."""
    xp = get_array_module(b)
    if scratch is None or xp is not np:
        return xp.matmul(a, b)
    shape = np.broadcast_shapes(a.shape[:-2], b.shape[:-2]) + (a.shape[-2], b.shape[-1])
    out = _new_array(xp, shape, np.result_type(a.dtype, b.dtype), scratch)
    return xp.matmul(a, b, out=out)


def channel_major(a, groups: int = 1):
    """a (N, C, H, W) as the (groups, C/groups, N*H*W) matrix stack; free when ``a`` is
    already laid out channel-major (as conv2d's outputs and the gradients flowing into
    them often are), one copy otherwise."""
    N, C = a.shape[:2]
    return a.transpose(1, 0, 2, 3).reshape(groups, C // groups, -1)


def _conv_forward(x, W, b, geo: _Geometry, out_hw, scratch: bool = True):
    """y (N, OC, OH, OW) = the cross-correlation of x (N, C, H, W) with W (OC, C/g, KH, KW),
    plus b (OC,) if given; also returns the patch matrix used (in the scratch buffer if
    ``scratch``: then it is only valid until the next patch matrix is built).

    One matrix product per group, (OC/g, K) @ (K, N*OH*OW): large enough for BLAS to run
    at full speed and to need one thread synchronisation, not one per image. Its result
    is laid out (OC, N, OH, OW); y is returned as the (N, OC, OH, OW) *view* of it, which
    elementwise ops preserve, so that the gradient arrives channel-major too."""
    N = x.shape[0]
    OC, Cg, KH, KW = W.shape
    g = geo.groups
    if N == 0:  # an empty batch: the empty output of the right shape (as PyTorch)
        return get_array_module(x).zeros((0, OC) + tuple(out_hw), x.dtype), None
    col = geo.patches(x, (KH, KW), out_hw, ones_row=b is not None, scratch=scratch)
    Wm = W.reshape(g, OC // g, Cg * KH * KW)
    if b is not None:
        xp = get_array_module(W)
        Wm = xp.concatenate([Wm, b.reshape(g, OC // g, 1).astype(W.dtype, copy=False)], axis=2)
    row_length = geo.row_length(x.shape[3], out_hw[1])
    y = xp_matmul(Wm, col).reshape(OC, N, out_hw[0], row_length)
    if row_length != out_hw[1]:
        y = y[..., :out_hw[1]]  # drop the junk columns of whole-row patches
    return y.transpose(1, 0, 2, 3), col


def _conv_transpose(y, W, geo: _Geometry, in_hw):
    """The adjoint of ``_conv_forward`` in x: y (N, OC, OH, OW) -> x-shaped (N, C, H, W)."""
    N, OC, OH, OW = y.shape
    _, Cg, KH, KW = W.shape
    g = geo.groups
    if N == 0:  # an empty batch (every path below lays the batch out in its products)
        return get_array_module(y).zeros((0, g * Cg) + tuple(in_hw), y.dtype)
    (ph, pw), (dh, dw) = geo.pad, geo.dilation
    full_h, full_w = dh * (KH - 1), dw * (KW - 1)
    C = g * Cg
    # Three ways, picked by what they copy (measured on (N, C, H) = (64, 3, 32), (100, 16,
    # 14), (32, 64, 16), (100, 32, 14) with 3x3 kernels):
    stride_one = geo.stride == (1, 1)
    if stride_one and ph <= full_h and pw <= full_w and OC <= C:
        # 1. With stride 1 the transpose is itself a convolution: of y padded by
        # D*(K-1) - P, with W flipped in space and its channel axes swapped (per group).
        # Best when y has no more channels than the result (its patches are the smaller).
        flipped = W.reshape(g, OC // g, Cg, KH, KW).transpose(0, 2, 1, 3, 4)[..., ::-1, ::-1]
        flipped = flipped.reshape(C, OC // g, KH, KW)
        as_conv = _Geometry(1, (full_h - ph, full_w - pw), geo.dilation, g, "deconv2d")
        return _conv_forward(y, flipped, None, as_conv, tuple(in_hw))[0]
    wt = W.reshape(g, OC // g, Cg * KH * KW).transpose(0, 2, 1)
    if stride_one and C * KH * KW >= 2 * OC:
        # 2. W^T @ y with y widened to whole padded rows, then one long contiguous add per
        # kernel offset: best when the result's patches (C*KH*KW rows) outweigh y's rows.
        col = _product(wt, _gy_matrix(y, g, in_hw[1] + 2 * pw), "product")
        return _wide_scatter(col, N, (KH, KW), geo, in_hw)
    # 3. W^T @ y, then a strided add per kernel offset (short inner loops, but no copy of y).
    col = _product(wt, _gy_matrix(y, g, OW), "product")  # (g, Cg*KH*KW, N*P), a temporary
    col = col.reshape(C, KH, KW, N, OH, OW).transpose(3, 0, 1, 2, 4, 5)
    padded = scatter_windows(col, (in_hw[0] + 2 * ph, in_hw[1] + 2 * pw), geo.stride,
                             geo.dilation)
    return crop_image(padded, ph, pw, in_hw)


def _wide_scatter(col, N: int, kernel, geo: _Geometry, in_hw):
    """The adjoint of the whole-row patches (stride 1): col (g, C/g*KH*KW, N*OH*WP), junk
    columns zero, added back into the flattened padded images, one contiguous run of
    OH*WP elements per kernel offset (long inner loops). Returns x-shaped (N, C, H, W), a
    channel-major view."""
    xp = get_array_module(col)
    (KH, KW), (ph, pw), (dh, dw) = kernel, geo.pad, geo.dilation
    H, W = in_hw
    HP, WP = H + 2 * ph, W + 2 * pw
    C = col.shape[0] * col.shape[1] // (KH * KW)
    run = col.shape[2] // N
    col = col.reshape(C, KH, KW, N, run)
    flat = xp.zeros((C, N, (HP + 1) * WP), dtype=col.dtype)  # + the spare row of patches()
    for i in range(KH):
        for j in range(KW):
            start = i * dh * WP + j * dw
            flat[:, :, start:start + run] += col[:, i, j]
    img = flat[:, :, :HP * WP].reshape(C, N, HP, WP)[:, :, ph:ph + H, pw:pw + W]
    return img.transpose(1, 0, 2, 3)


def _gy_matrix(gy, groups: int, row_length: int):
    """gy (N, OC, OH, OW) as the (groups, OC/g, N*OH*row_length) matrix stack that pairs
    with patch matrices of that row length (zeros in the junk columns of whole-row
    patches): a view when gy is already so laid out, else a copy in the "gy" scratch."""
    N, OC, OH, OW = gy.shape
    if row_length == OW and gy.transpose(1, 0, 2, 3).flags.c_contiguous:
        return channel_major(gy, groups)  # already laid out so: free
    xp = get_array_module(gy)
    wide = _new_array(xp, (OC, N, OH, row_length), gy.dtype, "gy")  # a temporary
    wide[..., OW:] = 0
    wide[..., :OW] = gy.transpose(1, 0, 2, 3)
    return wide.reshape(groups, OC // groups, -1)


def _conv_grad_weight(x, gy, geo: _Geometry, kernel, col=None):
    """gW (OC, C/g, KH, KW) = sum over n and output pixels of gy times the patch of x:
    one product (OC/g, N*P) @ (N*P, K) per group. ``col``: x's patch matrix from forward,
    if kept (a trailing ones row is ignored)."""
    N, OC, OH, OW = gy.shape
    g = geo.groups
    Cg = x.shape[1] // g
    if N == 0:  # an empty batch contributes nothing to the weight gradient
        return get_array_module(gy).zeros((OC, Cg) + tuple(kernel), gy.dtype)
    rows = Cg * kernel[0] * kernel[1]
    wide = geo.wide_grad(rows, OC // g)
    if col is None or not wide and geo.stride == (1, 1):
        col = geo.patches(x, kernel, (OH, OW), scratch=True, wide=wide)
    row_length = geo.row_length(x.shape[3], OW) if wide else OW
    gy_matrix = _gy_matrix(gy, g, row_length)
    if rows >= TRANSPOSED_GRAD_ROWS:
        # col @ gy^T, then the small (K, OC/g) result transposed: OpenBLAS runs this long
        # inner dimension 1.3-1.6x faster with the patch rows as the product's rows.
        gW_t = xp_matmul(col[:, :rows], gy_matrix.transpose(0, 2, 1))
        gW = get_array_module(gW_t).ascontiguousarray(gW_t.transpose(0, 2, 1))  # small
    else:
        gW = xp_matmul(gy_matrix, col[:, :rows].transpose(0, 2, 1))
    return gW.reshape(OC, Cg, kernel[0], kernel[1])


# The weight gradient is computed as (patches @ gy^T)^T from this many patch rows on
# (measured: 144 rows 1.6x faster, 288 rows 1.4-1.6x; 9 rows 5-10% slower).
TRANSPOSED_GRAD_ROWS = 16


def xp_matmul(a, b):
    """``a @ b`` with the arrays' own module (NumPy or CuPy)."""
    return get_array_module(b).matmul(a, b)


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


def _add_bias(y, b):
    if b is not None:
        y += b.reshape(1, -1, 1, 1).astype(y.dtype, copy=False)
    return y


class BiasGrad(Function):
    """gb = gy summed over the batch and the pixels: (N, OC, H, W) -> (OC,).
    A matrix-vector product with ones (faster than ndarray.sum over three axes)."""

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
    """

    def __init__(self, stride=1, pad=0, dilation=1, groups=1) -> None:
        geo = _Geometry(stride, pad, dilation, groups, "conv2d")
        self.geometry = geo
        self.stride, self.pad, self.dilation, self.groups = (geo.stride, geo.pad, geo.dilation,
                                                             geo.groups)

    def forward(self, x, W, b=None):
        _check_conv_inputs("conv2d", x, W, b, self.groups, transposed=False)
        out_hw = _out_hw("conv2d", x.shape[2:], W.shape[2:], self.stride, self.pad,
                         self.dilation)
        geo = self.geometry
        rows = W.shape[1] * W.shape[2] * W.shape[3]
        columns = x.shape[0] * out_hw[0] * geo.row_length(x.shape[3], out_hw[1])
        # Keep the patches for gW if they are small and in the layout gW will use.
        keep = (_state.enable_backprop
                and self.groups * (rows + 1) * columns * x.dtype.itemsize <= PATCH_CACHE_BYTES
                and (geo.stride != (1, 1) or geo.wide_grad(rows, W.shape[0] // self.groups)))
        y, col = _conv_forward(x, W, b, geo, out_hw, scratch=not keep)
        if keep:
            self.patches = (x, col)  # Conv2DGradW reuses them if x is still this array
        return y

    def backward(self, gy):
        x, W = self.inputs[:2]
        gx = gW = None
        if self.needs_grad(0):
            gx = Deconv2d(self.stride, self.pad, x.shape[2:], self.dilation, self.groups)(gy, W)
        if self.needs_grad(1):
            gW = Conv2DGradW(self)(x, gy)
        self.patches = None  # used once; a second backward recomputes them
        if len(self.inputs) == 2:
            return gx, gW
        gb = BiasGrad()(gy) if self.needs_grad(2) else None
        return gx, gW, gb


class Deconv2d(Function):
    """Transposed convolution (the gradient of conv2d in x), plus bias.

    x (N, C, H, W), W (C, OC/g, KH, KW), b (OC,) -> (N, OC, OH, OW) with
    OH = SH*(H-1) + DH*(KH-1) + 1 - 2*PH unless ``outsize`` picks a larger one (up to
    SH - 1 more, the rows a strided convolution would drop).
    """

    def __init__(self, stride=1, pad=0, outsize=None, dilation=1, groups=1) -> None:
        geo = _Geometry(stride, pad, dilation, groups, "deconv2d")
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
        return _add_bias(_conv_transpose(x, W, self.geometry, out_hw), b)

    def backward(self, gy):
        x, W = self.inputs[:2]
        gx = gW = None
        if self.needs_grad(0):
            gx = Conv2d(self.stride, self.pad, self.dilation, self.groups)(gy, W)
        if self.needs_grad(1):
            # deconv2d(x, W) is conv2d's transpose with gy in the role of the image.
            gW = Conv2DGradW(self)(gy, x)
        if len(self.inputs) == 2:
            return gx, gW
        gb = BiasGrad()(gy) if self.needs_grad(2) else None
        return gx, gW, gb


class Conv2DGradW(Function):
    """gW = the weight gradient of a convolution: inputs (x, gy) -> W's shape.

    ``gW[o, c, i, j] = sum_{n, y, x} gy[n, o, y, x] * xpad[n, c, y*SH + i*DH, x*SW + j*DW]``
    (per group). ``conv`` is the Conv2d or Deconv2d whose weight this is. It is bilinear, so
    its backward is a deconv2d (for x) and a conv2d (for gy): differentiable to any order.
    """

    def __init__(self, conv) -> None:
        W = conv.inputs[1]
        self.kernel = tuple(W.shape[2:])
        self.cached_patches = getattr(conv, "patches", None)
        self.geometry = conv.geometry
        self.stride, self.pad, self.dilation, self.groups = (conv.stride, conv.pad,
                                                             conv.dilation, conv.groups)

    def forward(self, x, gy):
        col = None
        if self.cached_patches is not None and self.cached_patches[0] is x:
            col = self.cached_patches[1]
        self.cached_patches = None
        return _conv_grad_weight(x, gy, self.geometry, self.kernel, col)

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


class Col2im(Function):
    """y = the patches x summed back into an image of ``input_shape``. Backward: im2col."""

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


# -- public functions ----------------------------------------------------------------------
def im2col(x, kernel_size, stride=1, pad=0, to_matrix: bool = True, *, dilation=1) -> Variable:
    """Image patches: x (N, C, H, W) -> (N, C, KH, KW, OH, OW), or the (N*OH*OW, C*KH*KW)
    matrix when ``to_matrix``; ``col[n, c, i, j, y, x] = xpad[n, c, y*S + i*D, x*S + j*D]``
    with zero padding. The gradient is :func:`col2im`."""
    _check_window("im2col", kernel=pair(kernel_size), stride=pair(stride), pad=pair(pad),
                  dilation=pair(dilation))
    return Im2col(kernel_size, stride, pad, to_matrix, dilation)(x)


def col2im(x, input_shape, kernel_size, stride=1, pad=0, to_matrix: bool = True, *,
           dilation=1) -> Variable:
    """The adjoint of :func:`im2col`: patches (N, C, KH, KW, OH, OW) or (N*OH*OW, C*KH*KW)
    summed back into an image of ``input_shape`` (N, C, H, W)."""
    _check_window("col2im", kernel=pair(kernel_size), stride=pair(stride), pad=pair(pad),
                  dilation=pair(dilation))
    return Col2im(input_shape, kernel_size, stride, pad, to_matrix, dilation)(x)


def conv2d(x, W, b=None, stride=1, pad=0, *, dilation=1, groups=1) -> Variable:
    """2-D convolution (cross-correlation, as every DL framework), NCHW.

    ``y[n, o, y, x] = b[o] + sum_{c, i, j} W[o, c, i, j] * xpad[n, g*C/g + c, y*SH + i*DH,
    x*SW + j*DW]`` where g is o's group. x (N, C, H, W), W (OC, C/groups, KH, KW),
    b (OC,) or None -> (N, OC, OH, OW), OH = (H + 2PH - DH*(KH-1) - 1) // SH + 1.
    stride, pad, dilation: int or pair.
    """
    f = Conv2d(stride, pad, dilation, groups)
    return f(x, W) if b is None else f(x, W, b)


def deconv2d(x, W, b=None, stride=1, pad=0, outsize=None, *, dilation=1,
             groups=1) -> Variable:
    """Transposed convolution (the gradient of conv2d with respect to its input), NCHW.

    x (N, C, H, W), W (C, OC/groups, KH, KW) (PyTorch's conv_transpose2d layout), b (OC,) or
    None -> (N, OC, OH, OW) with OH = SH*(H-1) + DH*(KH-1) + 1 - 2PH, or ``outsize`` (OH, OW)
    (at most SH-1 larger; resolves the size a strided conv2d maps onto H).
    """
    f = Deconv2d(stride, pad, outsize, dilation, groups)
    return f(x, W) if b is None else f(x, W, b)


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
    OH, OW = _out_hw("conv2d_simple", (H, Wd), (KH, KW), stride_p, pad_p, (1, 1))
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
