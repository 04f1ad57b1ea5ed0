"""Bad input raises errors that name the op, the shapes/dtypes and what was expected."""

import numpy as np
import pytest

import zerograd.functions as F
from zerograd import Variable
from zerograd.errors import DTypeError, GraphError, ShapeError


def test_mismatched_shapes_in_binary_op():
    x = Variable(np.ones((2, 3), dtype=np.float32))
    y = Variable(np.ones((4,), dtype=np.float32))
    with pytest.raises(ShapeError, match=r"Add.*\(2, 3\).*\(4,\)") as info:
        x + y
    assert "float32" in str(info.value)
    with pytest.raises(ValueError):  # ShapeError is a ValueError, as NumPy users expect
        x * y


def test_matmul_shape_mismatch_names_both_shapes():
    x = Variable(np.ones((2, 3)))
    w = Variable(np.ones((4, 5)))
    with pytest.raises(ShapeError, match=r"matmul: x has shape \(2, 3\), W has shape \(4, 5\)"):
        F.matmul(x, w)


def test_wrong_input_type_names_the_op():
    with pytest.raises(DTypeError, match=r"Sin: input 0 is a list"):
        F.sin([1.0, 2.0])
    with pytest.raises(TypeError):
        Variable(np.ones(2)) + "a"


def test_pow_with_variable_exponent_points_to_power():
    x = Variable(np.ones(2))
    e = Variable(np.array(2.0))
    with pytest.raises(DTypeError, match=r"pow: the exponent must be a constant.*F\.power"):
        F.pow(x, e)


def test_backward_after_the_graph_was_freed():
    x = Variable(np.ones((2, 3)))
    y = F.sum(F.tanh(x))
    y.backward(retain_graph=False)
    with pytest.raises(GraphError, match=r"Sum, whose inputs an earlier pass freed: "
                                         r"backward\(retain_graph=False\)"):
        y.backward()


def test_reshape_to_incompatible_shape():
    with pytest.raises(ShapeError, match=r"Reshape.*\(2, 3\)"):
        F.reshape(Variable(np.ones((2, 3))), (4, 2))
