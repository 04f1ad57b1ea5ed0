"""check_function: each mistake a learner makes, made on purpose in a broken Function, is
reported in plain words (and only that mistake); right Functions pass; strict raises."""

from __future__ import annotations

import numpy as np
import pytest

import zerograd.functions as F
from zerograd import Function
from zerograd.utils import FunctionCheckError, FunctionReport, check_function

X = np.array([0.3, -1.2, 2.0])


# -- right ---------------------------------------------------------------------------------
class Sin(Function):
    def forward(self, x):
        return np.sin(x)

    def backward(self, gy):
        x, = self.inputs
        return gy * F.cos(x)


class Mul(Function):
    def forward(self, x0, x1):
        return x0 * x1

    def backward(self, gy):
        x0, x1 = self.inputs
        return gy * x1, gy * x0


class Pow(Function):
    def __init__(self, c):
        self.c = c

    def forward(self, x):
        return x ** self.c

    def backward(self, gy):
        x, = self.inputs
        return self.c * x ** (self.c - 1) * gy


class AddBias(Function):  # broadcasting: the engine sums b's gradient back
    def forward(self, x, b):
        return x + b

    def backward(self, gy):
        return gy, gy


@pytest.mark.parametrize("fn, inputs", [
    (Sin, (X,)), (Mul, (X, X + 1.0)), (Pow(3), (X,)),
    (AddBias, (np.ones((2, 3)), np.array([1.0, 2.0, 3.0]))),
    (lambda x: F.tanh(x) * x + F.sum(x), (X,)),
    (Sin, (X.astype(np.float32),)),
], ids=["Sin", "Mul", "Pow(3)", "AddBias", "plain function", "float32"])
def test_right_functions_pass(fn, inputs):
    report = check_function(fn, *inputs, order=3)
    assert report.ok, str(report)
    assert report.problems == [] and bool(report)
    assert "third derivative matches central differences" in report.passed
    assert str(report).startswith("check_function(")
    assert "no problem found" in str(report)


def test_integer_inputs_are_constants():
    class Take(Function):
        def forward(self, x, index):
            return x[index]

        def backward(self, gy):
            x, index = self.inputs
            gx = np.zeros_like(x.data)
            np.add.at(gx, index.data, gy.data)
            return gx, None

    report = check_function(Take, X, np.array([0, 2, 2]), order=1)
    assert report.ok, str(report)


# -- broken, one mistake each -------------------------------------------------------------
class TooManyGradients(Function):
    def forward(self, x0, x1):
        return x0 * x1

    def backward(self, gy):
        x0, x1 = self.inputs
        return gy * x1, gy * x0, gy


class ListOfGradients(Function):
    def forward(self, x0, x1):
        return x0 * x1

    def backward(self, gy):
        x0, x1 = self.inputs
        return [gy * x1, gy * x0]


class WrongShape(Function):
    def forward(self, x):
        return x.sum(axis=0)

    def backward(self, gy):
        return gy[:1]


class Float64Constant(Function):
    def forward(self, x):
        return x * 2

    def backward(self, gy):
        return gy * np.array(2.0)  # float64: promotes a float32 gradient


class WrongDerivative(Function):
    def forward(self, x):
        return np.sin(x)

    def backward(self, gy):
        x, = self.inputs
        return gy * F.sin(x)  # should be cos


class OnRawArrays(Function):
    def forward(self, x):
        return np.sin(x)

    def backward(self, gy):
        x = self.inputs[0].data
        return gy * np.cos(x)


class ReturnsNdarray(Function):
    def forward(self, x):
        return x ** 2

    def backward(self, gy):
        x, = self.inputs
        return 2 * x.data * gy.data


class PythonScalarForward(Function):
    def forward(self, x):
        return float(x.sum())

    def backward(self, gy):
        x, = self.inputs
        return F.broadcast_to(gy, x.shape)


class ListForward(Function):
    def forward(self, x):
        return [np.exp(x)]

    def backward(self, gy):
        return gy


class ChangesInputInForward(Function):
    def forward(self, x):
        x *= 2
        return x

    def backward(self, gy):
        return gy * 2


class ChangesInputInBackward(Function):
    def forward(self, x):
        return x * 3

    def backward(self, gy):
        self.inputs[0].data[...] = 0  # "free memory": destroys the caller's array
        return gy * 3


class MissingGradient(Function):
    def forward(self, x0, x1):
        return x0 * x1

    def backward(self, gy):
        x0, x1 = self.inputs
        return gy * x1, None


def _only(report: FunctionReport, kind: str) -> str:
    assert report.kinds() == [kind], str(report)
    assert not report.ok and not report
    return report.problems[0].message


