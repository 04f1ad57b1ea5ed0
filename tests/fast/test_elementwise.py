"""zerograd._fast.elementwise: fused bias + ReLU (bitwise against NumPy) and the exact GELU
(against ops/activation.py's GELU and GELUGrad to a few ulp, and against math.erf)."""

import math
from fractions import Fraction

import numpy as np
import pytest

numba = pytest.importorskip("numba")

from zerograd._fast import elementwise as E  # noqa: E402
from zerograd.ops import activation as A  # noqa: E402

DTYPES = [np.float32, np.float64]
# Units in the last place that the GELU kernels may differ from the NumPy path by (only exp
# is computed differently); relative to max(|value|, 1) where the derivative cancels.
TOLERANCE = {np.float32: 4e-7, np.float64: 2e-15}


def _gelu_inputs(dtype, shape=(1001,)):
    x = np.random.default_rng(0).standard_normal(shape) * 4
    flat = x.reshape(-1)
    special = [0.0, -0.0, 1e-30, -1e-30, 0.75, -0.75, 5.0, -5.0, 9.0, -9.0, 13.0, -13.0,
               30.0, -30.0, np.inf, -np.inf, np.nan]
    flat[:len(special)] = special[:flat.size]
    return x.astype(dtype)


def _close(got, want, dtype, scale=1.0):
    """|got - want| <= tol * max(|want|, scale), nan where want is nan."""
    assert got.shape == want.shape and got.dtype == want.dtype
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    ok = ~np.isnan(want)
    bound = TOLERANCE[dtype] * np.maximum(np.abs(want[ok]), scale) + np.finfo(dtype).tiny
    finite = np.isfinite(want[ok])
    np.testing.assert_array_equal(got[ok][~finite], want[ok][~finite])
    assert np.all(np.abs(got[ok][finite] - want[ok][finite]) <= bound[finite])


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
@pytest.mark.parametrize("shape", [(1001,), (3, 5, 7), (1,), (0,), ()], ids=str)
def test_gelu_matches_numpy(dtype, shape):
    x = _gelu_inputs(dtype, shape)
    f = A.GELU()
    with np.errstate(invalid="ignore"):
        y_ref = f.forward(x)
        d_ref = A.GELUGrad().forward(x)
    y, cdf = E.gelu(x, keep_cdf=True)
    _close(y, y_ref, dtype, scale=0.0)  # y: relative error, down to the tails
    _close(cdf, f.cdf, dtype, scale=0.0)
    np.testing.assert_array_equal(E.gelu(x), y)
    # The derivative crosses zero near x = -0.75: there its absolute error is what counts.
    _close(E.gelu_grad(x), d_ref, dtype)
    _close(E.gelu_grad(x, cdf), d_ref, dtype)
    gy = np.random.default_rng(1).standard_normal(x.shape).astype(dtype)
    _close(E.gelu_backward(x, gy), gy * d_ref, dtype, scale=0.0 if x.size == 0 else
           np.abs(gy).max())


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
def test_gelu_against_math_erf(dtype):
    """Accuracy in its own right: against x/2 erfc(-x / sqrt 2) in float64. In the lower tail
    float32 loses digits in any formulation (z^2 ~ 72 is rounded before exp(-z^2)): there
    the kernel must be no worse than the NumPy path."""
    x = np.linspace(-12, 8, 4001).astype(dtype)
    exact = np.array([v * 0.5 * math.erfc(-v / math.sqrt(2)) for v in x.astype(float)])

    def rel(y):
        return np.abs(y.astype(float) - exact) / np.maximum(np.abs(exact), 1e-300)

    kernel, numpy_path = rel(E.gelu(x)), rel(A.GELU().forward(x))
    core = np.abs(x) <= 3
    assert kernel[core].max() < {np.float32: 1e-6, np.float64: 1e-14}[dtype]  # 8 ulp / 50
    assert kernel.max() <= 1.5 * numpy_path.max() + {np.float32: 1e-6, np.float64: 1e-14}[dtype]


def test_gelu_non_contiguous_and_tail():
    x = _gelu_inputs(np.float64, (40, 30))[:, ::3]
    assert not x.flags.c_contiguous
    _close(E.gelu(x), A.GELU().forward(np.ascontiguousarray(x)), np.float64, scale=0.0)
    # Phi(-38) = 2.9e-316 is subnormal in float64: the kernel's exp gives 0 below 2e-308.
    x = np.array([-38.0])
    assert E.gelu(x)[0] == 0.0 and 0 < -A.GELU().forward(x)[0] < 2e-306


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
@pytest.mark.parametrize("shape", [(1001,), (3, 5, 7), (1,), ()], ids=str)
def test_gelu_backward_reads_a_broadcast_gy_as_one_value(dtype, shape):
    """The gradient of a sum reaches GELU as one value broadcast (strides 0): the kernel reads
    that value instead of a copy of x's size, and gives gy * d bit for bit either way."""
    x = _gelu_inputs(dtype, shape)
    gy = np.broadcast_to(np.asarray(0.375, dtype=dtype), x.shape)
    assert not any(gy.strides)
    d = E.gelu_grad(x)
    with np.errstate(invalid="ignore"):
        np.testing.assert_array_equal(E.gelu_backward(x, gy), gy * d)
        np.testing.assert_array_equal(E.gelu_backward(x, np.ascontiguousarray(gy)), gy * d)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
