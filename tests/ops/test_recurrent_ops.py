"""The fused recurrent ops (zerograd/ops/recurrent.py): specs through the op harness, fused vs
composed gradients, the sequence ops vs the cell ops, PyTorch's cells, errors, stability."""

import contextlib
import warnings

import numpy as np
import pytest

import zerograd.functions as F
from tests.ops.specs.recurrent import D, H, N
from zerograd import Variable
from zerograd.errors import DTypeError, GraphError, ShapeError
from zerograd.ops import recurrent as R


# -- fused vs composed ----------------------------------------------------------------------
def composed_lstm_cell(x, h, c, Wx, Wh, b):
    """The same step from the op library (about fifteen graph nodes)."""
    f, i, o, u = F.split(F.matmul(x, Wx) + F.matmul(h, Wh) + b, 4, axis=1)
    c_new = F.sigmoid(f) * c + F.sigmoid(i) * F.tanh(u)
    return F.sigmoid(o) * F.tanh(c_new), c_new


def composed_gru_cell(x, h, Wx, Wh, bx, bh):
    xr, xz, xn = F.split(F.matmul(x, Wx) + bx, 3, axis=1)
    hr, hz, hn = F.split(F.matmul(h, Wh) + bh, 3, axis=1)
    r, z = F.sigmoid(xr + hr), F.sigmoid(xz + hz)
    n = F.tanh(xn + r * hn)
    return (1 - z) * n + z * h


def composed_rnn_cell(x, h, Wx, Wh, b):
    return F.tanh(F.matmul(x, Wx) + F.matmul(h, Wh) + b)


CELLS = [
    (R.lstm_cell, composed_lstm_cell, [(N, D), (N, H), (N, H), (D, 4 * H), (H, 4 * H), (4 * H,)]),
    (R.gru_cell, composed_gru_cell, [(N, D), (N, H), (D, 3 * H), (H, 3 * H), (3 * H,), (3 * H,)]),
    (R.rnn_cell, composed_rnn_cell, [(N, D), (N, H), (D, H), (H, H), (H,)]),
]


def _grads(fn, arrays, weights, create_graph=False):
    xs = [Variable(a.copy()) for a in arrays]
    ys = fn(*xs)
    ys = list(ys) if isinstance(ys, (list, tuple)) else [ys]
    total = sum((y * w).sum() for y, w in zip(ys, weights))
    total.backward(create_graph=create_graph)
    return xs, ys


@pytest.mark.parametrize("fused, composed, shapes", CELLS, ids=["lstm", "gru", "rnn"])
def test_fused_cell_grads_equal_composed_to_second_order(fused, composed, shapes):
    rng = np.random.default_rng(0)
    arrays = [rng.standard_normal(s) * 0.8 for s in shapes]
    n_out = 2 if fused is R.lstm_cell else 1
    weights = [rng.standard_normal((N, H)) for _ in range(n_out)]
    xs_f, ys_f = _grads(fused, arrays, weights, create_graph=True)
    xs_c, ys_c = _grads(composed, arrays, weights, create_graph=True)
    for yf, yc in zip(ys_f, ys_c):
        np.testing.assert_allclose(yf.data, yc.data, rtol=1e-12, atol=1e-12)
    for a, b in zip(xs_f, xs_c):
        np.testing.assert_allclose(a.grad.data, b.grad.data, rtol=1e-10, atol=1e-12)
    # Second order: d/dinputs of sum(grad * v) for a fixed random v, both ways.
    vs = [rng.standard_normal(s) for s in shapes]
    results = []
    for xs in (xs_f, xs_c):
        g_total = sum((x.grad * v).sum() for x, v in zip(xs, vs))
        for x in xs:
            x.cleargrad()
        g_total.backward()
        results.append([x.grad.data for x in xs])
    for a, b in zip(*results):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-11)


