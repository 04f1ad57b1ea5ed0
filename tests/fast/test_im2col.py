"""zerograd._fast.im2col against ops/_im2col.py: conv2d's channel-major patch matrix (compact
and whole-row, with groups, dilation, strides, a bias row) and its adjoint, and DeZero's
im2col/col2im; all bitwise equal (copies, and sums in the same order)."""

import numpy as np
import pytest

pytest.importorskip("numba")

from zerograd._fast import im2col as FI  # noqa: E402
from zerograd.ops import _im2col as I  # noqa: E402

# (N, C, H, W, kernel, stride, pad, dilation, groups)
CASES = [
    (2, 3, 8, 8, (3, 3), (1, 1), (1, 1), (1, 1), 1),    # the CNN's 3x3 pad 1
    (3, 4, 9, 7, (3, 2), (2, 1), (1, 0), (1, 1), 2),    # odd sizes, strided, grouped
    (2, 2, 11, 10, (3, 3), (2, 3), (2, 1), (2, 1), 1),  # dilation, uneven strides
    (1, 1, 1, 1, (1, 1), (1, 1), (0, 0), (1, 1), 1),    # 1-sized everything
    (1, 6, 5, 5, (5, 5), (1, 1), (2, 2), (1, 1), 3),    # a kernel as large as the image
    (4, 1, 6, 6, (2, 2), (2, 2), (0, 0), (1, 1), 1),    # one input channel, disjoint
    # "same" stride-1 convolutions (the long-run kernels and their padding zeroing):
    (2, 2, 7, 6, (3, 3), (1, 1), (2, 2), (2, 2), 1),    # dilated
    (3, 3, 3, 4, (5, 3), (1, 1), (2, 1), (1, 1), 1),    # a kernel taller than the image
    (3, 2, 6, 5, (1, 3), (1, 1), (0, 1), (1, 1), 2),    # one row high, grouped
    (2, 1, 4, 4, (7, 7), (1, 1), (3, 3), (1, 1), 1),    # padding wider than the image
]
DTYPES = [np.float32, np.float64]


def _out_hw(H, W, kernel, stride, pad, dilation):
    return I.conv_out_hw("test", (H, W), kernel, stride, pad, dilation)


def _x(N, C, H, W, dtype, layout, seed=0):
    x = np.random.default_rng(seed).standard_normal((N, C, H, W)).astype(dtype)
    if layout == "channel_major":
        x = np.ascontiguousarray(x.transpose(1, 0, 2, 3)).transpose(1, 0, 2, 3)
    return x


@pytest.mark.parametrize("case", CASES, ids=str)
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
@pytest.mark.parametrize("layout", ["nchw", "channel_major"])
@pytest.mark.parametrize("wide", [False, True])
@pytest.mark.parametrize("ones_row", [False, True])
def test_conv_patches_match_geometry_patches(case, dtype, layout, wide, ones_row):
    N, C, H, W, kernel, stride, pad, dilation, groups = case
    x = _x(N, C, H, W, dtype, layout)
    geo = I.Geometry(stride, pad, dilation, groups)
    out_hw = _out_hw(H, W, kernel, stride, pad, dilation)
    wide = wide and stride == (1, 1)
    L = geo.row_length(W, out_hw[1]) if wide else out_hw[1]
    ref = geo.patches(x, kernel, out_hw, ones_row=ones_row, wide=wide)
    col = FI.conv_patches(x, kernel, stride, pad, dilation, groups, out_hw, L, ones_row)
    assert col.shape == ref.shape and col.dtype == dtype
    shaped = (groups, -1, N, out_hw[0], L)
    got, want = col.reshape(shaped), ref.reshape(shaped)
    OW = out_hw[1]
    np.testing.assert_array_equal(got[..., :OW], want[..., :OW])
    rows = C // groups * kernel[0] * kernel[1]
    assert not got[:, :rows, ..., OW:].any()  # whole-row patches' extra columns: zeros here


@pytest.mark.parametrize("case", CASES, ids=str)
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
@pytest.mark.parametrize("wide", [False, True])
def test_conv_patches_adjoint_matches_numpy(case, dtype, wide):
    N, C, H, W, kernel, stride, pad, dilation, groups = case
    geo = I.Geometry(stride, pad, dilation, groups)
    OH, OW = _out_hw(H, W, kernel, stride, pad, dilation)
    wide = wide and stride == (1, 1)
    L = geo.row_length(W, OW) if wide else OW
    rows = C // groups * kernel[0] * kernel[1]
    col = np.random.default_rng(3).standard_normal((groups, rows, N, OH, L)).astype(dtype)
    col[..., OW:] = 0  # the NumPy path's extra columns are zeros (gy widened with zeros)
    col = col.reshape(groups, rows, -1)
    if wide:
        ref = I.wide_scatter(col, N, kernel, geo, (H, W))
    else:
        col6 = col.reshape(C, kernel[0], kernel[1], N, OH, OW).transpose(3, 0, 1, 2, 4, 5)
        padded = I.scatter_windows(col6, (H + 2 * pad[0], W + 2 * pad[1]), stride, dilation)
        ref = I.crop_image(padded, pad[0], pad[1], (H, W))
    got = FI.conv_patches_adjoint(col, N, C, kernel, stride, pad, dilation, groups, (H, W),
                                  (OH, OW), L)
    assert got.shape == (N, C, H, W) and got.transpose(1, 0, 2, 3).flags.c_contiguous
    np.testing.assert_array_equal(got, ref)


@pytest.mark.parametrize("case", CASES, ids=str)
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
@pytest.mark.parametrize("to_matrix", [True, False])
def test_dezero_im2col_and_col2im_match_numpy(case, dtype, to_matrix):
    N, C, H, W, kernel, stride, pad, dilation, _ = case
    x = _x(N, C, H, W, dtype, "nchw", seed=4)
    out_hw = _out_hw(H, W, kernel, stride, pad, dilation)
    ref = I.im2col_array(x, kernel, stride, pad, to_matrix, dilation)
    col = FI.im2col(x, kernel, stride, pad, out_hw, to_matrix, dilation)
    assert col.shape == ref.shape and col.dtype == dtype
    np.testing.assert_array_equal(col, ref)
    gcol = np.random.default_rng(5).standard_normal(ref.shape).astype(dtype)
    np.testing.assert_array_equal(
        FI.col2im(gcol, x.shape, kernel, stride, pad, out_hw, to_matrix, dilation),
        I.col2im_array(gcol, x.shape, kernel, stride, pad, to_matrix, dilation))


def test_empty_batch():
    x = np.zeros((0, 2, 5, 5), dtype=np.float32)
    col = FI.conv_patches(x, (3, 3), (1, 1), (1, 1), (1, 1), 1, (5, 5), 5)
    assert col.shape == (1, 18, 0)
    img = FI.conv_patches_adjoint(col, 0, 2, (3, 3), (1, 1), (1, 1), (1, 1), 1, (5, 5),
                                  (5, 5), 5)
    assert img.shape == (0, 2, 5, 5)


def test_wrong_input_is_named():
    with pytest.raises(TypeError, match=r"conv_patches: expected a 4-D float32 or float64 "
                                        r"array, got int32 \(2, 2\)"):
        FI.conv_patches(np.zeros((2, 2), np.int32), (1, 1), (1, 1), (0, 0), (1, 1), 1,
                        (2, 2), 2)
