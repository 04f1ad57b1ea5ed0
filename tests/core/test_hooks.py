"""Variable.register_hook: gradient hooks, as PyTorch's Tensor.register_hook."""

import numpy as np
import pytest

import zerograd.functions as F
from zerograd import Variable, autograd
from zerograd.errors import ShapeError


def test_hook_on_an_intermediate_sees_its_total_gradient_and_can_replace_it():
    x = Variable(np.array([1.0, 2.0]))
    h = x * 3.0
    seen = []
    h.register_hook(lambda g: seen.append(g.data.copy()))
    y = F.sum(h * h) + F.sum(h)          # h is used twice: the hook sees the sum
    y.backward()
    np.testing.assert_allclose(seen[0], 2 * np.array([3.0, 6.0]) + 1)
    np.testing.assert_allclose(x.grad.data, 3 * seen[0])

    x.cleargrad()
    h = x * 3.0
    h.register_hook(lambda g: g * 0.0)   # replaces what flows on to x
    F.sum(h * h).backward()
    np.testing.assert_array_equal(x.grad.data, [0.0, 0.0])


def test_hook_on_a_leaf_runs_before_accumulation_once_per_pass():
    x = Variable(np.array([1.0, 2.0]))
    x.grad = Variable(np.array([10.0, 10.0]))
    calls = []

    def double(g):
        calls.append(g.data.copy())
        return g * 2.0

    handle = x.register_hook(double)
    F.sum(x * x + x).backward()
    assert len(calls) == 1
    np.testing.assert_allclose(calls[0], [3.0, 5.0])          # this pass only
    np.testing.assert_allclose(x.grad.data, [16.0, 20.0])     # 10 + 2 * (2x + 1)
    handle.remove()
    handle.remove()                                            # a second remove is a no-op
    x.cleargrad()
    F.sum(x * x).backward()
    np.testing.assert_allclose(x.grad.data, [2.0, 4.0])
    assert len(calls) == 1


def test_hooks_run_in_order_and_under_autograd_grad():
    x = Variable(np.array(2.0))
    order = []
    x.register_hook(lambda g: order.append("a") or g + 1.0)
    x.register_hook(lambda g: order.append("b") or g * 10.0)
    (g,) = autograd.grad(x * x, x)
    assert order == ["a", "b"] and float(g.data) == (4.0 + 1.0) * 10.0
    assert x.grad is None


def test_handle_as_context_manager_and_leaf_backward():
    x = Variable(np.array([1.0]))
    with x.register_hook(lambda g: g * 5.0):
        x.backward()                      # backward on the leaf itself: the seed goes through
    np.testing.assert_array_equal(x.grad.data, [5.0])
    x.cleargrad()
    x.backward()
    np.testing.assert_array_equal(x.grad.data, [1.0])


def test_hook_errors_name_the_hook_and_shapes():
    x = Variable(np.array([1.0, 2.0]))

    def bad_shape(g):
        return Variable(np.ones(3))

    x.register_hook(bad_shape)
    with pytest.raises(ShapeError, match=r"bad_shape returned shape \(3,\) for a gradient of "
                                         r"shape \(2,\)"):
        F.sum(x * 2.0).backward()
    y = Variable(np.array([1.0]))
    y.register_hook(lambda g: "nope")
    with pytest.raises(TypeError, match="returned a str"):
        (y * 2.0).backward()
    with pytest.raises(TypeError, match="hook must be callable"):
        x.register_hook(3)
    with pytest.raises(ValueError, match="does not require a gradient"):
        Variable(np.ones(1), requires_grad=False).register_hook(print)


def test_hooks_go_with_their_variable():
    from zerograd.core.hooks import gradient_hooks

    x = Variable(np.array([1.0]))
    x.register_hook(lambda g: None)
    key = id(x)
    assert key in gradient_hooks
    del x
    assert key not in gradient_hooks
