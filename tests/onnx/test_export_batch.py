"""The dynamic batch when it is not simply the first axis (issue 12): a batch folded into
another axis (k * N rows, as im2col's patch matrix has), computed back by the Reshapes and
Expands that follow; outputs declared with a symbol of their own for such an axis; sizes
that only look like a multiple of the batch; BatchNorm's running statistics named by their
buffers.

Every export here runs through ``check_export``: in ONNX Runtime on the example inputs and at
another batch size, compared with zerograd to 1e-5.
"""

import numpy as np
import pytest

import zerograd
import zerograd.functions as F
import zerograd.layers as L
from tests.onnx._check import check_export, onnx
from zerograd import Model

ort = pytest.importorskip("onnxruntime")


def _x(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def _dims(value_info):
    return [d.dim_param or d.dim_value for d in value_info.type.tensor_type.shape.dim]


def _shape_initializers(proto):
    """The constant int64 shape vectors that Reshape and Expand nodes read."""
    constants = {t.name: onnx.numpy_helper.to_array(t) for t in proto.graph.initializer}
    return [constants[node.input[1]].tolist() for node in proto.graph.node
            if node.op_type in ("Reshape", "Expand") and node.input[1] in constants]


def run_onnx_model(proto, x):
    """The model's one output on x, in ONNX Runtime."""
    session = ort.InferenceSession(proto.SerializeToString(),
                                   providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x})[0]


# -- a batch folded into the first axis --------------------------------------------------------
W = _x(6, 4, 3, 3, seed=1) * 0.5
B = _x(6, seed=2)


def test_conv2d_simple_runs_at_another_batch():
    """The book's conv2d_simple: im2col (N*OH*OW, C*KH*KW) @ W, reshaped to (N, OH, OW, OC).
    The Reshape's target is computed from the rows at run time (batch 2 was baked in: ORT
    refused batch 4 with 'Input shape:{80,6}, requested shape:{2,5,4,6}')."""
    x = _x(2, 4, 9, 8)
    proto = check_export(lambda v: F.conv2d_simple(v, W, B, 2, 1), x)
    assert _dims(proto.graph.output[0]) == ["batch", 6, 5, 4]
    assert all(shape[0] != 2 for shape in _shape_initializers(proto)), \
        _shape_initializers(proto)
    xs = _x(4, 4, 9, 8, seed=3)  # and the values at batch 4 are the direct conv2d's
    np.testing.assert_allclose(run_onnx_model(proto, xs), F.conv2d(xs, W, B, 2, 1).data,
                               atol=1e-4, rtol=1e-4)


def test_pooling_simple_runs_at_another_batch():
    x = _x(2, 4, 9, 8)
    proto = check_export(lambda v: F.pooling_simple(v, 2, 2), x)
    assert _dims(proto.graph.output[0]) == ["batch", 4, 4, 4]
    xs = _x(5, 4, 9, 8, seed=4)
    np.testing.assert_array_equal(run_onnx_model(proto, xs), F.max_pool2d(xs, 2, 2).data)


