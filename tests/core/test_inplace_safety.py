"""In-place safety: an array that a backward reads, changed in place after the forward pass,
makes backward raise InPlaceError naming the op and the input, instead of returning a
silently wrong gradient. What is and is not detected is listed in docs/engine.md."""

import numpy as np
import pytest

import zerograd.functions as F
from zerograd import Function, Parameter, Variable, detect_anomaly
from zerograd.errors import GraphError, InPlaceError
from zerograd.optimizers import Adam


def test_data_minus_equals_between_forward_and_backward_raises_naming_op_and_input():
    W = Variable(np.array([[1.0, 2.0], [3.0, 4.0]]), name="W")
    x = Variable(np.array([[1.0, 1.0]]))
    y = F.sum(F.matmul(x, W))
    W.data -= 0.5                      # the book's update spelling, too early
    with pytest.raises(InPlaceError, match=r'MatMul\'s backward needs input 1 named "W" '
                                           r"\(float64 \(2, 2\)\), which was changed in place"):
        y.backward()
    assert isinstance(InPlaceError("m"), GraphError)


def test_optimizer_step_before_backward_of_a_kept_graph_is_caught():
    """The classic: backward twice through one graph with an update in between. The second
    gradient would use the updated weight for x's gradient."""
    W = Parameter(np.array([[2.0]]), name="W")
    x = Variable(np.array([[3.0]]))
    loss = F.sum(F.matmul(x, W) ** 2)
    loss.backward()
    assert W.grad.data.item() == pytest.approx(2 * 6.0 * 3.0)
    W.data -= 0.1 * W.grad.data        # the book's SGD step
    with pytest.raises(InPlaceError, match='input 1 named "W"'):
        loss.backward()


def test_optimizer_updates_through_data_are_seen():
    import zerograd.layers as L
    from zerograd.models import Sequential

    model = Sequential(L.Linear(2, in_size=3))
    optimizer = Adam().setup(model)  # writes param.data -= ...
    x = Variable(np.ones((1, 3)))
    loss = F.sum(model(x) ** 2)
    loss.backward()
    optimizer.update()
    model.cleargrads()
    with pytest.raises(InPlaceError, match=r"Linear's backward needs input 1 named \"W\""):
        loss.backward()


def test_the_usual_loop_is_untouched():
    """Forward, backward, update, again: every graph is new, nothing raises, values right."""
    x = Variable(np.array(2.0))
    for _ in range(3):
        y = x ** 2
        x.cleargrad()
        y.backward()
        expected = 2 * float(x.data)
        assert float(x.grad.data) == pytest.approx(expected)
        x.data -= 0.1 * x.grad.data


def test_ops_whose_backward_reads_no_value_allow_changes():
    """Add reads neither input: changing one after the forward pass cannot spoil its
    gradient, so it is allowed (as PyTorch allows it for ops that save nothing)."""
    x = Variable(np.array([1.0, 2.0]))
    b = Variable(np.array([5.0, 5.0]))
    y = F.sum(x + b)
    b.data += 1.0
    y.backward()
    np.testing.assert_array_equal(x.grad.data, [1.0, 1.0])
    np.testing.assert_array_equal(b.grad.data, [1.0, 1.0])


def test_declared_retain_inputs_narrow_the_check():
    class Scale(Function):
        retain_inputs = (1,)  # backward reads only the factor

        def forward(self, x, k):
            return x * k

        def backward(self, gy):
            x, k = self.inputs
            return gy * k, None

    x, k = Variable(np.array(1.0)), Variable(np.array(3.0), name="k")
    y = Scale()(x, k)
    x.data += 1.0                       # not read by backward: allowed
    y.backward()
    assert x.grad.data.item() == 3.0
    y = Scale()(x, k)
    k.data *= 2.0
    with pytest.raises(InPlaceError, match='Scale\'s backward needs input 1 named "k"'):
        y.backward()


def test_an_output_that_backward_reads_is_checked_too():
    x = Variable(np.array([0.0, 1.0]))
    y = F.exp(x)                        # Exp's backward reads its output
    y.data *= 2.0
    with pytest.raises(InPlaceError, match=r"Exp's backward needs its output 0"):
        F.sum(y).backward()


def test_rebinding_data_and_freeing_are_not_in_place_changes():
    """x.data = new (a new array) and DeZero's freed intermediates do not raise: library
    code rebinds to equal values (fused weights, linear_simple), docs/engine.md."""
    x = Variable(np.array([1.0, 2.0]))
    W = Variable(np.array([[1.0], [1.0]]))
    y = F.linear_simple(x.reshape(1, 2), W, Variable(np.array([0.5])))
    F.sum(y).backward()
    np.testing.assert_array_equal(x.grad.data, [1.0, 1.0])
    x2 = Variable(np.array([3.0]))
    y2 = x2 * x2
    x2.data = np.array([3.0])           # the same numbers in a new array
    y2.backward()
    assert x2.grad.data.tolist() == [6.0]


def test_writes_through_the_array_are_not_seen_except_in_anomaly_mode():
    """x.data[0] = 5 never reaches a Variable method: normal mode cannot see it (the
    documented limit); anomaly mode's checksums do, naming the op and the input."""
    x = Variable(np.array([1.0, 2.0]), name="x")
    y = F.sum(x * x)
    x.data[0] = 5.0
    y.backward()                        # silently uses the new value (documented)
    np.testing.assert_array_equal(x.grad.data, [10.0, 4.0])
    with detect_anomaly():
        x = Variable(np.array([1.0, 2.0]), name="x")
        y = F.sum(x * x)
        x.data[0] = 5.0
        with pytest.raises(InPlaceError, match=r"Mul's backward reads input 0 named \"x\" "
                                               r"\(float64 \(2,\)\), whose array was changed"):
            y.backward()


def test_the_check_costs_one_comparison_when_nothing_was_written():
    """No write since forward: each function's stamp equals the clock (the fast path)."""
    from zerograd.core.variable import _write_clock

    x = Variable(np.array(1.0))
    y = F.sin(F.cos(x))
    assert y.creator._stamp == _write_clock[0] == y.creator.inputs[0].creator._stamp
