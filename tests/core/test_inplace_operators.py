"""NumPy ufuncs and operators that meet a Variable (Variable.__array_ufunc__).

- ``ndarray -= Variable`` (book steps 28-29: ``x.data -= lr * x.grad``) updates the ndarray
  in place with the numbers; it stays the same ndarray object.
- ``ndarray + Variable`` (and -, *, /, **, @) is a Variable recorded in the graph; comparisons
  are boolean ndarrays, as with the Variable on the left.
- ``np.add(ndarray, Variable)`` is the same as the operator; a ufunc without a Variable
  operator (np.exp) raises TypeError naming it.
"""

import operator

import numpy as np
import pytest

from zerograd import Variable

INPLACE = [
    (operator.isub, operator.sub),
    (operator.iadd, operator.add),
    (operator.imul, operator.mul),
    (operator.itruediv, operator.truediv),
    (operator.ipow, operator.pow),
    (operator.ifloordiv, operator.floordiv),
    (operator.imod, operator.mod),
]


@pytest.mark.parametrize("inplace, plain", INPLACE, ids=lambda o: o.__name__)
@pytest.mark.parametrize("shapes", [((3,), (3,)), ((), ()), ((2, 3), (3,)), ((2, 3), ())],
                         ids=["same", "0-d", "broadcast", "0-d-on-the-right"])
def test_inplace_operator_updates_the_ndarray_with_the_numbers(inplace, plain, shapes):
    a_shape, v_shape = shapes
    a = np.linspace(1.0, 2.0, int(np.prod(a_shape))).reshape(a_shape)
    b = np.linspace(0.5, 0.75, int(np.prod(v_shape))).reshape(v_shape)
    expected = plain(a, b)
    original = a
    result = inplace(a, Variable(b))
    assert result is original and type(result) is np.ndarray
    assert result.shape == a_shape
    np.testing.assert_array_equal(result, expected)


def test_inplace_matmul_on_a_square_operand():
    a = np.arange(4.0).reshape(2, 2)
    original = a
    a @= Variable(np.array([[2.0, 1.0], [0.0, 1.0]]))
    assert a is original
    np.testing.assert_array_equal(a, [[0.0, 1.0], [4.0, 5.0]])


def test_inplace_keeps_the_ndarray_dtype():
    a = np.ones(3, dtype=np.float32)
    a -= Variable(np.full(3, 0.25))  # float64 numbers, cast into the float32 array as NumPy does
    assert a.dtype == np.float32
    np.testing.assert_array_equal(a, [0.75, 0.75, 0.75])


def test_inplace_follows_numpy_for_what_cannot_be_written():
    a = np.ones(3)
    with pytest.raises(ValueError, match="broadcast"):  # (3,) cannot hold a (2, 3) result
        a -= Variable(np.ones((2, 3)))
    i = np.ones(3, dtype=np.int64)
    with pytest.raises(TypeError, match="Cannot cast"):  # float into int, as a -= 0.5 * ones
        i -= Variable(np.full(3, 0.5))
    np.testing.assert_array_equal(i, [1, 1, 1])


def test_book_step_28_gradient_descent_with_inplace_updates():
    # Step 28 as printed in the book: the gradient is a Variable in zerograd's one core.
    def rosenbrock(x0, x1):
        return 100 * (x1 - x0 ** 2) ** 2 + (1 - x0) ** 2

    x0, x1 = Variable(np.array(0.0)), Variable(np.array(2.0))
    data0 = x0.data
    lr = 0.001
    for _ in range(1000):
        y = rosenbrock(x0, x1)
        x0.cleargrad()
        x1.cleargrad()
        y.backward()
        x0.data -= lr * x0.grad
        x1.data -= lr * x1.grad
    assert x0.data is data0 and type(x1.data) is np.ndarray
    # The book prints variable(0.6837118569138317) variable(0.4659526837427042).
    assert float(x0.data) == pytest.approx(0.6837118569138317, rel=1e-12)
    assert float(x1.data) == pytest.approx(0.4659526837427042, rel=1e-12)


def test_step_28_first_update_matches_dezero_numbers():
    # Genuine DeZero rebinds x0.data to a Variable on `x0.data -= lr * x0.grad` (its ndarray
    # defers the in-place operator to Variable.__rsub__); the numbers are the same, and
    # zerograd keeps x0.data an ndarray, so the loop can go on.
    numpy = pytest.importorskip("numpy")
    if not hasattr(numpy, "int"):
        numpy.int = int  # dezero 0.0.13's transforms module still uses the removed alias
    dezero = pytest.importorskip("dezero")

    def first_update(V):
        x0, x1 = V(np.array(0.0)), V(np.array(2.0))
        y = 100 * (x1 - x0 ** 2) ** 2 + (1 - x0) ** 2
        y.backward()
        x0.data -= 0.001 * x0.grad
        x1.data -= 0.001 * x1.grad
        return x0.data, x1.data

    theirs = [np.asarray(getattr(d, "data", d)) for d in first_update(dezero.Variable)]
    ours = first_update(Variable)
    assert all(type(d) is np.ndarray for d in ours)
    np.testing.assert_array_equal(ours, theirs)
    assert float(ours[0]) == pytest.approx(0.002) and float(ours[1]) == pytest.approx(1.6)


