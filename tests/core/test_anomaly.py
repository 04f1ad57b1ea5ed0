"""Anomaly mode: the first op whose forward output or backward gradient holds NaN/inf
raises, naming the op, its inputs' shapes and dtypes, and the line of user code."""

import threading

import numpy as np
import pytest

import zerograd.functions as F
from zerograd import Config, Function, Variable, detect_anomaly
from zerograd._config import _anomaly_threads
from zerograd.errors import AnomalyError


def test_forward_nan_names_the_op_shapes_and_this_line():
    x = Variable(np.array([-1.0, 4.0], dtype=np.float32))
    with detect_anomaly(), np.errstate(invalid="ignore"):
        with pytest.raises(AnomalyError) as info:
            F.sqrt(x)  # the line the message must name
    message = str(info.value)
    assert "Sqrt produced nan in output 0 (float32 (2,)) from inputs float32 (2,)" in message
    assert "its inputs are finite" in message
    assert "test_anomaly.py:" in message and "F.sqrt(x)  # the line the message" in message
    assert "test_forward_nan_names_the_op_shapes_and_this_line" in "".join(info.value.__notes__)
    assert isinstance(info.value, FloatingPointError)


class BadBackward(Function):
    def forward(self, x):
        return x * 2

    def backward(self, gy):
        return np.full(gy.shape, np.inf)  # a raw array: no op runs inside


class BadBackwardWithOps(BadBackward):
    def backward(self, gy):
        return gy * np.inf


def test_backward_inf_names_the_op_and_where_it_was_called():
    x = Variable(np.array([1.0, 2.0]), name="x")
    with detect_anomaly():
        y = BadBackward()(x)  # created here
        with pytest.raises(AnomalyError) as info:
            F.sum(y * 3.0).backward()
    message = str(info.value)
    assert ('the backward of BadBackward returned inf in the gradient of input 0 named "x" '
            "(float64 (2,))") in message
    assert "y = BadBackward()(x)  # created here" in message


def test_an_op_inside_a_backward_names_that_backward_too():
    x = Variable(np.array([1.0, 2.0]))
    with detect_anomaly():
        y = BadBackwardWithOps()(x)  # made here
        with pytest.raises(AnomalyError) as info:
            F.sum(y).backward()
    message = str(info.value)
    assert "MulConstant produced inf" in message and "return gy * np.inf" in message
    assert "inside the backward of BadBackwardWithOps" in message
    assert "y = BadBackwardWithOps()(x)  # made here" in message


def test_first_nan_is_reported_not_the_ones_downstream():
    with detect_anomaly(), np.errstate(divide="ignore", invalid="ignore"):
        x = Variable(np.array([0.0, 1.0]))
        with pytest.raises(AnomalyError, match="Log produced inf"):
            F.exp(F.log(x) * 0.0)  # log(0) = -inf is the first; 0 * -inf would be the next


def test_off_by_default_and_restored_and_as_a_flag():
    with np.errstate(divide="ignore"):
        F.log(Variable(np.array([0.0])))   # no error while off
        with detect_anomaly():
            assert Config.detect_anomaly
            with detect_anomaly(False):
                F.log(Variable(np.array([0.0])))
        assert not Config.detect_anomaly and _anomaly_threads[0] == 0
        Config.detect_anomaly = True
        try:
            with pytest.raises(AnomalyError):
                F.log(Variable(np.array([0.0])))
        finally:
            Config.detect_anomaly = False
    assert _anomaly_threads[0] == 0


def test_the_mode_is_per_thread():
    errors = []

    def other():
        with np.errstate(divide="ignore"):
            try:
                F.log(Variable(np.array([0.0])))
            except AnomalyError as e:  # pragma: no cover - the failure reported below
                errors.append(e)

    with detect_anomaly():
        t = threading.Thread(target=other)
        t.start()
        t.join()
    assert errors == []


def test_creation_stack_only_recorded_while_on():
    x = Variable(np.array(1.0))
    y = F.sin(x)
    assert not hasattr(y.creator, "_anomaly")
    with detect_anomaly():
        z = F.sin(x)
    assert z.creator._anomaly.stack


def test_values_are_unchanged_in_anomaly_mode():
    x = Variable(np.array([0.3, 0.7]))
    with detect_anomaly():
        F.sum(F.tanh(x) * F.exp(x)).backward()
    expected = (1 - np.tanh(x.data) ** 2) * np.exp(x.data) + np.tanh(x.data) * np.exp(x.data)
    np.testing.assert_allclose(x.grad.data, expected)
