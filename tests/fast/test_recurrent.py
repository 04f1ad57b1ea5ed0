"""zerograd._fast.recurrent: the LSTM cell's gate arithmetic against ops/recurrent.py's
_lstm_step (a few ulp: libm's exp/tanh vs NumPy's, bounded below) and _lstm_step_grad
(bitwise); the batch-1 weight gradient's outer product (bitwise); the sequence op's loops
against its NumPy path (forward, bitwise) and the step kernel (backward, bitwise)."""

import contextlib
import math

import numpy as np
import pytest

numba = pytest.importorskip("numba")

import zerograd._fast as fast  # noqa: E402
from zerograd import Parameter  # noqa: E402
from zerograd._fast import recurrent as fast_recurrent  # noqa: E402
from zerograd._fast.recurrent import lstm_step, lstm_step_grad  # noqa: E402
from zerograd.ops import recurrent as R  # noqa: E402

SHAPES = [(1, 100), (3, 7), (1, 1), (5, 32)]  # (N, H): the benchmark's batch 1, odd sizes
RTOL = {np.float32: 3e-7, np.float64: 1e-15}


def _inputs(N, H, dtype, seed=0):
    rng = np.random.default_rng(seed)
    gates = (rng.standard_normal((N, 4 * H)) * 3).astype(dtype)
    gates[0, 0] = 100.0  # saturated sigmoid and tanh
    gates[0, -1] = -100.0
    c_prev = rng.standard_normal((N, H)).astype(dtype)
    return gates, c_prev


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=lambda d: d.__name__)
def test_lstm_step_matches_numpy(shape, dtype):
    gates, c_prev = _inputs(*shape, dtype)
    ref_gates = gates.copy()
    h_ref, c_ref, t_ref = R._lstm_step(ref_gates, c_prev)
    h, c, t = lstm_step(gates, c_prev)
    for got, want in ((gates, ref_gates), (h, h_ref), (c, c_ref), (t, t_ref)):
        assert got.dtype == dtype and got.shape == want.shape
        np.testing.assert_allclose(got, want, rtol=RTOL[dtype], atol=RTOL[dtype])


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=lambda d: d.__name__)
@pytest.mark.parametrize("given", ["both", "gh", "gc"])
def test_lstm_step_grad_matches_numpy(shape, dtype, given):
    N, H = shape
    gates, c_prev = _inputs(N, H, dtype, seed=1)
    _, _, tanh_c = R._lstm_step(gates, c_prev)  # gates now hold the activations
    rng = np.random.default_rng(2)
    gh = rng.standard_normal((N, H)).astype(dtype) if given != "gc" else None
    gc = rng.standard_normal((N, H)).astype(dtype) if given != "gh" else None
    d_ref, gc_ref = R._lstm_step_grad(gates, c_prev, tanh_c, gh, gc)
    d, gc_prev = lstm_step_grad(gates, c_prev, tanh_c, gh, gc)
    assert d.dtype == dtype and gc_prev.dtype == dtype
    np.testing.assert_array_equal(d, d_ref)  # the same arithmetic in the same order
    np.testing.assert_array_equal(gc_prev, gc_ref)