def test_lstm_cell_with_only_c_used_and_only_h_used():
    rng = np.random.default_rng(1)
    shapes = CELLS[0][2]
    arrays = [rng.standard_normal(s) * 0.8 for s in shapes]
    for pick in (0, 1):
        xs_f = [Variable(a) for a in arrays]
        xs_c = [Variable(a) for a in arrays]
        R.lstm_cell(*xs_f)[pick].sum().backward()
        composed_lstm_cell(*xs_c)[pick].sum().backward()
        for a, b in zip(xs_f, xs_c):
            np.testing.assert_allclose(a.grad.data, b.grad.data, rtol=1e-10, atol=1e-12)


def test_lstm_sequence_equals_a_loop_of_cells_values_and_grads():
    rng = np.random.default_rng(2)
    Tn = 5
    x = rng.standard_normal((N, Tn, D))
    Wx, Wh = rng.standard_normal((D, 4 * H)) * 0.5, rng.standard_normal((H, 4 * H)) * 0.5
    b, h0, c0 = rng.standard_normal(4 * H), rng.standard_normal((N, H)), rng.standard_normal((N, H))
    gy = rng.standard_normal((N, Tn, H))

    params = [Variable(a) for a in (Wx, Wh, b, h0, c0)]
    y, hT, cT = R.lstm_sequence(F.matmul(Variable(x), params[0]) + params[2], params[3],
                                params[4], params[1])
    ((y * gy).sum() + hT.sum() * 2 + cT.sum()).backward()

    loop = [Variable(a) for a in (Wx, Wh, b, h0, c0)]
    h, c = loop[3], loop[4]
    total = 0
    for t in range(Tn):
        h, c = R.lstm_cell(x[:, t], h, c, loop[0], loop[1], loop[2])
        np.testing.assert_allclose(y.data[:, t], h.data, rtol=1e-12)
        total = total + (h * gy[:, t]).sum()
    (total + h.sum() * 2 + c.sum()).backward()
    for a, b_ in zip(params, loop):
        np.testing.assert_allclose(a.grad.data, b_.grad.data, rtol=1e-10, atol=1e-12)


def test_sequence_ops_refuse_create_graph_with_a_clear_error():
    rng = np.random.default_rng(3)
    xw = Variable(rng.standard_normal((1, 2, 4)))
    Wh = Variable(rng.standard_normal((1, 4)))
    y, _, _ = R.lstm_sequence(xw, None, None, Wh)
    with pytest.raises(GraphError, match="fused=False"):
        y.sum().backward(create_graph=True)


def test_a_zero_length_sequence_returns_the_initial_state():
    h0 = np.ones((2, 3), np.float32)
    y, h = R.rnn_sequence(np.zeros((2, 0, 3), np.float32), h0, np.eye(3, dtype=np.float32))
    assert y.shape == (2, 0, 3)
    np.testing.assert_array_equal(h.data, h0)
    h0, c0 = Variable(h0), Variable(np.full((2, 3), 2.0, np.float32))
    y, h, c = R.lstm_sequence(np.zeros((2, 0, 12), np.float32), h0, c0,
                              Variable(np.ones((3, 12), np.float32)))
    (h.sum() + 3 * c.sum()).backward()
    np.testing.assert_array_equal(c.data, c0.data)
    np.testing.assert_array_equal(h0.grad.data, np.ones((2, 3)))
    np.testing.assert_array_equal(c0.grad.data, np.full((2, 3), 3.0))
    for _, h in (R.rnn_sequence(np.zeros((2, 0, 3), np.float32), h0,
                               Variable(np.eye(3, dtype=np.float32))),
                R.gru_sequence(np.zeros((2, 0, 9), np.float32), h0,
                               Variable(np.ones((3, 9), np.float32)))):
        h0.cleargrad()
        (h * 2).sum().backward()
        np.testing.assert_array_equal(h0.grad.data, np.full((2, 3), 2.0))


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_a_zero_width_state_gives_empty_outputs_and_gradients(cell):
    """H = 0 (a degenerate layer, but a valid shape): empty outputs, and the weight
    gradients are (0, 0) arrays, not a reshape error."""
    xw = Variable(np.zeros((2, 3, 0), np.float32))
    Wh = Variable(np.zeros((0, 0), np.float32))
    if cell == "lstm":
        y = R.lstm_sequence(xw, None, None, Wh)[0]
    elif cell == "gru":
        y = R.gru_sequence(xw, None, Wh, Variable(np.zeros(0, np.float32)))[0]
    else:
        y = R.rnn_sequence(xw, None, Wh)[0]
    assert y.shape == (2, 3, 0)
    y.sum().backward()
    assert Wh.grad.shape == (0, 0) and xw.grad.shape == (2, 3, 0)


