"""Every exportable op of the neural-network families (convolution, pooling, normalization,
recurrent, attention, embedding), exported alone and checked in ONNX Runtime.

Each case exports a function of Variables through ``check_export``: float32, compared with
zerograd to 1e-5 on the example inputs, on random inputs and on another batch size. The
coverage test at the end holds every Function class of these families to a lowering or a
reason in ``NOT_EXPORTABLE``.
"""

import numpy as np
import pytest

import zerograd.functions as F
import zerograd.layers as L
import zerograd.onnx
from tests.onnx._check import (
    ExportCase,
    check_case,
    check_coverage,
    check_export,
    function_classes,
    run_onnx,
)
from zerograd.onnx import lowering_of
from zerograd.ops import attention, conv, normalization, pooling, recurrent

ort = pytest.importorskip("onnxruntime")
ort.set_default_logger_severity(3)  # the runtime's notes on unused initializers

_rng = np.random.default_rng(42)


def _w(*shape, scale=0.5):
    """A fixed weight, drawn once when the table is built."""
    return (_rng.standard_normal(shape) * scale).astype(np.float32)


# Weights of the cases (constants of the exported functions, so initializers of the graph).
W_CONV = _w(6, 4, 3, 3)
W_GROUPS = _w(6, 2, 3, 3)
W_DECONV = _w(4, 3, 3, 3)
W_DECONV_GROUPS = _w(4, 3, 2, 3)
W_CONV1D = _w(5, 4, 3)
B6, B5, B3 = _w(6), _w(5), _w(3)
G8, B8 = _w(8) + 1, _w(8)
GAMMA, BETA = _w(4) + 1, _w(4)
MEAN, VAR = _w(4), np.abs(_w(4)) + 0.5
H = 5
WX_LSTM, WH_LSTM, B_LSTM = _w(4, 4 * H), _w(H, 4 * H), _w(4 * H)
WX_GRU, WH_GRU, BX_GRU, BH_GRU = _w(4, 3 * H), _w(H, 3 * H), _w(3 * H), _w(3 * H)
WX_RNN, WH_RNN, B_RNN = _w(4, H), _w(H, H), _w(H)
TABLE = _w(10, 6)
KEEP = _rng.random((5, 6)) < 0.6
KEEP[2] = False  # a query with nothing to attend to: its weights are 0, not nan
ADDITIVE = np.where(KEEP, 0.0, -np.inf).astype(np.float32)

IMAGE = ((2, 4, 9, 8),)


def _ids(rng):
    return [rng.integers(0, 10, size=(3, 7))]


