"""Specs of the convolution family: conv2d (stride, pad, dilation, groups), conv2d_simple,
deconv2d, conv1d, im2col, col2im.

The references are deliberately naive (a loop over output pixels or input pixels), so that
they share nothing with the strided-view implementation under test.
"""

import numpy as np

import zerograd.functions as F
from tests.ops.harness import OpSpec
from zerograd.backend.array_utils import pair


def _conv_out(n, k, s, p, d=1):
    return (n + 2 * p - d * (k - 1) - 1) // s + 1


def ref_conv2d(x, W, b=None, stride=1, pad=0, dilation=1, groups=1):
    """Cross-correlation, one output pixel at a time."""
    (sh, sw), (ph, pw), (dh, dw) = pair(stride), pair(pad), pair(dilation)
    N, C, H, Wd = x.shape
    OC, Cg, KH, KW = W.shape
    OH, OW = _conv_out(H, KH, sh, ph, dh), _conv_out(Wd, KW, sw, pw, dw)
    xpad = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    y = np.zeros((N, OC, OH, OW))
    per_group = OC // groups
    for o in range(OC):
        g = o // per_group
        xs = xpad[:, g * Cg:(g + 1) * Cg]
        for i in range(OH):
            for j in range(OW):
                patch = xs[:, :, i * sh:i * sh + dh * (KH - 1) + 1:dh,
                           j * sw:j * sw + dw * (KW - 1) + 1:dw]
                y[:, o, i, j] = np.sum(patch * W[o], axis=(1, 2, 3))
    if b is not None:
        y += b.reshape(1, -1, 1, 1)
    return y


def ref_deconv2d(x, W, b=None, stride=1, pad=0, outsize=None, dilation=1, groups=1):
    """Transposed convolution, one input pixel at a time: each scatters W times itself."""
    (sh, sw), (ph, pw), (dh, dw) = pair(stride), pair(pad), pair(dilation)
    N, C, H, Wd = x.shape
    _, OCg, KH, KW = W.shape
    OH = sh * (H - 1) + dh * (KH - 1) + 1 - 2 * ph
    OW = sw * (Wd - 1) + dw * (KW - 1) + 1 - 2 * pw
    if outsize is not None:
        OH, OW = outsize
    Cg = C // groups
    full = np.zeros((N, OCg * groups, OH + 2 * ph + sh, OW + 2 * pw + sw))
    for c in range(C):
        g = c // Cg
        for h in range(H):
            for w in range(Wd):
                contribution = x[:, c, h, w, None, None, None] * W[c]  # (N, OCg, KH, KW)
                full[:, g * OCg:(g + 1) * OCg, h * sh:h * sh + dh * (KH - 1) + 1:dh,
                     w * sw:w * sw + dw * (KW - 1) + 1:dw] += contribution
    y = full[:, :, ph:ph + OH, pw:pw + OW]
    if b is not None:
        y = y + b.reshape(1, -1, 1, 1)
    return y


def ref_conv1d(x, W, b=None, stride=1, pad=0, dilation=1, groups=1):
    y = ref_conv2d(x[:, :, None, :], W[:, :, None, :], b, (1, stride), (0, pad),
                   (1, dilation), groups)
    return y[:, :, 0, :]


def ref_im2col(x, kernel_size, stride=1, pad=0, to_matrix=True, dilation=1):
    (KH, KW), (sh, sw), (ph, pw), (dh, dw) = (pair(kernel_size), pair(stride), pair(pad),
                                              pair(dilation))
    N, C, H, W = x.shape
    OH, OW = _conv_out(H, KH, sh, ph, dh), _conv_out(W, KW, sw, pw, dw)
    xpad = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    col = np.zeros((N, C, KH, KW, OH, OW), dtype=x.dtype)
    for i in range(OH):
        for j in range(OW):
            col[:, :, :, :, i, j] = xpad[:, :, i * sh:i * sh + dh * (KH - 1) + 1:dh,
                                         j * sw:j * sw + dw * (KW - 1) + 1:dw]
    if to_matrix:
        return col.transpose(0, 4, 5, 1, 2, 3).reshape(N * OH * OW, -1)
    return col


def ref_col2im(col, input_shape, kernel_size, stride=1, pad=0, to_matrix=True):
    (KH, KW), (sh, sw), (ph, pw) = pair(kernel_size), pair(stride), pair(pad)
    N, C, H, W = input_shape
    OH, OW = _conv_out(H, KH, sh, ph), _conv_out(W, KW, sw, pw)
    if to_matrix:
        col = col.reshape(N, OH, OW, C, KH, KW).transpose(0, 3, 4, 5, 1, 2)
    img = np.zeros((N, C, H + 2 * ph, W + 2 * pw), dtype=col.dtype)
    for i in range(OH):
        for j in range(OW):
            img[:, :, i * sh:i * sh + KH, j * sw:j * sw + KW] += col[:, :, :, :, i, j]
    return img[:, :, ph:ph + H, pw:pw + W]


_TOL = {"rtol": 1e-4, "atol": 1e-4}

