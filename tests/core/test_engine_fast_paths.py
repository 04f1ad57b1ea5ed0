"""The written-out fast paths of Function.__call__ and the backward loop keep the rules.

``Function.__call__`` has separate code for one and two inputs and for a single output, and
the backward loop keys its heap by one int per function and lets a newly found creator skip
the heap when it is deeper than everything in it (benchmarks/instr_engine.py measures what
each saves). These tests pin what must not change: the order functions run in (against a
plain heap of tuples), the outputs' types and links, and the errors.
"""

from __future__ import annotations

import numpy as np
import pytest

import zerograd
from zerograd import Function, Variable, no_grad
from zerograd.errors import DTypeError, ShapeError


class Traced(Function):
    """y = x0 (+ x1 + ...); backward passes gy to every input and logs this node's label."""

    retain_inputs = ()
    retain_outputs = ()

    def __init__(self, label: str, log: list) -> None:
        self.label, self.log = label, log

    def forward(self, *xs):
        return sum(xs[1:], xs[0].copy())

    def backward(self, gy):
        self.log.append(self.label)
        return tuple(gy for _ in self.inputs)


def _heap_order(seed_fn) -> list:
    """The order a plain heap keyed (-generation, discovery count) visits the graph in."""
    import heapq

    order, seen, heap, count = [], {seed_fn}, [(-seed_fn.generation, 0, seed_fn)], 0
    while heap:
        f = heapq.heappop(heap)[2]
        order.append(f.label)
        for x in f.inputs:
            creator = x.creator
            if creator is not None and creator not in seen:
                seen.add(creator)
                count += 1
                heapq.heappush(heap, (-creator.generation, count, creator))
    return order


@pytest.mark.parametrize("deep_first", [True, False])
def test_backward_runs_functions_in_the_heap_order(deep_first):
    # s = p(x) + q2(q1(x)): s finds p (generation 0) and q2 (generation 1) in either input
    # order; the deeper q2 runs first even when it was found second, then p before q1 (a
    # tie of generations goes to the one found first).
    log: list = []
    x = Variable(np.array([1.0, 2.0]))
    p = Traced("p", log)(x)
    q = Traced("q2", log)(Traced("q1", log)(x))
    s = Traced("s", log)(q, p) if deep_first else Traced("s", log)(p, q)
    s.backward()
    assert log == ["s", "q2", "p", "q1"]
    assert log == _heap_order(s.creator)
    np.testing.assert_array_equal(x.grad.data, [2.0, 2.0])


def test_a_wide_graph_runs_in_the_heap_order_and_sums_every_branch():
    # A sum of terms of different depths: the spine of additions and the branches interleave.
    log: list = []
    x = Variable(np.array(1.5))
    y = Traced("t0", log)(x)
    for i in range(1, 12):
        term = Traced(f"t{i}", log)(x)
        for j in range(i % 3):  # branches 0, 1 or 2 functions deep
            term = Traced(f"t{i}.{j}", log)(term)
        y = Traced(f"s{i}", log)(y, term)
    y.backward()
    assert log == _heap_order(y.creator)
    assert len(log) == len(set(log)) == 12 + 11 + sum(i % 3 for i in range(1, 12))
    assert float(x.grad.data) == 12.0


def _random_graph(seed: int, n: int, log: list):
    """A DAG of n Traced nodes over x: each takes 1-3 earlier values (repeats allowed)."""
    rng = np.random.default_rng(seed)
    x = Variable(np.array([1.0, -2.0]))
    values = [x]
    for i in range(n):
        k = int(rng.integers(1, 4))
        picks = [values[int(j)] for j in rng.integers(max(0, len(values) - 8), len(values), k)]
        values.append(Traced(f"f{i}", log)(*picks))
    return x, values


def _paths_to_x(values) -> float:
    """How many paths lead from the last value back to x (its gradient, as every Traced
    passes gy on unchanged)."""
    counts = {id(values[-1]): 1.0}
    total = 0.0
    for v in reversed(values):
        c = counts.pop(id(v), 0.0)
        if v.creator is None:
            total += c
            continue
        for u in v.creator.inputs:
            counts[id(u)] = counts.get(id(u), 0.0) + c
    return total


@pytest.mark.parametrize("seed", range(6))
def test_random_graphs_run_in_the_heap_order(seed):
    # The engine keys its heap by one int per function and lets some creators skip it; a
    # plain heap of (-generation, discovery count) tuples is the reference order.
    log: list = []
    x, values = _random_graph(seed, 150, log)
    y = values[-1]
    y.backward()
    assert log == _heap_order(y.creator)
    assert float(x.grad.data[0]) == _paths_to_x(values)


def test_the_heap_order_holds_for_generations_beyond_a_machine_word():
    # The heap keys are -generation * 2**40 + count: Python ints, exact at any size.
    log: list = []
    x, values = _random_graph(7, 80, log)
    y = values[-1]
    for v in values[1:]:
        v.creator.generation += 10**12
    y.backward()
    assert log == _heap_order(y.creator)


