"""Array kernels of convolution (no graph): patches, their adjoint, the three products.

Layouts (NCHW, as DeZero): x is (N, C, H, W); a convolution weight W is
(OC, C / groups, KH, KW); a transposed-convolution weight is (C, OC / groups, KH, KW).

How it is fast: the patches of x are read through a strided *view* (no Python loop, no
copy) and copied once into a (groups, C/g*KH*KW, N*OH*OW) matrix; one matrix product per
group (not one per image) gives y, laid out channel-major (OC, N, OH, OW) and returned as
its NCHW view. With stride 1 the patches are copied as whole padded rows (long contiguous
runs; the few extra columns are dropped). The input gradient is a flipped convolution or a
scatter-add over the KH*KW kernel offsets (one strided or contiguous add over the whole
batch each), whichever copies less; the bias rides in the product as a row of ones.

With the compiled kernels (``zerograd._fast.im2col``, for arrays in the range of
``zerograd._fast.THRESHOLDS["conv_patches"]``) the patches are compact for stride 1 too
(no extra columns for the products to carry, y a compact channel-major array, gy used as
it is), and the input gradient's scatter-add is compiled; see :meth:`Geometry.compact`.

The ops built on these (``Conv2d``, ``Deconv2d``, ``Conv2DGradW``, ``Im2col``, pooling) live
in ``ops/conv.py`` and ``ops/pooling.py``.
"""

from __future__ import annotations

import threading

import numpy as np

import zerograd._fast as fast
from zerograd.backend import get_array_module
from zerograd.backend.array_utils import get_conv_outsize, pair
from zerograd.errors import ShapeError, describe


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


def check_window(op: str, **pairs) -> None:
    """Each (h, w) pair at least its minimum: kernel, stride, dilation >= 1 and pad >= 0.
    A zero stride would divide by zero in the output size, a zero kernel give no patches."""
    for name, value in pairs.items():
        low = 0 if name == "pad" else 1
        if min(value) < low:
            described = ", ".join(f"{k} {v}" for k, v in pairs.items())
            raise ValueError(f"{op}: {name} must be >= {low} in both directions, got "
                             f"{name}={value} ({described})")


def conv_out_hw(op: str, hw, kernel, stride, pad, dilation) -> tuple[int, int]:
    check_window(op, kernel=kernel, stride=stride, pad=pad, dilation=dilation)
    out = tuple(get_conv_outsize(hw[a], kernel[a], stride[a], pad[a], dilation[a])
                for a in range(2))
    if out[0] < 1 or out[1] < 1:
        raise ShapeError(
            f"{op}: a {kernel[0]}x{kernel[1]} kernel (dilation {dilation}) does not fit an "
            f"{hw[0]}x{hw[1]} input with pad {pad} and stride {stride}: output would be "
            f"{out[0]}x{out[1]}"
        )
    return out[0], out[1]


