"""Every exportable op of the general families, exported alone, checked in ONNX Runtime.

Each case exports a function of Variables through ``check_export``: float32, compared with
zerograd to 1e-5 on the example inputs, on random inputs and on another batch size. The
coverage test at the end holds every Function class of these families to a lowering or a
reason in ``NOT_EXPORTABLE``.
"""

import dataclasses

import numpy as np
import pytest

import zerograd.functions as F
from tests.onnx._check import ExportCase, check_case, check_coverage, function_classes
from zerograd.onnx import ExportError, lowering_of
from zerograd.ops import (
    activation,
    arithmetic,
    elementwise,
    indexing,
    linalg,
    reduction,
    shape,
)
from zerograd.ops import (
    loss as loss_ops,
)

A = [(3, 4)]  # one input, batch 3
AB = [(3, 4), (3, 4)]
POS = {"low": 0.1, "high": 3.0}  # inputs where log, sqrt, pow need positive values
UNIT = {"low": -0.9, "high": 0.9}  # inside (-1, 1): arcsin, arccos
MASK = np.array([[True, False, True, False]])


def _case(name, fn, shapes=A, **kw):
    return ExportCase(name, lambda: fn, shapes, **kw)


CASES = [
    # -- arithmetic: both forms of every operator, scalars as typed constants
    _case("add", lambda x, y: x + y, AB),
    _case("add_broadcast_row", lambda x, y: x + y, [(3, 4), (4,)]),
    _case("add_broadcast_column", lambda x, y: x + y, [(3, 4), (3, 1)]),
    _case("add_scalar", lambda x: x + 2.5),
    _case("radd_scalar", lambda x: 2.5 + x),
    _case("sub", lambda x, y: x - y, AB),
    _case("sub_scalar", lambda x: x - 1.5),
    _case("rsub_scalar", lambda x: 1.5 - x),
    _case("mul", lambda x, y: x * y, AB),
    _case("mul_scalar", lambda x: x * 3.0),
    _case("rmul_scalar", lambda x: 3.0 * x),
    _case("mul_constant_array", lambda x: x * np.arange(4, dtype=np.float32)),
    _case("div", lambda x, y: x / y, AB, **POS),
    _case("div_scalar", lambda x: x / 4.0),
    _case("rdiv_scalar", lambda x: 2.0 / x, **POS),
    _case("neg", lambda x: -x),
    _case("pow_scalar", lambda x: x ** 3),
    _case("pow_fraction", lambda x: x ** 0.5, **POS),
    _case("pow_array_exponent", lambda x: x ** np.array([1, 2, 3, 0.5], np.float32), **POS),
    _case("power_tensor_exponent", lambda x, y: x ** y, AB, **POS),
    _case("rpow_scalar_base", lambda x: 2.0 ** x),
    # -- elementwise math
    _case("square", F.square),
    _case("exp", F.exp),
    _case("log", F.log, **POS),
    _case("sin", F.sin),
    _case("cos", F.cos),
    _case("tanh", F.tanh),
    _case("sqrt", F.sqrt, **POS),
    _case("abs", F.abs),
    _case("maximum", F.maximum, AB),
    _case("minimum", F.minimum, AB),
    _case("maximum_scalar", lambda x: F.maximum(x, 0.5)),
    _case("where", lambda x, y: F.where(MASK, x, y), AB),
    _case("where_scalar", lambda x: F.where(MASK, x, 0.0)),
    _case("clip", lambda x: F.clip(x, -0.5, 1.0)),
    _case("clip_lower_only", lambda x: F.clip(x, 0.0, None)),
    _case("clip_array_bounds", lambda x: F.clip(x, np.full(4, -0.5, np.float32),
                                                np.array([0.1, 0.2, 0.3, 0.4], np.float32))),
    _case("clip_variable_bounds", lambda x, lo, hi: F.clip(x, lo, hi + 1.0), [(3, 4)] * 3),
    _case("log1p", F.log1p, **POS),
    _case("expm1", F.expm1),
    _case("log2", F.log2, **POS),
    _case("log10", F.log10, **POS),
    _case("sinh", F.sinh),
    _case("cosh", F.cosh),
    _case("arcsin", F.arcsin, **UNIT),
    _case("arccos", F.arccos, **UNIT),
    _case("arctan", F.arctan),
    _case("erf", F.erf),
    _case("erfc", F.erfc),
    # -- activations
    _case("relu", F.relu),
    _case("leaky_relu", lambda x: F.leaky_relu(x, 0.1)),
    _case("leaky_relu_steep", lambda x: F.leaky_relu(x, 1.5)),
    _case("sigmoid", F.sigmoid),
    _case("softplus", F.softplus),
    _case("elu", lambda x: F.elu(x, 0.7)),
    _case("selu", F.selu),
    _case("hard_sigmoid", F.hard_sigmoid, low=-4.0, high=4.0),
    _case("gelu", F.gelu),
    _case("gelu_opset20", F.gelu, opset=20),
    _case("gelu_tanh", lambda x: F.gelu(x, approximate="tanh")),
    _case("gelu_tanh_opset20", lambda x: F.gelu(x, approximate="tanh"), opset=20),
    _case("silu", F.silu),
    _case("mish", F.mish),
    _case("mish_opset17", F.mish, opset=17),
    _case("mish_opset18", F.mish, opset=18),
    _case("softmax", F.softmax),
    _case("softmax_last_axis", lambda x: F.softmax(x, axis=-1), [(3, 2, 4)]),
    _case("softmax_two_axes", lambda x: F.softmax(x, axis=(1, 2)), [(3, 2, 4)]),
    _case("log_softmax", F.log_softmax),
    _case("log_softmax_two_axes", lambda x: F.log_softmax(x, axis=(1, 2)), [(3, 2, 4)]),
    _case("logsumexp", F.logsumexp),
    _case("logsumexp_keepdims", lambda x: F.logsumexp(x, axis=2, keepdims=True), [(3, 2, 4)]),
    _case("sigmoid_simple", F.sigmoid_simple),
    _case("softmax_simple", F.softmax_simple),
    # -- matmul and linear
    _case("matmul", F.matmul, [(3, 4), (4, 5)]),
    _case("matmul_batched", F.matmul, [(3, 2, 4), (4, 5)]),
    _case("matmul_vector", F.matmul, [(3, 4), (4,)]),
    _case("linear", F.linear, [(3, 4), (4, 5), (5,)]),
    _case("linear_no_bias", F.linear, [(3, 4), (4, 5)]),
    _case("linear_3d", F.linear, [(3, 2, 4), (4, 5), (5,)]),
    _case("linear_simple", F.linear_simple, [(3, 4), (4, 5), (5,)]),
    _case("tensordot", lambda a, b: F.tensordot(a, b, axes=([1, 2], [0, 1])),
          [(3, 2, 4), (2, 4, 5)]),
    _case("einsum", lambda a, b: F.einsum("bij,jk->bik", a, b), [(3, 2, 4), (4, 5)]),
    _case("dot_method", lambda x, W: x.dot(W), [(3, 4), (4, 2)]),
    # -- shapes
    _case("reshape", lambda x: F.reshape(x, (x.shape[0], 2, 2))),
    _case("reshape_minus_one", lambda x: F.reshape(x, (x.shape[0], -1, 2))),
    _case("reshape_merge_batch", lambda x: F.reshape(x, (-1, 2))),
    _case("reshape_method", lambda x: x.reshape(x.shape[0], 4, 1)),
    _case("transpose", F.transpose, [(3, 2, 4)]),
    _case("transpose_axes", lambda x: F.transpose(x, (0, 2, 1)), [(3, 2, 4)]),
    _case("T", lambda x: x.T),
    _case("swapaxes", lambda x: F.swapaxes(x, 1, 2), [(3, 2, 4)]),
    _case("moveaxis", lambda x: F.moveaxis(x, 2, 1), [(3, 2, 4)]),
    _case("flatten", F.flatten, [(3, 2, 2)]),
    _case("expand_dims", lambda x: F.expand_dims(x, 1)),
    _case("squeeze", lambda x: F.squeeze(x, 1), [(3, 1, 4)]),
    _case("concat", lambda x, y: F.concat([x, y], axis=1), [(3, 4), (3, 2)]),
    _case("concat_batch_axis", lambda x, y: F.concat([x, y], axis=0), AB),
    _case("stack", lambda x, y: F.stack([x, y], axis=1), AB),
    _case("split", lambda x: F.split(x, 2, axis=1)),
    _case("split_indices", lambda x: F.split(x, [1, 3], axis=1)),
    _case("split_one_used", lambda x: F.split(x, 2, axis=1)[1]),
    _case("broadcast_to", lambda x: F.broadcast_to(x, (x.shape[0], 4)), [(3, 1)]),
    _case("broadcast_to_new_axis", lambda x: F.broadcast_to(x, (2, *x.shape)),
          other_batch=False),
    _case("sum_to", lambda x: F.sum_to(x, (1, 4))),
    _case("sum_to_lead", lambda x: F.sum_to(x, (2, 4)), [(3, 2, 4)]),
    _case("repeat", lambda x: F.repeat(x, 2, axis=1)),
    _case("repeat_batch_axis", lambda x: F.repeat(x, 2, axis=0)),
    _case("repeat_counts", lambda x: F.repeat(x, [1, 0, 2, 1], axis=1)),
    _case("tile", lambda x: F.tile(x, (1, 2))),
    _case("tile_new_axes", lambda x: F.tile(x, (2, 1, 2))),
    _case("flip", lambda x: F.flip(x, 1)),
    _case("flip_all", F.flip),
    _case("roll", lambda x: F.roll(x, 1, axis=1)),
    _case("roll_axes", lambda x: F.roll(x, (1, -1), axis=(1, 2)), [(3, 2, 4)]),
    _case("roll_flat", lambda x: F.roll(x, 2), other_batch=False),
    # -- indexing
    _case("get_item_slice", lambda x: x[:, 1:3]),
    _case("get_item_step", lambda x: x[:, ::2]),
    _case("get_item_reverse", lambda x: x[:, ::-1]),
    _case("get_item_negative", lambda x: x[:, -3:-1]),
    _case("get_item_int", lambda x: x[:, 2]),
    _case("get_item_int_negative", lambda x: x[:, -1]),
    _case("get_item_first_row", lambda x: x[0], other_batch=False),
    _case("get_item_mixed", lambda x: x[:, 1, ::2], [(3, 2, 4)]),
    _case("get_item_none", lambda x: x[:, None, 1:]),
    _case("get_item_ellipsis", lambda x: x[..., 1], [(3, 2, 4)]),
    _case("get_item_int_array", lambda x: x[:, np.array([3, 0, 0])]),
    _case("get_item_bool_mask", lambda x: x[:, np.array([True, False, True, True])]),
    _case("take", lambda x: F.take(x, np.array([[0, 1], [3, 2]]), axis=1)),
    _case("gather", lambda x: F.gather(x, np.array([[0], [3], [1]]), axis=1), other_batch=False),
    _case("gather_broadcast", lambda x: F.gather(x, np.array([[0, 2]]), axis=1),
          other_batch=False),
    _case("pad", lambda x: F.pad(x, ((0, 0), (1, 2)), constant_values=0.5)),
    _case("pad_edge", lambda x: F.pad(x, ((0, 0), (1, 1)), mode="edge"), other_batch=False),
    _case("scatter_add", lambda x, u: F.scatter_add(x, np.array([[0, 0], [1, 3], [2, 2]]), u,
                                                    axis=1), [(3, 4), (3, 2)],
          other_batch=False),
    # -- reductions
    _case("sum", F.sum),
    _case("sum_axis", lambda x: F.sum(x, axis=1)),
    _case("sum_keepdims", lambda x: F.sum(x, axis=(1, 2), keepdims=True), [(3, 2, 4)]),
    _case("sum_method", lambda x: x.sum(axis=-1)),
    _case("mean", lambda x: F.mean(x, axis=1)),
    _case("mean_all", F.mean),
    _case("max", lambda x: F.max(x, axis=1)),
    _case("max_method_keepdims", lambda x: x.max(axis=1, keepdims=True)),
    _case("min", lambda x: F.min(x, axis=1)),
    _case("prod", lambda x: F.prod(x, axis=1)),
    _case("cumsum", lambda x: F.cumsum(x, axis=1)),
    _case("var", lambda x: F.var(x, axis=1)),
    _case("var_unbiased", lambda x: F.var(x, axis=1, ddof=1, keepdims=True)),
    _case("std", lambda x: F.std(x, axis=1)),
    _case("norm", lambda x: F.norm(x, axis=1)),
    _case("norm_l1", lambda x: F.norm(x, ord=1, axis=1)),
    _case("average_method", lambda x: x.mean(axis=0), other_batch=False),
    # -- a small composition, float64 kept float64
    _case("mlp_by_hand", lambda x, W, b: F.softmax(F.relu(F.linear(x, W, b))),
          [(3, 4), (4, 5), (5,)]),
    _case("float64", lambda x: F.tanh(x) * 2.0 + 1.0, dtype=np.float64),
]


