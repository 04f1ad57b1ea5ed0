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


# -- DeZero's sub-layers: the parameters the fused step computes with -----------------------
GATE_NAMES = ("x2f", "x2i", "x2o", "x2u", "h2f", "h2i", "h2o", "h2u")


def _pattern(shape, scale):
    """Distinct, exactly representable numbers (the same in float32 and float64)."""
    return (np.arange(np.prod(shape), dtype=np.float32).reshape(shape) % 7 - 3) * scale


def _set_by_hand(lstm):
    for k, name in enumerate(GATE_NAMES):
        linear = getattr(lstm, name)
        linear.W.data = _pattern(linear.W.shape, 0.02 * (k + 1))
        if linear.b is not None:
            linear.b.data = np.full(linear.b.shape, 0.01 * (k - 2), np.float32)


def test_lstm_parameters_are_dezeros_eight_linears():
    lstm = LSTM(3, in_size=2)
    assert [name for name, _ in lstm.named_params()] == [
        "x2f/W", "x2f/b", "x2i/W", "x2i/b", "x2o/W", "x2o/b", "x2u/W", "x2u/b",
        "h2f/W", "h2i/W", "h2o/W", "h2u/W"]
    assert all(getattr(lstm, n).W.shape == ((2, 3) if n[0] == "x" else (3, 3))
               for n in GATE_NAMES)
    assert all(getattr(lstm, n).b is None for n in GATE_NAMES[4:])
    assert [name for name, _ in RNN(3, in_size=2).named_params()] == ["x2h/W", "x2h/b", "h2h/W"]


def test_lstm_weights_set_by_hand_and_transplanted_are_the_ones_used():
    """Values and gradients of every gate's parameters equal genuine DeZero's after the same
    assignments (W.data set per gate, a whole Linear transplanted)."""
    import_dezero()
    import dezero
    import dezero.layers as DL

    import zerograd.layers as L

    xs = [np.array([[0.5, -1.0]], np.float32) * (t + 1) for t in range(3)]
    results = []
    for layers, framework in ((L, __import__("zerograd")), (DL, dezero)):
        lstm = layers.LSTM(3, in_size=2)
        lstm(xs[0])  # a first call packs the drawn weights: what follows must still count
        lstm.reset_state()
        _set_by_hand(lstm)
        lstm.x2o = layers.Linear(3, in_size=2)  # a transplanted gate
        lstm.x2o.W.data = _pattern((2, 3), -0.05)
        lstm.x2o.b.data = np.full(3, 0.2, np.float32)
        loss = 0
        for x in xs:
            loss = loss + framework.functions.sum(lstm(x) * lstm(x) + lstm.c)
        loss.backward()
        results.append((lstm.h.data, {n: getattr(lstm, n).W.grad.data for n in GATE_NAMES},
                        {n: getattr(lstm, n).b.grad.data for n in GATE_NAMES[:4]}))
    (h, gW, gb), (h_d, gW_d, gb_d) = results
    np.testing.assert_allclose(h, h_d, rtol=1e-5, atol=1e-7)
    for name in GATE_NAMES:
        np.testing.assert_allclose(gW[name], gW_d[name], rtol=1e-4, atol=1e-6, err_msg=name)
    for name in GATE_NAMES[:4]:
        np.testing.assert_allclose(gb[name], gb_d[name], rtol=1e-4, atol=1e-6, err_msg=name)


def test_an_in_place_update_of_a_gate_weight_is_seen_by_the_fused_step():
    """The gate weights are views of the fused arrays, so an optimizer's in-place update (no
    rebinding) reaches the next step without a repack."""
    np.random.seed(12)
    lstm = LSTM(3, in_size=2)
    x = np.random.randn(1, 2).astype(np.float32)
    lstm(x)
    lstm.reset_state()
    packed = lstm._packed
    lstm.x2u.W.data += 0.5  # in place
    lstm.h2f.W.data *= 0.0  # (unused at the first step, which has no hidden state)
    Wx, Wh, b = _gates(lstm)
    f, i, o, u = np.split(x @ Wx + b, 4, axis=1)
    c = _sigmoid(i) * np.tanh(u)
    np.testing.assert_allclose(lstm(x).data, _sigmoid(o) * np.tanh(c), rtol=1e-6)
    assert lstm._packed is packed  # no copy was needed