@pytest.mark.parametrize("shape", [(40, 30), (17, 9)], ids=["kernel", "numpy"])
def test_gelu_first_order_backward_is_the_two_node_backward_bitwise(dtype, shape):
    """GELU.backward_arrays (one compiled pass from the kernel's threshold on, NumPy below it)
    against backward's GELUGrad node times gy."""
    import zerograd as zg
    import zerograd._fast as fast
    import zerograd.functions as F

    x = zg.Variable(_gelu_inputs(dtype, shape))
    assert fast.use("gelu", x.data) == (x.data.size >= 1024)  # each case takes its path
    for gy in (np.random.default_rng(2).standard_normal(shape).astype(dtype),
               np.broadcast_to(np.asarray(2.5, dtype=dtype), shape)):
        y = F.gelu(x)
        with np.errstate(invalid="ignore"):
            fused = y.creator.backward_arrays(gy)
            two_nodes = y.creator.backward(zg.Variable(gy)).data
        assert fused.dtype == two_nodes.dtype == dtype
        np.testing.assert_array_equal(fused, two_nodes)


# -- bias + ReLU ------------------------------------------------------------------------------
def _channel_major(a):
    return np.ascontiguousarray(a.transpose(1, 0, 2, 3)).transpose(1, 0, 2, 3)


CASES = [((5, 7), 1, "plain"), ((4, 6, 3, 5), 1, "plain"), ((4, 6, 3, 5), 1, "channel_major"),
         ((1, 3, 1, 1), 1, "plain"), ((0, 4), 1, "plain"), ((3, 2, 9), 1, "plain"),
         ((6, 4), 0, "plain")]


@pytest.mark.parametrize("case", CASES, ids=str)
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
def test_bias_relu_matches_numpy(case, dtype):
    shape, axis, layout = case
    rng = np.random.default_rng(2)
    a = rng.standard_normal(shape).astype(dtype)
    if a.size:
        a.reshape(-1)[0] = np.nan
    if layout == "channel_major":
        a = _channel_major(a)
    b = rng.standard_normal(shape[axis]).astype(dtype)
    bshape = [1] * len(shape)
    bshape[axis] = shape[axis]
    ref = np.maximum(a + b.reshape(bshape), 0)
    work = a.copy(order="K")
    y = E.bias_relu(work, b, axis)
    np.testing.assert_array_equal(y, ref)  # nan stays nan, as in np.maximum
    if a.size and (layout == "channel_major" or len(shape) == 2):
        assert np.shares_memory(y, work)  # in place, layout kept
    y = np.nan_to_num(ref, nan=1.0)
    gy = rng.standard_normal(shape).astype(dtype)
    gx, gb = E.bias_relu_backward(y, gy, axis)
    np.testing.assert_array_equal(gx, gy * (y > 0))
    axes = tuple(d for d in range(len(shape)) if d != axis)
    exact = (gy.astype(np.float64) * (y > 0)).sum(axis=axes)
    assert gb.dtype == dtype
    np.testing.assert_allclose(gb, exact, rtol=1e-6 if dtype == np.float32 else 1e-14,
                               atol=1e-6)
    gx2, none = E.bias_relu_backward(y, gy, axis, bias_grad=False)
    assert none is None
    np.testing.assert_array_equal(gx2, gx)


def test_relu_gradient_at_zero_is_zero():
    y = np.array([[0.0, 1.0, 0.0]], dtype=np.float32)
    gx, gb = E.bias_relu_backward(y, np.array([[5.0, 2.0, np.inf]], dtype=np.float32))
    np.testing.assert_array_equal(gx, [[0.0, 2.0, 0.0]])  # relu'(0) = 0, even for inf gy
    np.testing.assert_array_equal(gb, [0.0, 2.0, 0.0])


def test_errors_name_the_kernel():
    with pytest.raises(TypeError, match=r"gelu: expected float32 or float64 arrays, got "
                                        r"int64 \(3,\)"):
        E.gelu(np.arange(3))
    with pytest.raises(ValueError, match=r"bias_relu_backward: y \(2, 3\) and gy \(3, 2\)"):
        E.bias_relu_backward(np.zeros((2, 3)), np.zeros((3, 2)))


# -- the fused multiply-add of the polynomials -------------------------------------------------
@numba.njit(cache=False)
def _muladd_all(a, b, c, out):
    for k in range(a.size):
        out[k] = E._muladd(a[k], b[k], c[k])


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
def test_muladd_rounds_once_where_fused_else_twice(dtype):
    """Each value is a * b + c rounded once (a fused multiply-add) or rounded after the
    product and again after the sum, one or the other for the whole loop, and in the
    array's dtype."""
    rng = np.random.default_rng(4)
    a, b, c = (rng.standard_normal(2000).astype(dtype) for _ in range(3))
    got = np.empty_like(a)
    _muladd_all(a, b, c, got)
    assert got.dtype == dtype
    exact = [Fraction(float(x)) * Fraction(float(y)) + Fraction(float(z))
             for x, y, z in zip(a, b, c)]
    # The exact value rounded to float64 (correctly: Fraction's float), then for float32
    # rounded again: a second rounding could differ from one only where the float64 value
    # lies exactly halfway between two float32s (about 2^-29 of random values).
    fused = np.array([float(e) for e in exact]).astype(dtype)
    unfused = a * b + c
    assert np.array_equal(got, fused) or np.array_equal(got, unfused)
    assert not np.array_equal(fused, unfused)  # the sample tells the two apart
