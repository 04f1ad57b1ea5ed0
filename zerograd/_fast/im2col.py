"""Patches of a convolution (im2col) and their adjoint (col2im) as compiled loops (numba),
beside ``zerograd/ops/_im2col.py``.

Two layouts, the two that zerograd uses:

- conv2d's channel-major patch matrix (``Geometry.patches``): (groups, C/g*KH*KW [+ 1],
  N*OH*L), rows (c, i, j), columns (n, y, x), L the row length: OW (compact) or the padded
  width WP (stride 1, "whole rows": ops/_im2col.py copies whole padded rows and leaves
  junk in the extra columns; here those columns are zeros). With ``ones_row`` each group
  ends in a row of ones (the bias rides in the product). The adjoint (``wide_scatter`` /
  ``scatter_windows`` + crop) returns the channel-major (C, N, H, W) array seen as NCHW.
- DeZero's im2col: (N, C, KH, KW, OH, OW), or the (N*OH*OW, C*KH*KW) matrix.

The NumPy path pads the image first and copies one strided block per kernel offset; here
each patch element is read straight from x (out-of-image reads give the zero padding), and
col2im adds straight into the cropped image. For a "same" stride-1 convolution whose
channels are contiguous along the batch, each patch row is one long shifted copy (and its
adjoint one long add), with the entries that read padding zeroed; otherwise one run of up
to OW elements per output row. conv2d/deconv2d call these two (ops/_im2col.py).
Values: copies are exact; col2im adds the kernel offsets into each element in the NumPy
path's order (i, j ascending from zero), so it is bitwise equal too.
"""

from __future__ import annotations

import numpy as np

from zerograd._fast._numba import kernel, prange

__all__ = ["conv_patches", "conv_patches_adjoint", "im2col", "col2im"]


def _check(op: str, a, ndim: int) -> None:
    if a.ndim != ndim or a.dtype not in (np.float32, np.float64):
        raise TypeError(f"zerograd._fast.{op}: expected a {ndim}-D float32 or float64 array, "
                        f"got {a.dtype} {a.shape}")


