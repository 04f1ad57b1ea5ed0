"""zerograd._fast.products: a @ b^T over a long inner dimension (a convolution's weight
gradient with few patch rows), against float64 products and OpenBLAS's error; and its
dispatch from conv2d's backward (ops/_im2col.few_rows_product)."""

import numpy as np
import pytest

import zerograd._fast as fast
import zerograd.functions as F
from tests.fast._kernels import count_calls
from zerograd import Variable
from zerograd.ops import _im2col as I

pytest.importorskip("numba")

from zerograd._fast import products  # noqa: E402

pytestmark = pytest.mark.usefixtures("kernels_on")

BLOCK = products.BLOCK


def _stacks(G, M, K, T, dtype, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((G, M, T)).astype(dtype),
            rng.standard_normal((G, K, T)).astype(dtype))


def _error_bound(a, b, dtype):
    """A forward error bound for T-term dot products: T * eps * sum |a||b| (per entry)."""
    eps = np.finfo(dtype).eps
    T = a.shape[-1]
    return T * eps * (np.abs(a).astype(np.float64) @ np.abs(b).astype(np.float64)
                      .transpose(0, 2, 1))


# odd row counts (a last row of a computed twice), K not a multiple of 3 (the clamped
# third rows), T around the block size and below it
SHAPES = [(1, 1, 3, 1), (1, 3, 4, 7), (2, 5, 7, BLOCK - 1), (1, 16, 9, BLOCK),
          (2, 16, 9, BLOCK + 1), (1, 33, 15, 3 * BLOCK + 5), (3, 2, 1, 1000), (1, 1, 2, 9000)]


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=lambda d: d.__name__)
def test_rows_by_rows_matches_a_float64_product(shape, dtype):
    G, M, K, T = shape
    a, b = _stacks(G, M, K, T, dtype)
    got = products.rows_by_rows(a, b)
    assert got.shape == (G, M, K) and got.dtype == dtype
    exact = (a.astype(np.longdouble) @ b.astype(np.longdouble).transpose(0, 2, 1)).astype(
        np.float64)
    blas = a @ b.transpose(0, 2, 1)
    # a sum of products of normal draws: the kernel's error stays within OpenBLAS's (its
    # blocks' sums are added in float64) up to a few ulp, and within the a-priori bound
    scale = np.abs(exact).max()
    assert np.abs(got - exact).max() <= 2 * np.abs(blas - exact).max() + 16 * np.finfo(
        dtype).eps * scale
    assert np.all(np.abs(got - exact) <= _error_bound(a, b, dtype))


def test_rows_by_rows_keeps_nan_and_inf():
    a, b = _stacks(1, 4, 5, 2000, np.float32)
    a[0, 1, 700] = np.nan
    b[0, 3, 1500] = np.inf
    got = products.rows_by_rows(a, b)
    expected = a @ b.transpose(0, 2, 1)
    assert np.array_equal(np.isnan(got), np.isnan(expected))
    assert np.array_equal(np.isinf(got), np.isinf(expected))
    assert np.isnan(got[0, 1]).all() and np.isinf(got[0, [0, 2, 3], 3]).all()


def test_rows_by_rows_takes_rows_that_are_not_contiguous():
    a, b = _stacks(2, 3, 4, 600, np.float64)
    strided_a = np.ascontiguousarray(a.transpose(0, 2, 1)).transpose(0, 2, 1)  # F-order rows
    np.testing.assert_allclose(products.rows_by_rows(strided_a, b),
                               a @ b.transpose(0, 2, 1), rtol=1e-12)
    wide = np.concatenate([b, b], axis=2)[:, :, ::2]  # a step of 2 along the rows
    np.testing.assert_allclose(products.rows_by_rows(a, wide), a @ wide.transpose(0, 2, 1),
                               rtol=1e-12)