CASES = [
    # -- convolution: stride, pad, dilation, groups; transposed with outsize ----------------
    ExportCase("conv2d", lambda: lambda x: F.conv2d(x, W_CONV, B6), IMAGE),
    ExportCase("conv2d_stride_pad", lambda: lambda x: F.conv2d(x, W_CONV, B6, 2, 1), IMAGE),
    ExportCase("conv2d_pairs_dilation",
               lambda: lambda x: F.conv2d(x, W_CONV, None, (2, 1), (1, 2), dilation=(2, 1)),
               IMAGE),
    ExportCase("conv2d_groups", lambda: lambda x: F.conv2d(x, W_GROUPS, B6, pad=1, groups=2),
               IMAGE),
    ExportCase("deconv2d", lambda: lambda x: F.deconv2d(x, W_DECONV, None), IMAGE),
    ExportCase("deconv2d_stride_pad", lambda: lambda x: F.deconv2d(x, W_DECONV, B3, 2, 1),
               IMAGE),
    ExportCase("deconv2d_outsize",
               lambda: lambda x: F.deconv2d(x, W_DECONV, None, 2, 1, outsize=(18, 16)), IMAGE),
    ExportCase("deconv2d_groups_dilation",
               lambda: lambda x: F.deconv2d(x, W_DECONV_GROUPS, None, (2, 3), dilation=2,
                                            groups=2), IMAGE),
    ExportCase("conv1d", lambda: lambda x: F.conv1d(x, W_CONV1D, B5, stride=2, pad=1),
               ((2, 4, 11),)),
    ExportCase("conv1d_dilation", lambda: lambda x: F.conv1d(x, W_CONV1D, None, dilation=3),
               ((2, 4, 11),)),
    # im2col/col2im: the book's conv2d_simple and pooling_simple. Their batch is folded
    # into the first axis of the patch matrix (N * OH * OW rows) and the Reshape back to
    # (N, OH, OW, C) computes it, so they run at another batch size too.
    ExportCase("im2col", lambda: lambda x: F.im2col(x, 3, 2, 1, to_matrix=False), IMAGE),
    ExportCase("im2col_matrix", lambda: lambda x: F.im2col(x, (2, 3), 1, (0, 1)), IMAGE),
    ExportCase("col2im", lambda: lambda c: F.col2im(c, (2, 4, 9, 8), 3, 2, 1, to_matrix=False),
               ((2, 4, 3, 3, 5, 4),), other_batch=False),  # img_shape fixes the batch
    ExportCase("col2im_matrix", lambda: lambda c: F.col2im(c, (2, 4, 9, 8), 3, 2, 1),
               ((40, 36),), other_batch=False),
    ExportCase("conv2d_simple", lambda: lambda x: F.conv2d_simple(x, W_CONV, B6, 2, 1), IMAGE),
    ExportCase("pooling_simple", lambda: lambda x: F.pooling_simple(x, 2, 2), IMAGE),
    # -- pooling: padding, ceil_mode (the overhang), count_include_pad ---------------------
    ExportCase("pooling", lambda: lambda x: F.pooling(x, 3, 1, 1), IMAGE),
    ExportCase("max_pool2d", lambda: lambda x: F.max_pool2d(x, 2), IMAGE),
    ExportCase("max_pool2d_ceil", lambda: lambda x: F.max_pool2d(x, (2, 3), (3, 2),
                                                                  ceil_mode=True), IMAGE),
    ExportCase("average_pooling_pad",
               lambda: lambda x: F.average_pooling(x, 3, 2, 1), IMAGE),
    ExportCase("average_pooling_no_pad_count",
               lambda: lambda x: F.average_pooling(x, 3, 2, 1, count_include_pad=False), IMAGE),
    # The last window runs past the padding: zerograd counts the padding, not the overhang.
    ExportCase("average_pooling_ceil",
               lambda: lambda x: F.average_pooling(x, 3, 2, 1, ceil_mode=True), IMAGE),
    ExportCase("average_pooling_ceil_no_pad_count",
               lambda: lambda x: F.average_pooling(x, (2, 3), (3, 2), ceil_mode=True,
                                                   count_include_pad=False), IMAGE),
    ExportCase("adaptive_avg_pool2d_divisible", lambda: lambda x: F.adaptive_avg_pool2d(x, 1),
               IMAGE),
    ExportCase("adaptive_avg_pool2d_bins",
               lambda: lambda x: F.adaptive_avg_pool2d(x, (4, 3)), IMAGE),
    # -- normalization ----------------------------------------------------------------------
    ExportCase("batch_norm_running", lambda: lambda x: F.batch_norm(x, GAMMA, BETA, MEAN, VAR),
               IMAGE),
    ExportCase("batch_norm_2d", lambda: lambda x: F.batch_norm(x, GAMMA, BETA, MEAN, VAR),
               ((3, 4),)),
    ExportCase("batch_norm_batch_statistics",
               lambda: lambda x: F.batch_norm(x, GAMMA, BETA, None, None), IMAGE),
    ExportCase("layer_norm", lambda: lambda x: F.layer_norm(x, G8, B8), ((3, 5, 8),)),
    ExportCase("layer_norm_opset13", lambda: lambda x: F.layer_norm(x, G8, B8),
               ((3, 5, 8),), opset=13),
    ExportCase("layer_norm_two_axes",
               lambda: lambda x: F.layer_norm(x, normalized_shape=(5, 8)), ((3, 5, 8),)),
    ExportCase("group_norm", lambda: lambda x: F.group_norm(x, 2, GAMMA, BETA), IMAGE),
    ExportCase("group_norm_opset15", lambda: lambda x: F.group_norm(x, 4), IMAGE, opset=15),
    # -- attention: no mask, a boolean mask (a fully masked row), an additive -inf mask ---
    ExportCase("scaled_dot_product_attention",
               lambda: F.scaled_dot_product_attention, ((2, 3, 5, 4), (2, 3, 6, 4),
                                                        (2, 3, 6, 4))),
    ExportCase("scaled_dot_product_attention_bool_mask",
               lambda: lambda q, k, v: F.scaled_dot_product_attention(q, k, v, mask=KEEP),
               ((2, 3, 5, 4), (2, 3, 6, 4), (2, 3, 6, 4))),
    ExportCase("scaled_dot_product_attention_additive_mask",
               lambda: lambda q, k, v: F.scaled_dot_product_attention(q, k, v, mask=ADDITIVE,
                                                                       scale=0.3),
               ((2, 3, 5, 4), (2, 3, 6, 4), (2, 3, 6, 4))),
    # -- embedding: the ids are the graph's input --------------------------------------------
    ExportCase("embed_id", lambda: lambda ids: F.embed_id(ids, TABLE), inputs=_ids),
    ExportCase("embed_id_int32", lambda: lambda ids: F.embed_id(ids, TABLE),
               inputs=lambda rng: [rng.integers(0, 10, size=(4,)).astype(np.int32)]),
    # -- recurrent cells: from a given state, and from none (zeros of the runtime batch) ---
    ExportCase("lstm_cell", lambda: lambda x, h, c: F.lstm_cell(x, h, c, WX_LSTM, WH_LSTM,
                                                                B_LSTM)[0],
               ((3, 4), (3, H), (3, H))),
    ExportCase("lstm_cell_c_output", lambda: lambda x, h, c: F.lstm_cell(x, h, c, WX_LSTM,
                                                                         WH_LSTM, B_LSTM),
               ((3, 4), (3, H), (3, H))),
    ExportCase("lstm_cell_no_state",
               lambda: lambda x: F.lstm_cell(x, None, None, WX_LSTM, WH_LSTM, B_LSTM)[0],
               ((3, 4),)),
    ExportCase("gru_cell", lambda: lambda x, h: F.gru_cell(x, h, WX_GRU, WH_GRU, BX_GRU, BH_GRU),
               ((3, 4), (3, H))),
    ExportCase("gru_cell_no_state",
               lambda: lambda x: F.gru_cell(x, None, WX_GRU, WH_GRU, BX_GRU, BH_GRU), ((3, 4),)),
    ExportCase("rnn_cell", lambda: lambda x, h: F.rnn_cell(x, h, WX_RNN, WH_RNN, B_RNN),
               ((3, 4), (3, H))),
    ExportCase("rnn_cell_no_state",
               lambda: lambda x: F.rnn_cell(x, None, WX_RNN, None, B_RNN), ((3, 4),)),
    # -- sequence ops, as ONNX's LSTM/GRU/RNN (forward and reverse, with and without h0) ----
    ExportCase("lstm_sequence", lambda: lambda xw: F.lstm_sequence(xw, None, None, WH_LSTM),
               ((3, 6, 4 * H),)),
    ExportCase("lstm_sequence_reverse_state",
               lambda: lambda xw, h, c: F.lstm_sequence(xw, h, c, WH_LSTM, reverse=True),
               ((3, 6, 4 * H), (3, H), (3, H))),
    ExportCase("lstm_sequence_bias",
               lambda: lambda xw: F.lstm_sequence(xw, None, None, WH_LSTM, B_LSTM),
               ((3, 6, 4 * H),)),
    ExportCase("lstm_sequence_bias_reverse_state",
               lambda: lambda xw, h, c: F.lstm_sequence(xw, h, c, WH_LSTM, B_LSTM, reverse=True),
               ((3, 6, 4 * H), (3, H), (3, H))),
    ExportCase("gru_sequence", lambda: lambda xw: F.gru_sequence(xw, None, WH_GRU, BH_GRU),
               ((3, 6, 3 * H),)),
    ExportCase("gru_sequence_reverse_state",
               lambda: lambda xw, h: F.gru_sequence(xw, h, WH_GRU, BH_GRU, reverse=True),
               ((3, 6, 3 * H), (3, H))),
    ExportCase("rnn_sequence", lambda: lambda xw: F.rnn_sequence(xw, None, WH_RNN),
               ((3, 6, H),)),
    ExportCase("rnn_sequence_reverse_state",
               lambda: lambda xw, h: F.rnn_sequence(xw, h, WH_RNN, reverse=True),
               ((3, 6, H), (3, H))),
]


