"""Every layer of ``zerograd.layers``, exported alone and checked in ONNX Runtime.

Each case builds one layer (a fresh one per case; layers whose running statistics matter
are trained a few steps first) and exports it through ``check_export``: float32, compared
with zerograd to 1e-5 on the example inputs, on random inputs and on another batch size.
``test_every_layer_has_a_case`` holds the table to every Layer class in
``zerograd.layers.__all__``.

The recurrent cells (``RNN``, ``LSTM``, ``GRU``) carry their state between calls, so one
export is one step: the cases export a function that calls ``reset_state()`` and then the
cell (one step from zero state), or two steps (the second from the first's state).
"""

import dataclasses

import numpy as np
import pytest

import zerograd
import zerograd.layers as L
import zerograd.onnx
from tests.onnx._check import ExportCase, check_case, run_onnx

ort = pytest.importorskip("onnxruntime")
ort.set_default_logger_severity(3)  # the runtime's notes on unused initializers


@dataclasses.dataclass
class LayerCase(ExportCase):
    """An ExportCase that names the Layer class it exports (for the coverage test)."""

    layer: type | None = None


def _trained_batch_norm(shape):
    """A BatchNorm whose running statistics moved away from (0, 1): a few training steps."""
    def build():
        bn = L.BatchNorm()
        rng = np.random.default_rng(1)
        with zerograd.using_config("train", True):
            for _ in range(3):
                bn(rng.standard_normal(shape).astype(np.float32) * 2 + 0.5)
        return bn
    return build


def _one_step(cell_class, steps=1):
    """A function of x running ``steps`` steps of a fresh cell from zero state."""
    def build():
        cell = cell_class(5, in_size=4)

        def run(x):
            cell.reset_state()
            y = cell(x)
            for _ in range(steps - 1):
                y = cell(x * 0.5)
            return y
        return run
    return build


def _with_state(seq_class, **options):
    """A sequence layer called with an initial state (h0, and c0 for the LSTM)."""
    def build():
        seq = seq_class(5, **options)
        if seq_class is L.LSTMSeq:
            return lambda x, h, c: seq(x, (h, c))
        return lambda x, h: seq(x, h)
    return build


def _attention_with_mask():
    mha = L.MultiHeadAttention(8, 2)
    return lambda x: mha(x, mask=L.causal_mask(5))


def _cross_attention():
    mha = L.MultiHeadAttention(8, 4)
    return lambda q, kv: mha(q, kv, kv)


IMAGE = ((2, 3, 9, 8),)
SEQ = ((3, 6, 4),)
STATE = (1, 3, 5)  # (num_layers * num_directions, N, H): the batch is not the first axis

