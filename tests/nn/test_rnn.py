"""Recurrent layers (zerograd/nn/rnn.py): DeZero semantics and initial draws, PyTorch's
cells and multi-layer bidirectional sequences with copied weights, state handling, truncated
BPTT, fused vs step-by-step, dtypes and errors."""

import numpy as np
import pytest

from tests.nn.helpers import import_dezero
from zerograd import Variable
from zerograd.errors import ShapeError
from zerograd.nn.rnn import GRU, LSTM, RNN, GRUSeq, LSTMSeq, RNNSeq


def _sigmoid(a):
    return 1 / (1 + np.exp(-a))


# -- cells: hand computation, DeZero -----------------------------------------------------
def test_rnn_is_dezero_elman_and_right_when_in_size_differs_from_hidden_size():
    """DeZero sizes h2h with in_size and fails at step 2 (bug 5); the recurrence is
    tanh(x Wx + b) at the first step and tanh(x Wx + b + h Wh) afterwards."""
    np.random.seed(0)
    rnn = RNN(4, in_size=3)
    assert rnn.x2h.W.shape == (3, 4) and rnn.h2h.W.shape == (4, 4)
    rnn.x2h.b.data[:] = np.float32(0.1)
    Wx, Wh, b = rnn.x2h.W.data, rnn.h2h.W.data, rnn.x2h.b.data
    xs = np.random.randn(5, 2, 3).astype(np.float32)
    h = None
    for x in xs:
        y = rnn(x)
        h = np.tanh(x @ Wx + b) if h is None else np.tanh(x @ Wx + b + h @ Wh)
        np.testing.assert_allclose(y.data, h, rtol=1e-6, atol=1e-7)
        assert y.dtype == np.float32


def _gates(lstm):
    """(Wx, Wh, b): DeZero's per-gate weights of an LSTM side by side, gates f, i, o, u."""
    Wx = np.concatenate([getattr(lstm, f"x2{g}").W.data for g in "fiou"], axis=1)
    Wh = np.concatenate([getattr(lstm, f"h2{g}").W.data for g in "fiou"], axis=1)
    b = np.concatenate([getattr(lstm, f"x2{g}").b.data for g in "fiou"])
    return Wx, Wh, b