BINARY = [operator.add, operator.sub, operator.mul, operator.truediv, operator.pow]


@pytest.mark.parametrize("op", BINARY, ids=lambda o: o.__name__)
def test_ndarray_on_the_left_is_a_recorded_variable(op):
    a = np.array([1.0, 2.0, 3.0])
    x = Variable(np.array([0.5, 1.5, 2.5]))
    y = op(a, x)
    assert type(y) is Variable and y.creator is not None
    np.testing.assert_allclose(y.data, op(a, x.data), rtol=1e-15)
    y.backward()
    h = 1e-6  # the gradient flows to x, as with the Variable on the left
    numeric = (op(a, x.data + h) - op(a, x.data - h)) / (2 * h)
    np.testing.assert_allclose(x.grad.data, numeric, rtol=1e-6)


def test_ndarray_matmul_variable_is_recorded():
    a = np.arange(6.0).reshape(2, 3)
    w = Variable(np.ones((3, 4)))
    y = a @ w
    assert type(y) is Variable and y.creator is not None and y.shape == (2, 4)
    y.backward()
    np.testing.assert_array_equal(w.grad.data, np.repeat(a.sum(axis=0)[:, None], 4, axis=1))


def test_numpy_scalar_on_the_left_stays_weak():
    x = Variable(np.ones(2, dtype=np.float32))
    for y in (np.float64(2.0) * x, np.float64(1.0) - x, np.float64(3.0) + x):
        assert type(y) is Variable and y.dtype == np.float32


@pytest.mark.parametrize("compare", [operator.lt, operator.le, operator.gt, operator.ge,
                                     operator.eq, operator.ne], ids=lambda o: o.__name__)
def test_ndarray_compared_with_variable_is_a_boolean_ndarray(compare):
    a = np.array([1.0, 2.0, 3.0])
    b = np.array([2.0, 2.0, 2.0])
    for result in (compare(a, Variable(b)), compare(np.float64(2.0), Variable(a))):
        assert type(result) is np.ndarray and result.dtype == np.bool_
    np.testing.assert_array_equal(compare(a, Variable(b)), compare(a, b))
    np.testing.assert_array_equal(compare(np.float64(2.0), Variable(a)), compare(2.0, a))


def test_direct_ufunc_calls_go_through_the_matching_operator():
    a = np.array([1.0, 2.0])
    x = Variable(np.array([3.0, -4.0]))
    cases = [
        (np.add(a, x), [4.0, -2.0]),
        (np.add(x, a), [4.0, -2.0]),
        (np.subtract(a, x), [-2.0, 6.0]),
        (np.subtract(x, a), [2.0, -6.0]),
        (np.multiply(x, x), [9.0, 16.0]),
        (np.divide(a, x), [1.0 / 3.0, -0.5]),
        (np.power(x, 2), [9.0, 16.0]),
        (np.negative(x), [-3.0, 4.0]),
        (np.abs(x), [3.0, 4.0]),
    ]
    for y, expected in cases:
        assert type(y) is Variable and y.creator is not None
        np.testing.assert_allclose(y.data, expected, rtol=1e-15)
    np.testing.assert_array_equal(np.less(a, x), [True, False])


def test_ufunc_with_out_writes_numbers():
    out = np.zeros(2)
    result = np.multiply(Variable(np.array([2.0, 3.0])), 2.0, out=out)
    assert result is out
    np.testing.assert_array_equal(out, [4.0, 6.0])
    b = np.zeros(3)
    np.add.at(b, [0, 0, 2], Variable(np.array([1.0, 2.0, 5.0])))
    np.testing.assert_array_equal(b, [3.0, 0.0, 5.0])


def test_ufuncs_that_would_drop_the_graph_raise_naming_the_ufunc():
    x = Variable(np.array([1.0, 2.0]))
    with pytest.raises(TypeError, match=r"np\.exp was given a Variable.*zerograd\.functions"):
        np.exp(x)
    with pytest.raises(TypeError, match=r"np\.add\.reduce was given a Variable"):
        np.add.reduce(x)
    with pytest.raises(TypeError, match=r"np\.floor_divide.*ndarray, Variable"):
        np.array([1.0, 2.0]) // x
    with pytest.raises(TypeError, match=r"np\.add: out= cannot be a Variable.*out=v\.data"):
        np.add(np.ones(2), np.ones(2), out=x)