SPECS = [
    OpSpec("conv2d", F.conv2d, ref_conv2d, kwargs={"stride": 1, "pad": 1},
           shapes=[((2, 3, 5, 5), (4, 3, 3, 3), (4,)), ((1, 2, 4, 3), (3, 2, 2, 2))], **_TOL,
           zero_d=False),
    OpSpec("conv2d_stride_pad_nonsquare", F.conv2d, ref_conv2d,
           kwargs={"stride": (2, 1), "pad": (0, 1)},
           shapes=[((2, 2, 5, 6), (3, 2, 3, 2), (3,))], covers=[], **_TOL, zero_d=False),
    OpSpec("conv2d_dilation_groups", F.conv2d, ref_conv2d,
           kwargs={"stride": 2, "pad": 1, "dilation": 2, "groups": 2},
           shapes=[((2, 4, 7, 6), (6, 2, 3, 2), (6,))], covers=[], **_TOL, zero_d=False),
    # Stride 1 with OC <= C: the input gradient runs as a flipped convolution.
    OpSpec("conv2d_gx_as_flipped_conv", F.conv2d, ref_conv2d, kwargs={"pad": 1},
           shapes=[((2, 4, 5, 4), (2, 4, 3, 3), (2,))], covers=[], **_TOL, zero_d=False),
    OpSpec("conv2d_gx_as_flipped_conv_groups", F.conv2d, ref_conv2d,
           kwargs={"pad": (2, 1), "dilation": (2, 1), "groups": 2},
           shapes=[((1, 4, 6, 5), (4, 2, 3, 2), (4,))], covers=[], **_TOL, zero_d=False),
    # Stride 1 with fewer patch rows than output channels: gW drops the junk columns.
    OpSpec("conv2d_few_input_channels", F.conv2d, ref_conv2d, kwargs={"pad": 1},
           shapes=[((2, 1, 5, 4), (6, 1, 2, 2), (6,))], covers=[], **_TOL, zero_d=False),
    OpSpec("conv2d_simple", F.conv2d_simple, ref_conv2d, kwargs={"stride": 2, "pad": 1},
           shapes=[((2, 3, 5, 4), (2, 3, 3, 3), (2,)), ((1, 2, 4, 4), (3, 2, 2, 2))], **_TOL,
           zero_d=False),
    OpSpec("deconv2d", F.deconv2d, ref_deconv2d, kwargs={"stride": 2, "pad": 1},
           shapes=[((2, 3, 3, 4), (3, 2, 3, 3), (2,)), ((1, 2, 2, 3), (2, 3, 2, 3))], **_TOL,
           zero_d=False),
    OpSpec("deconv2d_outsize", F.deconv2d, ref_deconv2d,
           kwargs={"stride": 2, "pad": 1, "outsize": (6, 8)},
           shapes=[((1, 2, 3, 4), (2, 2, 3, 3), (2,))], covers=[], **_TOL, zero_d=False),
    OpSpec("deconv2d_dilation_groups", F.deconv2d, ref_deconv2d,
           kwargs={"stride": (1, 2), "pad": (1, 0), "dilation": 2, "groups": 2},
           shapes=[((2, 4, 3, 3), (4, 1, 2, 3), (2,))], covers=[], **_TOL, zero_d=False),
    OpSpec("conv1d", F.conv1d, ref_conv1d, kwargs={"stride": 2, "pad": 1},
           shapes=[((2, 3, 7), (4, 3, 3), (4,)), ((1, 2, 5), (2, 2, 2))], **_TOL, zero_d=False),
    OpSpec("conv1d_dilation_groups", F.conv1d, ref_conv1d,
           kwargs={"stride": 1, "pad": 2, "dilation": 2, "groups": 3},
           shapes=[((2, 3, 6), (6, 1, 3), (6,))], covers=[], **_TOL, zero_d=False),
    OpSpec("im2col", F.im2col, ref_im2col, kwargs={"kernel_size": 3, "stride": 2, "pad": 1},
           shapes=[((2, 2, 4, 5),)], double_backward=False, zero_d=False),
    OpSpec("im2col_patches", F.im2col, ref_im2col,
           kwargs={"kernel_size": (2, 3), "stride": 1, "pad": (1, 0), "to_matrix": False},
           shapes=[((1, 2, 3, 4),)], double_backward=False, covers=[], zero_d=False),
    OpSpec("col2im", F.col2im, ref_col2im,
           kwargs={"input_shape": (2, 2, 4, 5), "kernel_size": 3, "stride": 2, "pad": 1},
           shapes=[((2 * 2 * 3, 2 * 9),)], double_backward=False, zero_d=False),
    OpSpec("col2im_patches", F.col2im, ref_col2im,
           kwargs={"input_shape": (1, 2, 3, 4), "kernel_size": (2, 3), "stride": 1,
                   "pad": (1, 0), "to_matrix": False},
           shapes=[((1, 2, 2, 3, 4, 2),)], double_backward=False, covers=[], zero_d=False),
]