# -- conv2d's channel-major patch matrix ------------------------------------------------------
# numba checks every index for wraparound (a negative index counts from the end); a loop
# whose index LLVM cannot prove non-negative (``out[start + q]``) then runs element by
# element. So every inner loop below runs over a view from zero (``d = out[a:b]``,
# ``d[q] = s[q]``), which vectorises; the views are built once per image row or per run.
@kernel
def _inside(off, S, n_out, n_in):
    """[lo, hi): the outputs o whose input o*S + off lies in [0, n_in)."""
    lo = 0 if off >= 0 else min(n_out, (S - 1 - off) // S)
    hi = 0 if n_in - 1 - off < 0 else min(n_out, (n_in - 1 - off) // S + 1)
    return lo, max(lo, hi)


@kernel
def _zero_padding(run, top, off, N, H, W):
    """Zero the entries of a patch row's run over N images (OH = H, OW = W, stride 1) that
    read padding: the rows above/below each image (contiguous pieces) and the columns
    left/right of it (one stride-W loop over the whole run per column). One pass per
    kind instead of a loop per image row: the zeroing took twice as long as the copy."""
    zero = run.dtype.type(0)
    P = H * W
    oy_lo, oy_hi = _inside(top, 1, H, H)
    lo, hi = _inside(off, 1, W, W)
    if oy_lo > 0 or oy_hi < H:
        for n in range(N):
            image = run[n * P:(n + 1) * P]
            head = image[:oy_lo * W]
            for q in range(head.size):
                head[q] = zero
            tail = image[oy_hi * W:]
            for q in range(tail.size):
                tail[q] = zero
    for ox in range(lo):
        column = run[ox:]
        for q in range(0, column.size, W):
            column[q] = zero
    for ox in range(hi, W):
        column = run[ox:]
        for q in range(0, column.size, W):
            column[q] = zero


@kernel
def _patch_row(col, row_all, KH, KW, Cg):
    """Patch row ``row_all`` of the (c, i, j)-ordered rows over all groups: (its channel c,
    kernel offsets i and j, and the row of col it is in c's group)."""
    j = row_all % KW
    i = (row_all // KW) % KH
    c = row_all // (KH * KW)
    g = c // Cg
    return c, i, j, col[g, row_all - g * (Cg * KH * KW)]


@kernel
def _shifted_run(delta, total):
    """[a, b): the positions q of a run of ``total`` elements whose q + delta is inside it
    too (a patch row's long copy, or its adjoint's long add)."""
    a = max(0, -delta)
    return a, max(a, total - max(0, delta))


@kernel
def _patches_runs(xrows, KH, KW, PH, PW, DH, DW, N, H, W, col):
    """Stride 1 with an output as large as the input (a "same" convolution), each
    channel's images one contiguous run (xrows (C, N*H*W)): patch row (c, i, j) is then
    xrows[c] shifted by (i*DH - PH)*W + j*DW - PW, one long copy, with the entries that
    read padding (which the shift filled from a neighbouring row or image) zeroed after.
    xrows is x itself when x is channel-major, or has one channel or one image."""
    C = xrows.shape[0]
    Cg = C // col.shape[0]
    P = H * W
    for row_all in prange(C * KH * KW):
        c, i, j, out = _patch_row(col, row_all, KH, KW, Cg)
        top, off = i * DH - PH, j * DW - PW
        delta = top * W + off
        a, b = _shifted_run(delta, N * P)
        d = out[a:b]
        s = xrows[c, a + delta:b + delta]
        for q in range(d.size):
            d[q] = s[q]
        _zero_padding(out[:N * P], top, off, N, H, W)  # also covers [0, a) and [b, N*P)


@kernel
def _patches_planes(x, channel_first, KH, KW, SH, SW, PH, PW, DH, DW, OH, OW, L, col):
    """Any geometry: x C-contiguous (C, N, H, W) if ``channel_first`` else (N, C, H, W);
    one copy of up to OW elements per output row, zeros where the window reads padding
    and in the extra columns [OW, L) of whole-row patches."""
    if channel_first:
        C, N = x.shape[0], x.shape[1]
    else:
        N, C = x.shape[0], x.shape[1]
    H, W = x.shape[2], x.shape[3]
    Cg = C // col.shape[0]
    zero = col.dtype.type(0)
    for row_all in prange(C * KH * KW):
        c, i, j, out = _patch_row(col, row_all, KH, KW, Cg)
        top, off = i * DH - PH, j * DW - PW
        oy_lo, oy_hi = _inside(top, SH, OH, H)
        lo, hi = _inside(off, SW, OW, W)
        for n in range(N):
            blk = out[n * OH * L:(n + 1) * OH * L]
            for q in range(oy_lo * L):
                blk[q] = zero
            tail = blk[oy_hi * L:]
            for q in range(tail.size):
                tail[q] = zero
            for oy in range(oy_lo, oy_hi):
                row = blk[oy * L:(oy + 1) * L]
                for ox in range(lo):
                    row[ox] = zero
                for ox in range(hi, L):
                    row[ox] = zero
                if hi > lo:
                    r = oy * SH + top
                    src = (x[c, n, r] if channel_first else x[n, c, r])
                    s = src[lo * SW + off:(hi - 1) * SW + off + 1:SW]
                    d = row[lo:hi]
                    for q in range(d.size):
                        d[q] = s[q]


def _layout(x):
    """(C-contiguous array, channel_first): x itself or its (C, N, H, W) transpose when
    either is C-contiguous, else a C-order copy."""
    if x.transpose(1, 0, 2, 3).flags.c_contiguous and x.shape[0] > 1:
        return x.transpose(1, 0, 2, 3), True
    return np.ascontiguousarray(x), False


def _same(stride, in_hw, out_hw, row_length: int) -> bool:
    """Stride 1, output size = input size, compact rows: the long-run kernels apply."""
    return (tuple(stride) == (1, 1) and tuple(in_hw) == tuple(out_hw)
            and row_length == out_hw[1])


def conv_patches(x, kernel, stride, pad, dilation, groups: int, out_hw, row_length: int,
                 ones_row: bool = False, out=None):
    """The (groups, C/g*KH*KW [+ 1], N*OH*row_length) patch matrix of x (N, C, H, W), any
    memory layout: what ``Geometry.patches`` returns (``row_length`` = OW for compact
    patches, the padded width for whole-row ones, whose extra columns are zeros here).
    ``out``: a C-contiguous array of that shape to write into (the caller's buffer)."""
    _check("conv_patches", x, 4)
    N, C, H, W = x.shape
    (KH, KW), (OH, OW) = kernel, out_hw
    rows = C // groups * KH * KW
    shape = (groups, rows + ones_row, N * OH * row_length)
    col = np.empty(shape, dtype=x.dtype) if out is None else out
    if col.shape != shape or col.dtype != x.dtype or not col.flags.c_contiguous:
        raise ValueError(f"zerograd._fast.conv_patches: out must be a C-contiguous "
                         f"{x.dtype} array of shape {shape}, got {col.dtype} {col.shape}")
    if N and rows:
        xc, channel_first = _layout(x)
        if _same(stride, (H, W), out_hw, row_length) and (channel_first or C == 1 or N == 1):
            _patches_runs(xc.reshape(C, N * H * W), KH, KW, pad[0], pad[1], dilation[0],
                          dilation[1], N, H, W, col)
        else:
            _patches_planes(xc, channel_first, KH, KW, stride[0], stride[1], pad[0], pad[1],
                            dilation[0], dilation[1], OH, OW, row_length, col)
    if ones_row:
        col[:, rows] = 1
    return col


@kernel
def _adjoint_runs(col, KH, KW, PH, PW, DH, DW, N, H, W, img):
    """The adjoint of :func:`_patches_runs`, img (C, N*H*W) zeros on entry: patch row
    (c, i, j) added into img[c] shifted back, one long add each, in (i, j) order (the
    NumPy path's). The entries of col that read padding are zeroed first, so the long add
    puts 0 where the shift lands them; adding +0.0 changes no sum that started from +0.0."""
    C = img.shape[0]
    groups = col.shape[0]
    Cg = C // groups
    P = H * W
    for c in prange(C):
        g = c // Cg
        dst = img[c]
        for i in range(KH):
            for j in range(KW):
                src = col[g, ((c - g * Cg) * KH + i) * KW + j]
                top, off = i * DH - PH, j * DW - PW
                _zero_padding(src[:N * P], top, off, N, H, W)
                delta = top * W + off
                a, b = _shifted_run(delta, N * P)
                s = src[a:b]
                d = dst[a + delta:b + delta]
                for q in range(d.size):
                    d[q] += s[q]


@kernel
def _adjoint_planes(col, KH, KW, SH, SW, PH, PW, DH, DW, OH, OW, L, img):
    """The adjoint of :func:`_patches_planes`, img (C, N, H, W) zeros on entry; the kernel
    offsets added into each image in (i, j) order (the NumPy path's); col is only read."""
    C, N, H, W = img.shape
    groups = col.shape[0]
    Cg = C // groups
    for plane in prange(C * N):
        c = plane // N
        n = plane % N
        g = c // Cg
        for i in range(KH):
            top = i * DH - PH
            oy_lo, oy_hi = _inside(top, SH, OH, H)
            for j in range(KW):
                off = j * DW - PW
                lo, hi = _inside(off, SW, OW, W)
                if hi == lo:
                    continue
                src = col[g, ((c - g * Cg) * KH + i) * KW + j]
                for oy in range(oy_lo, oy_hi):
                    start = (n * OH + oy) * L
                    s = src[start + lo:start + hi]
                    r = oy * SH + top
                    d = img[c, n, r, lo * SW + off:(hi - 1) * SW + off + 1:SW]
                    for q in range(s.size):
                        d[q] += s[q]


def conv_patches_adjoint(col, N: int, C: int, kernel, stride, pad, dilation, groups: int,
                         in_hw, out_hw, row_length: int, overwrite_col: bool = False):
    """x-shaped (N, C, H, W), channel-major: every patch column of ``col`` (groups,
    C/g*KH*KW, N*OH*row_length) added back where :func:`conv_patches` read it (the extra
    columns of whole-row patches are ignored; the NumPy path's are zeros).
    ``overwrite_col``: col is the caller's temporary, and the kernel may zero its entries
    that read padding (a "same" stride-1 convolution then adds each row in one run);
    otherwise col is copied first in that case."""
    _check("conv_patches_adjoint", col, 3)
    (KH, KW), (OH, OW) = kernel, out_hw
    H, W = in_hw
    img = np.zeros((C, N, H, W), dtype=col.dtype)
    col = np.ascontiguousarray(col)
    if N and C:
        if _same(stride, in_hw, out_hw, row_length):
            if not overwrite_col:
                col = col.copy()
            _adjoint_runs(col, KH, KW, pad[0], pad[1], dilation[0], dilation[1], N, H, W,
                          img.reshape(C, N * H * W))
        else:
            _adjoint_planes(col, KH, KW, stride[0], stride[1], pad[0], pad[1], dilation[0],
                            dilation[1], OH, OW, row_length, img)
    return img.transpose(1, 0, 2, 3)


# -- DeZero's im2col / col2im ---------------------------------------------------------------
@kernel
def _im2col6(x, SH, SW, PH, PW, DH, DW, col):
    N, C, H, W = x.shape
    KH, KW, OH, OW = col.shape[2], col.shape[3], col.shape[4], col.shape[5]
    for plane in prange(N * C):
        n = plane // C
        c = plane % C
        for i in range(KH):
            for j in range(KW):
                for oy in range(OH):
                    r = oy * SH + i * DH - PH
                    for ox in range(OW):
                        cc = ox * SW + j * DW - PW
                        inside = 0 <= r < H and 0 <= cc < W
                        col[n, c, i, j, oy, ox] = x[n, c, r, cc] if inside else 0


@kernel
def _im2col_rows(x, KH, KW, SH, SW, PH, PW, DH, DW, col):
    N, C, H, W = x.shape
    OH, OW = col.shape[1], col.shape[2]
    for task in prange(N * OH):
        n = task // OH
        oy = task % OH
        for ox in range(OW):
            for c in range(C):
                for i in range(KH):
                    r = oy * SH + i * DH - PH
                    for j in range(KW):
                        cc = ox * SW + j * DW - PW
                        inside = 0 <= r < H and 0 <= cc < W
                        col[n, oy, ox, c, i, j] = x[n, c, r, cc] if inside else 0


def im2col(img, kernel, stride, pad, out_hw, to_matrix: bool = True, dilation=(1, 1)):
    """ops/_im2col.py's ``im2col_array`` on pairs: (N, C, KH, KW, OH, OW), or with
    ``to_matrix`` the (N*OH*OW, C*KH*KW) matrix whose rows are the patches."""
    _check("im2col", img, 4)
    N, C = img.shape[:2]
    (KH, KW), (OH, OW) = kernel, out_hw
    if to_matrix:  # written in the matrix's own order: (n, y, x) rows of (c, i, j)
        col = np.empty((N, OH, OW, C, KH, KW), dtype=img.dtype)
        _im2col_rows(img, KH, KW, stride[0], stride[1], pad[0], pad[1], dilation[0],
                     dilation[1], col)
        return col.reshape(N * OH * OW, C * KH * KW)
    col = np.empty((N, C, KH, KW, OH, OW), dtype=img.dtype)
    _im2col6(img, stride[0], stride[1], pad[0], pad[1], dilation[0], dilation[1], col)
    return col


@kernel
def _col2im6(col, SH, SW, PH, PW, DH, DW, img):
    N, C, H, W = img.shape
    KH, KW, OH, OW = col.shape[2], col.shape[3], col.shape[4], col.shape[5]
    for plane in prange(N * C):
        n = plane // C
        c = plane % C
        for i in range(KH):
            for j in range(KW):
                for oy in range(OH):
                    r = oy * SH + i * DH - PH
                    if r < 0 or r >= H:
                        continue
                    for ox in range(OW):
                        cc = ox * SW + j * DW - PW
                        if 0 <= cc < W:
                            img[n, c, r, cc] += col[n, c, i, j, oy, ox]


def col2im(col, img_shape, kernel, stride, pad, out_hw, to_matrix: bool = True,
           dilation=(1, 1)):
    """ops/_im2col.py's ``col2im_array`` on pairs: the patches (N, C, KH, KW, OH, OW), or the
    (N*OH*OW, C*KH*KW) matrix, summed back into an image of ``img_shape`` (N, C, H, W)."""
    N, C, H, W = img_shape
    (KH, KW), (OH, OW) = kernel, out_hw
    if to_matrix:
        _check("col2im", col, 2)
        col = col.reshape(N, OH, OW, C, KH, KW).transpose(0, 3, 4, 5, 1, 2)  # a strided view
    _check("col2im", col, 6)
    img = np.zeros((N, C, H, W), dtype=col.dtype)
    _col2im6(col, stride[0], stride[1], pad[0], pad[1], dilation[0], dilation[1], img)
    return img