@pytest.mark.parametrize("K, G", [(1, 400), (100, 400), (7, 3)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=lambda d: d.__name__)
@pytest.mark.parametrize("layout", ["contiguous", "strided"])
def test_outer_row_is_numpys_broadcast_product_bitwise(K, G, dtype, layout):
    rng = np.random.default_rng(4)
    a = rng.standard_normal((1, 2 * K)).astype(dtype)
    b = rng.standard_normal((1, 2 * G)).astype(dtype)
    a, b = (a[:, ::2], b[:, ::2]) if layout == "strided" else (a[:, :K], b[:, :G])
    out = np.full((K, G), np.nan, dtype)
    assert fast_recurrent.outer_row(a, b, out) is out
    np.testing.assert_array_equal(out, np.multiply(a.T, b))


def test_outer_row_refuses_other_shapes_and_dtypes():
    a, b = np.ones((1, 3), np.float32), np.ones((1, 4), np.float32)
    with pytest.raises(ValueError, match=r"outer_row: expected a \(1, K\), b \(1, G\) and "
                                         r"out \(K, G\), got \(1, 3\), \(1, 4\) and "
                                         r"\(4, 3\)"):
        fast_recurrent.outer_row(a, b, np.empty((4, 3), np.float32))
    with pytest.raises(TypeError, match="float32 or float64 of one dtype, got float32, "
                                        "float32 and float64"):
        fast_recurrent.outer_row(a, b, np.empty((3, 4)))


def test_errors_name_the_kernel():
    gates, c_prev = _inputs(1, 2, np.float32)
    with pytest.raises(TypeError, match=r"lstm_step: gates and c_prev must be float32 or "
                                        r"float64 of one dtype, got float32 \(1, 8\) and "
                                        r"float64 \(1, 2\)"):
        lstm_step(gates, c_prev.astype(np.float64))
    with pytest.raises(ValueError, match="gh and gc cannot both be None"):
        lstm_step_grad(gates, c_prev, c_prev, None, None)


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=lambda d: d.__name__)
def test_lstm_step_grad_writes_into_a_strided_out(dtype):
    """out=: the sequence op's slice d_all[:, t] of a (N, T, 4H) array (rows T*4H apart)."""
    N, H, T = 3, 7, 4
    gates, c_prev = _inputs(N, H, dtype, seed=3)
    _, _, tanh_c = R._lstm_step(gates, c_prev)
    rng = np.random.default_rng(4)
    gh, gc = (rng.standard_normal((N, H)).astype(dtype) for _ in range(2))
    d_ref, gc_ref = lstm_step_grad(gates, c_prev, tanh_c, gh, gc)
    d_all = np.full((N, T, 4 * H), 7.0, dtype=dtype)
    d, gc_prev = lstm_step_grad(gates, c_prev, tanh_c, gh, gc, out=d_all[:, 2])
    assert np.shares_memory(d, d_all)
    np.testing.assert_array_equal(d_all[:, 2], d_ref)
    np.testing.assert_array_equal(gc_prev, gc_ref)
    np.testing.assert_array_equal(np.delete(d_all, 2, axis=1), 7.0)  # the other steps kept


def test_lstm_step_grad_refuses_an_out_of_another_shape_or_dtype():
    gates, c_prev = _inputs(2, 3, np.float32)
    with pytest.raises(ValueError, match=r"lstm_step_grad: out must be float32 \(2, 12\) like "
                                         r"act, got float64 \(2, 12\)"):
        lstm_step_grad(gates, c_prev, c_prev, c_prev, None, out=np.empty((2, 12)))
    with pytest.raises(ValueError, match=r"got float32 \(2, 11\)"):
        lstm_step_grad(gates, c_prev, c_prev, c_prev, None, out=np.empty((2, 11), np.float32))


# -- the sequence op's loops -----------------------------------------------------------------
def _sequence(N, T, H, dtype, seed=5):
    rng = np.random.default_rng(seed)
    xw = (rng.standard_normal((N, T, 4 * H)) * 2).astype(dtype)
    xw[0, 0, 0], xw[0, -1, -1] = 100.0, -100.0  # saturated gates (e^-a overflows to inf)
    h0, c0 = (rng.standard_normal((N, H)).astype(dtype) for _ in range(2))
    Wh = (rng.standard_normal((H, 4 * H)) * 0.5).astype(dtype)
    b = (rng.standard_normal(4 * H) * 0.5).astype(dtype)  # added inside each step
    return xw, h0, c0, Wh, b