@pytest.mark.parametrize("a, b", [
    (np.zeros((2, 3, 4), np.float32), np.zeros((2, 3, 5), np.float32)),  # inner sizes differ
    (np.zeros((2, 3, 4), np.float32), np.zeros((1, 3, 4), np.float32)),  # stacks differ
    (np.zeros((2, 3, 4), np.float32), np.zeros((2, 3, 4), np.float64)),  # dtypes differ
    (np.zeros((3, 4), np.float32), np.zeros((3, 4), np.float32)),        # not stacks
    (np.zeros((1, 3, 4), np.int64), np.zeros((1, 3, 4), np.int64)),      # not floats
])
def test_rows_by_rows_refuses_mismatched_stacks(a, b):
    with pytest.raises(TypeError, match="rows_by_rows"):
        products.rows_by_rows(a, b)


# -- the dispatch from conv2d's weight gradient ---------------------------------------------
def _conv_weight_grad(x, W, pad):
    xv, Wv = Variable(x), Variable(W)
    F.conv2d(xv, Wv, pad=pad).backward()
    return Wv.grad.data


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=lambda d: d.__name__)
def test_conv1_weight_gradient_takes_the_kernel_and_matches_the_numpy_path(dtype,
                                                                          monkeypatch):
    """The small CNN's conv1: 1 input channel (9 patch rows), 16 filters, 100x28x28."""
    calls = count_calls(monkeypatch, [(products, ["rows_by_rows"])])
    rng = np.random.default_rng(1)
    x = rng.standard_normal((100, 1, 28, 28)).astype(dtype)
    W = rng.standard_normal((16, 1, 3, 3)).astype(dtype)
    got = _conv_weight_grad(x, W, 1)
    assert calls == {"rows_by_rows": 1}
    with fast.numpy_only():
        reference = _conv_weight_grad(x, W, 1)
    rtol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(got, reference, rtol=rtol, atol=rtol * np.abs(reference).max())


@pytest.mark.parametrize("N, C, OC, kernel, expected", [
    (100, 1, 16, 3, 1),   # 9 rows, 16 channels, 78,400 columns: the kernel
    (100, 1, 32, 3, 1),   # 32 channels: still
    (100, 1, 64, 3, 0),   # 64 channels: OpenBLAS
    (100, 1, 16, 1, 0),   # 1 patch row: OpenBLAS
    (100, 2, 16, 3, 0),   # 18 rows: the transposed OpenBLAS product
    (5, 1, 16, 3, 0),     # 3,920 columns, below the threshold
])
def test_the_weight_gradient_dispatch_follows_the_shape(N, C, OC, kernel, expected,
                                                        monkeypatch):
    calls = count_calls(monkeypatch, [(products, ["rows_by_rows"])])
    rng = np.random.default_rng(2)
    x = rng.standard_normal((N, C, 28, 28)).astype(np.float32)
    W = rng.standard_normal((OC, C, kernel, kernel)).astype(np.float32)
    _conv_weight_grad(x, W, kernel // 2)
    assert calls.get("rows_by_rows", 0) == expected


def test_few_rows_product_is_off_on_the_numpy_path_and_for_mixed_dtypes():
    gy, col = np.zeros((1, 16, 10000), np.float32), np.zeros((1, 9, 10000), np.float32)
    assert I.few_rows_product(gy, col)
    with fast.numpy_only():
        assert not I.few_rows_product(gy, col)
    empty = np.zeros((1, 16, 0), np.float32)
    assert not I.few_rows_product(empty, col[:, :, :0])  # an empty batch
    assert not I.few_rows_product(gy.astype(np.float64), col)


def test_a_float32_input_under_float64_weights_keeps_openblas(monkeypatch):
    """x float32, W float64: gy is float64 and the patches float32; OpenBLAS's product
    promotes, the kernel (one dtype) is not asked."""
    calls = count_calls(monkeypatch, [(products, ["rows_by_rows"])])
    rng = np.random.default_rng(4)
    x = rng.standard_normal((100, 1, 28, 28)).astype(np.float32)
    W = rng.standard_normal((16, 1, 3, 3))
    got = _conv_weight_grad(x, W, 1)
    assert calls == {} and got.dtype == np.float64
    expected = _conv_weight_grad(x.astype(np.float64), W, 1)
    np.testing.assert_allclose(got, expected, rtol=1e-12)
