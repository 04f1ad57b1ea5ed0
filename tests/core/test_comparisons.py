"""Comparison operators and abs() on Variable.

Comparisons return plain boolean ndarrays (no graph, no Variable), with a Variable, an
array or a scalar on either side; Variables stay hashable by identity.
"""

import operator

import numpy as np
import pytest

import zerograd.functions as F
from zerograd import Variable

OPS = [operator.lt, operator.le, operator.gt, operator.ge, operator.eq, operator.ne]


@pytest.mark.parametrize("op", OPS, ids=lambda o: o.__name__)
def test_comparisons_give_boolean_arrays_like_numpy(op):
    a = np.array([[1.0, 2.0, 3.0], [3.0, 2.0, 1.0]])
    b = np.array([2.0, 2.0, 2.0])
    x, y = Variable(a), Variable(b)
    for left, right, expected in [
        (x, y, op(a, b)),        # Variable, Variable (broadcasting)
        (x, b, op(a, b)),        # Variable, array
        (a, y, op(a, b)),        # array, Variable (NumPy defers to Variable)
        (x, 2.0, op(a, 2.0)),    # Variable, scalar
        (2, x, op(2, a)),        # scalar, Variable (reflected)
        (x, np.float32(2), op(a, np.float32(2))),
    ]:
        result = op(left, right)
        assert type(result) is np.ndarray and result.dtype == np.bool_
        np.testing.assert_array_equal(result, expected)


def test_comparison_of_a_0d_variable_is_a_0d_array():
    x = Variable(np.array(1.5))
    result = x > 1
    assert type(result) is np.ndarray and result.shape == () and bool(result)
    assert bool(x == 1.5)


def test_comparisons_do_not_touch_the_graph():
    x = Variable(np.array([1.0, -1.0]))
    y = x * 2
    mask = y > 0
    assert not isinstance(mask, Variable)
    F.where(mask, y, 0.0).sum().backward()  # a mask from a comparison drives where
    np.testing.assert_array_equal(x.grad.data, [2, 0])


def test_variable_stays_hashable_and_usable_as_dict_key():
    x = Variable(np.array([1.0, 2.0]))
    y = Variable(np.array([1.0, 2.0]))  # equal data, different Variables
    table = {x: "x", y: "y"}
    assert table[x] == "x" and table[y] == "y"
    assert hash(x) == object.__hash__(x)
    assert len({x, y, x}) == 2
    assert x in {x} and y not in {x}
    assert x in [x]  # identity is checked first


def test_equality_with_unrelated_objects_is_identity():
    x = Variable(np.array([1.0, 2.0]))
    assert (x == None) is False  # noqa: E711 - the operator itself is under test
    assert (x != None) is True  # noqa: E711
    assert (x == "x") is False
    with pytest.raises(TypeError):
        x < "x"  # noqa: B015


def test_abs_is_differentiable():
    x = Variable(np.array([-2.0, 3.0], dtype=np.float32))
    y = abs(x)
    assert isinstance(y, Variable) and y.dtype == np.float32
    np.testing.assert_array_equal(y.data, [2, 3])
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.data, [-1, 1])


def test_power_operators_with_variable_exponent_and_scalar_base():
    x = Variable(np.array([1.0, 2.0]))
    y = Variable(np.array([3.0, 0.5]))
    z = x ** y + 2 ** y
    np.testing.assert_allclose(z.data, [1 + 8, 2 ** 0.5 + 2 ** 0.5])
    z.sum().backward()
    np.testing.assert_allclose(x.grad.data, [3.0, 0.5 * 2 ** -0.5])
    np.testing.assert_allclose(y.grad.data, [0 + 8 * np.log(2), 2 ** 0.5 * np.log(2) * 2])
    f = Variable(np.array([1.0], np.float32))
    assert (2 ** f).dtype == np.float32 and (f ** f).dtype == np.float32