# -- against PyTorch ------------------------------------------------------------------------
def _torch_lstm_cell_weights(cell):
    """PyTorch's LSTMCell weights as zerograd's (Wx, Wh, b): gate rows (i, f, g, o) become
    columns (f, i, o, u)."""
    def reorder(w):
        i, f, g, o = np.split(w.detach().numpy().astype(np.float64), 4, axis=0)
        return np.concatenate([f, i, o, g], axis=0)
    Wx = reorder(cell.weight_ih).T
    Wh = reorder(cell.weight_hh).T
    b = reorder(cell.bias_ih) + reorder(cell.bias_hh)
    return Wx, Wh, b


def test_lstm_cell_matches_torch():
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    cell = torch.nn.LSTMCell(3, 5).double()
    x, h, c = torch.randn(4, 3, dtype=torch.float64), torch.randn(4, 5, dtype=torch.float64), \
        torch.randn(4, 5, dtype=torch.float64)
    h_t, c_t = cell(x, (h, c))
    Wx, Wh, b = _torch_lstm_cell_weights(cell)
    h_z, c_z = R.lstm_cell(x.numpy(), h.numpy(), c.numpy(), Wx, Wh, b)
    np.testing.assert_allclose(h_z.data, h_t.detach().numpy(), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(c_z.data, c_t.detach().numpy(), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("path", ["kernels", "numpy"])
@pytest.mark.parametrize("bias", ["in xw", "in the op"])
def test_lstm_sequence_matches_torch_lstm_values_and_grads(dtype, path, bias):
    """lstm_sequence on x Wx + b, or on x Wx with b as its own input, against torch.nn.LSTM
    on x, on both of zerograd's paths (the compiled loops of zerograd._fast where numba is
    installed, and the NumPy path)."""
    torch = pytest.importorskip("torch")
    import zerograd._fast as fast

    torch.manual_seed(2)
    Nn, Tn, Dn, Hn = 4, 7, 3, 16
    tdtype = torch.float32 if dtype == np.float32 else torch.float64
    lstm = torch.nn.LSTM(Dn, Hn, batch_first=True).to(tdtype)
    x = torch.randn(Nn, Tn, Dn, dtype=tdtype)
    h0, c0 = (torch.randn(1, Nn, Hn, dtype=tdtype, requires_grad=True) for _ in range(2))
    gy = torch.randn(Nn, Tn, Hn, dtype=tdtype)
    y_t, (h_t, c_t) = lstm(x, (h0, c0))
    ((y_t * gy).sum() + h_t.sum() + 2 * c_t.sum()).backward()

    def ours(w):  # torch's gate rows (i, f, g, o) as zerograd's columns (f, i, o, u)
        i, f, g, o = np.split(w.detach().numpy(), 4, axis=0)
        return np.concatenate([f, i, o, g], axis=0).T

    Wx, Wh = ours(lstm.weight_ih_l0), ours(lstm.weight_hh_l0)
    b = ours(lstm.bias_ih_l0[:, None] + lstm.bias_hh_l0[:, None])[0]
    b_v = Variable(b.copy())
    xw = Variable(x.numpy() @ Wx + (b if bias == "in xw" else 0))
    state = [Variable(v.detach().numpy()[0].copy()) for v in (h0, c0)]
    Wh_v = Variable(Wh.copy())
    with contextlib.nullcontext() if path == "kernels" else fast.numpy_only():
        y, h, c = R.lstm_sequence(xw, state[0], state[1], Wh_v,
                                  b_v if bias == "in the op" else None)
        ((y * gy.numpy()).sum() + h.sum() + 2 * c.sum()).backward()
    tol = {np.float32: dict(rtol=2e-5, atol=2e-6), np.float64: dict(rtol=1e-11, atol=1e-13)}
    if bias == "in the op":  # torch's two biases get the same gradient, the sum over steps
        np.testing.assert_allclose(b_v.grad.data, ours(lstm.bias_ih_l0.grad[:, None])[0],
                                   **tol[dtype])
    else:
        assert b_v.grad is None
    for got, want in ((y.data, y_t), (h.data, h_t[0]), (c.data, c_t[0]),
                      (state[0].grad.data, h0.grad[0]), (state[1].grad.data, c0.grad[0]),
                      (Wh_v.grad.data, ours(lstm.weight_hh_l0.grad)),
                      # dL/dxw through the projection: x^T dL/dxw is torch's input weight's
                      (np.einsum("ntd,ntg->dg", x.numpy(), xw.grad.data),
                       ours(lstm.weight_ih_l0.grad))):
        assert got.dtype == dtype
        np.testing.assert_allclose(got, want.detach().numpy() if hasattr(want, "detach")
                                   else want, **tol[dtype])


def test_gru_cell_matches_torch():
    torch = pytest.importorskip("torch")
    torch.manual_seed(1)
    cell = torch.nn.GRUCell(3, 5).double()
    x, h = torch.randn(4, 3, dtype=torch.float64), torch.randn(4, 5, dtype=torch.float64)
    expected = cell(x, h).detach().numpy()
    got = R.gru_cell(x.numpy(), h.numpy(), cell.weight_ih.detach().numpy().T,
                     cell.weight_hh.detach().numpy().T, cell.bias_ih.detach().numpy(),
                     cell.bias_hh.detach().numpy())
    np.testing.assert_allclose(got.data, expected, rtol=1e-12, atol=1e-14)


# -- stability, dtypes, errors ---------------------------------------------------------------
def test_large_pre_activations_saturate_without_overflow_or_nan():
    x = np.array([[1e4], [-1e4]], np.float32)
    Wx = np.full((1, 8), 1.0, np.float32)
    Wh = np.zeros((2, 8), np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        h, c = R.lstm_cell(Variable(x), None, None, Variable(Wx), Variable(Wh))
        (h.sum() + c.sum()).backward()
    # Row 0: every gate open, u = 1: c = 1, h = tanh(1). Row 1: every gate shut: h = c = 0.
    np.testing.assert_allclose(c.data, [[1, 1], [0, 0]], atol=1e-6)
    np.testing.assert_allclose(h.data, [[np.tanh(1)] * 2, [0, 0]], atol=1e-6)
    assert h.dtype == np.float32 and c.dtype == np.float32


def test_first_step_without_state_equals_zero_state():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 3)).astype(np.float32)
    Wx = rng.standard_normal((3, 8)).astype(np.float32)
    Wh = rng.standard_normal((2, 8)).astype(np.float32)
    zero = np.zeros((2, 2), np.float32)
    a = R.lstm_cell(x, None, None, Wx, Wh)
    b = R.lstm_cell(x, zero, zero, Wx, Wh, np.zeros(8, np.float32))
    for u, v in zip(a, b):
        np.testing.assert_array_equal(u.data, v.data)
        assert u.dtype == np.float32


def test_shape_errors_name_the_op_and_the_shapes():
    x = np.zeros((2, 3), np.float32)
    with pytest.raises(ShapeError, match=r"lstm_cell: got x float32 \(2, 3\), h .*Wh float32 "
                                         r"\(3, 8\).*expected x \(N, D\)"):
        R.lstm_cell(x, None, None, np.zeros((3, 8), np.float32), np.zeros((3, 8), np.float32))
    with pytest.raises(ShapeError, match="rnn_cell"):
        R.rnn_cell(x, None, np.zeros((4, 2), np.float32), np.zeros((2, 2), np.float32))
    with pytest.raises(ShapeError, match="gru_sequence"):
        R.gru_sequence(np.zeros((2, 3, 5), np.float32), None, np.zeros((2, 6), np.float32))


def test_integer_inputs_raise_a_dtype_error_naming_them():
    with pytest.raises(DTypeError, match=r"rnn_cell: every input must be floating point, got "
                                         r"x int64 \(2, 3\)"):
        R.rnn_cell(np.zeros((2, 3), np.int64), None, np.zeros((3, 2)), np.zeros((2, 2)))


# -- fused_weights: per-gate Parameters seen as one fused array -------------------------------
def _gate_views(rng, rows=3, H=2, blocks=4):
    """A fused (rows, blocks * H) array and Parameters holding views of its column blocks."""
    from zerograd import Parameter

    fused = rng.standard_normal((rows, blocks * H))
    parts = [Parameter(fused[:, k * H:(k + 1) * H]) for k in range(blocks)]
    return fused, parts


def test_fused_weights_returns_the_fused_array_and_splits_the_gradient():
    rng = np.random.default_rng(3)
    fused, parts = _gate_views(rng)
    bias = rng.standard_normal(8)
    b_parts = [Variable(bias[k * 2:(k + 1) * 2]) for k in (0, 2)]  # gates 1 and 3: no bias
    W, b = R.fused_weights([(fused, [0, 1, 2, 3]), (bias, [0, 2])], 4, *parts, *b_parts)
    assert W.data is fused and b.data is bias  # no copy: the Parameters' memory itself
    gW = rng.standard_normal(fused.shape)
    gb = rng.standard_normal(8)
    (F.sum(W * gW) + F.sum(b * gb)).backward()
    for k, p in enumerate(parts):
        np.testing.assert_array_equal(p.grad.data, gW[:, 2 * k:2 * k + 2])
    np.testing.assert_array_equal(b_parts[0].grad.data, gb[0:2])
    np.testing.assert_array_equal(b_parts[1].grad.data, gb[4:6])


def test_fused_weights_second_derivative():
    """d/dp of sum((W * W) @ v) through the node, to second order: 2 v-weighted, per block."""
    rng = np.random.default_rng(4)
    fused, parts = _gate_views(rng, blocks=2)
    v = rng.standard_normal((4, 1))
    (W,) = R.fused_weights([(fused, [0, 1])], 2, *parts)
    F.sum(F.matmul(W * W, v)).backward(create_graph=True)
    g = parts[1].grad
    np.testing.assert_allclose(g.data, 2 * fused[:, 2:] * v[2:].T, rtol=1e-12)
    for p in parts:
        p.cleargrad()
    F.sum(g).backward()
    np.testing.assert_allclose(parts[1].grad.data, np.broadcast_to(2 * v[2:].T, (3, 2)),
                               rtol=1e-12)
    assert parts[0].grad is None or not np.any(parts[0].grad.data)


def test_fused_weights_refuses_parts_that_are_not_views_of_the_fused_array():
    rng = np.random.default_rng(5)
    fused, parts = _gate_views(rng, blocks=2)
    stray = Variable(fused[:, 2:].copy())
    with pytest.raises(GraphError, match=r"fused_weights: input 1 \(float64 \(3, 2\)\) is not "
                                         r"a view of the fused array float64 \(3, 4\)"):
        R.fused_weights([(fused, [0, 1])], 2, parts[0], stray)
    with pytest.raises(ShapeError, match="names 2 block"):
        R.fused_weights([(fused, [0, 1])], 2, parts[0])


def test_rnn_cell_first_step_needs_no_recurrent_weight():
    """DeZero's lazy h2h has no weights at the first step: rnn_cell(x, None, Wx, None, b) is
    tanh(x Wx + b), and its gradients are those of that expression."""
    rng = np.random.default_rng(6)
    x, Wx, b = (Variable(rng.standard_normal(s)) for s in ((2, 3), (3, 4), (4,)))
    y = R.rnn_cell(x, None, Wx, None, b)
    expected = np.tanh(x.data @ Wx.data + b.data)
    np.testing.assert_allclose(y.data, expected, rtol=1e-12)
    y.backward()
    np.testing.assert_allclose(b.grad.data, (1 - expected ** 2).sum(axis=0), rtol=1e-12)
    with pytest.raises(ShapeError, match=r"rnn_cell: h float64 \(2, 4\) is given but Wh is None"):
        R.rnn_cell(x, np.zeros((2, 4)), Wx, None, b)
