"""zerograd._fast.recurrent: the LSTM cell's gate arithmetic against ops/recurrent.py's
_lstm_step (a few ulp: libm's exp/tanh vs NumPy's) and _lstm_step_grad (bitwise)."""

import numpy as np
import pytest

pytest.importorskip("numba")

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