def _buffers(T, N, H, dtype):
    return [np.empty((T, N, 4 * H), dtype)] + [np.empty((T, N, H), dtype) for _ in range(3)]


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=lambda d: d.__name__)
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("layout", ["contiguous", "strided"])
def test_lstm_sequence_forward_matches_the_numpy_path(dtype, reverse, layout):
    """float64: the compiled loop keeps NumPy's exp and tanh and does the rest in the same
    order, so every value is bitwise the NumPy path's. float32: its own sigmoid and tanh
    (a few ulp from NumPy's, below), the rest in the NumPy path's order."""
    N, T, H = 3, 5, 7
    xw, h0, c0, Wh, b = _sequence(N, T, H, dtype)
    if layout == "strided":  # every other step of a longer batch; h0 and c0 column-major
        wide = np.zeros((N, 2 * T, 4 * H), dtype)
        wide[:, ::2] = xw
        xw, h0, c0 = wide[:, ::2], np.asfortranarray(h0), np.asfortranarray(c0)
    order = range(T - 1, -1, -1) if reverse else range(T)
    act, cs, tanh_c, hs = _buffers(T, N, H, dtype)
    with np.errstate(over="raise"):  # the loop silences e^-a's overflow itself
        h, c = fast_recurrent.lstm_sequence_forward(xw, h0, c0, Wh, b, order, act, cs, tanh_c,
                                                    hs)
    with fast.numpy_only():
        op = R.LSTMSequence(reverse)
        # A column-major Wh: the op copies it row-major (OpenBLAS's fast form) first.
        y, h_ref, c_ref = op.forward(xw, h0, c0, np.asfortranarray(Wh), b)
    for got, want in ((act, op.act), (cs, op.cs), (tanh_c, op.tanh_c), (hs, op.hs),
                      (h, h_ref), (c, c_ref)):
        assert got.dtype == dtype
        if dtype == np.float64:
            np.testing.assert_array_equal(got, want)
        else:  # a few ulp a step, carried through the state over five steps
            np.testing.assert_allclose(got, want, rtol=2e-6, atol=3e-7)
    if dtype == np.float64:
        np.testing.assert_array_equal(hs.transpose(1, 0, 2), y)
    else:
        np.testing.assert_allclose(hs.transpose(1, 0, 2), y, rtol=2e-6, atol=3e-7)


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=lambda d: d.__name__)
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("upstream", ["gy", "gy broadcast", "gy strided", "state", "all",
                                      "gh only", "gc only"])
def test_lstm_sequence_backward_is_the_step_kernel_bitwise(dtype, reverse, upstream):
    """One compiled call a step does lstm_step_grad's arithmetic (gy's step added to dL/dh
    first, as the NumPy path adds it); gy, gh and gc are read, never written."""
    N, T, H = 3, 5, 7
    xw, h0, c0, Wh, b = _sequence(N, T, H, dtype, seed=6)
    order = range(T - 1, -1, -1) if reverse else range(T)
    act, cs, tanh_c, hs = _buffers(T, N, H, dtype)
    fast_recurrent.lstm_sequence_forward(xw, h0, c0, Wh, b, order, act, cs, tanh_c, hs)
    rng = np.random.default_rng(7)
    gy = gh = gc = None
    if upstream in ("gy", "all"):
        gy = rng.standard_normal((N, T, H)).astype(dtype)
    elif upstream == "gy broadcast":  # what y.sum()'s backward hands over: zero strides
        gy = np.broadcast_to(dtype(0.5), (N, T, H))
    elif upstream == "gy strided":
        gy = rng.standard_normal((N, 2 * T, H)).astype(dtype)[:, ::2]
    if upstream in ("state", "all"):
        gh, gc = (rng.standard_normal((N, H)).astype(dtype) for _ in range(2))
    elif upstream == "gh only":  # h_T used, c_T not
        gh = rng.standard_normal((N, H)).astype(dtype)
    elif upstream == "gc only":
        gc = rng.standard_normal((N, H)).astype(dtype)
    given = [None if a is None else a.copy() for a in (gy, gh, gc)]
    Wh_T = np.ascontiguousarray(Wh.T)
    d = np.full((N, T, 4 * H), np.nan, dtype)
    gh0, gc0 = fast_recurrent.lstm_sequence_backward(act, cs, tanh_c, c0, Wh_T, gy, gh, gc,
                                                     order, d)
    # The reference: lstm_step_grad a step, the product in NumPy.
    d_ref = np.empty_like(d)
    steps = list(order)
    g_rec, g_c = gh, gc
    for j in range(T - 1, -1, -1):
        t = steps[j]
        c_prev = c0 if j == 0 else cs[steps[j - 1]]
        g = g_rec if gy is None else (gy[:, t] if g_rec is None else g_rec + gy[:, t])
        step, g_c = lstm_step_grad(act[t], c_prev, tanh_c[t], g, g_c, out=d_ref[:, t])
        g_rec = step @ Wh_T
    for got, want in ((d, d_ref), (gh0, g_rec), (gc0, g_c)):
        assert got.dtype == dtype
        np.testing.assert_array_equal(got, want)
    for before, after in zip(given, (gy, gh, gc)):
        if before is not None:
            np.testing.assert_array_equal(after, before)


