"""zerograd._fast.pooling against ops/pooling.py's NumPy kernels: bitwise equal values and
argmax offsets, forward, backward and the second-order gather, on varied geometries."""

import numpy as np
import pytest

pytest.importorskip("numba")

from zerograd._fast import pooling as FP  # noqa: E402
from zerograd.ops import pooling as P  # noqa: E402

# (shape (N, C, H, W), kernel, stride, pad, ceil_mode)
GEOMETRIES = [
    ((2, 3, 8, 8), 2, 2, 0, False),      # the CNN's 2x2/2: disjoint windows tiling the input
    ((3, 4, 9, 11), 3, 2, 1, True),      # odd sizes, padding, ceil_mode overhang
    ((2, 2, 7, 5), 3, 1, 1, False),      # overlapping windows (stride < kernel)
    ((1, 1, 1, 1), 1, 1, 0, False),      # 1-sized everything
    ((2, 1, 6, 9), (2, 3), (1, 2), (1, 0), False),  # non-square kernel, stride, pad
    ((0, 3, 6, 6), 2, 2, 0, False),      # an empty batch
    ((4, 2, 5, 5), 5, 1, 2, False),      # windows larger than the stride, heavy overlap
]
DTYPES = [np.float32, np.float64]


def _windows(f):
    w = f.windows
    return w.kernel, w.stride, (w.pad_h[0], w.pad_w[0]), w.out_hw, w.in_hw


def _channel_major(x):
    """The same values laid out (C, N, H, W) and viewed as NCHW, as conv2d's outputs are."""
    return np.ascontiguousarray(x.transpose(1, 0, 2, 3)).transpose(1, 0, 2, 3)


@pytest.mark.parametrize("geometry", GEOMETRIES, ids=str)
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
@pytest.mark.parametrize("layout", ["nchw", "channel_major"])
def test_max_pooling_matches_numpy(geometry, dtype, layout):
    shape, kernel, stride, pad, ceil = geometry
    rng = np.random.default_rng(0)
    # Rounded values: ties inside windows check the first-maximum rule.
    x = np.round(rng.standard_normal(shape) * 2).astype(dtype)
    if layout == "channel_major":
        x = _channel_major(x)
    f = P.Pooling(kernel, stride, pad, ceil)
    y_ref = f.forward(x)
    k, s, p, out_hw, in_hw = _windows(f)
    y, idx = FP.max_pool_forward(x, k, s, p, out_hw)
    assert y.dtype == dtype and idx.dtype == f.indexes.dtype
    np.testing.assert_array_equal(y, y_ref)
    np.testing.assert_array_equal(idx, f.indexes)

    gy = rng.standard_normal(y.shape).astype(dtype)
    gx_ref = P.Pooling2DGrad(f).forward(gy)
    gx = FP.max_pool_backward(gy, idx, k, s, p, in_hw)
    assert gx.shape == x.shape and gx.dtype == dtype
    np.testing.assert_array_equal(gx, gx_ref)  # the same sums in the same order

    ggx = rng.standard_normal(x.shape).astype(dtype)
    np.testing.assert_array_equal(FP.max_pool_gather(ggx, idx, k, s, p),
                                  P.Pooling2DWithIndexes(f).forward(ggx))


def test_max_pooling_layout_follows_the_input():
    x = _channel_major(np.random.default_rng(1).standard_normal((3, 4, 6, 6)))
    y, idx = FP.max_pool_forward(x, (2, 2), (2, 2), (0, 0), (3, 3))
    assert y.transpose(1, 0, 2, 3).flags.c_contiguous  # channel-major in, channel-major out
    gx = FP.max_pool_backward(np.ones_like(y), idx, (2, 2), (2, 2), (0, 0), (6, 6))
    assert gx.transpose(1, 0, 2, 3).flags.c_contiguous
    assert gx.sum() == 27.0 * 4  # one 1 per window


def test_max_pooling_nan_and_inf_follow_numpy():
    x = np.array([[[[1.0, np.nan, 3.0, -np.inf],
                    [0.5, 2.0, -np.inf, -np.inf]]]])
    f = P.Pooling(2, 2, 0)
    y_ref = f.forward(x)
    y, idx = FP.max_pool_forward(x, (2, 2), (2, 2), (0, 0), (1, 2))
    np.testing.assert_array_equal(y, y_ref)  # nan propagates; an all -inf window is -inf
    np.testing.assert_array_equal(idx, f.indexes)
    assert np.isnan(y[0, 0, 0, 0]) and y[0, 0, 0, 1] == 3.0


