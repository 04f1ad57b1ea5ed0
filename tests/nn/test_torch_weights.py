"""Weights exchanged with PyTorch (zerograd.nn.torch_weights), checked against PyTorch itself:
for every layer kind, random weights made on one side give the same outputs on the other
(float32, rtol 1e-5), and the round trip gives back the same arrays."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import zerograd.functions as F
import zerograd.layers as L
from zerograd import test_mode
from zerograd.errors import DTypeError, ShapeError
from zerograd.models import Model
from zerograd.nn import from_torch_state_dict, to_torch_state_dict
from zerograd.nn.layer import StateDictError
from zerograd.nn.torch_weights import TorchLoadResult, TorchStateDictError

torch = pytest.importorskip("torch")
nn = torch.nn

RTOL, ATOL = 1e-5, 1e-6
DOCS = Path(__file__).resolve().parents[2] / "docs" / "interop.md"


def randomize_torch(module: nn.Module, seed: int = 0) -> nn.Module:
    """Every parameter and running statistic random (PyTorch starts biases of attention and
    normalisation at zero, which would hide a misplaced bias)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.5)
        for name, b in module.named_buffers():
            if name.endswith("running_mean"):
                b.copy_(torch.randn(b.shape, generator=g))
            elif name.endswith("running_var"):
                b.copy_(torch.rand(b.shape, generator=g) + 0.5)
    return module.eval()


def randomize_zerograd(model, seed: int = 1):
    rng = np.random.default_rng(seed)
    for p in model.params():
        p.data = (rng.standard_normal(p.shape) * 0.5).astype(p.dtype)
    for _, layer in model.named_layers():
        for name in ("avg_mean", "avg_var"):
            value = layer.__dict__.get(name)
            if isinstance(value, np.ndarray):
                shift = 0.0 if name == "avg_mean" else 1.0
                draw = rng.standard_normal if name == "avg_mean" else rng.random
                setattr(layer, name, (draw(value.shape) + shift).astype(value.dtype))
    return model


def numpy_state(state: dict) -> dict:
    return {k: (v.numpy() if isinstance(v, torch.Tensor) else v) for k, v in state.items()}


# -- one case per layer kind --------------------------------------------------------------------
def run_cell_torch(cell, xs):
    state, ys = None, []
    for t in range(xs.shape[1]):
        state = cell(xs[:, t], state)
        ys.append(state[0] if isinstance(state, tuple) else state)
    return torch.stack(ys, 1)


def run_cell_zerograd(cell, xs):
    cell.reset_state()
    return F.stack([cell(xs[:, t]) for t in range(xs.shape[1])], axis=1)


def attention_torch(m, q, k=None, v=None):
    k = q if k is None else k
    v = k if v is None else v
    return m(q, k, v, need_weights=False)[0]


def tensor_call(m, *xs):
    return m(*xs)


def call(m, *xs):
    return m(*xs)


def seq_torch(m, x):
    return m(x)[0]


def x_normal(*shape):
    return lambda rng: (rng.standard_normal(shape).astype(np.float32),)