def test_lstm_sequence_loops_at_one_unit_and_one_step():
    xw, h0, c0, Wh, b = _sequence(1, 1, 1, np.float32, seed=8)
    act, cs, tanh_c, hs = _buffers(1, 1, 1, np.float32)
    h, c = fast_recurrent.lstm_sequence_forward(xw, h0, c0, Wh, b, range(1), act, cs, tanh_c,
                                                hs)
    with fast.numpy_only():
        _, h_ref, c_ref = R.LSTMSequence().forward(xw, h0, c0, Wh, b)
    # float32: the kernel's own sigmoid and tanh, a few ulp from NumPy's (as above).
    np.testing.assert_allclose(h, h_ref, rtol=2e-6, atol=3e-7)
    np.testing.assert_allclose(c, c_ref, rtol=2e-6, atol=3e-7)
    d = np.empty((1, 1, 4), np.float32)
    gh, gc = fast_recurrent.lstm_sequence_backward(act, cs, tanh_c, c0, Wh.T.copy(), None,
                                                   np.ones((1, 1), np.float32), None,
                                                   range(1), d)
    step, gc_ref = lstm_step_grad(act[0], c0, tanh_c[0], np.ones((1, 1), np.float32), None)
    np.testing.assert_array_equal(d[:, 0], step)
    np.testing.assert_array_equal(gc, gc_ref)
    np.testing.assert_array_equal(gh, step @ Wh.T)


# -- libm's exp and tanh (lstm_step's) against NumPy's SIMD ones -------------------------------
@numba.njit(cache=False)
def _libm(x, out, which):
    for k in range(x.size):
        out[k] = math.exp(x[k]) if which == 0 else math.tanh(x[k])


# Measured here (glibc's libm, NumPy 2.4's AVX2 loops; sweeps as in the test below): float32
# exp 2 ulp (2.3e-7 relative), tanh 3 ulp (2.4e-7); float64 exp 1 ulp (2.2e-16), tanh 3 ulp
# (4.4e-16). The bound leaves room for other libm and SIMD builds.
ULP_BOUND = 4


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=lambda d: d.__name__)
@pytest.mark.parametrize("which", ["exp", "tanh"])
def test_libm_exp_and_tanh_are_within_a_few_ulp_of_numpys(dtype, which):
    limit = 88.0 if dtype == np.float32 else 700.0  # exp finite throughout
    tiny = 1e-30 if dtype == np.float32 else 1e-300
    x = np.concatenate([np.linspace(-limit, limit, 200_001), np.linspace(-1, 1, 200_001),
                        np.geomspace(tiny, 1, 20_001), -np.geomspace(tiny, 1, 20_001)])
    x = x.astype(dtype)
    got = np.empty_like(x)
    _libm(x, got, 0 if which == "exp" else 1)
    want = getattr(np, which)(x)
    assert np.array_equal(np.isfinite(got), np.isfinite(want))
    keep = np.isfinite(want) & (want != 0)
    integer = np.int32 if dtype == np.float32 else np.int64
    ulps = np.abs(got[keep].view(integer).astype(np.int64)
                  - want[keep].view(integer).astype(np.int64))  # same sign: ordered integers
    assert np.sign(got[keep]).tolist() == np.sign(want[keep]).tolist()
    assert ulps.max() <= ULP_BOUND, (which, dtype, ulps.max())


# -- the float32 sigmoid and tanh of the sequence loop ---------------------------------------
@numba.njit(cache=False)
def _own_f32(x, out, which):
    for k in range(x.size):
        out[k] = (fast_recurrent._sigmoid_f32(x[k]) if which == 0
                  else fast_recurrent._tanh_f32(x[k]))


def _exactly_rounded(which, x):
    x64 = x.astype(np.float64)
    with np.errstate(over="ignore"):
        exact = 1 / (1 + np.exp(-x64)) if which == "sigmoid" else np.tanh(x64)
    return exact.astype(np.float32)


