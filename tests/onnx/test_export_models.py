"""Whole models exported and checked in ONNX Runtime: an MLP, the MNIST CNN that
``zerograd train --model cnn`` builds, a small VGG16-shaped CNN, LeNet and a small ResNet,
an LSTM regressor over a sequence (fused and step by step), the book's stateful LSTM
regressor, a Transformer encoder block, MultiHeadAttention and a tiny Transformer over
token ids.

Each is compared with zerograd to 1e-5 (float32) on the example inputs, on random inputs and
on another batch size (``check_export``).
"""

import numpy as np
import pytest

import zerograd
import zerograd.functions as F
import zerograd.layers as L
import zerograd.onnx
from tests.onnx._check import ExportCase, check_case
from zerograd import Model
from zerograd.models import MLP, Sequential
from zerograd.models_vision import LeNet, SmallResNet

ort = pytest.importorskip("onnxruntime")
ort.set_default_logger_severity(3)  # the runtime's notes on unused initializers


def _mnist_cnn():
    """The model of ``zerograd train --model cnn --dataset mnist`` (hidden 100)."""
    from zerograd.cli import MODELS, DataSpec, TrainConfig

    spec = DataSpec("classification", 10, (1, 28, 28))
    return MODELS["cnn"].build(spec, TrainConfig(model="cnn", dataset="mnist", hidden=(100,)))


class SmallVGG16(Model):
    """VGG16's shape with narrow layers: 13 3x3 convolutions (pad 1) in stages of 2, 2, 3,
    3, 3, each stage ending in 2x2 max pooling, then three Linear layers (dropout between
    them in training). x (N, 3, 32, 32) -> (N, 10)."""

    STAGES = ((4, 2), (8, 2), (8, 3), (16, 3), (16, 3))

    def __init__(self) -> None:
        super().__init__()
        self.convs = []
        for stage, (channels, depth) in enumerate(self.STAGES, start=1):
            for i in range(1, depth + 1):
                name = f"conv{stage}_{i}"
                setattr(self, name, L.Conv2d(channels, 3, 1, 1))
                self.convs.append((name, i == depth))
        self.fc6 = L.Linear(32)
        self.fc7 = L.Linear(32)
        self.fc8 = L.Linear(10)

    def forward(self, x):
        for name, last in self.convs:
            x = F.relu(getattr(self, name)(x))
            if last:
                x = F.pooling(x, 2, 2)
        x = F.reshape(x, (x.shape[0], -1))
        x = F.dropout(F.relu(self.fc6(x)))
        x = F.dropout(F.relu(self.fc7(x)))
        return self.fc8(x)


class LSTMRegressor(Model):
    """(N, T, D) sequences -> (N, 1): an LSTM over the whole sequence, then a Linear on its
    last step."""

    def __init__(self, hidden: int = 8, fused: bool = True, num_layers: int = 1) -> None:
        super().__init__()
        self.rnn = L.LSTMSeq(hidden, fused=fused, num_layers=num_layers)
        self.fc = L.Linear(1)

    def forward(self, x):
        return self.fc(self.rnn(x)[:, -1])


class BetterRNN(Model):
    """The book's SinCurve regressor (step 60): one LSTM cell and a Linear, called once per
    time step. Exported here over a whole window: reset, then T steps."""

    def __init__(self, hidden: int = 10) -> None:
        super().__init__()
        self.rnn = L.LSTM(hidden)
        self.fc = L.Linear(1)

    def forward(self, xs):
        self.rnn.reset_state()
        ys = [self.fc(self.rnn(xs[:, t])) for t in range(xs.shape[1])]
        return F.concat(ys, axis=1)


class TinyTransformer(Model):
    """Token ids (N, T) -> class scores (N, 3): an embedding plus a learned position table,
    two encoder blocks (a causal mask), mean over the positions, a Linear."""

    def __init__(self, vocabulary: int = 20, d_model: int = 8, length: int = 6) -> None:
        super().__init__()
        self.embed = L.Embedding(vocabulary, d_model)
        self.position = zerograd.Parameter(
            np.random.default_rng(0).standard_normal((length, d_model)).astype(np.float32))
        self.block1 = L.TransformerEncoderLayer(d_model, 2, dim_feedforward=16)
        self.block2 = L.TransformerEncoderLayer(d_model, 2, dim_feedforward=16, norm_first=True)
        self.head = L.Linear(3)
        self.mask = L.causal_mask(length)

    def forward(self, ids):
        x = self.embed(ids) + self.position
        x = self.block2(self.block1(x, mask=self.mask), mask=self.mask)
        return self.head(F.mean(x, axis=1))


CASES = [
    ExportCase("mlp", lambda: MLP([16, 16, 3]), ((5, 2),)),
    ExportCase("mlp_sigmoid", lambda: MLP([10, 1], activation=F.sigmoid), ((4, 6),)),
    ExportCase("mnist_cnn", _mnist_cnn, ((2, 1, 28, 28),), low=0.0, high=1.0),
    ExportCase("small_vgg16", SmallVGG16, ((2, 3, 32, 32),)),
    ExportCase("lenet", lambda: LeNet(10, channels=(4, 8), hidden_size=16, dropout=0.5),
               ((2, 1, 28, 28),)),
    ExportCase("small_resnet", lambda: SmallResNet(10, blocks_per_stage=1, widths=(4, 8, 8)),
               ((2, 3, 32, 32),)),
    ExportCase("sequential_with_functions",
               lambda: Sequential(L.Linear(8), F.tanh, L.LayerNorm(8), L.Linear(2), F.softmax),
               ((3, 4),)),
    ExportCase("lstm_regressor", LSTMRegressor, ((4, 7, 1),)),
    ExportCase("lstm_regressor_two_layers", lambda: LSTMRegressor(num_layers=2), ((4, 7, 3),)),
    ExportCase("lstm_regressor_step_by_step", lambda: LSTMRegressor(fused=False), ((4, 7, 1),)),
    ExportCase("book_lstm_regressor", BetterRNN, ((3, 5, 1),)),
    ExportCase("transformer_encoder_block",
               lambda: L.TransformerEncoderLayer(16, 4, dim_feedforward=32), ((2, 6, 16),)),
    ExportCase("multi_head_attention", lambda: L.MultiHeadAttention(16, 4), ((2, 6, 16),)),
    ExportCase("tiny_transformer", TinyTransformer,
               inputs=lambda rng: [rng.integers(0, 20, size=(3, 6))]),
]


@pytest.mark.parametrize("case", CASES, ids=str)
def test_export_model(case):
    check_case(case)


def test_names_are_unique():
    names = [case.name for case in CASES]
    assert len(names) == len(set(names)), sorted(n for n in names if names.count(n) > 1)


def test_mnist_cnn_initializers_are_its_parameter_names():
    model = _mnist_cnn()
    proto = zerograd.onnx.export(model, np.zeros((1, 1, 28, 28), np.float32), None)
    names = {t.name for t in proto.graph.initializer}
    assert {key for key, _ in model.named_params()} <= names
    op_types = {node.op_type for node in proto.graph.node}
    assert {"Conv", "MaxPool", "Relu"} <= op_types, op_types


def test_small_vgg16_dropout_is_gone_in_the_export():
    proto = zerograd.onnx.export(SmallVGG16(), np.zeros((1, 3, 32, 32), np.float32), None)
    assert sum(node.op_type == "Conv" for node in proto.graph.node) == 13
    assert sum(node.op_type == "MaxPool" for node in proto.graph.node) == 5
    assert not [node for node in proto.graph.node if node.op_type == "Dropout"]