CASES = [
    LayerCase("Linear", lambda: L.Linear(5), ((3, 4),), layer=L.Linear),
    LayerCase("Linear_nobias_3d", lambda: L.Linear(5, nobias=True), ((3, 2, 4),),
              layer=L.Linear),
    LayerCase("Conv2d", lambda: L.Conv2d(6, 3, stride=2, pad=1), IMAGE, layer=L.Conv2d),
    LayerCase("Conv2d_groups_dilation", lambda: L.Conv2d(6, 3, pad=2, dilation=2, groups=3),
              IMAGE, layer=L.Conv2d),
    LayerCase("Conv1d", lambda: L.Conv1d(5, 3, stride=2, pad=1), ((2, 4, 11),),
              layer=L.Conv1d),
    LayerCase("Deconv2d", lambda: L.Deconv2d(4, 3, stride=2, pad=1), IMAGE, layer=L.Deconv2d),
    LayerCase("Deconv2d_outsize", lambda: L.Deconv2d(4, 3, stride=2, pad=1, outsize=(18, 16)),
              IMAGE, layer=L.Deconv2d),
    LayerCase("MaxPool2d", lambda: L.MaxPool2d(2), IMAGE, layer=L.MaxPool2d),
    LayerCase("MaxPool2d_ceil", lambda: L.MaxPool2d(3, 2, pad=1, ceil_mode=True), IMAGE,
              layer=L.MaxPool2d),
    LayerCase("AvgPool2d", lambda: L.AvgPool2d(2), IMAGE, layer=L.AvgPool2d),
    LayerCase("AvgPool2d_ceil_pad", lambda: L.AvgPool2d(3, 2, pad=1, ceil_mode=True), IMAGE,
              layer=L.AvgPool2d),
    LayerCase("AvgPool2d_exclude_pad", lambda: L.AvgPool2d(3, 2, pad=1, count_include_pad=False),
              IMAGE, layer=L.AvgPool2d),
    LayerCase("AdaptiveAvgPool2d", lambda: L.AdaptiveAvgPool2d((4, 3)), IMAGE,
              layer=L.AdaptiveAvgPool2d),
    LayerCase("AdaptiveAvgPool2d_global", lambda: L.AdaptiveAvgPool2d(1), IMAGE,
              layer=L.AdaptiveAvgPool2d),
    LayerCase("BatchNorm_images", _trained_batch_norm((4, 3, 9, 8)), IMAGE, layer=L.BatchNorm),
    LayerCase("BatchNorm_features", _trained_batch_norm((6, 4)), ((3, 4),), layer=L.BatchNorm),
    LayerCase("GroupNorm", lambda: L.GroupNorm(3), ((2, 6, 5, 4),), layer=L.GroupNorm),
    LayerCase("LayerNorm", lambda: L.LayerNorm(8), ((3, 5, 8),), layer=L.LayerNorm),
    LayerCase("LayerNorm_composed", lambda: L.LayerNorm(8), ((3, 5, 8),), opset=13,
              layer=L.LayerNorm),
    LayerCase("Dropout", lambda: L.Dropout(0.5), ((3, 4),), layer=L.Dropout),
    LayerCase("Flatten", lambda: L.Flatten(), IMAGE, layer=L.Flatten),
    LayerCase("Embedding", lambda: L.Embedding(10, 6),
              inputs=lambda rng: [rng.integers(0, 10, size=(3, 7))], layer=L.Embedding),
    LayerCase("EmbedID", lambda: L.EmbedID(10, 6),
              inputs=lambda rng: [rng.integers(0, 10, size=(4,)).astype(np.int32)],
              layer=L.EmbedID),
    LayerCase("RNN", _one_step(L.RNN), ((3, 4),), layer=L.RNN),
    LayerCase("RNN_two_steps", _one_step(L.RNN, steps=2), ((3, 4),), layer=L.RNN),
    LayerCase("LSTM", _one_step(L.LSTM), ((3, 4),), layer=L.LSTM),
    LayerCase("LSTM_two_steps", _one_step(L.LSTM, steps=2), ((3, 4),), layer=L.LSTM),
    LayerCase("GRU", _one_step(L.GRU), ((3, 4),), layer=L.GRU),
    LayerCase("GRU_two_steps", _one_step(L.GRU, steps=2), ((3, 4),), layer=L.GRU),
    LayerCase("RNNSeq", lambda: L.RNNSeq(5), SEQ, layer=L.RNNSeq),
    LayerCase("RNNSeq_deep_bidirectional", lambda: L.RNNSeq(5, num_layers=2, bidirectional=True),
              SEQ, layer=L.RNNSeq),
    LayerCase("RNNSeq_unfused", lambda: L.RNNSeq(5, fused=False), SEQ, layer=L.RNNSeq),
    LayerCase("RNNSeq_state", _with_state(L.RNNSeq), (SEQ[0], STATE), other_batch=False,
              layer=L.RNNSeq),
    LayerCase("LSTMSeq", lambda: L.LSTMSeq(5), SEQ, layer=L.LSTMSeq),
    LayerCase("LSTMSeq_deep_bidirectional",
              lambda: L.LSTMSeq(5, num_layers=2, bidirectional=True), SEQ, layer=L.LSTMSeq),
    LayerCase("LSTMSeq_unfused", lambda: L.LSTMSeq(5, fused=False), SEQ, layer=L.LSTMSeq),
    LayerCase("LSTMSeq_state", _with_state(L.LSTMSeq), (SEQ[0], STATE, STATE),
              other_batch=False, layer=L.LSTMSeq),
    LayerCase("GRUSeq", lambda: L.GRUSeq(5), SEQ, layer=L.GRUSeq),
    LayerCase("GRUSeq_deep_bidirectional", lambda: L.GRUSeq(5, num_layers=2, bidirectional=True),
              SEQ, layer=L.GRUSeq),
    LayerCase("GRUSeq_unfused", lambda: L.GRUSeq(5, fused=False), SEQ, layer=L.GRUSeq),
    LayerCase("GRUSeq_state", _with_state(L.GRUSeq), (SEQ[0], STATE), other_batch=False,
              layer=L.GRUSeq),
    LayerCase("MultiHeadAttention", lambda: L.MultiHeadAttention(8, 2), ((2, 5, 8),),
              layer=L.MultiHeadAttention),
    LayerCase("MultiHeadAttention_causal", _attention_with_mask, ((2, 5, 8),),
              layer=L.MultiHeadAttention),
    LayerCase("MultiHeadAttention_cross", _cross_attention, ((2, 5, 8), (2, 7, 8)),
              layer=L.MultiHeadAttention),
    LayerCase("TransformerEncoderLayer",
              lambda: L.TransformerEncoderLayer(8, 2, dim_feedforward=16), ((2, 5, 8),),
              layer=L.TransformerEncoderLayer),
    LayerCase("TransformerEncoderLayer_pre_norm_gelu",
              lambda: L.TransformerEncoderLayer(8, 2, dim_feedforward=16, norm_first=True,
                                                activation="gelu"), ((2, 5, 8),),
              layer=L.TransformerEncoderLayer),
]


