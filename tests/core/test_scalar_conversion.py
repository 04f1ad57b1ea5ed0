"""A one-element Variable as a Python number: float(), int(), complex(), operator.index(),
round() and format specs, as on a 0-d ndarray and a one-element PyTorch tensor.
"""

import operator

import numpy as np
import pytest

from zerograd import Variable

ONE_ELEMENT_SHAPES = [(), (1,), (1, 1)]


@pytest.mark.parametrize("shape", ONE_ELEMENT_SHAPES, ids=str)
def test_float_int_complex_of_a_one_element_variable(shape):
    v = Variable(np.full(shape, 2.75, dtype=np.float32))
    assert float(v) == 2.75 and type(float(v)) is float
    assert int(v) == 2 and type(int(v)) is int
    assert int(Variable(np.full(shape, -2.75))) == -2  # truncation, like int(-2.75)
    assert complex(v) == 2.75 + 0j
    assert complex(Variable(np.full(shape, 1 + 2j))) == 1 + 2j


def test_values_match_numpy_0d_and_torch():
    torch = pytest.importorskip("torch")
    a = np.array(-3.640625)
    v = Variable(a)
    t = torch.tensor(-3.640625, dtype=torch.float64)
    assert float(v) == float(a) == float(t)
    assert int(v) == int(a) == int(t)
    assert f"{v:.3f}" == f"{a:.3f}" == f"{t:.3f}" == "-3.641"
    assert f"{v:10.2e}" == f"{a:10.2e}" == f"{t:10.2e}"
    i = Variable(np.array(7))
    assert operator.index(i) == operator.index(np.array(7)) == operator.index(torch.tensor(7))


def test_index_where_integral_and_0d_as_numpy():
    i = Variable(np.array(3, dtype=np.int32))
    assert operator.index(i) == 3 and type(operator.index(i)) is int
    assert [10, 20, 30, 40][i] == 40
    assert list(range(10))[Variable(np.array(1)):Variable(np.array(4))] == [1, 2, 3]
    with pytest.raises(TypeError, match=r"only integer 0-d Variables.*float64 \(\)"):
        operator.index(Variable(np.array(3.0)))
    with pytest.raises(TypeError, match=r"only integer 0-d Variables.*int64 \(1,\)"):
        operator.index(Variable(np.array([3])))


def test_one_element_label_variable_still_indexes_an_array_as_an_array():
    # NumPy tries __index__ first; a batch of one label must keep its axis.
    table = np.arange(12.0).reshape(4, 3)
    picked = table[Variable(np.array([2]))]
    assert picked.shape == (1, 3)
    np.testing.assert_array_equal(picked, [[6.0, 7.0, 8.0]])
    assert table[Variable(np.array(2))].shape == (3,)


def test_round_follows_python_numbers():
    v = Variable(np.array(2.567))
    assert round(v) == 3 and type(round(v)) is int
    assert round(v, 1) == 2.6 and type(round(v, 1)) is float
    assert round(Variable(np.array([2.5]))) == 2  # round half to even, as round(2.5)


def test_format_specs_and_f_strings():
    loss = Variable(np.array(0.123456, dtype=np.float32))
    assert f"loss {loss:.4f}" == "loss 0.1235"
    assert format(Variable(np.array([[12]])), "05d") == "00012"
    assert format(loss, "") == str(loss) == "variable(0.123456)"  # no spec: print's text
    assert f"{Variable(np.array([1.0, 2.0]))}" == "variable([1. 2.])"


@pytest.mark.parametrize("convert, caller", [
    (float, "float()"), (int, "int()"), (complex, "complex()"), (round, "round()"),
    (lambda v: format(v, ".2f"), "format(Variable, '.2f')"),
])
def test_larger_variables_refuse_with_numpy_wording_and_the_shape(convert, caller):
    v = Variable(np.ones((2, 3)))
    with pytest.raises(TypeError) as info:
        convert(v)
    message = str(info.value)
    assert message.startswith(caller)
    assert "can be converted to Python scalars" in message and "(2, 3)" in message


def test_complex_to_float_fails_as_in_python():
    with pytest.raises(TypeError, match="complex"):
        float(Variable(np.array(1 + 2j)))