def im2col_array(img, kernel_size, stride, pad, to_matrix: bool = True, dilation=1):
    """Image patches of ``img`` (N, C, H, W) as a new array.

    Returns (N, C, KH, KW, OH, OW), or with ``to_matrix`` the (N*OH*OW, C*KH*KW) matrix
    whose rows are the patches (DeZero's layout). Zero padding.
    """
    kernel, stride, pad, dilation = pair(kernel_size), pair(stride), pair(pad), pair(dilation)
    if img.ndim != 4:
        raise ShapeError(f"im2col: img must be 4-D (N, C, H, W), got {describe([img])}")
    N, C, H, W = img.shape
    OH, OW = conv_out_hw("im2col", (H, W), kernel, stride, pad, dilation)
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
    OH, OW = conv_out_hw("col2im", (H, W), kernel, stride, pad, dilation)
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
class Geometry:
    """stride, pad, dilation (pairs) and groups of a convolution."""

    def __init__(self, stride, pad, dilation, groups, op: str = "conv2d") -> None:
        self.stride = pair(stride)
        self.pad = pair(pad)
        self.dilation = pair(dilation)
        if not isinstance(groups, (int, np.integer)) or groups < 1:
            raise ValueError(f"{op}: groups must be a positive int, got {groups!r}")
        self.groups = int(groups)
        check_window(op, stride=self.stride, pad=self.pad, dilation=self.dilation)

    def row_length(self, in_w: int, out_w: int) -> int:
        """Columns per output row in the patch matrix: the padded width for stride 1 (see
        :meth:`patches`), else the output width."""
        return in_w + 2 * self.pad[1] if self.stride == (1, 1) else out_w

    def wide_grad(self, rows: int, out_channels: int) -> bool:
        """Whether the weight gradient pairs whole-row patches with gy widened to match
        (stride 1 and at least as many patch rows as gy has channels per group); else it
        uses compact patches, which then copy less than widening gy would."""
        return self.stride == (1, 1) and rows >= out_channels

    def compact(self, x) -> bool:
        """Whether x's patch matrices are compact (row length OW) for stride 1 too: with
        the compiled patch kernels (``zerograd._fast.im2col``), which copy compact rows
        about as fast as NumPy copies whole rows and scatter them back faster. The three
        products then skip whole rows' extra columns (2 in 16 of conv2's in the small CNN)
        and gy needs no widened copy."""
        return self.compiled_patches(x)

    def compiled_adjoint(self, y) -> bool:
        """Whether the transpose of a convolution runs as W^T @ y and the compiled
        scatter-add of compact patches: any stride and layout, since the kernel adds whole
        output rows wherever they lie (fwd+bwd of a conv2d with 32 filters on 64x16x16x16,
        stride 2: 1.45 against 1.9 ms; on 32x64x16x16 with 64: 13.5 against 13.7)."""
        return fast.use("conv_patches", y)

    def compiled_patches(self, x) -> bool:
        """Whether the compiled kernels build x's patches: stride 1 and a layout whose patch
        rows are long shifted copies (x channel-major, as a pooled activation is, or one
        channel, or one image). For a contiguous (N, C, H, W) x with several of each they
        copy row by row and lose to NumPy (a conv2d on 32x64x16x16 with 64 filters, fwd+bwd:
        19.8 against 16.3 ms; 100x16x14x14 with 32: 11.4 against 7.0)."""
        if self.stride != (1, 1) or not fast.use("conv_patches", x):
            return False
        N, C = x.shape[:2]
        return C == 1 or N == 1 or x.transpose(1, 0, 2, 3).flags.c_contiguous

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
        if self.compiled_patches(x):
            from zerograd._fast import im2col as fast_im2col  # imports numba

            L = self.row_length(x.shape[3], OW) if wide else OW
            col = new_array(xp, (g, rows + ones_row, N * OH * L), x.dtype,
                            "patches" if scratch else None)
            return fast_im2col.conv_patches(x, kernel, self.stride, self.pad, self.dilation,
                                            g, out_hw, L, ones_row, out=col)
        # One copy per kernel offset (KH*KW of them, each over the whole batch): NumPy moves
        # these 4-D blocks about twice as fast as one 6-D transposing copy.
        dh, dw = self.dilation
        if self.stride == (1, 1) and wide:
            # One spare row at the bottom keeps the last offsets' runs inside each image.
            padded = pad_image(x, (ph, ph + 1), (pw, pw))
            WP = padded.shape[3]
            run = OH * WP
            flat = padded.reshape(N, g, Cg, -1)
            col = new_array(xp, (g, rows + ones_row, N, run), x.dtype,
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
            col = new_array(xp, (g, rows + ones_row, N, OH * OW), x.dtype,
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


# Temporaries up to this size reuse one buffer per thread and purpose.
SCRATCH_BYTES = 64 * 2**20
_scratch = threading.local()


def new_array(xp, shape, dtype, scratch: str | None = None):
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


def scratch_product(a, b, scratch: str | None = None):
    """``a @ b``; with ``scratch`` the result is a temporary in that scratch buffer."""
    xp = get_array_module(b)
    if scratch is None or xp is not np:
        return xp.matmul(a, b)
    shape = np.broadcast_shapes(a.shape[:-2], b.shape[:-2]) + (a.shape[-2], b.shape[-1])
    out = new_array(xp, shape, np.result_type(a.dtype, b.dtype), scratch)
    return xp.matmul(a, b, out=out)


def channel_major(a, groups: int = 1):
    """a (N, C, H, W) as the (groups, C/groups, N*H*W) matrix stack; free when ``a`` is
    already laid out channel-major (as conv2d's outputs and the gradients flowing into
    them often are), one copy otherwise."""
    N, C = a.shape[:2]
    return a.transpose(1, 0, 2, 3).reshape(groups, C // groups, -1)


def conv_forward(x, W, b, geo: Geometry, out_hw, scratch: bool = True):
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
    wide = not geo.compact(x)
    col = geo.patches(x, (KH, KW), out_hw, ones_row=b is not None, scratch=scratch, wide=wide)
    Wm = W.reshape(g, OC // g, Cg * KH * KW)
    if b is not None:
        xp = get_array_module(W)
        Wm = xp.concatenate([Wm, b.reshape(g, OC // g, 1).astype(W.dtype, copy=False)], axis=2)
    row_length = geo.row_length(x.shape[3], out_hw[1]) if wide else out_hw[1]
    y = xp_matmul(Wm, col).reshape(OC, N, out_hw[0], row_length)
    if row_length != out_hw[1]:
        y = y[..., :out_hw[1]]  # drop the junk columns of whole-row patches
    return y.transpose(1, 0, 2, 3), col


def conv_transpose(y, W, geo: Geometry, in_hw):
    """The adjoint of ``conv_forward`` in x: y (N, OC, OH, OW) -> x-shaped (N, C, H, W)."""
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
        as_conv = Geometry(1, (full_h - ph, full_w - pw), geo.dilation, g, "deconv2d")
        return conv_forward(y, flipped, None, as_conv, tuple(in_hw))[0]
    wt = W.reshape(g, OC // g, Cg * KH * KW).transpose(0, 2, 1)
    if geo.compiled_adjoint(y):
        # W^T @ y with y as it is (its channel-major view is free), then the compiled
        # scatter-add of the compact patches (any stride), which may reuse the product.
        from zerograd._fast import im2col as fast_im2col  # imports numba

        col = scratch_product(wt, as_gy_matrix(y, g, OW), "product")  # a temporary
        return fast_im2col.conv_patches_adjoint(col, N, C, (KH, KW), geo.stride, geo.pad,
                                                geo.dilation, g, in_hw, (OH, OW), OW,
                                                overwrite_col=True)
    if stride_one and C * KH * KW >= 2 * OC:
        # 2. W^T @ y with y widened to whole padded rows, then one long contiguous add per
        # kernel offset: best when the result's patches (C*KH*KW rows) outweigh y's rows.
        col = scratch_product(wt, as_gy_matrix(y, g, in_hw[1] + 2 * pw), "product")
        return wide_scatter(col, N, (KH, KW), geo, in_hw)
    # 3. W^T @ y, then a strided add per kernel offset (short inner loops, but no copy of y).
    col = scratch_product(wt, as_gy_matrix(y, g, OW), "product")  # (g, Cg*KH*KW, N*P), a temporary
    col = col.reshape(C, KH, KW, N, OH, OW).transpose(3, 0, 1, 2, 4, 5)
    padded = scatter_windows(col, (in_hw[0] + 2 * ph, in_hw[1] + 2 * pw), geo.stride,
                             geo.dilation)
    return crop_image(padded, ph, pw, in_hw)


def wide_scatter(col, N: int, kernel, geo: Geometry, in_hw):
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


def as_gy_matrix(gy, groups: int, row_length: int):
    """gy (N, OC, OH, OW) as the (groups, OC/g, N*OH*row_length) matrix stack that pairs
    with patch matrices of that row length (zeros in the junk columns of whole-row
    patches): a view when gy is already so laid out, else a copy in the "gy" scratch."""
    N, OC, OH, OW = gy.shape
    if row_length == OW and gy.transpose(1, 0, 2, 3).flags.c_contiguous:
        return channel_major(gy, groups)  # already laid out so: free
    xp = get_array_module(gy)
    wide = new_array(xp, (OC, N, OH, row_length), gy.dtype, "gy")  # a temporary
    wide[..., OW:] = 0
    wide[..., :OW] = gy.transpose(1, 0, 2, 3)
    return wide.reshape(groups, OC // groups, -1)


def conv_grad_weight(x, gy, geo: Geometry, kernel, col=None):
    """gW (OC, C/g, KH, KW) = sum over n and output pixels of gy times the patch of x:
    one product (OC/g, N*P) @ (N*P, K) per group. ``col``: x's patch matrix from forward,
    if kept (a trailing ones row is ignored)."""
    N, OC, OH, OW = gy.shape
    g = geo.groups
    Cg = x.shape[1] // g
    if N == 0:  # an empty batch contributes nothing to the weight gradient
        return get_array_module(gy).zeros((OC, Cg) + tuple(kernel), gy.dtype)
    rows = Cg * kernel[0] * kernel[1]
    if col is not None:  # forward's patches, in the layout forward chose
        row_length = col.shape[2] // (N * OH)
        if row_length != OW and not geo.wide_grad(rows, OC // g):
            col = None  # whole rows, but widening gy would copy more than compact patches
    if col is None:
        wide = geo.wide_grad(rows, OC // g) and not geo.compact(x)
        col = geo.patches(x, kernel, (OH, OW), scratch=True, wide=wide)
        row_length = geo.row_length(x.shape[3], OW) if wide else OW
    gy_matrix = as_gy_matrix(gy, g, row_length)
    if rows >= TRANSPOSED_GRAD_ROWS:
        # col @ gy^T, then the small (K, OC/g) result transposed: OpenBLAS runs this long
        # inner dimension 1.3-1.6x faster with the patch rows as the product's rows.
        gW_t = xp_matmul(col[:, :rows], gy_matrix.transpose(0, 2, 1))
        gW = get_array_module(gW_t).ascontiguousarray(gW_t.transpose(0, 2, 1))  # small
    elif few_rows_product(gy_matrix, col[:, :rows]):
        from zerograd._fast import products  # imports numba

        gW = products.rows_by_rows(gy_matrix, col[:, :rows])
    else:
        gW = xp_matmul(gy_matrix, col[:, :rows].transpose(0, 2, 1))
    return gW.reshape(OC, Cg, kernel[0], kernel[1])


def few_rows_product(gy_matrix, patch_rows) -> bool:
    """Whether the weight gradient gy @ col^T (gy_matrix (g, OC/g, P), patch_rows (g, K, P))
    runs as the compiled ``rows_by_rows``: one float dtype, at most 32 output channels per
    group, 3 to 15 patch rows and a long inner dimension, where OpenBLAS runs on one thread
    far below its speed (conv1 of the small CNN, 16 channels and 9 rows over 78,400
    columns: 0.32 against 0.94 ms; 32 channels: 0.74-1.09 against 1.55; with 1 patch row or
    64 channels OpenBLAS is faster; docs/performance.md)."""
    rows = patch_rows.shape[1]
    if gy_matrix.shape[1] > 32 or not 3 <= rows < TRANSPOSED_GRAD_ROWS or not gy_matrix.size:
        return False
    # sized by one row (N*OH*OW elements); a float32 x under a float64 gy keeps OpenBLAS
    return fast.use("rows_by_rows", gy_matrix[0, 0], gy_matrix, patch_rows)


# The weight gradient is computed as (patches @ gy^T)^T from this many patch rows on
# (measured: 144 rows 1.6x faster, 288 rows 1.4-1.6x; 9 rows 5-10% slower).
TRANSPOSED_GRAD_ROWS = 16


def xp_matmul(a, b):
    """``a @ b`` with the arrays' own module (NumPy or CuPy)."""
    return get_array_module(b).matmul(a, b)