# name, torch module, zerograd layer (lazily sized where it can be), inputs, torch call,
# zerograd call
CASES = [
    ("Linear", lambda: nn.Linear(5, 3), lambda: L.Linear(3), x_normal(4, 5), call, call),
    ("Linear-nobias", lambda: nn.Linear(5, 3, bias=False),
     lambda: L.Linear(3, nobias=True, in_size=5), x_normal(4, 5), call, call),
    ("Conv2d", lambda: nn.Conv2d(4, 6, 3, stride=2, padding=1),
     lambda: L.Conv2d(6, 3, 2, 1), x_normal(2, 4, 9, 9), call, call),
    ("Conv2d-groups-dilation", lambda: nn.Conv2d(4, 6, 3, padding=2, dilation=2, groups=2),
     lambda: L.Conv2d(6, 3, 1, 2, dilation=2, groups=2), x_normal(2, 4, 8, 8), call, call),
    ("Conv2d-rect-nobias", lambda: nn.Conv2d(3, 4, (2, 3), stride=(1, 2), bias=False),
     lambda: L.Conv2d(4, (2, 3), (1, 2), nobias=True), x_normal(2, 3, 6, 7), call, call),
    ("Conv1d", lambda: nn.Conv1d(3, 5, 3, padding=1), lambda: L.Conv1d(5, 3, 1, 1),
     x_normal(2, 3, 10), call, call),
    ("Deconv2d", lambda: nn.ConvTranspose2d(4, 6, 4, stride=2, padding=1),
     lambda: L.Deconv2d(6, 4, 2, 1), x_normal(2, 4, 5, 5), call, call),
    ("Deconv2d-groups", lambda: nn.ConvTranspose2d(4, 6, 3, stride=2, padding=1, groups=2),
     lambda: L.Deconv2d(6, 3, 2, 1, groups=2), x_normal(2, 4, 5, 5), call, call),
    ("BatchNorm1d", lambda: nn.BatchNorm1d(5), lambda: L.BatchNorm(eps=1e-5),
     x_normal(4, 5), call, call),
    ("BatchNorm2d", lambda: nn.BatchNorm2d(3), lambda: L.BatchNorm(eps=1e-5),
     x_normal(2, 3, 4, 4), call, call),
    ("LayerNorm", lambda: nn.LayerNorm(6), lambda: L.LayerNorm(), x_normal(2, 3, 6), call,
     call),
    ("LayerNorm-2d", lambda: nn.LayerNorm((3, 6)), lambda: L.LayerNorm((3, 6)),
     x_normal(2, 3, 6), call, call),
    ("GroupNorm", lambda: nn.GroupNorm(2, 6), lambda: L.GroupNorm(2), x_normal(2, 6, 3),
     call, call),
    ("Embedding", lambda: nn.Embedding(10, 4), lambda: L.Embedding(10, 4),
     lambda rng: (rng.integers(0, 10, (3, 5)),), call, call),
    ("MultiheadAttention", lambda: nn.MultiheadAttention(8, 2, batch_first=True),
     lambda: L.MultiHeadAttention(8, 2), x_normal(2, 5, 8), attention_torch, call),
    ("MultiheadAttention-kdim-vdim",
     lambda: nn.MultiheadAttention(8, 2, kdim=4, vdim=6, batch_first=True),
     lambda: L.MultiHeadAttention(8, 2),
     lambda rng: tuple(rng.standard_normal(s).astype(np.float32)
                       for s in ((2, 5, 8), (2, 7, 4), (2, 7, 6))),
     attention_torch, call),
    ("MultiheadAttention-nobias", lambda: nn.MultiheadAttention(8, 4, bias=False,
                                                                batch_first=True),
     lambda: L.MultiHeadAttention(8, 4, nobias=True), x_normal(2, 3, 8), attention_torch,
     call),
    ("RNNCell", lambda: nn.RNNCell(4, 6), lambda: L.RNN(6), x_normal(3, 5, 4),
     run_cell_torch, run_cell_zerograd),
    ("LSTMCell", lambda: nn.LSTMCell(4, 6), lambda: L.LSTM(6), x_normal(3, 5, 4),
     run_cell_torch, run_cell_zerograd),
    ("GRUCell", lambda: nn.GRUCell(4, 6), lambda: L.GRU(6), x_normal(3, 5, 4),
     run_cell_torch, run_cell_zerograd),
    ("RNN-2-layers-bidirectional",
     lambda: nn.RNN(4, 6, num_layers=2, bidirectional=True, batch_first=True),
     lambda: L.RNNSeq(6, num_layers=2, bidirectional=True), x_normal(3, 5, 4), seq_torch,
     call),
    ("LSTM-2-layers-bidirectional",
     lambda: nn.LSTM(4, 6, num_layers=2, bidirectional=True, batch_first=True),
     lambda: L.LSTMSeq(6, num_layers=2, bidirectional=True), x_normal(3, 5, 4), seq_torch,
     call),
    ("GRU-2-layers", lambda: nn.GRU(4, 6, num_layers=2, batch_first=True),
     lambda: L.GRUSeq(6, num_layers=2), x_normal(3, 5, 4), seq_torch, call),
    ("TransformerEncoderLayer",
     lambda: nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, batch_first=True),
     lambda: L.TransformerEncoderLayer(8, 2, 16, dropout=0.0), x_normal(2, 5, 8), call,
     call),
]
IDS = [case[0] for case in CASES]

