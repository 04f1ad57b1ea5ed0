"""Memory: weak outputs, no graph under no_grad, prompt freeing without the cyclic GC."""

import gc
import weakref

import numpy as np
import pytest

import zerograd.functions as F
from zerograd import Variable, no_grad


@pytest.fixture
def gc_disabled():
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def test_dropping_the_output_frees_the_whole_graph(gc_disabled):
    x = Variable(np.random.rand(100, 100))
    a = F.tanh(x)
    b = F.exp(a) * 2.0
    y = F.sum(b + a)
    refs = [weakref.ref(v) for v in (a, b)] + [weakref.ref(y.creator), weakref.ref(a.creator)]
    del a, b
    assert all(r() is not None for r in refs)
    del y
    assert all(r() is None for r in refs)


def test_graph_after_backward_is_freed_too(gc_disabled):
    x = Variable(np.random.rand(10))
    a = F.sin(x)
    y = F.sum(a * a)
    y.backward(create_graph=True)
    ref_a, ref_f = weakref.ref(a), weakref.ref(y.creator)
    del a, y
    x.cleargrad()  # the create_graph gradient graph references the forward graph
    assert ref_a() is None and ref_f() is None


def test_outputs_are_held_weakly():
    x = Variable(np.ones(3))
    y = F.exp(x)
    f = y.creator
    assert isinstance(f.outputs[0], weakref.ref) and f.outputs[0]() is y


def test_no_grad_keeps_no_graph(gc_disabled):
    x = Variable(np.random.rand(50))
    with no_grad():
        a = F.exp(x)
        y = F.sin(a)
    assert y.creator is None and a.creator is None
    ref_a = weakref.ref(a)
    del a
    assert ref_a() is None  # nothing but our name held it


def test_intermediate_grads_are_released(gc_disabled):
    x = Variable(np.random.rand(1000))
    a = F.exp(x)
    y = F.sum(a)
    y.backward()
    assert a.grad is None and y.grad is None


def test_retain_graph_false_releases_activations_during_backward(gc_disabled):
    x = Variable(np.random.rand(100))
    y = x
    refs = []
    for _ in range(5):
        y = F.tanh(y)
        refs.append(weakref.ref(y))
    loss = F.sum(y)
    del y
    loss.backward(retain_graph=False)
    assert all(r() is None for r in refs)
    assert x.grad is not None


def _create_graph_cycle():
    """x -> x.grad -> (the backward graph) -> the Mul that computed 2 * x * gy -> x.

    Returns weak references to x, to a forward activation and to the gradient's creator.
    """
    x = Variable(np.random.rand(1000))
    a = F.sin(x)
    y = F.sum(a * a)
    y.backward(create_graph=True)
    assert x.grad.creator is not None
    refs = weakref.ref(x), weakref.ref(a), weakref.ref(x.grad.creator)
    return x, refs


def test_create_graph_makes_a_cycle_that_only_the_cyclic_collector_frees(gc_disabled):
    x, refs = _create_graph_cycle()
    del x
    # Nothing outside holds them, yet reference counting cannot free the cycle: x, the
    # forward activations (8,000 bytes each here) and the whole backward graph stay.
    assert all(r() is not None for r in refs)
    assert refs[1]().data.nbytes == 8000
    assert gc.collect() > 0
    assert all(r() is None for r in refs)


@pytest.mark.parametrize("cut", ["cleargrad", "detach"])
def test_cleargrad_breaks_the_create_graph_cycle(gc_disabled, cut):
    x, refs = _create_graph_cycle()
    if cut == "cleargrad":
        x.cleargrad()
    else:
        x.grad = x.grad.detach()  # keep the numbers, drop the graph
        assert x.grad.creator is None
    del x
    assert all(r() is None for r in refs)  # freed at once, no collector needed