def test_training_a_lstm_updates_each_gate_as_dezero_does():
    """Two Adam steps of the book's loop: the twelve parameters equal DeZero's."""
    import_dezero()
    import dezero
    import dezero.functions as DF
    import dezero.layers as DL

    import zerograd
    import zerograd.functions as F
    import zerograd.layers as L

    xs = np.sin(np.linspace(0, 3, 12)).reshape(12, 1, 1)
    weights = []
    for fw, functions, layers in ((zerograd, F, L), (dezero, DF, DL)):
        np.random.seed(13)
        lstm = layers.LSTM(4)
        fc = layers.Linear(1)
        model = fw.Model()
        model.lstm, model.fc = lstm, fc
        optimizer = fw.optimizers.Adam().setup(model)
        loss = 0
        for t, x in enumerate(xs[:-1]):
            loss += functions.mean_squared_error(fc(lstm(x)), xs[t + 1])
            if (t + 1) % 5 == 0:
                model.cleargrads()
                loss.backward()
                loss.unchain_backward()
                optimizer.update()
        weights.append({n: getattr(lstm, n).W.data.copy() for n in GATE_NAMES})
    for name in GATE_NAMES:
        np.testing.assert_allclose(weights[0][name], weights[1][name], rtol=1e-5, atol=1e-6,
                                   err_msg=name)