def test_wrong_number_of_gradients():
    message = _only(check_function(TooManyGradients, X, X), "gradient count")
    assert message == ("TooManyGradients.backward returned 3 gradient(s) for 2 input(s); "
                       "return one per input of forward, in order (None for an input "
                       "without a gradient)")


def test_a_list_instead_of_a_tuple():
    message = _only(check_function(ListOfGradients, X, X), "gradient count")
    assert message.startswith("ListOfGradients.backward returned a list of 2; return a tuple")


def test_gradient_of_the_wrong_shape():
    message = _only(check_function(WrongShape, np.ones((3, 2))), "gradient shape")
    assert message.startswith("WrongShape.backward returned a gradient of shape (1,) for "
                              "input 0 (float64 (3, 2)); a gradient has its input's shape "
                              "(3, 2)")


def test_gradient_of_the_wrong_dtype():
    message = _only(check_function(Float64Constant, X.astype(np.float32)), "gradient dtype")
    assert message.startswith("Float64Constant.backward returned a float64 gradient for "
                              "input 0 (float32 (3,)): the engine casts it back to float32")


def test_gradient_that_disagrees_with_central_differences_names_elements_and_amounts():
    message = _only(check_function(WrongDerivative, X, order=1), "first derivative")
    assert message.startswith("the gradient of input 0 (float64 (3,)) disagrees with central "
                              "differences: 3 of 3 element(s) differ: [0]: backprop ")
    # The gradient of <u, sin(x)> is u * cos(x); backprop gave u * sin(x). The amounts
    # printed are those, for the checker's fixed random u.
    rng = np.random.default_rng(0)
    u = rng.uniform(0.5, 1.5, size=3) * rng.choice([-1.0, 1.0], size=3)
    for i in range(3):
        assert f"[{i}]: backprop {u[i] * np.sin(X[i]):.6g}, numerical " \
               f"{u[i] * np.cos(X[i]):.6g}" in message


def test_backward_on_raw_arrays_breaks_the_second_derivative():
    first = check_function(OnRawArrays, X, order=1)
    assert first.ok, "the first derivative is right"
    message = _only(check_function(OnRawArrays, X), "second derivative")
    assert "backprop 0, numerical" in message
    assert ("OnRawArrays.backward returned a gradient with no creator under "
            "create_graph=True: it was computed from raw arrays") in message
    assert "x = self.inputs[0].data" in message  # the line to change


def test_backward_returning_ndarrays_is_named_as_such():
    message = _only(check_function(ReturnsNdarray, X), "second derivative")
    assert "ReturnsNdarray.backward returned NumPy arrays (ndarray)" in message


def test_forward_returning_a_python_scalar():
    message = _only(check_function(PythonScalarForward, X), "forward output")
    assert message.startswith("PythonScalarForward.forward returned a Python float (1.1) as "
                              "its output, not an array")


def test_forward_returning_a_list():
    message = _only(check_function(ListForward, X), "forward output")
    assert message.startswith("ListForward.forward returned a list as its output")


def test_input_modified_in_place_in_forward_and_in_backward():
    message = _only(check_function(ChangesInputInForward, X), "input modified")
    assert message.startswith("ChangesInputInForward.forward changed input 0 (float64 (3,)) "
                              "in place")
    message = _only(check_function(ChangesInputInBackward, X), "input modified")
    assert message.startswith("ChangesInputInBackward.backward changed input 0")


def test_a_missing_gradient_is_a_wrong_one():
    message = _only(check_function(MissingGradient, X, X + 1, order=1), "first derivative")
    assert message.startswith("backward gives no gradient (None) for input 1 (float64 (3,)), "
                              "but its numerical gradient is not zero")


def test_caller_values_are_untouched_and_nothing_raises_unless_strict():
    x = X.copy()
    check_function(ChangesInputInForward, x)
    np.testing.assert_array_equal(x, X)
    with pytest.raises(FunctionCheckError, match=r"check_function\(WrongDerivative\): 1 "
                                                  r"problem.\n1. \[first derivative\]"):
        check_function(WrongDerivative, X, strict=True)
    assert check_function(Sin, X, strict=True).ok


def test_report_shows_in_a_notebook():
    html = check_function(WrongShape, np.ones((3, 2)))._repr_html_()
    assert "check_function(WrongShape): 1 problem" in html and "<ol><li><b>gradient shape" \
        in html


def test_bad_arguments():
    with pytest.raises(TypeError, match="check_function: fn is a int; expected a Function"):
        check_function(3, X)
    with pytest.raises(ValueError, match="order must be an int >= 1, got 0"):
        check_function(Sin, X, order=0)
    with pytest.raises(TypeError, match="input 0 is a str; expected an ndarray"):
        check_function(Sin, "x")