@pytest.mark.parametrize("case", CASES, ids=str)
def test_export_op(case):
    check_case(case)


# The oldest opset export supports: every case again there, composed where an op is newer.
NEEDS_NEWER_OPSET = {"scatter_add": 16}  # ScatterElements(reduction="add")


@pytest.mark.parametrize("case", [c for c in CASES if c.opset is None], ids=str)
def test_export_op_at_opset_13(case):
    if case.name in NEEDS_NEWER_OPSET:
        with pytest.raises(ExportError, match=f"opset {NEEDS_NEWER_OPSET[case.name]} and later"):
            check_case(dataclasses.replace(case, opset=13))
        return
    check_case(dataclasses.replace(case, opset=13))


def test_names_are_unique():
    names = [case.name for case in CASES]
    assert len(names) == len(set(names))


def test_float32_stays_float32():
    model = check_case(_case("tanh_float32", lambda x: F.tanh(x) * 0.5 + 1.0))
    float32 = 1  # onnx.TensorProto.FLOAT
    assert model.graph.input[0].type.tensor_type.elem_type == float32
    assert model.graph.output[0].type.tensor_type.elem_type == float32
    assert all(t.data_type == float32 for t in model.graph.initializer)


# -- coverage: every Function of these families has a lowering or a reason --------------------
_GRAD_NODE = "Grad nodes (they compute a backward; export runs none)"
NOT_EXPORTABLE = {
    "ReLUGrad": _GRAD_NODE,
    "SigmoidGrad": _GRAD_NODE,
    "ELUGrad": _GRAD_NODE,
    "GELUGrad": _GRAD_NODE,
    "GELUTanhGrad": _GRAD_NODE,
    "SiLUGrad": _GRAD_NODE,
    "MishGrad": _GRAD_NODE,
    "SoftmaxGrad": _GRAD_NODE,
    "LogSoftmaxGrad": _GRAD_NODE,
    "TanhGrad": _GRAD_NODE,
    "SinGrad": _GRAD_NODE,
    "PowGrad": _GRAD_NODE,
    "LinearGrad": _GRAD_NODE,
    "GetItemGrad": _GRAD_NODE,
    "GatherGrad": _GRAD_NODE,
    "RepeatSum": "the backward of `repeat`",
    "Crop": "the backward of `pad`",
    "ProductOfOthers": "the backward of `prod` (every order)",
}
# Losses compute a training objective from labels: an inference graph ends before them.
LOSS_REASON = "training losses and their parts: an inference graph ends before them"
FAMILIES = [arithmetic, elementwise, activation, linalg, shape, reduction, indexing]


def test_every_op_has_a_lowering_or_a_listed_reason():
    check_coverage(FAMILIES, NOT_EXPORTABLE)


def test_losses_have_no_lowering_and_say_why():
    # The loss family is listed by reason rather than one by one: none is exported.
    losses = [cls for cls in function_classes(loss_ops) if lowering_of(cls) is not None]
    assert not losses, f"a loss has a lowering now; list it in CASES: {losses}"
    assert LOSS_REASON
