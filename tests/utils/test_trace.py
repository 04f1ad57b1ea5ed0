"""trace_backward: the engine's own order and values, printed and returned; the wrappers
it puts on each Function's backward are gone afterwards, also when backward raises."""

from __future__ import annotations

import io

import numpy as np
import pytest

import zerograd.functions as F
from tests.nn.helpers import import_dezero
from zerograd import Function, Variable
from zerograd.utils import trace_backward
from zerograd.utils.graph import collect


def test_diamond_order_generations_and_values():
    x = Variable(np.array(2.0))
    a = F.square(x)
    b, c = F.exp(a), F.exp(a)
    y = b + c
    out = io.StringIO()
    trace = trace_backward(y, file=out)
    assert trace.order == ["Add", "Exp", "Exp", "Square"]
    assert [s.generation for s in trace] == [2, 1, 1, 0]
    e4 = np.exp(4.0)
    # Square receives both Exp's gradients, summed: a is used twice (step 14 of the book).
    assert trace[3].received[0].variable == "a"
    np.testing.assert_allclose(trace[3].received[0].data, 2 * e4)
    np.testing.assert_allclose(trace[1].sent[0].data, e4)
    np.testing.assert_allclose(trace[2].sent[0].total, 2 * e4)
    np.testing.assert_allclose(trace[3].sent[0].data, 2 * 2.0 * 2 * e4)
    assert trace[3].sent[0].data.shape == ()
    np.testing.assert_allclose(x.grad.data, trace[3].sent[0].total)  # a real backward ran
    text = out.getvalue()
    assert text.splitlines()[0] == "backward from y (() float64), seed y.grad = 1"
    assert "step 3: Exp (generation 1)" in text
    assert "    sends    gx  a: () float64 54.6   -> added to 54.6: a.grad = 109.2" in text
    assert str(trace) == text.rstrip("\n")


def test_x_plus_x_accumulates_on_the_shared_variable():
    x = Variable(np.array([1.0, 2.0]))
    y = x + x
    trace = trace_backward(y, show=False)
    (step,) = trace
    assert [g.variable for g in step.sent] == ["x", "x"]
    np.testing.assert_array_equal(step.sent[0].total, [1.0, 1.0])
    np.testing.assert_array_equal(step.sent[1].total, [2.0, 2.0])
    np.testing.assert_array_equal(x.grad.data, [2.0, 2.0])


def test_broadcast_gradients_are_shown_summed_to_the_input_shape():
    x = Variable(np.ones((2, 3)))
    b = Variable(np.array([1.0, 2.0, 3.0]), name="b")
    y = F.sum(x * b)
    trace = trace_backward(y, show=False)
    mul = trace[1]
    assert mul.op == "Mul" and mul.sent[1].data.shape == (2, 3)
    assert mul.sent[1].total.shape == (3,)
    np.testing.assert_array_equal(mul.sent[1].total, [2.0, 2.0, 2.0])
    assert mul.sent[1].note == "summed to (3,): b.grad = [2, 2, 2]"


def test_generation_order_matches_dezero():
    dezero = import_dezero()
    import dezero.functions as DF

    def build(V, Fn):
        x = V(np.array(0.5))
        a = Fn.sin(x)
        b = Fn.exp(a) * a
        c = Fn.tanh(b) + x
        return c * b + Fn.sin(c)

    y = build(Variable, F)
    ours = [s.generation for s in trace_backward(y, show=False)]
    # DeZero run the same way: record the generation of each Function as its backward runs.
    yd = build(dezero.Variable, DF)
    seen, funcs, order = set(), [yd.creator], []
    while funcs:
        f = funcs.pop()
        if id(f) in seen:
            continue
        seen.add(id(f))
        funcs += [x.creator for x in f.inputs if x.creator is not None]

        def wrap(f=f, original=f.backward):
            def backward(*gys):
                order.append(f.generation)
                return original(*gys)
            return backward
        f.backward = wrap()
    yd.backward()
    assert ours == order


def test_wrappers_are_removed_afterwards_and_when_backward_raises():
    class Broken(Function):
        def forward(self, x):
            return x * 2

        def backward(self, gy):
            raise ArithmeticError("deliberately broken")

    x = Variable(np.array(1.0))
    y = F.exp(Broken()(F.sin(x)))
    functions = collect(y)[1]
    with pytest.raises(ArithmeticError, match="deliberately broken") as info:
        trace_backward(y, show=False)
    assert all("backward" not in f.__dict__ for f in functions)
    assert info.value.zerograd_trace.order == ["Exp", "Broken"]
    y = F.exp(F.sin(x))
    functions = collect(y)[1]
    trace_backward(y, show=False)
    assert all("backward" not in f.__dict__ for f in functions)


def test_an_instance_backward_of_the_users_own_is_put_back():
    x = Variable(np.array(1.0))
    y = F.sin(x)
    custom = y.creator.backward  # e.g. a learner's monkeypatch
    y.creator.backward = custom
    trace_backward(y, show=False)
    assert y.creator.__dict__["backward"] is custom


def test_slices_and_create_graph():
    x = Variable(np.arange(6.0).reshape(2, 3))
    a, b = x[:, :1], x[:, 1:]
    y = F.sum(a * a) + F.sum(b * 3)
    trace = trace_backward(y, show=False, create_graph=True)
    assert x.grad.creator is not None  # create_graph passed through: x.grad has a graph
    np.testing.assert_array_equal(x.grad.data, [[0, 3, 3], [6, 3, 3]])
    assert sorted(trace.order) == ["Add", "GetItem", "GetItem", "Mul", "MulConstant", "Sum",
                                   "Sum"]


def test_refuses_a_non_variable():
    with pytest.raises(TypeError, match="trace_backward: y is a ndarray; expected a Variable"):
        trace_backward(np.ones(2))