@pytest.mark.parametrize("kind", ["rnn", "lstm"])
def test_dezero_weight_files_load_into_lazy_layers_and_give_dezeros_outputs(kind, tmp_path):
    """A model file written by genuine DeZero (keys rnn/x2h/W, rnn/x2f/b, ...) loads into a
    zerograd model whose recurrent layer has not been called yet (its sizes come from the
    weights), and the two compute the same outputs."""
    dezero = import_dezero()
    import dezero.layers as DL

    import zerograd
    import zerograd.layers as L

    def model_of(fw, layers):
        model = fw.Model()
        model.rnn = layers.RNN(6) if kind == "rnn" else layers.LSTM(6)
        model.fc = layers.Linear(2)
        return model

    np.random.seed(14)
    theirs = model_of(dezero, DL)
    xs = np.random.randn(4, 3, 5)
    for x in xs[:2]:  # DeZero's lazy h2h exists after the second call
        theirs.fc(theirs.rnn(x))
    path = str(tmp_path / "theirs.npz")
    theirs.save_weights(path)
    keys = sorted(np.load(path).files)
    assert ("rnn/x2h/W" in keys) if kind == "rnn" else ("rnn/x2f/b" in keys)

    ours = model_of(zerograd, L)
    ours.load_weights(path)
    assert ours.rnn.in_size == 5 and ours.fc.W.shape == (6, 2)
    theirs.rnn.reset_state()
    for x in xs:
        expected = theirs.fc(theirs.rnn(x)).data
        y = ours.fc(ours.rnn(x))
        assert y.dtype == np.float32
        np.testing.assert_allclose(y.data, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("cls", [RNN, LSTM, GRU])
def test_lazy_cells_take_their_sizes_from_weights_set_or_loaded_before_the_first_call(cls):
    np.random.seed(15)
    built = cls(4, in_size=3)
    x = np.random.randn(2, 3).astype(np.float32)
    expected = [built(x).data for _ in range(3)]
    lazy = cls(4)
    assert lazy.in_size is None
    lazy.load_state_dict(built.state_dict())
    assert lazy.in_size == 3 and "in_size=3" in repr(lazy)
    for y in expected:
        np.testing.assert_array_equal(lazy(x).data, y)
    by_hand = cls(4)
    for (_, p), (_, q) in zip(by_hand.named_params(), built.named_params()):
        p.data = q.data.copy()
    assert by_hand.in_size == 3
    np.testing.assert_array_equal(by_hand(x).data, expected[0])
    fresh = cls(4)
    fresh.load_state_dict(built.state_dict())
    with pytest.raises(ShapeError, match=r"x float32 \(2, 5\).*Wx float32 \(3, "):
        fresh(np.zeros((2, 5), np.float32))  # the loaded weights fixed in_size = 3


def test_rnn_draws_its_lazy_h2h_at_the_second_call_as_dezero_does():
    """x2h at the first call, then whatever the program draws (the read-out Linear), then
    h2h at the second call: the random stream is consumed in DeZero's order."""
    import_dezero()
    import dezero.layers as DL

    import zerograd.layers as L

    x = np.full((1, 1), 0.3, np.float32)
    draws = []
    for layers in (L, DL):
        np.random.seed(16)
        rnn, fc = layers.RNN(5), layers.Linear(1)
        fc(rnn(x))
        assert rnn.h2h.W.data is None  # not drawn yet: the first step has no hidden state
        fc(rnn(x))
        draws.append((rnn.x2h.W.data, fc.W.data, rnn.h2h.W.data, np.random.rand()))
    for ours, theirs in zip(*draws):
        np.testing.assert_allclose(ours, theirs, rtol=1e-6)


# -- attributes the fused step would ignore are refused ----------------------------------
def test_attributes_the_fused_step_would_ignore_are_refused():
    from zerograd import Parameter
    from zerograd.nn.linear import Linear

    lstm = LSTM(3)
    with pytest.raises(AttributeError, match=r"'x2h'.*x2f, x2i, x2o, x2u, h2f.*ignored"):
        lstm.x2h = Linear(12)  # zerograd's old fused name: DeZero's LSTM has no x2h
    with pytest.raises(AttributeError, match="'scale'"):
        lstm.scale = Parameter(np.ones(3, np.float32))
    with pytest.raises(ShapeError, match=r"h2f must have no bias.*\(3,\)"):
        lstm.h2f = Linear(3)
    with pytest.raises(ShapeError, match=r"x2f: got a Linear with out_size=4.*out_size=3"):
        lstm.x2f = Linear(4)

    class Scaled(Linear):
        def forward(self, x):
            return 2 * super().forward(x)

    with pytest.raises(TypeError, match=r"x2i must be a Linear.*got Scaled"):
        lstm.x2i = Scaled(3)
    with pytest.raises(AttributeError, match="'x2r'"):
        GRU(3).x2r = Linear(3)
    lstm.note = "plain attributes are fine"

    # A bias given to h2f's Linear after the fact is caught at the next call.
    lstm.h2f.b = Parameter(np.zeros(3, np.float32))
    with pytest.raises(ShapeError, match="h2f must have no bias"):
        lstm(np.zeros((1, 2), np.float32))
    rnn = RNN(3, in_size=2)
    rnn.h2h.b = Parameter(np.zeros(3, np.float32))
    with pytest.raises(ShapeError, match="h2h must have no bias"):
        rnn(np.zeros((1, 2), np.float32))


def test_gate_weights_that_do_not_fit_together_name_each_shape():
    lstm = LSTM(3, in_size=2)
    lstm.x2i.W.data = np.zeros((4, 3), np.float32)
    with pytest.raises(ShapeError, match=r"x2i.W \(4, 3\).*\(2, 3\) \(in_size, hidden_size\)"):
        lstm(np.zeros((1, 2), np.float32))


def test_sequence_layers_run_a_replaced_cell_and_refuse_others():
    np.random.seed(17)
    x = np.random.randn(2, 4, 3).astype(np.float32)
    seq = LSTMSeq(5, in_size=3)
    donor = LSTMSeq(5, in_size=3)
    seq.l0 = donor.l0  # read by name at every call
    np.testing.assert_array_equal(seq(x).data, donor(x).data)
    with pytest.raises(AttributeError, match="'l1'.*l0"):
        seq.l1 = LSTM(5)
    with pytest.raises(TypeError, match="l0 must be a LSTM, got GRU"):
        seq.l0 = GRU(5)


# -- copies, graphs and modes -------------------------------------------------------------
def _lstm_model():
    from zerograd.models import Model
    from zerograd.nn.linear import Linear

    class Net(Model):
        def __init__(self):
            super().__init__()
            self.rnn = LSTM(4)
            self.fc = Linear(1)

        def forward(self, x):
            return self.fc(self.rnn(x))

    return Net()


def test_deep_copy_of_a_lstm_carrying_state_goes_on_training():
    """copy.deepcopy mid-sequence: the copy starts from the same state (as a constant), its
    forward and backward give the original's numbers, and each trains on its own weights."""
    import copy

    import zerograd.functions as F
    import zerograd.optimizers as optimizers

    np.random.seed(18)
    model = _lstm_model()
    xs = np.random.randn(6, 2, 3).astype(np.float32)
    loss = 0
    for x in xs[:3]:
        loss = loss + F.sum(model(x))
    loss.backward()
    loss.unchain_backward()
    twin = copy.deepcopy(model)
    assert twin.rnn.h.creator is None and twin.rnn.c.creator is None
    np.testing.assert_array_equal(twin.rnn.c.data, model.rnn.c.data)
    for m in (model, twin):
        m.cleargrads()
        loss = 0
        for x in xs[3:]:
            loss = loss + F.sum(m(x) ** 2)
        loss.backward()
    for (name, p), (_, q) in zip(model.named_params(), twin.named_params()):
        assert q is not p and q.data is not p.data
        np.testing.assert_allclose(q.grad.data, p.grad.data, rtol=1e-6, err_msg=name)
    optimizers.SGD(lr=0.5).setup(twin).update()  # in place, on the copy's own arrays
    assert not np.allclose(twin.rnn.x2f.W.data, model.rnn.x2f.W.data)
    x = xs[0]
    model.rnn.reset_state()
    twin.rnn.reset_state()
    assert not np.allclose(twin(x).data, model(x).data)  # the copy computes with its update
    Wx, Wh, b = _gates(twin.rnn)
    f, i, o, u = np.split(x @ Wx + b, 4, axis=1)
    expected = _sigmoid(o) * np.tanh(_sigmoid(i) * np.tanh(u))
    np.testing.assert_allclose(twin.rnn.h.data, expected, rtol=1e-5, atol=1e-7)


def test_pickled_lstm_computes_like_the_original(tmp_path):
    import pickle

    np.random.seed(19)
    lstm = LSTM(4, in_size=3)
    x = np.random.randn(2, 3).astype(np.float32)
    lstm(x)
    clone = pickle.loads(pickle.dumps(lstm))
    np.testing.assert_array_equal(clone(x).data, lstm(x).data)
    clone.x2f.W.data -= 1  # the clone's gate views are its own
    assert not np.array_equal(clone(x).data, lstm(x).data)


def test_lstm_under_no_grad_and_after_a_released_graph():
    from zerograd import no_grad

    np.random.seed(20)
    lstm = LSTM(3, in_size=2)
    xs = np.random.randn(3, 1, 2).astype(np.float32)
    with no_grad():
        expected = [lstm(x).data for x in xs]
        assert lstm.h.creator is None
    lstm.reset_state()
    # (One step per backward: the graph stays simple enough for retain_graph=False.)
    lstm(xs[0]).sum().backward(retain_graph=False)  # frees the fused_weights node's inputs
    first = {n: p.grad.data.copy() for n, p in lstm.named_params()}
    lstm.reset_state()  # a new sequence: the old graph (freed) is not reached again
    lstm.cleargrads()
    loss = 0
    for x in xs:
        loss = loss + lstm(x).sum()  # a new fused_weights node: the released one has no inputs
    loss.backward()
    np.testing.assert_allclose(lstm.h.data, expected[-1], rtol=1e-6)
    assert all(p.grad is not None for p in lstm.params())
    assert not np.allclose(first["x2f/W"], lstm.x2f.W.grad.data)


def test_every_code_block_of_docs_rnn_runs_and_prints_what_it_says(tmp_path, monkeypatch):
    import contextlib
    import io
    import re
    from pathlib import Path

    doc = Path(__file__).resolve().parents[2] / "docs" / "rnn.md"
    blocks = re.findall(r"```python\n(.*?)```", doc.read_text(), flags=re.S)
    assert len(blocks) >= 4
    monkeypatch.chdir(tmp_path)
    for code in blocks:
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            exec(compile(code, str(doc), "exec"), {})
        promised = re.findall(r"print\([^\n]*?\)[ \t]+# ([^\n]*)", code)
        assert out.getvalue().splitlines()[:len(promised)] == [p.strip() for p in promised]
