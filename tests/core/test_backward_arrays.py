"""The first-order backward on raw arrays (``Function.backward_arrays``) and the engine's use
of it: which passes take it, what a user-defined op gets, and that hooks, retain_grad,
anomaly mode and the in-place check work on it as on ``backward``.

That each op's ``backward_arrays`` equals its ``backward`` bit for bit is the op harness's
check (tests/ops/test_op_specs.py::test_backward_arrays_matches_backward).
"""

from __future__ import annotations

import numpy as np
import pytest

import zerograd
import zerograd.functions as F
from zerograd import Function, Variable
from zerograd.errors import AnomalyError, InPlaceError
from zerograd.ops.elementwise import Sin


class Scale(Function):
    """y = 3x with both backwards, counting which one ran."""

    retain_inputs = ()
    retain_outputs = ()
    calls: list = []

    def forward(self, x):
        return x * 3.0

    def backward(self, gy):
        Scale.calls.append("backward")
        return gy * 3.0

    def backward_arrays(self, gy):
        Scale.calls.append("arrays")
        return gy * 3.0


@pytest.fixture(autouse=True)
def _reset_calls():
    Scale.calls = []


def test_a_first_order_pass_runs_backward_arrays_and_create_graph_runs_backward():
    x = Variable(np.array([1.0, 2.0]))
    F.sin(Scale()(x)).backward()
    assert Scale.calls == ["arrays"]
    first = x.grad.data.copy()
    np.testing.assert_allclose(first, 3 * np.cos(3 * x.data), rtol=1e-15)
    assert x.grad.creator is None and type(x.grad) is Variable

    x.cleargrad()
    F.sin(Scale()(x)).backward(create_graph=True)
    assert Scale.calls == ["arrays", "backward"]
    np.testing.assert_array_equal(x.grad.data, first)
    assert x.grad.creator is not None  # recorded: differentiable again


def test_autograd_grad_takes_the_same_path():
    x = Variable(np.array([0.5, -1.0]))
    (g,) = zerograd.autograd.grad(F.sum(Scale()(x) * x), [x])
    assert Scale.calls == ["arrays"]
    np.testing.assert_allclose(g.data, 6 * x.data, rtol=1e-15)


def test_a_subclass_that_overrides_backward_does_not_inherit_backward_arrays():
    class DoubledSin(Sin):
        def backward(self, gy):
            return super().backward(gy) * 2

    assert Sin.backward_arrays is not None and DoubledSin.backward_arrays is None
    x = Variable(np.array([0.3, 1.1]))
    DoubledSin()(x).backward()
    np.testing.assert_allclose(x.grad.data, 2 * np.cos(x.data), rtol=1e-15)


def test_a_user_op_without_backward_arrays_runs_its_backward():
    class Cube(Function):
        def forward(self, x):
            return x ** 3

        def backward(self, gy):
            (x,) = self.inputs
            return gy * 3 * x ** 2

    x = Variable(np.array([1.0, 2.0]))
    Cube()(x).backward()
    np.testing.assert_allclose(x.grad.data, 3 * x.data ** 2)


def test_hooks_and_retain_grad_see_variables_from_backward_arrays():
    x = Variable(np.array([1.0, -2.0], dtype=np.float32))
    h = Scale()(x)
    seen = []
    x.register_hook(lambda g: seen.append((type(g), g.dtype, g.data.copy())))
    y = F.sin(h)
    y.backward(retain_grad=True)
    assert type(h.grad) is Variable and h.grad.dtype == np.float32
    np.testing.assert_allclose(h.grad.data, np.cos(h.data), rtol=1e-6)
    ((kind, dtype, value),) = seen
    assert kind is Variable and dtype == np.float32
    np.testing.assert_allclose(value, 3 * np.cos(h.data), rtol=1e-6)


def test_a_broadcast_gradient_from_backward_arrays_is_summed_back():
    x = Variable(np.array([1.0, 2.0, 3.0]))
    b = Variable(np.array(0.5))
    (x * b).backward()  # Mul.backward_arrays returns gy * x for b: summed to b's shape ()
    assert b.grad.shape == () and float(b.grad.data) == 6.0
    np.testing.assert_array_equal(x.grad.data, [0.5, 0.5, 0.5])


def test_anomaly_mode_catches_a_nan_from_backward_arrays():
    x = Variable(np.array([0.0, 1.0]))
    with zerograd.detect_anomaly():
        y = F.sqrt(x) * 0.0  # the gradient 1 / (2 sqrt(0)) * 0 is nan
        with pytest.raises(AnomalyError, match="Sqrt"):
            y.backward()


def test_the_in_place_check_runs_before_backward_arrays():
    x = Variable(np.array([0.3, 1.2]))
    y = F.sin(x)
    x.data *= 2.0
    with pytest.raises(InPlaceError, match="Sin's backward needs input 0"):
        y.backward()


def test_a_zero_d_gradient_from_backward_arrays_is_a_0d_array():
    # NumPy returns scalars for 0-d arithmetic: the engine makes them 0-d arrays again.
    x = Variable(np.array(0.5, dtype=np.float32))
    (F.sin(x) * 2.0).backward()
    assert type(x.grad.data) is np.ndarray and x.grad.shape == ()
    assert x.grad.dtype == np.float32
    np.testing.assert_allclose(float(x.grad.data), 2 * np.cos(np.float32(0.5)), rtol=1e-6)