@pytest.mark.parametrize("k, k2", [
    (6, 1),  # (6N, 2) rows, then (N, 12): a Div by 6
    (1, 2),  # (N, 12), then (2N, 6): a Mul by 2
    (3, 2),  # (3N, 4), then (2N, 6): a Mul by 2 and a Div by 3
    (12, 4),  # (12N, 1), then (4N, 3): a Div by 3
])
def test_reshapes_between_multiples_of_the_batch(k, k2):
    """x (N, 4, 3): Reshapes that fold the batch into a first axis of k * N rows and then
    k2 * N; each target's first dimension is the runtime one times k2 / k (the sizes
    come from the trace, N = 3, and must follow the batch at N = 5)."""
    def fn(v):
        n = v.shape[0]
        return F.reshape(F.reshape(v, (k * n, 12 // k)) * 2.0, (k2 * n, 12 // k2)) + 1.0

    proto = check_export(fn, _x(3, 4, 3))  # and at batch 5
    assert _shape_initializers(proto) == []  # both targets computed, none a constant


def test_expand_of_a_folded_batch_keeps_the_runtime_rows():
    """broadcast_to of (N*2, 1) to (N*2, 3): the Expand's first dimension is the input's own
    at run time."""
    def fn(v):
        rows = F.reshape(v, (v.shape[0] * 2, 1))
        return F.broadcast_to(rows, (rows.shape[0], 3))

    proto = check_export(fn, _x(3, 2))
    assert _shape_initializers(proto) == []


def test_the_batch_is_found_again_after_a_transpose_that_moved_it():
    """(N, T, D) -> (T, N, D) -> back: the middle value's first axis is T, not the batch,
    but the value depends on it, so the one after (first axis N again) is batched and its
    flatten computes N (the batch was baked in when only a batched input passed it on)."""
    def fn(v):
        back = F.transpose(F.transpose(v, (1, 0, 2)) * 2.0, (1, 0, 2))
        return F.reshape(back, (back.shape[0], -1))

    proto = check_export(fn, _x(3, 4, 2))  # and at batch 5
    assert _shape_initializers(proto) == []


# -- the outputs' declared shapes ----------------------------------------------------------------
def test_an_output_with_a_folded_batch_gets_a_symbol_of_its_own():
    """im2col's matrix has N*OH*OW rows: declared 'batch*20' (OH*OW = 5*4), not the
    example's 40 (ORT warned 'Expected shape from model of {40,36} does not match actual
    shape of {80,36}')."""
    proto = check_export(lambda v: F.im2col(v, 3, 2, 1), _x(2, 4, 9, 8))
    assert _dims(proto.graph.output[0]) == ["batch*20", 36]
    got = run_onnx_model(proto, _x(4, 4, 9, 8))
    assert got.shape == (80, 36)


def test_output_dimensions_inference_fixes_stay_numbers():
    """A first axis that only looks like a multiple of the batch (a sum over it, 4 = 2 * 2)
    keeps the fixed size shape inference finds."""
    proto = check_export(lambda v: F.sum(v, axis=0), _x(2, 4))
    assert _dims(proto.graph.output[0]) == [4]


# -- coincidences of sizes ---------------------------------------------------------------------
def test_a_size_that_only_looks_like_a_multiple_of_the_batch_stays_right():
    """Batch 2: the (4,) sum over the batch has a first axis of 2 * 2, taken for 2 * batch.
    The Reshape and Expand computed from it read its runtime first axis, which stays 4 at
    every batch, so the target is the constant's value."""
    def fn(v):
        total = F.reshape(F.sum(v, axis=0), (2, 2))
        return F.broadcast_to(F.reshape(total, (4, 1)), (4, 3)) * 1.0

    check_export(fn, _x(2, 4))  # runs at batch 4 too


# -- BatchNorm's running statistics --------------------------------------------------------------
class Normed(Model):
    def __init__(self):
        super().__init__()
        self.fc = L.Linear(4)
        self.bn = L.BatchNorm()

    def forward(self, x):
        return self.bn(self.fc(x))


def test_batch_norm_statistics_are_named_by_their_buffers():
    model = Normed()
    rng = np.random.default_rng(5)
    with zerograd.using_config("train", True):
        for _ in range(3):
            model(rng.standard_normal((6, 3)).astype(np.float32) * 2 + 1)
    proto = check_export(model, _x(3, 3))
    arrays = {t.name: onnx.numpy_helper.to_array(t) for t in proto.graph.initializer}
    np.testing.assert_array_equal(arrays["bn/avg_mean"], model.bn.avg_mean)
    np.testing.assert_array_equal(arrays["bn/avg_var"], model.bn.avg_var)
    assert not (model.bn.avg_mean == 0).all()  # trained: the names hold the trained values
    (node,) = [n for n in proto.graph.node if n.op_type == "BatchNormalization"]
    assert list(node.input[3:]) == ["bn/avg_mean", "bn/avg_var"]


def test_batch_norm_statistics_of_a_function_are_constants():
    """Arrays that are no buffer of a model (a function's own) keep const_N names."""
    mean, var = _x(4, seed=6), np.abs(_x(4, seed=7)) + 0.5
    proto = check_export(lambda v: F.batch_norm(v, np.ones(4, np.float32),
                                                np.zeros(4, np.float32), mean, var),
                         _x(3, 4))
    (node,) = [n for n in proto.graph.node if n.op_type == "BatchNormalization"]
    assert all(name.startswith("const_") for name in node.input[3:]), list(node.input)


def test_a_buffer_used_twice_is_named_once():
    """The same BatchNorm called twice: the second use of its statistics gets const_N (a
    name is an initializer's only once)."""
    class Twice(Model):
        def __init__(self):
            super().__init__()
            self.bn = L.BatchNorm()

        def forward(self, x):
            return self.bn(self.bn(x) * 2.0)

    proto = check_export(Twice(), _x(3, 4))
    names = [t.name for t in proto.graph.initializer]
    assert names.count("bn/avg_mean") == 1 and names.count("bn/avg_var") == 1, names
