"""Variable: construction, array facts, repr, methods."""

import numpy as np
import pytest

import zerograd
from zerograd import Parameter, Variable, as_array, as_variable


@pytest.mark.parametrize("bad", [1.0, 3, [1, 2], (1,), "x", np.float64(1.0)])
def test_rejects_non_arrays_naming_the_type(bad):
    with pytest.raises(TypeError, match=type(bad).__name__):
        Variable(bad)


def test_accepts_none_and_arrays():
    assert Variable(None).data is None
    v = Variable(np.zeros((2, 3), dtype=np.float32), name="v")
    assert v.name == "v" and v.grad is None and v.creator is None and v.generation == 0


def test_array_facts():
    v = Variable(np.zeros((2, 3), dtype=np.float32))
    assert (v.shape, v.ndim, v.size, v.dtype, len(v)) == ((2, 3), 2, 6, np.float32, 2)
    assert v.T.shape == (3, 2)


def test_repr_matches_dezero_format():
    assert repr(Variable(None)) == "variable(None)"
    assert repr(Variable(np.array(1.5))) == "variable(1.5)"
    assert repr(Variable(np.array([[1, 2], [3, 4]]))) == "variable([[1 2]\n          [3 4]])"


def test_reshape_and_transpose_spellings():
    v = Variable(np.arange(6.0))
    assert v.reshape(2, 3).shape == (2, 3)
    assert v.reshape((3, 2)).shape == (3, 2)
    m = Variable(np.zeros((2, 3, 4)))
    assert m.transpose().shape == (4, 3, 2)
    assert m.transpose(1, 0, 2).shape == (3, 2, 4)
    assert m.transpose((2, 0, 1)).shape == (4, 2, 3)
    assert m.transpose(None).shape == (4, 3, 2)


def test_sum_method():
    v = Variable(np.arange(6.0).reshape(2, 3))
    assert v.sum().data == 15.0
    np.testing.assert_array_equal(v.sum(axis=0).data, [3, 5, 7])
    assert v.sum(axis=1, keepdims=True).shape == (2, 1)


def test_item_and_array_protocol():
    v = Variable(np.array([[2.5]], dtype=np.float32))
    assert v.item() == 2.5 and isinstance(v.item(), float)
    np.testing.assert_array_equal(np.asarray(v), [[2.5]])


def test_to_cpu_is_identity_for_numpy_and_to_gpu_fails_clearly_without_gpu():
    v = Variable(np.ones(2))
    data = v.data
    assert v.to_cpu() is v and v.data is data
    if not zerograd.cuda.gpu_enable:
        with pytest.raises(RuntimeError, match="CuPy"):
            v.to_gpu()


def test_parameter_is_a_variable():
    p = Parameter(np.ones(2))
    assert isinstance(p, Variable) and isinstance(p * 2.0, Variable)
    assert not isinstance(p * 2.0, Parameter)


def test_as_array_and_as_variable():
    assert isinstance(as_array(1.0), np.ndarray) and as_array(1.0).ndim == 0
    a = np.ones(2)
    assert as_array(a) is a
    v = Variable(a)
    assert as_variable(v) is v
    assert isinstance(as_variable(a), Variable) and as_variable(a).data is a


def test_variables_are_hashable_by_identity():
    a, b = Variable(np.ones(2)), Variable(np.ones(2))
    d = {a: 1, b: 2}
    assert d[a] == 1 and d[b] == 2


def test_reduction_and_shape_methods():
    v = Variable(np.array([[1.0, 5.0, 2.0], [4.0, 0.0, 3.0]]))
    assert v.max().data == 5.0 and v.min().data == 0.0
    np.testing.assert_array_equal(v.max(axis=1).data, [5.0, 4.0])
    np.testing.assert_array_equal(v.min(axis=0, keepdims=True).data, [[1.0, 0.0, 2.0]])
    assert v.mean().data == 2.5
    assert v.flatten().shape == (2, 3)  # DeZero's flatten keeps the batch axis
    assert Variable(np.ones((2, 1, 3))).squeeze().shape == (2, 3)
    y = v.max()
    y.backward()
    np.testing.assert_array_equal(v.grad.data, [[0, 1, 0], [0, 0, 0]])
