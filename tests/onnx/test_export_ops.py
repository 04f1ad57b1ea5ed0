"""Every exportable op, exported alone (or in a tiny model), checked in ONNX Runtime.

Each case exports a function of Variables with ``check_export``: float32, compared with
zerograd to 1e-5, on the example inputs, on random inputs and on another batch size.
"""

import pytest

import zerograd.functions as F
from tests.onnx._check import ExportCase, check_case

CASES = [
    ExportCase("relu", lambda: F.relu),
    ExportCase("add", lambda: F.add, [(3, 4), (3, 4)]),
    ExportCase("matmul", lambda: F.matmul, [(3, 4), (4, 5)], other_batch=True),
    ExportCase("linear", lambda: F.linear, [(3, 4), (4, 5), (5,)]),
]


@pytest.mark.parametrize("case", CASES, ids=str)
def test_export_op(case):
    check_case(case)


def test_example_inputs_float32_stay_float32():
    model = check_case(CASES[0])
    assert model.graph.input[0].type.tensor_type.elem_type == 1  # FLOAT
    assert model.graph.output[0].type.tensor_type.elem_type == 1
