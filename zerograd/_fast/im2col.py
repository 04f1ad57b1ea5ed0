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
col2im adds straight into the cropped image. Values: copies are exact; col2im adds the
kernel offsets into each element in the NumPy path's order (i, j ascending from zero), so
it is bitwise equal too.
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
@kernel
def _patches_cm(x, KH, KW, SH, SW, PH, PW, DH, DW, OH, OW, L, groups, col):
    N, C, H, W = x.shape
    Cg = C // groups
    for task in prange(C * KH * KW * N):  # one (channel, offset, image) run per task
        n = task % N
        row = task // N  # (c, i, j) over all channels
        j = row % KW
        i = (row // KW) % KH
        c = row // (KH * KW)
        g = c // Cg
        r_in_group = row - g * Cg * KH * KW
        base = n * OH * L
        for oy in range(OH):
            r = oy * SH + i * DH - PH
            start = base + oy * L
            if r < 0 or r >= H:
                for ox in range(L):
                    col[g, r_in_group, start + ox] = 0
                continue
            for ox in range(OW):
                cc = ox * SW + j * DW - PW
                col[g, r_in_group, start + ox] = x[n, c, r, cc] if 0 <= cc < W else 0
            for ox in range(OW, L):  # the unused columns of whole-row patches
                col[g, r_in_group, start + ox] = 0


def conv_patches(x, kernel, stride, pad, dilation, groups: int, out_hw, row_length: int,
                 ones_row: bool = False):
    """The (groups, C/g*KH*KW [+ 1], N*OH*row_length) patch matrix of x (N, C, H, W), any
    memory layout: what ``Geometry.patches`` returns (``row_length`` = OW for compact
    patches, the padded width for whole-row ones, whose extra columns are zeros here)."""
    _check("conv_patches", x, 4)
    N, C = x.shape[:2]
    (KH, KW), (OH, OW) = kernel, out_hw
    rows = C // groups * KH * KW
    col = np.empty((groups, rows + ones_row, N * OH * row_length), dtype=x.dtype)
    _patches_cm(x, KH, KW, stride[0], stride[1], pad[0], pad[1], dilation[0], dilation[1],
                OH, OW, row_length, groups, col)
    if ones_row:
        col[:, rows] = 1
    return col


@kernel
def _patches_cm_adjoint(col, KH, KW, SH, SW, PH, PW, DH, DW, OH, OW, L, groups, img):
    C, N, H, W = img.shape
    Cg = C // groups
    for plane in prange(C * N):
        c = plane // N
        n = plane % N
        g = c // Cg
        first_row = (c - g * Cg) * KH * KW
        base = n * OH * L
        for i in range(KH):
            for j in range(KW):
                row = first_row + i * KW + j
                for oy in range(OH):
                    r = oy * SH + i * DH - PH
                    if r < 0 or r >= H:
                        continue
                    start = base + oy * L
                    for ox in range(OW):
                        cc = ox * SW + j * DW - PW
                        if 0 <= cc < W:
                            img[c, n, r, cc] += col[g, row, start + ox]


def conv_patches_adjoint(col, N: int, C: int, kernel, stride, pad, dilation, groups: int,
                         in_hw, out_hw, row_length: int):
    """x-shaped (N, C, H, W), channel-major: every patch column of ``col`` (groups,
    C/g*KH*KW, N*OH*row_length) added back where :func:`conv_patches` read it (the extra
    columns of whole-row patches are ignored; the NumPy path's are zeros)."""
    _check("conv_patches_adjoint", col, 3)
    (KH, KW), (OH, OW) = kernel, out_hw
    img = np.zeros((C, N) + tuple(in_hw), dtype=col.dtype)
    _patches_cm_adjoint(np.ascontiguousarray(col), KH, KW, stride[0], stride[1], pad[0], pad[1],
                        dilation[0], dilation[1], OH, OW, row_length, groups, img)
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