@pytest.mark.parametrize("case", CASES, ids=str)
def test_export_op(case):
    check_case(case)


def test_names_are_unique():
    names = [case.name for case in CASES]
    assert len(names) == len(set(names)), sorted(n for n in names if names.count(n) > 1)


def test_embedding_ids_are_the_graph_input():
    """The ids reach the graph as its input (a Gather reads it), not as a constant holding
    the example's ids: other ids give other rows."""
    ids = np.array([[1, 2], [3, 4]])
    model = check_export(lambda i: F.embed_id(i, TABLE), ids)
    gathers = [node for node in model.graph.node if node.op_type == "Gather"]
    assert len(gathers) == 1 and gathers[0].input[1] == model.graph.input[0].name
    assert model.graph.input[0].type.tensor_type.elem_type == 7  # int64, the ids' own type


def test_masked_softmax_rows_with_nothing_to_attend_are_zero(tmp_path):
    q = _rng.standard_normal((1, 1, 5, 4)).astype(np.float32)
    k = _rng.standard_normal((1, 1, 6, 4)).astype(np.float32)
    v = _rng.standard_normal((1, 1, 6, 4)).astype(np.float32)
    path = tmp_path / "attention.onnx"
    zerograd.onnx.export(lambda q, k, v: F.scaled_dot_product_attention(q, k, v, mask=KEEP),
                         [q, k, v], path)
    (y,) = run_onnx(path, [q, k, v])
    assert np.isfinite(y).all()
    np.testing.assert_array_equal(y[0, 0, 2], np.zeros(4, np.float32))  # KEEP[2] is all False