def test_lstm_matches_the_equations_over_several_steps():
    np.random.seed(1)
    lstm = LSTM(3, in_size=2)
    for g in "fiou":
        getattr(lstm, f"x2{g}").b.data[:] = np.random.randn(3).astype(np.float32)
    Wx, Wh, b = _gates(lstm)
    h = c = np.zeros((4, 3), np.float32)
    for _ in range(4):
        x = np.random.randn(4, 2).astype(np.float32)
        f, i, o, u = np.split(x @ Wx + h @ Wh + b, 4, axis=1)
        c = _sigmoid(f) * c + _sigmoid(i) * np.tanh(u)
        h = _sigmoid(o) * np.tanh(c)
        y = lstm(x)
        np.testing.assert_allclose(y.data, h, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(lstm.c.data, c, rtol=1e-5, atol=1e-6)


def _dezero_lstm_pair(in_size):
    dezero = import_dezero()
    import dezero.layers as DL

    np.random.seed(7)
    theirs = DL.LSTM(5, in_size=in_size)
    np.random.seed(7)
    ours = LSTM(5, in_size=in_size)
    return dezero, theirs, ours


@pytest.mark.parametrize("in_size", [3, None], ids=["in_size", "lazy"])
def test_lstm_draws_dezeros_initial_weights_and_runs_like_dezero(in_size):
    dezero, theirs, ours = _dezero_lstm_pair(in_size)
    xs = np.random.randn(4, 2, 3)
    np.random.seed(11)
    ys_theirs = [theirs(x).data for x in xs]  # the lazy x-side weights are drawn here
    np.random.seed(11)
    ys_ours = [ours(x).data for x in xs]
    for name in ("x2f", "x2i", "x2o", "x2u", "h2f", "h2i", "h2o", "h2u"):
        np.testing.assert_allclose(getattr(ours, name).W.data, getattr(theirs, name).W.data,
                                   rtol=1e-6)
    for a, b in zip(ys_ours, ys_theirs):
        assert a.dtype == np.float32
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_lstm_loads_dezero_weights(tmp_path):
    dezero, theirs, _ = _dezero_lstm_pair(3)
    for name in ("x2f", "x2i", "x2o", "x2u"):
        getattr(theirs, name).b.data = np.random.randn(5)
    model = dezero.Model()
    model.rnn = theirs
    model.save_weights(str(tmp_path / "lstm.npz"))
    ours = LSTM(5)
    ours.load_dezero_weights(tmp_path / "lstm.npz", prefix="rnn/")
    assert ours.x2f.W.dtype == np.float32 and ours.in_size == 3
    xs = np.random.randn(3, 2, 3)
    for x in xs:
        np.testing.assert_allclose(ours(x).data, theirs(x).data, rtol=1e-5, atol=1e-6)
    with pytest.raises(KeyError, match="prefix"):
        LSTM(5).load_dezero_weights(tmp_path / "lstm.npz")


def test_reset_state_restarts_from_zeros():
    np.random.seed(2)
    for layer in (RNN(3), LSTM(3), GRU(3)):
        x = np.random.randn(2, 4).astype(np.float32)
        first = layer(x).data.copy()
        assert not np.allclose(layer(x).data, first)
        layer.reset_state()
        np.testing.assert_array_equal(layer(x).data, first)


def test_truncated_bptt_stops_at_unchain_backward():
    """After loss.unchain_backward() the next chunk's gradients equal those of a fresh model
    started from the carried state as a constant."""
    np.random.seed(3)
    lstm = LSTM(4, in_size=2)
    xs = np.random.randn(6, 1, 2).astype(np.float32)
    loss = 0
    for x in xs[:3]:
        loss = loss + lstm(x).sum()
    loss.backward()
    loss.unchain_backward()
    assert lstm.h.creator is None
    h3, c3 = lstm.h.data.copy(), lstm.c.data.copy()
    lstm.cleargrads()
    loss = 0
    for x in xs[3:]:
        loss = loss + lstm(x).sum()
    loss.backward()
    truncated = [p.grad.data.copy() for p in lstm.params()]

    fresh = LSTM(4, in_size=2)
    for p, q in zip(fresh.params(), lstm.params()):
        p.data = q.data.copy()
    fresh.set_state(h3, c3)
    loss = 0
    for x in xs[3:]:
        loss = loss + fresh(x).sum()
    loss.backward()
    for a, p in zip(truncated, fresh.params()):
        np.testing.assert_allclose(a, p.grad.data, rtol=1e-6, atol=1e-7)


def test_a_new_batch_size_needs_reset_state():
    layer = LSTM(3)
    layer(np.zeros((2, 4), np.float32))
    with pytest.raises(ShapeError, match=r"batch size 5.*reset_state\(\)"):
        layer(np.zeros((5, 4), np.float32))
    layer.reset_state()
    assert layer(np.zeros((5, 4), np.float32)).shape == (5, 3)


def test_cell_errors_point_to_the_sequence_layer():
    with pytest.raises(ShapeError, match="LSTMSeq"):
        LSTM(3)(np.zeros((2, 5, 4), np.float32))
    with pytest.raises(ShapeError, match=r"\(N, T, D\)"):
        GRUSeq(3)(np.zeros((2, 4), np.float32))


def test_float64_input_data_does_not_turn_the_weights_float64():
    layer = LSTM(3)
    y = layer(np.ones((1, 2)))  # SinCurve's data are float64
    y.sum().backward()
    assert y.dtype == np.float32
    assert all(p.grad.dtype == np.float32 for p in layer.params())


# -- against PyTorch ---------------------------------------------------------------------------
def _lstm_blocks(w):
    """PyTorch's gate blocks (i, f, g, o) along axis 0 -> zerograd's (f, i, o, u)."""
    i, f, g, o = np.split(w.detach().numpy(), 4, axis=0)
    return np.concatenate([f, i, o, g], axis=0)


def _copy_torch_weights(kind, torch_module, cells, suffixes):
    for cell, suffix in zip(cells, suffixes):
        w_ih = getattr(torch_module, f"weight_ih{suffix}")
        w_hh = getattr(torch_module, f"weight_hh{suffix}")
        b_ih = getattr(torch_module, f"bias_ih{suffix}")
        b_hh = getattr(torch_module, f"bias_hh{suffix}")
        if kind == "lstm":
            # DeZero's one Linear per gate: x2f.W is the f rows of weight_ih, transposed.
            w_ih, w_hh, b = map(_lstm_blocks, (w_ih, w_hh, b_ih + b_hh))
            H = w_hh.shape[1]
            for k, g in enumerate("fiou"):
                rows = slice(k * H, (k + 1) * H)
                getattr(cell, f"x2{g}").W.data = w_ih[rows].T.astype(cell.dtype)
                getattr(cell, f"x2{g}").b.data = b[rows].astype(cell.dtype)
                getattr(cell, f"h2{g}").W.data = w_hh[rows].T.astype(cell.dtype)
            continue
        w_ih, w_hh, b_ih, b_hh = (t.detach().numpy() for t in (w_ih, w_hh, b_ih, b_hh))
        cell.x2h.W.data = np.ascontiguousarray(w_ih.T).astype(cell.dtype)
        cell.h2h.W.data = np.ascontiguousarray(w_hh.T).astype(cell.dtype)
        if kind == "gru":
            cell.x2h.b.data = b_ih.astype(cell.dtype)
            cell.h2h.b.data = b_hh.astype(cell.dtype)
        else:
            cell.x2h.b.data = (b_ih + b_hh).astype(cell.dtype)


@pytest.mark.parametrize("kind", ["lstm", "gru", "rnn"])
def test_cells_match_torch_over_steps(kind):
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    theirs = {"lstm": torch.nn.LSTMCell, "gru": torch.nn.GRUCell, "rnn": torch.nn.RNNCell}[kind]
    theirs = theirs(3, 5)
    ours = {"lstm": LSTM, "gru": GRU, "rnn": RNN}[kind](5)
    _copy_torch_weights(kind, theirs, [ours], [""])
    xs = torch.randn(4, 2, 3)
    state = None
    for x in xs:
        state = theirs(x, state)
        y = ours(x.numpy())
        expected = state[0] if kind == "lstm" else state
        np.testing.assert_allclose(y.data, expected.detach().numpy(), rtol=1e-5, atol=1e-6)


SEQ = {"lstm": LSTMSeq, "gru": GRUSeq, "rnn": RNNSeq}


@pytest.mark.parametrize("fused", [True, False], ids=["fused", "steps"])
@pytest.mark.parametrize("kind", ["lstm", "gru", "rnn"])
def test_two_layer_bidirectional_sequences_match_torch_values_and_grads(kind, fused):
    torch = pytest.importorskip("torch")
    torch.manual_seed(1)
    module = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU, "rnn": torch.nn.RNN}[kind]
    theirs = module(3, 4, num_layers=2, bidirectional=True, batch_first=True).double()
    ours = SEQ[kind](4, num_layers=2, bidirectional=True, fused=fused, dtype=np.float64)
    suffixes = ["_l0", "_l0_reverse", "_l1", "_l1_reverse"]
    _copy_torch_weights(kind, theirs, ours.cells, suffixes)
    x = torch.randn(2, 5, 3, dtype=torch.float64)
    h0 = torch.randn(4, 2, 4, dtype=torch.float64)
    c0 = torch.randn(4, 2, 4, dtype=torch.float64)
    weights = torch.randn(2, 5, 8, dtype=torch.float64)
    if kind == "lstm":
        y_t, (h_t, c_t) = theirs(x, (h0, c0))
        y = ours(x.numpy(), (h0.numpy(), c0.numpy()))
        np.testing.assert_allclose(ours.c_n.data, c_t.detach().numpy(), rtol=1e-10)
    else:
        y_t, h_t = theirs(x, h0)
        y = ours(x.numpy(), h0.numpy())
    assert y.shape == (2, 5, 8) and ours.h_n.shape == (4, 2, 4)
    np.testing.assert_allclose(y.data, y_t.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(ours.h_n.data, h_t.detach().numpy(), rtol=1e-10, atol=1e-12)

    ((y_t * weights).sum() + h_t.sum()).backward()
    ((y * weights.numpy()).sum() + ours.h_n.sum()).backward()
    for cell, suffix in zip(ours.cells, suffixes):
        for side, x_or_h in (("hh", "h"), ("ih", "x")):
            expected = getattr(theirs, f"weight_{side}{suffix}").grad
            if kind == "lstm":  # the gradient of each gate's Linear, DeZero's names
                expected = _lstm_blocks(expected)
                got = np.concatenate([getattr(cell, f"{x_or_h}2{g}").W.grad.data.T
                                      for g in "fiou"])
            else:
                expected = expected.numpy()
                got = getattr(cell, f"{x_or_h}2h").W.grad.data.T
            np.testing.assert_allclose(got, expected, rtol=1e-8, atol=1e-10)


# -- sequence layers: state, options, dtypes --------------------------------------------------
def test_stateful_sequence_continues_where_the_last_call_stopped():
    np.random.seed(4)
    x = np.random.randn(2, 7, 3).astype(np.float32)
    whole = LSTMSeq(5, in_size=3)
    chunks = LSTMSeq(5, in_size=3, stateful=True)
    for p, q in zip(chunks.params(), whole.params()):
        p.data = q.data.copy()
    y = whole(x)
    y1 = chunks(x[:, :4])
    y2 = chunks(x[:, 4:])
    np.testing.assert_allclose(np.concatenate([y1.data, y2.data], axis=1), y.data, rtol=1e-6)
    chunks.reset_state()
    np.testing.assert_allclose(chunks(x[:, :4]).data, y1.data, rtol=1e-6)


def test_sequence_layers_keep_float32_and_give_float32_grads():
    np.random.seed(5)
    for cls in (RNNSeq, LSTMSeq, GRUSeq):
        layer = cls(4, num_layers=2, bidirectional=True, dropout=0.2)
        y = layer(np.random.randn(3, 6, 2))
        assert y.dtype == np.float32 and y.shape == (3, 6, 8)
        y.sum().backward()
        assert all(p.grad.dtype == np.float32 for p in layer.params())


def test_step_by_step_sequence_supports_second_derivatives():
    np.random.seed(6)
    layer = LSTMSeq(3, in_size=2, fused=False, dtype=np.float64)
    x = Variable(np.random.randn(1, 3, 2))
    y = layer(x)
    (y * y).sum().backward(create_graph=True)
    gx = x.grad
    x.cleargrad()
    (gx * gx).sum().backward()
    assert x.grad is not None and np.all(np.isfinite(x.grad.data))
    # Check one coordinate of d/dx sum(gx^2) against central differences.
    def first(xv):
        v = Variable(xv)
        out = layer(v)
        (out * out).sum().backward()
        return float((v.grad.data ** 2).sum())
    e = np.zeros_like(x.data)
    e[0, 1, 0] = 1e-6
    numeric = (first(x.data + e) - first(x.data - e)) / 2e-6
    np.testing.assert_allclose(x.grad.data[0, 1, 0], numeric, rtol=1e-5, atol=1e-8)


def test_initial_state_shape_is_checked():
    with pytest.raises(ShapeError, match=r"\(num_layers \* num_directions, N, hidden_size\)"):
        RNNSeq(4, num_layers=2)(np.zeros((2, 3, 1), np.float32), np.zeros((1, 2, 4)))
    with pytest.raises(TypeError, match="tuple"):
        LSTMSeq(4)(np.zeros((2, 3, 1), np.float32), np.zeros((1, 2, 4)))


def test_sequence_layer_weights_save_and_load(tmp_path):
    np.random.seed(7)
    x = np.random.randn(2, 4, 3).astype(np.float32)
    a = LSTMSeq(5, num_layers=2, bidirectional=True)
    y = a(x)
    path = a.save_weights(tmp_path / "lstm")
    b = LSTMSeq(5, in_size=3, num_layers=2, bidirectional=True)
    b.load_weights(path)
    np.testing.assert_array_equal(b(x).data, y.data)
    keys = list(a.state_dict())
    # Each cell is DeZero's LSTM: 4 x-side Linears with W and b, 4 h-side with W only.
    assert keys[:3] == ["l0/x2f/W", "l0/x2f/b", "l0/x2i/W"] and len(keys) == 4 * 12
    assert "hidden_size=5" in repr(a.l0)


def test_rnn_draws_and_runs_like_dezero_with_a_lazy_input_size():
    import_dezero()
    import dezero.layers as DL

    xs = np.random.default_rng(8).standard_normal((4, 2, 3))
    np.random.seed(9)
    theirs = DL.RNN(5)
    ys_theirs = [theirs(x).data for x in xs]
    np.random.seed(9)
    ours = RNN(5)
    ys_ours = [ours(x).data for x in xs]
    np.testing.assert_allclose(ours.x2h.W.data, theirs.x2h.W.data, rtol=1e-6)
    np.testing.assert_allclose(ours.h2h.W.data, theirs.h2h.W.data, rtol=1e-6)
    for a, b in zip(ys_ours, ys_theirs):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("cls, fused", [(LSTMSeq, True), (LSTMSeq, False), (GRUSeq, True),
                                        (RNNSeq, False)])
def test_stateful_sequence_truncated_bptt(cls, fused):
    """Chunks of a long sequence: after unchain_backward() the second chunk's gradients are
    those of a fresh layer given the carried state as a constant."""
    np.random.seed(10)
    x = np.random.randn(2, 6, 3).astype(np.float32)
    seq = cls(4, in_size=3, stateful=True, fused=fused)
    loss = seq(x[:, :3]).sum()
    loss.backward()
    loss.unchain_backward()
    state = seq.h_n.data.copy()
    if cls is LSTMSeq:
        state = (state, seq.c_n.data.copy())
    seq.cleargrads()
    seq(x[:, 3:]).sum().backward()
    fresh = cls(4, in_size=3, fused=fused)
    for p, q in zip(fresh.params(), seq.params()):
        p.data = q.data.copy()
    fresh(x[:, 3:], state).sum().backward()
    for p, q in zip(fresh.params(), seq.params()):
        np.testing.assert_allclose(q.grad.data, p.grad.data, rtol=1e-6, atol=1e-7)