# RNN and LSTM fold PyTorch's two biases into zerograd's one: they come back as
# (bias_ih + bias_hh, zeros).
FOLDED = ("RNN", "LSTM")


def outputs(case, tm, zm, inputs):
    _, _, _, _, run_torch, run_zerograd = case
    with torch.no_grad():
        yt = run_torch(tm, *(torch.from_numpy(np.asarray(x)) for x in inputs)).numpy()
    with test_mode():
        yz = run_zerograd(zm, *inputs).data
    return yt, yz


def expected_round_trip(name: str, state: dict) -> dict:
    """What to_torch_state_dict gives back for a state_dict loaded from PyTorch."""
    state = {k: v.clone() for k, v in state.items()}
    if name.startswith(FOLDED):
        for key in [k for k in state if "bias_ih" in k]:
            hh = key.replace("bias_ih", "bias_hh")
            state[key] = state[key] + state[hh]
            state[hh] = torch.zeros_like(state[hh])
    return state


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_from_torch_same_outputs_and_round_trip(case):
    name, make_torch, make_zerograd, make_inputs, _, _ = case
    inputs = make_inputs(np.random.default_rng(0))
    tm = randomize_torch(make_torch())
    zm = make_zerograd()  # lazily sized: the weights come before the first call
    result = from_torch_state_dict(zm, tm.state_dict())
    assert result == TorchLoadResult([], [])
    yt, yz = outputs(case, tm, zm, inputs)
    assert yz.dtype == np.float32
    np.testing.assert_allclose(yz, yt, rtol=RTOL, atol=ATOL)

    back = to_torch_state_dict(zm)
    expected = expected_round_trip(name, tm.state_dict())
    assert list(back) == list(expected)  # PyTorch's keys, in PyTorch's order
    for key, value in expected.items():
        assert back[key].dtype == value.dtype, key
        np.testing.assert_array_equal(back[key].numpy(), value.numpy(), err_msg=key)
    fresh = randomize_torch(make_torch(), seed=5)
    fresh.load_state_dict(back)  # strict in PyTorch too
    yt2, _ = outputs(case, fresh, zm, inputs)
    np.testing.assert_allclose(yt2, yt, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_to_torch_same_outputs_and_round_trip(case):
    name, make_torch, make_zerograd, make_inputs, _, run_zerograd = case
    inputs = make_inputs(np.random.default_rng(0))
    zm = make_zerograd()
    with test_mode():
        run_zerograd(zm, *inputs)  # size the lazy layers, then draw every weight
    zm = randomize_zerograd(zm)
    tm = make_torch().eval()
    tm.load_state_dict(to_torch_state_dict(zm))  # strict: exactly PyTorch's keys
    yt, yz = outputs(case, tm, zm, inputs)
    np.testing.assert_allclose(yt, yz, rtol=RTOL, atol=ATOL)

    again = make_zerograd()
    from_torch_state_dict(again, tm.state_dict())
    original = zm.state_dict()
    restored = again.state_dict()
    assert list(restored) == list(original)
    for key, value in original.items():
        assert restored[key].dtype == value.dtype, key
        np.testing.assert_array_equal(restored[key], value, err_msg=key)


# -- layer-specific facts -----------------------------------------------------------------------
def test_linear_weight_is_transposed():
    zm = L.Linear(2, in_size=3)
    zm.W.data = np.arange(6, dtype=np.float32).reshape(3, 2)
    state = to_torch_state_dict(zm)
    np.testing.assert_array_equal(state["weight"].numpy(), [[0, 2, 4], [1, 3, 5]])
    np.testing.assert_array_equal(state["bias"].numpy(), [0, 0])
    # A copy: the tensors do not share memory with the model.
    state["weight"][0, 0] = 100.0
    assert zm.W.data[0, 0] == 0.0


def test_lstm_gate_order():
    """PyTorch's row blocks (i, f, g, o) land in x2i, x2f, x2u, x2o."""
    H, D = 2, 3
    cell = nn.LSTMCell(D, H)
    with torch.no_grad():
        for k in range(4):
            cell.weight_ih[k * H:(k + 1) * H] = float(k)
            cell.bias_ih[k * H:(k + 1) * H] = float(k)
            cell.bias_hh[k * H:(k + 1) * H] = 10.0 * k
    zm = L.LSTM(H)
    from_torch_state_dict(zm, cell.state_dict())
    for k, gate in enumerate(("i", "f", "u", "o")):
        np.testing.assert_array_equal(getattr(zm, f"x2{gate}").W.data, np.full((D, H), k))
        np.testing.assert_array_equal(getattr(zm, f"x2{gate}").b.data, np.full(H, 11.0 * k))


def test_batchnorm_training_step_matches_torch():
    """Same batch statistics, same running-statistics update (momentum 0.1 = decay 0.9,
    unbiased variance) when eps is PyTorch's."""
    tm = randomize_torch(nn.BatchNorm2d(3)).train()
    zm = L.BatchNorm(momentum=0.1, eps=1e-5)
    from_torch_state_dict(zm, tm.state_dict())
    x = np.random.default_rng(0).standard_normal((4, 3, 5, 5)).astype(np.float32)
    with torch.no_grad():
        yt = tm(torch.from_numpy(x)).numpy()
    yz = zm(x).data
    np.testing.assert_allclose(yz, yt, rtol=RTOL, atol=1e-5)
    np.testing.assert_allclose(zm.avg_mean, tm.running_mean.numpy(), rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(zm.avg_var, tm.running_var.numpy(), rtol=RTOL, atol=ATOL)
    # num_batches_tracked has no zerograd counterpart: written as 0.
    assert to_torch_state_dict(zm)["num_batches_tracked"].item() == 0
    assert tm.num_batches_tracked.item() == 1


def test_batchnorm_default_eps_differs_from_torch():
    """zerograd's BatchNorm keeps DeZero's eps 2e-5; PyTorch's is 1e-5: the same weights give
    (slightly) different outputs unless eps is given."""
    tm = randomize_torch(nn.BatchNorm1d(4))
    tm.running_var.fill_(1e-4)  # a small variance makes eps matter
    zm = L.BatchNorm()
    from_torch_state_dict(zm, tm.state_dict())
    x = np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32)
    with torch.no_grad():
        yt = tm(torch.from_numpy(x)).numpy()
    with test_mode():
        yz = zm(x).data
    assert zm.eps == 2e-5 and tm.eps == 1e-5
    assert not np.allclose(yz, yt, rtol=1e-3)


def test_cell_reads_a_one_layer_torch_lstm():
    """A cell takes nn.LSTM's ``*_l0`` keys as nn.LSTMCell's: the same arrays."""
    tm = randomize_torch(nn.LSTM(4, 6, batch_first=True))
    zm = L.LSTM(6)
    from_torch_state_dict(zm, tm.state_dict())
    x = np.random.default_rng(0).standard_normal((3, 5, 4)).astype(np.float32)
    with torch.no_grad():
        yt = tm(torch.from_numpy(x))[0].numpy()
    with test_mode():
        yz = run_cell_zerograd(zm, x).data
    np.testing.assert_allclose(yz, yt, rtol=RTOL, atol=ATOL)
    assert list(to_torch_state_dict(zm)) == ["weight_ih", "weight_hh", "bias_ih", "bias_hh"]


def test_float64_and_bfloat16_tensors_take_the_models_dtype():
    tm = randomize_torch(nn.Linear(3, 2)).double()
    zm = L.Linear(2)
    from_torch_state_dict(zm, tm.state_dict())
    assert zm.W.dtype == np.float32
    np.testing.assert_allclose(zm.W.data, tm.weight.detach().numpy().T, rtol=1e-7)
    half = {k: v.to(torch.bfloat16) for k, v in tm.state_dict().items()}
    zm = L.Linear(2, in_size=3)
    from_torch_state_dict(zm, half)
    assert zm.W.dtype == np.float32
    np.testing.assert_array_equal(zm.W.data, half["weight"].float().numpy().T)


def test_numpy_state_dict_from_an_npz_file(tmp_path):
    tm = randomize_torch(nn.Linear(3, 2))
    path = tmp_path / "linear.npz"
    np.savez(path, **{k: v.numpy() for k, v in tm.state_dict().items()})
    zm = L.Linear(2)
    with np.load(path) as npz:
        from_torch_state_dict(zm, npz)
    np.testing.assert_array_equal(zm.W.data, tm.weight.detach().numpy().T)
    np.testing.assert_array_equal(zm.b.data, tm.bias.detach().numpy())


def test_without_torch_numpy_in_and_out():
    """``import zerograd`` does not import torch; with torch missing, NumPy state dicts load
    and to_torch_state_dict returns NumPy arrays."""
    code = textwrap.dedent("""
        import sys
        import numpy as np
        import zerograd, zerograd.layers, zerograd.models, zerograd.nn
        assert "torch" not in sys.modules, "import zerograd imported torch"
        sys.modules["torch"] = None  # from here on `import torch` fails, as if not installed
        from zerograd.nn import from_torch_state_dict, to_torch_state_dict
        layer = zerograd.layers.Linear(2)
        weight = np.arange(6, dtype=np.float32).reshape(2, 3)
        from_torch_state_dict(layer, {"weight": weight, "bias": np.ones(2, np.float32)})
        out = to_torch_state_dict(layer)
        assert type(out["weight"]) is np.ndarray, type(out["weight"])
        assert (out["weight"] == weight).all() and (layer.W.data == weight.T).all()
        print("ok")
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


# -- whole models ---------------------------------------------------------------------------
class SmallCNN(Model):
    """conv-relu-pool-conv-relu-pool-linear, DeZero style."""

    def __init__(self):
        super().__init__()
        self.conv1 = L.Conv2d(8, 3, pad=1)
        self.conv2 = L.Conv2d(16, 3, pad=1)
        self.fc = L.Linear(10)

    def forward(self, x):
        x = F.pooling(F.relu(self.conv1(x)), 2, 2)
        x = F.pooling(F.relu(self.conv2(x)), 2, 2)
        return self.fc(F.reshape(x, (x.shape[0], -1)))


def torch_cnn():
    return nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Flatten(), nn.Linear(16 * 2 * 2, 10))


CNN_NAMES = {"conv1": "0", "conv2": "3", "fc": "7"}


def test_cnn_torch_to_zerograd_and_back():
    tm = randomize_torch(torch_cnn())
    zm = SmallCNN()  # every layer lazy: sized by the PyTorch arrays
    from_torch_state_dict(zm, tm.state_dict(), mapping=CNN_NAMES)
    x = np.random.default_rng(0).standard_normal((5, 1, 8, 8)).astype(np.float32)
    with torch.no_grad():
        yt = tm(torch.from_numpy(x)).numpy()
    with test_mode():
        yz = zm(x).data
    np.testing.assert_allclose(yz, yt, rtol=RTOL, atol=ATOL)
    back = to_torch_state_dict(zm, mapping=CNN_NAMES)
    assert list(back) == list(tm.state_dict())
    for key, value in tm.state_dict().items():
        np.testing.assert_array_equal(back[key].numpy(), value.numpy())


def test_cnn_trained_in_zerograd_runs_in_torch():
    from zerograd.optimizers import SGD

    rng = np.random.default_rng(0)
    x = rng.standard_normal((16, 1, 8, 8)).astype(np.float32)
    t = rng.integers(0, 10, 16)
    zm = SmallCNN()
    optimizer = SGD(lr=0.1).setup(zm)
    for _ in range(3):
        loss = F.softmax_cross_entropy(zm(x), t)
        zm.cleargrads()
        loss.backward()
        optimizer.update()
    tm = torch_cnn()
    tm.load_state_dict(to_torch_state_dict(zm, mapping=lambda path: CNN_NAMES[path]))
    with torch.no_grad():
        yt = tm(torch.from_numpy(x)).numpy()
    with test_mode():
        yz = zm(x).data
    np.testing.assert_allclose(yt, yz, rtol=RTOL, atol=ATOL)


class SeqRegressor(Model):
    def __init__(self, hidden: int = 8):
        super().__init__()
        self.rnn = L.LSTMSeq(hidden)
        self.fc = L.Linear(1)

    def forward(self, x):
        return self.fc(self.rnn(x))


class CellRegressor(Model):
    """The book's LSTM regressor: one LSTM cell stepped over time, then Linear."""

    def __init__(self, hidden: int = 8):
        super().__init__()
        self.rnn = L.LSTM(hidden)
        self.fc = L.Linear(1)

    def forward(self, x):
        self.rnn.reset_state()
        ys = [self.fc(self.rnn(x[:, t])) for t in range(x.shape[1])]
        return F.stack(ys, axis=1)


class TorchRegressor(nn.Module):
    def __init__(self, hidden: int = 8):
        super().__init__()
        self.rnn = nn.LSTM(1, hidden, batch_first=True)
        self.fc = nn.Linear(hidden, 1)

    def forward(self, x):
        return self.fc(self.rnn(x)[0])


def sine_batch():
    t = np.linspace(0, 4 * np.pi, 24, dtype=np.float32)
    return np.stack([np.sin(t + phase) for phase in (0.0, 0.5, 1.0)])[:, :, None]


@pytest.mark.parametrize("zerograd_model", [SeqRegressor, CellRegressor])
def test_lstm_regressor_torch_to_zerograd(zerograd_model):
    tm = randomize_torch(TorchRegressor())
    zm = zerograd_model()
    from_torch_state_dict(zm, tm.state_dict())
    x = sine_batch()
    with torch.no_grad():
        yt = tm(torch.from_numpy(x)).numpy()
    with test_mode():
        yz = zm(x).data
    np.testing.assert_allclose(yz, yt, rtol=RTOL, atol=ATOL)


def test_lstm_regressor_trained_in_zerograd_runs_in_torch():
    from zerograd.optimizers import Adam

    x = sine_batch()
    target = np.roll(x, -1, axis=1)
    zm = SeqRegressor()
    optimizer = Adam(alpha=0.01).setup(zm)
    for _ in range(5):
        loss = F.mean_squared_error(zm(x), target)
        zm.cleargrads()
        loss.backward()
        optimizer.update()
    tm = TorchRegressor()
    tm.load_state_dict(to_torch_state_dict(zm))
    with torch.no_grad():
        yt = tm(torch.from_numpy(x)).numpy()
    with test_mode():
        yz = zm(x).data
    np.testing.assert_allclose(yt, yz, rtol=RTOL, atol=ATOL)
    # And back: the same arrays (the folded biases come back exactly, bias_hh being 0).
    again = SeqRegressor()
    from_torch_state_dict(again, tm.state_dict())
    for key, value in zm.state_dict().items():
        np.testing.assert_array_equal(again.state_dict()[key], value)


# -- names: mapping dicts and functions ---------------------------------------------------------
class Encoder(Model):
    def __init__(self):
        super().__init__()
        self.conv1 = L.Conv2d(4, 3, in_channels=1)
        self.bn = L.BatchNorm(4)


class Net(Model):
    def __init__(self):
        super().__init__()
        self.enc = Encoder()
        self.head = L.Linear(2, in_size=4)
        self.scale = L.Parameter(np.full(2, 3.0, dtype=np.float32))  # a plain Parameter


class TorchEncoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 4, 3)
        self.bn = nn.BatchNorm2d(4)


class TorchNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = TorchEncoder()
        self.classifier = nn.Linear(4, 2)
        self.scale = nn.Parameter(torch.zeros(2))


def test_mapping_dict_sends_the_layers_below_a_path():
    tm = randomize_torch(TorchNet())
    zm = Net()
    from_torch_state_dict(zm, tm.state_dict(), mapping={"enc": "features", "head": "classifier"})
    np.testing.assert_array_equal(zm.enc.conv1.W.data, tm.features.conv1.weight.detach())
    np.testing.assert_array_equal(zm.enc.bn.avg_var, tm.features.bn.running_var)
    np.testing.assert_array_equal(zm.head.W.data, tm.classifier.weight.detach().T)
    np.testing.assert_array_equal(zm.scale.data, tm.scale.detach())  # copied by name
    back = to_torch_state_dict(zm, mapping={"enc": "features", "head": "classifier"})
    assert list(back) == list(tm.state_dict())


def test_mapping_function_and_leaving_parts_out():
    tm = randomize_torch(TorchNet())
    zm = Net()
    names = {"enc/conv1": "features.conv1", "enc/bn": "features.bn", "head": "classifier",
             "scale": None}
    result = from_torch_state_dict(zm, tm.state_dict(), mapping=names.get, strict=False)
    assert result == TorchLoadResult([], ["scale"])
    np.testing.assert_array_equal(zm.head.b.data, tm.classifier.bias.detach())
    np.testing.assert_array_equal(zm.scale.data, [3.0, 3.0])  # left out: unchanged
    assert "scale" not in to_torch_state_dict(zm, mapping=names.get)


def test_mapping_errors_name_the_path():
    zm = Net()
    with pytest.raises(StateDictError, match=r"'encoder' is no path of the model.*'enc'"):
        to_torch_state_dict(zm, mapping={"encoder": "features"})
    with pytest.raises(StateDictError, match=r"'head/W' lies inside head.*map 'head'"):
        to_torch_state_dict(zm, mapping={"head/W": "classifier.weight"})
    with pytest.raises(TypeError, match=r"mapping\['head'\] is int 3"):
        to_torch_state_dict(zm, mapping={"head": 3})
    with pytest.raises(StateDictError, match=r"'enc/bn' and 'enc/conv1' both map to the "
                                             r"PyTorch key 'x.weight'"):
        to_torch_state_dict(zm, mapping={"enc/conv1": "x", "enc/bn": "x"})


# -- strict mode and errors ---------------------------------------------------------------------
class TwoLayers(Model):
    def __init__(self):
        super().__init__()
        self.fc1 = L.Linear(3, in_size=5)
        self.fc2 = L.Linear(2, in_size=3)


def test_strict_reports_everything_in_one_error_and_changes_nothing():
    zm = TwoLayers()
    before = zm.state_dict()
    state = {"fc1.weight": torch.zeros(3, 4), "fc1.bias": torch.zeros(3),
             "fc2.bias": torch.zeros(2), "head.weight": torch.zeros(1)}
    with pytest.raises(TorchStateDictError) as info:
        from_torch_state_dict(zm, state)
    message = str(info.value)
    assert "missing keys" in message and "['fc2.weight']" in message
    assert "unexpected keys" in message and "['head.weight']" in message
    assert ("'fc1.weight' has shape (3, 4); Linear 'fc1' needs (3, 5) (weight (out_features, "
            "in_features) = W.T") in message
    assert isinstance(info.value, StateDictError) and isinstance(info.value, ShapeError)
    for key, value in zm.state_dict().items():
        np.testing.assert_array_equal(value, before[key])


def test_not_strict_loads_whole_layers_and_returns_what_was_left():
    zm = TwoLayers()
    before = zm.state_dict()
    fc1 = randomize_torch(nn.Linear(5, 3))
    state = {"fc1.weight": fc1.weight, "fc1.bias": fc1.bias, "fc2.bias": torch.ones(2),
             "extra": torch.ones(1)}
    result = from_torch_state_dict(zm, state, strict=False)
    assert result.missing_keys == ["fc2.weight"]
    assert result.unexpected_keys == ["extra"]
    np.testing.assert_array_equal(zm.fc1.W.data, fc1.weight.detach().numpy().T)
    # fc2 lacks its weight: the whole layer is left as it was (its bias too).
    np.testing.assert_array_equal(zm.fc2.b.data, before["fc2/b"])
    with pytest.raises(TorchStateDictError, match=r"'fc1.bias' has shape \(4,\)"):
        from_torch_state_dict(zm, {"fc1.weight": fc1.weight, "fc1.bias": torch.ones(4)},
                              strict=False)


def test_converted_shapes_checked_against_the_model():
    """Attention's key size is in no PyTorch shape of the packed form: checked on the model."""
    zm = L.MultiHeadAttention(8, 2)
    with test_mode():
        zm(np.zeros((1, 3, 8), np.float32), np.zeros((1, 4, 4), np.float32))
    tm = nn.MultiheadAttention(8, 2, batch_first=True)
    with pytest.raises(TorchStateDictError,
                       match=r"give 'k_proj/W' the shape \(8, 8\), the model has \(4, 8\)"):
        from_torch_state_dict(zm, tm.state_dict())


def test_plain_parameters_and_buffers_copied_by_name_and_shape_checked():
    class Scaled(Model):
        def __init__(self):
            super().__init__()
            self.scale = L.Parameter(np.ones(3, dtype=np.float32))
            self.register_buffer("steps", np.zeros(3, dtype=np.int64))

    zm = Scaled()
    from_torch_state_dict(zm, {"scale": torch.full((3,), 2.0), "steps": torch.arange(3)})
    np.testing.assert_array_equal(zm.scale.data, [2.0, 2.0, 2.0])
    np.testing.assert_array_equal(zm.steps, [0, 1, 2])
    assert zm.steps.dtype == np.int64
    with pytest.raises(TorchStateDictError,
                       match=r"give 'steps' the shape \(4,\), the model has \(3,\)"):
        from_torch_state_dict(zm, {"scale": torch.ones(3), "steps": torch.arange(4)})
    np.testing.assert_array_equal(zm.steps, [0, 1, 2])


def test_torch_module_without_bias_into_a_zerograd_layer_with_one():
    zm = L.LSTM(3, in_size=2)
    tm = nn.LSTMCell(2, 3, bias=False)
    with pytest.raises(TorchStateDictError, match=r"missing keys.*\['bias_ih', 'bias_hh'\]"):
        from_torch_state_dict(zm, tm.state_dict())


def test_lazy_layers_sized_by_the_torch_arrays_before_their_first_call():
    cases = [
        (L.Linear(3), nn.Linear(5, 3), lambda z: z.in_size, 5),
        (L.Conv2d(6, 3), nn.Conv2d(4, 6, 3), lambda z: z.in_channels, 4),
        (L.Deconv2d(6, 3), nn.ConvTranspose2d(4, 6, 3), lambda z: z.in_channels, 4),
        (L.BatchNorm(), nn.BatchNorm2d(7), lambda z: z.size, 7),
        (L.LayerNorm(), nn.LayerNorm((2, 3)), lambda z: z.normalized_shape, (2, 3)),
        (L.GroupNorm(2), nn.GroupNorm(2, 6), lambda z: z.num_channels, 6),
        (L.LSTM(6), nn.LSTMCell(4, 6), lambda z: z.in_size, 4),
        (L.GRUSeq(6, num_layers=2), nn.GRU(3, 6, num_layers=2), lambda z: z.l0.in_size, 3),
        (L.MultiHeadAttention(8, 2), nn.MultiheadAttention(8, 2, kdim=4, vdim=5),
         lambda z: (z.q_proj.in_size, z.k_proj.in_size, z.v_proj.in_size), (8, 4, 5)),
    ]
    for zm, tm, size, expected in cases:
        from_torch_state_dict(zm, randomize_torch(tm).state_dict())
        assert size(zm) == expected, type(zm).__name__
        assert all(p.data is not None and p.dtype == np.float32 for p in zm.params())


def test_lazy_layer_export_names_what_is_missing():
    with pytest.raises(ValueError, match="not initialised yet: W"):
        to_torch_state_dict(L.Linear(3))


def test_lazy_layer_shapes_checked_where_known():
    """A lazy Linear(10) knows its out_size: a (5, 3) weight is refused, not loaded."""
    with pytest.raises(TorchStateDictError, match=r"'weight' has shape \(5, 3\); the model "
                                                  r"\(Linear\) needs \(10, \?\)"):
        from_torch_state_dict(L.Linear(10, nobias=True), {"weight": np.zeros((5, 3))})


def test_bad_values_are_named():
    with pytest.raises(DTypeError, match=r"state_dict\['weight'\] is a <U1"):
        from_torch_state_dict(L.Linear(2), {"weight": np.array(["a"])})
    with pytest.raises(TypeError, match="state_dict must be a mapping"):
        from_torch_state_dict(L.Linear(2), [("weight", np.zeros((2, 2)))])
    with pytest.raises(TypeError, match="model must be a zerograd Layer"):
        to_torch_state_dict(nn.Linear(2, 2))


# -- the docs -----------------------------------------------------------------------------------
def test_interop_doc_blocks_run(tmp_path, monkeypatch):
    text = DOCS.read_text()
    part = text[text.index("## PyTorch weights"):text.index("\n## ONNX")]
    blocks = re.findall(r"```python\n(.*?)```", part, flags=re.S)
    assert len(blocks) >= 3
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    for code in blocks:  # one namespace: later blocks use what earlier ones defined
        exec(compile(code, "docs/interop.md", "exec"), namespace)