@pytest.mark.parametrize("which", ["sigmoid", "tanh"])
def test_own_float32_sigmoid_and_tanh_are_within_a_few_ulp(which):
    """Against the exactly rounded values (float64, rounded once) over dense sweeps: within
    ULP_BOUND (measured: 3 each, 99% within 1; NumPy's own 3 and 1); below the smallest normal
    float32 an absolute 1.2e-38 (e^a for a < -87.3 is 0 here, a subnormal in NumPy)."""
    x = np.concatenate([np.linspace(-100, 100, 400_001), np.linspace(-1, 1, 400_001),
                        np.linspace(0.24, 0.26, 20_001), np.linspace(-0.26, -0.24, 20_001),
                        np.geomspace(1e-38, 1, 20_001), -np.geomspace(1e-38, 1, 20_001),
                        np.random.default_rng(0).standard_normal(1_000_000) * 4])
    x = x.astype(np.float32)
    got = np.empty_like(x)
    _own_f32(x, got, 0 if which == "sigmoid" else 1)
    want = _exactly_rounded(which, x)
    tiny = np.abs(want) < np.finfo(np.float32).tiny
    assert np.all(np.abs(got[tiny] - want[tiny]) <= np.finfo(np.float32).tiny)
    keep = ~tiny
    assert np.sign(got[keep]).tolist() == np.sign(want[keep]).tolist()
    ulps = np.abs(got[keep].view(np.int32).astype(np.int64)
                  - want[keep].view(np.int32).astype(np.int64))
    assert ulps.max() <= ULP_BOUND, (which, ulps.max())


def test_own_float32_sigmoid_and_tanh_special_values():
    x = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 1e-45, -1e-45], dtype=np.float32)
    s, t = np.empty_like(x), np.empty_like(x)
    _own_f32(x, s, 0)
    _own_f32(x, t, 1)
    np.testing.assert_array_equal(s[:4], [0.5, 0.5, 1.0, 0.0])
    np.testing.assert_array_equal(t[:4], [0.0, -0.0, 1.0, -1.0])
    assert np.signbit(t[1]) and not np.signbit(t[0])  # tanh(-0.0) = -0.0
    assert np.isnan(s[4]) and np.isnan(t[4])
    np.testing.assert_array_equal(t[5:], x[5:])  # tanh(x) = x for subnormal x
    np.testing.assert_array_equal(s[5:], [0.5, 0.5])


# -- GRUSequence's loops ---------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=lambda d: d.__name__)
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("gy_kind", ["broadcast", "strided", "none"])
def test_gru_sequence_loops_are_the_numpy_path_bitwise(dtype, reverse, gy_kind, monkeypatch):
    """Strided xw, a column-major h0 and Wh, saturated gates; gy as y.sum() hands it over
    (zero strides), strided, or absent (only dL/dh_T): every array equal bitwise."""
    monkeypatch.delenv("ZEROGRAD_FAST", raising=False)  # the loops on (CI's FAST=0 run too)
    N, T, H = 3, 5, 7
    rng = np.random.default_rng(9)
    wide = (rng.standard_normal((N, 2 * T, 3 * H)) * 2).astype(dtype)
    wide[0, 0, 0], wide[0, 2, 3 * H - 1] = 100.0, -100.0
    xw = wide[:, ::2]
    h0 = np.asfortranarray(rng.standard_normal((N, H)).astype(dtype))
    Wh = np.asfortranarray((rng.standard_normal((H, 3 * H)) * 0.5).astype(dtype))
    bh = rng.standard_normal(3 * H).astype(dtype)
    gy = {"broadcast": np.broadcast_to(dtype(0.5), (N, T, H)),
          "strided": rng.standard_normal((N, 2 * T, H)).astype(dtype)[:, 1::2],
          "none": None}[gy_kind]
    gh = rng.standard_normal((N, H)).astype(dtype) if gy is None else None
    assert fast.use("gru_sequence", h0, xw, Wh, bh)  # the first pass runs the loops
    results = []
    for numpy_path in (False, True):
        with fast.numpy_only() if numpy_path else contextlib.nullcontext():
            op = R.GRUSequence(reverse)
            y, h = op.forward(xw, h0, Wh, bh)
            op.inputs = tuple(Parameter(a) for a in (xw, h0, Wh, bh))
            grads = op.backward(None if gy is None else Parameter(gy),
                                None if gh is None else Parameter(gh))
        results.append([y, h, op.rz, op.n, op.hn, op.hs] + [g.data for g in grads])
    for got, want in zip(*results):
        assert got.dtype == dtype
        np.testing.assert_array_equal(got, want)