def test_wide_sum_of_squares_of_a_0d_variable():
    # bench_engine's wide workload: every 0-d op returns a NumPy scalar, which must come
    # back as a 0-d ndarray (the gradient included), with the float32 dtype kept.
    for dtype in (np.float64, np.float32):
        x = Variable(np.array(1.5, dtype=dtype))
        y = x ** 2
        for _ in range(99):
            y = y + x ** 2
        assert type(y.data) is np.ndarray and y.data.shape == ()
        assert float(y.data) == pytest.approx(100 * 2.25)
        y.backward()
        assert type(x.grad.data) is np.ndarray and x.grad.data.shape == ()
        assert x.grad.dtype == dtype
        assert float(x.grad.data) == pytest.approx(100 * 2 * 1.5)


class Three(Function):
    retain_inputs = ()
    retain_outputs = ()

    def forward(self, a, b, c):
        return a + 2 * b + 3 * c

    def backward(self, gy):
        return gy, 2 * gy, 3 * gy


class Pair(Function):
    retain_inputs = ()
    retain_outputs = ()

    def forward(self, x):
        return x + 1, x - 1

    def backward(self, g0, g1):
        return g0 + g1


class OneTuple(Function):
    retain_inputs = ()
    retain_outputs = ()

    def forward(self, x):
        return (x * 3,)

    def backward(self, gy):
        return 3 * gy


def test_generation_is_one_more_than_the_deepest_input():
    x = Variable(np.array([1.0]))
    deep = (x * 2) * 2  # generation 2
    for inputs in [(x, deep), (deep, x)]:
        assert (inputs[0] * inputs[1]).generation == 3
    y = Three()(x, deep, x * 2)
    assert y.generation == 3
    np.testing.assert_array_equal(y.data, [1 + 2 * 4 + 3 * 2])
    y.backward()
    np.testing.assert_array_equal(x.grad.data, [1 + 2 * 4 + 3 * 2])


def test_outputs_one_two_and_a_one_tuple():
    x = Variable(np.array([2.0]))
    a, b = Pair()(x)
    assert a.creator is b.creator and a.generation == b.generation == 1
    assert [ref() for ref in a.creator.outputs] == [a, b]
    single = OneTuple()(x)  # DeZero returns a lone output itself, not a list of one
    assert isinstance(single, Variable) and single.creator.outputs[0]() is single
    np.testing.assert_array_equal(single.data, [6.0])
    (a * b + single).backward()
    np.testing.assert_array_equal(x.grad.data, [2 * 2.0 + 3])


def test_no_record_outputs_are_constants():
    x = Variable(np.array([1.0, 2.0]))
    with no_grad():
        y = x * 2.0
        a, b = Pair()(x)
    for v in (y, a, b):
        assert v.creator is None and v.generation == 0 and v.requires_grad is False
        assert v.grad is None and v.name is None
    c = Variable(np.array([1.0]), requires_grad=False)
    z = c * x[:1]  # one input wants a gradient: recorded
    assert z.creator is not None and z.requires_grad is True
    w = c * 3.0  # no input wants one: not recorded, flag or not
    assert w.creator is None and w.requires_grad is False
    with zerograd.using_config("enable_backprop", True):
        assert (c + c).creator is None


def test_operator_paths_pick_the_constant_ops_only_for_scalars():
    x = Variable(np.array([4.0, 6.0]))
    y = Variable(np.array([2.0, 3.0]))
    cases = [
        (x + y, "Add", [6.0, 9.0]), (x + 2, "AddConstant", [6.0, 8.0]),
        (x - y, "Sub", [2.0, 3.0]), (x - 2, "AddConstant", [2.0, 4.0]),
        (x * y, "Mul", [8.0, 18.0]), (x * 0.5, "MulConstant", [2.0, 3.0]),
        (x / y, "Div", [2.0, 2.0]), (x / 2, "DivConstant", [2.0, 3.0]),
        (x * np.float64(0.5), "MulConstant", [2.0, 3.0]),
        (x * np.array([1.0, 2.0]), "Mul", [4.0, 12.0]),
    ]
    for result, op, values in cases:
        assert type(result.creator).__name__ == op
        np.testing.assert_array_equal(result.data, values)


def test_errors_still_name_the_op_and_the_inputs():
    x = Variable(np.ones((2, 3)))
    with pytest.raises(ShapeError, match=r"Add: .*float64 \(2, 3\).*float64 \(4,\)"):
        x + Variable(np.ones(4))
    with pytest.raises(ShapeError, match=r"Three: .*\(2, 3\)"):
        Three()(x, x, Variable(np.ones(5)))

    class ReturnsList(Function):
        def forward(self, x):
            return [x, x]

    with pytest.raises(DTypeError, match=r"(?s)ReturnsList.forward returned a list.*tuple"):
        ReturnsList()(x)