def test_the_sequence_ops_become_onnx_recurrent_nodes():
    for fn, shape, op_type in [
            (lambda xw: F.lstm_sequence(xw, None, None, WH_LSTM)[0], (2, 3, 4 * H), "LSTM"),
            (lambda xw: F.gru_sequence(xw, None, WH_GRU, BH_GRU)[0], (2, 3, 3 * H), "GRU"),
            (lambda xw: F.rnn_sequence(xw, None, WH_RNN)[0], (2, 3, H), "RNN")]:
        model = check_export(fn, _rng.standard_normal(shape).astype(np.float32))
        nodes = [node for node in model.graph.node if node.op_type == op_type]
        assert len(nodes) == 1, [node.op_type for node in model.graph.node]
        attributes = {a.name: a for a in nodes[0].attribute}
        assert attributes["hidden_size"].i == H
        if op_type == "GRU":  # PyTorch's (and zerograd's) GRU: reset after Wh
            assert attributes["linear_before_reset"].i == 1


# -- coverage: every Function of these families has a lowering or a reason --------------------
_GRAD_NODE = "a Grad node: computes a backward, which export never runs"
NOT_EXPORTABLE = {
    "BiasGrad": _GRAD_NODE,
    "Conv2DGradW": _GRAD_NODE,
    "Pooling2DGrad": _GRAD_NODE,
    "Pooling2DWithIndexes": "the gradient of max pooling's gradient (gathers at the argmax "
                            "of a forward pass), not called by forward code",
    "AveragePoolingGrad": _GRAD_NODE,
    "StandardizeGrad": _GRAD_NODE,
    "BatchNormGrad": _GRAD_NODE,
    "LSTMCellGrad": _GRAD_NODE,
    "GRUCellGrad": _GRAD_NODE,
    "RNNCellGrad": _GRAD_NODE,
}
FAMILIES = [conv, pooling, normalization, recurrent, attention]