@pytest.mark.parametrize("geometry", GEOMETRIES, ids=str)
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
@pytest.mark.parametrize("count_include_pad", [True, False])
def test_average_pooling_matches_numpy(geometry, dtype, count_include_pad):
    shape, kernel, stride, pad, ceil = geometry
    rng = np.random.default_rng(2)
    x = rng.standard_normal(shape).astype(dtype)
    f = P.AveragePooling(kernel, stride, pad, ceil, count_include_pad)
    y_ref = f.forward(x)
    k, s, p, out_hw, in_hw = _windows(f)
    y = FP.avg_pool_forward(x, k, s, p, out_hw, f.divisor)
    assert y.dtype == dtype
    np.testing.assert_array_equal(y, y_ref)
    gy = rng.standard_normal(y.shape).astype(dtype)
    gx = FP.avg_pool_backward(gy, k, s, p, in_hw, f.divisor)
    np.testing.assert_array_equal(gx, P.AveragePoolingGrad(f).forward(gy))


def test_wrong_input_is_named():
    with pytest.raises(TypeError, match=r"max_pool_forward: expected a 4-D float32 or "
                                        r"float64 array \(N, C, H, W\), got int64 \(2, 3\)"):
        FP.max_pool_forward(np.zeros((2, 3), dtype=np.int64), (2, 2), (2, 2), (0, 0), (1, 1))


# -- the 2x2/2 kernels that ops/pooling.py calls -------------------------------------------
@pytest.mark.parametrize("shape", [(2, 3, 8, 8), (3, 2, 7, 9), (1, 1, 2, 2), (2, 1, 3, 1),
                                   (0, 2, 4, 4)], ids=str)
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
@pytest.mark.parametrize("layout", ["nchw", "channel_major"])
def test_max_pool_2x2_matches_numpy_bitwise(shape, dtype, layout):
    rng = np.random.default_rng(6)
    x = rng.standard_normal(shape).astype(dtype)
    x = _channel_major(x) if layout == "channel_major" and shape[0] > 1 else x
    f = P.Pooling(2, 2)
    if min(shape[2:]) < 2:
        with pytest.raises(Exception, match="does not fit"):
            f.forward(x)
        return
    expected = f.forward(x)
    y, idx = FP.max_pool_2x2(x)
    np.testing.assert_array_equal(y, expected)
    np.testing.assert_array_equal(idx, f.indexes)
    assert idx.dtype == np.uint8 and (y.size == 0 or y.strides == expected.strides)
    gy = rng.standard_normal(y.shape).astype(dtype)
    gx = FP.max_pool_2x2_backward(gy, idx, shape[2:])
    reference = P.Pooling2DGrad(f).forward(gy)
    assert gx.shape == shape
    np.testing.assert_array_equal(gx.view(np.uint8), reference.view(np.uint8))  # -0.0 too


def test_max_pool_2x2_nan_inf_and_ties_as_numpy():
    """np.maximum's rules: from a window's first NaN on, y is that NaN and the argmax stays;
    ties go to the first maximum; gy * mask keeps -0.0 and inf * 0 = nan."""
    x = np.array([[[[np.nan, 1, 2, 2, 0, 0, -np.inf, -np.inf],
                    [3, np.nan, 5, 1, 0, 0, -np.inf, -np.inf],
                    [1, 7, np.inf, 0, -1, -2, 4, 4],
                    [np.nan, 9, -np.nan, 2, -3, -1, 4, np.nan]]]], dtype=np.float32)
    f = P.Pooling(2, 2)
    expected = f.forward(x)
    y, idx = FP.max_pool_2x2(x)
    np.testing.assert_array_equal(y.view(np.uint32), expected.view(np.uint32))
    np.testing.assert_array_equal(idx, f.indexes)
    assert idx[0, 0].tolist() == [[0, 2, 0, 0], [1, 0, 0, 0]]
    gy = np.array([[[[np.inf, -1, 2, -0.0], [1, -np.inf, 3, 4]]]], dtype=np.float32)
    gx = FP.max_pool_2x2_backward(gy, idx, (4, 8))
    reference = P.Pooling2DGrad(f).forward(gy)
    np.testing.assert_array_equal(gx.view(np.uint32), reference.view(np.uint32))


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
def test_max_pool_2x2_signed_zeros_and_nan_payloads_bitwise(dtype):
    """Windows that tie 0.0 with -0.0 in every order, and NaNs of different payloads after a
    larger value: y's bits (the sign of a zero, the first NaN's payload) and the argmax as on
    the NumPy path, in both max pooling kernels."""
    bits = np.uint32 if dtype == np.float32 else np.uint64
    quiet = np.array([0x7FC00001, 0x7FC00002] if dtype == np.float32 else
                     [0x7FF8000000000001, 0x7FF8000000000002], dtype=bits).view(dtype)
    z, nz, n1, n2 = 0.0, -0.0, quiet[0], quiet[1]
    x = np.array([[[[z, nz, nz, z, nz, nz, 5, n1, 1, 2],
                    [nz, z, z, nz, nz, z, n2, 7, n2, n1]]]], dtype=dtype)
    f = P.Pooling(2, 2)
    expected = f.forward(x)
    for y, idx in (FP.max_pool_2x2(x),  # the wired 2x2 kernel and the general one
                   FP.max_pool_forward(x, (2, 2), (2, 2), (0, 0), (1, 5))):
        np.testing.assert_array_equal(y.view(bits), expected.view(bits))
        np.testing.assert_array_equal(idx, f.indexes)