@pytest.mark.parametrize("case", CASES, ids=str)
def test_export_layer(case):
    check_case(case)


def test_names_are_unique():
    names = [case.name for case in CASES]
    assert len(names) == len(set(names)), sorted(n for n in names if names.count(n) > 1)


# ``Layer`` itself is the base class: it has no forward of its own to export.
NOT_A_LAYER_TO_EXPORT = {"Layer"}


def test_every_layer_has_a_case():
    layers = {name for name in L.__all__
              if isinstance(getattr(L, name), type) and issubclass(getattr(L, name), L.Layer)}
    covered = {case.layer.__name__ for case in CASES}
    missing = sorted(layers - covered - NOT_A_LAYER_TO_EXPORT)
    assert not missing, f"layers of zerograd.layers without an export case: {missing}"


# -- state, inference mode, names ----------------------------------------------------------------
@pytest.mark.parametrize("cell_class", [L.RNN, L.LSTM, L.GRU])
def test_a_cell_exported_itself_from_zero_state_is_one_step(cell_class, tmp_path):
    """Exporting the cell layer directly (fresh, or after reset_state()) gives one step from
    zero state, for any batch size; the export's own call leaves a state behind, which
    reset_state() clears."""
    rng = np.random.default_rng(0)
    cell = cell_class(5, in_size=4)
    x = rng.standard_normal((3, 4)).astype(np.float32)
    path = tmp_path / "cell.onnx"
    zerograd.onnx.export(cell, x, path)
    for batch in (3, 6):
        xs = rng.standard_normal((batch, 4)).astype(np.float32)
        cell.reset_state()
        with zerograd.no_grad():
            expected = cell(xs).data
        (got,) = run_onnx(path, [xs])
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


def test_lstm_parameters_are_initializers_under_their_gate_names():
    """The LSTM cell's eight Linear weights (DeZero's names) are the graph's initializers;
    FusedWeights joins them in the graph."""
    cell = L.LSTM(5, in_size=4)
    model = zerograd.onnx.export(cell, np.zeros((2, 4), np.float32), None)
    params = {f"{gate}/W" for gate in ("x2f", "x2i", "x2o", "x2u", "h2f", "h2i", "h2o", "h2u")}
    params |= {f"{gate}/b" for gate in ("x2f", "x2i", "x2o", "x2u")}
    shapes = {t.name: tuple(t.dims) for t in model.graph.initializer}
    assert params <= set(shapes), shapes
    # Nothing else of the weights' size: the fused arrays are built in the graph, not stored.
    assert [n for n, s in shapes.items() if n not in params and s in ((4, 20), (5, 20))] == []
    assert any(node.op_type == "Concat" for node in model.graph.node)


def test_batch_norm_exports_its_running_statistics_not_the_batch():
    """Inference mode: the exported BatchNorm normalises with the running statistics, so one
    example gives the same output alone as in a batch."""
    bn = _trained_batch_norm((8, 4))()
    x = np.random.default_rng(3).standard_normal((5, 4)).astype(np.float32)
    model = zerograd.onnx.export(bn, x, None)
    assert [n.op_type for n in model.graph.node if n.op_type == "BatchNormalization"]
    expected = (x - bn.avg_mean) / np.sqrt(bn.avg_var + bn.eps) * bn.gamma.data + bn.beta.data
    session = ort.InferenceSession(model.SerializeToString(),
                                   providers=["CPUExecutionProvider"])
    got = session.run(None, {"input0": x})[0]
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)
    one = session.run(None, {"input0": x[:1]})[0]
    np.testing.assert_allclose(one, expected[:1], rtol=1e-5, atol=1e-5)


def test_dropout_is_the_identity():
    model = zerograd.onnx.export(L.Dropout(0.9), np.ones((4, 3), np.float32), None)
    assert {n.op_type for n in model.graph.node} == {"Identity"}