def test_every_op_has_a_lowering_or_a_listed_reason():
    check_coverage(FAMILIES, NOT_EXPORTABLE)


def test_every_exportable_op_of_these_families_has_a_case():
    """Each op with a lowering is exercised by some case above (named after its function)."""
    exercised = {"Conv2d": "conv2d", "Deconv2d": "deconv2d", "Im2col": "im2col",
                 "Col2im": "col2im", "Pooling": "pooling", "AveragePooling": "average_pooling",
                 "BatchNorm": "batch_norm", "Standardize": "group_norm",
                 "LayerNorm": "layer_norm", "GroupNorm": "group_norm",
                 "MaskedSoftmax": "scaled_dot_product_attention", "LSTMCell": "lstm_cell",
                 "GRUCell": "gru_cell", "RNNCell": "rnn_cell",
                 "LSTMSequence": "lstm_sequence", "GRUSequence": "gru_sequence",
                 "RNNSequence": "rnn_sequence",
                 "FusedWeights": None}  # the LSTM layer's weights: tests/onnx/test_export_layers
    names = {case.name for case in CASES}
    for module in FAMILIES:
        for cls in function_classes(module):
            if lowering_of(cls) is None:
                continue
            assert cls.__name__ in exercised, f"{cls.__name__} has a lowering but no case"
            prefix = exercised[cls.__name__]
            assert prefix is None or any(n.startswith(prefix) for n in names), cls.__name__


# -- float64 ---------------------------------------------------------------------------------
def test_float64_models_stay_float64():
    """Every constant a lowering adds has the model's dtype (the builder's default for
    floats is float32): float64 layers give all-double files."""
    rng = np.random.default_rng(5)
    double = 11  # onnx.TensorProto.DOUBLE
    for model, x in [
            (L.LayerNorm(3, dtype=np.float64), rng.standard_normal((2, 5, 3))),
            (L.LSTMSeq(4, dtype=np.float64), rng.standard_normal((2, 5, 3))),
            (L.GRUSeq(4, dtype=np.float64), rng.standard_normal((2, 5, 3))),
            (L.Conv2d(3, 3, dtype=np.float64), rng.standard_normal((2, 3, 5, 5))),
            (lambda v: F.col2im(F.im2col(v, 2), (2, 3, 4, 4), 2),
             rng.standard_normal((2, 3, 4, 4))),
            (L.AvgPool2d(3, 2, pad=1, ceil_mode=True), rng.standard_normal((2, 3, 6, 6)))]:
        proto = zerograd.onnx.export(model, x, None)
        floats = [t for t in proto.graph.initializer if t.data_type in (1, double)]
        assert floats and all(t.data_type == double for t in floats), \
            [(t.name, t.data_type) for t in floats]
    # ONNX Runtime's CPU kernels for Conv, pooling and the recurrent ops are float32 only;
    # the composed ones run in float64:
    cell = L.LSTM(4, in_size=3, dtype=np.float64)

    def step(v):
        cell.reset_state()
        return cell(v)
    check_export(step, rng.standard_normal((2, 3)))
    check_export(L.LayerNorm(3, dtype=np.float64), rng.standard_normal((2, 5, 3)), opset=13)
