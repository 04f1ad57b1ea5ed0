"""zerograd.checkpoint: the segment's activations are not kept; backward recomputes them."""

import gc
import weakref

import numpy as np
import pytest

import zerograd
import zerograd.functions as F
import zerograd.layers as L
from zerograd import Variable, autograd, checkpoint


def make_layers(seed=0):
    np.random.seed(seed)
    return [L.Linear(4, in_size=3), L.Linear(2, in_size=4)]


def run(layers, x, use_checkpoint):
    def segment(h):
        return F.tanh(layers[1](F.tanh(layers[0](h))))

    h = checkpoint(segment, x) if use_checkpoint else segment(x)
    return F.sum(h ** 2)


def test_gradients_equal_the_plain_pass():
    x0 = np.random.default_rng(1).standard_normal((5, 3))
    results = []
    for use in (False, True):
        layers = make_layers()
        x = Variable(x0.copy())
        run(layers, x, use).backward()
        results.append([x.grad.data] + [p.grad.data for layer in layers for p in layer.params()])
    for plain, checked in zip(*results):
        np.testing.assert_allclose(checked, plain, rtol=1e-12)


def test_activations_inside_are_freed_after_forward():
    layers = make_layers()
    x = Variable(np.ones((5, 3)))
    inner = []

    def segment(h):
        a = F.tanh(layers[0](h))
        inner.append(weakref.ref(a))
        return layers[1](a)

    y = checkpoint(segment, x)
    gc.collect()
    assert inner[0]() is None            # the inside activation is gone
    assert y.creator.name.startswith("checkpoint(")
    F.sum(y).backward()                  # recomputed
    assert len(inner) == 2 and x.grad is not None


def test_dropout_draws_the_same_mask_when_recomputed():
    x0 = np.random.default_rng(2).standard_normal((50,))
    grads = []
    for use in (False, True):
        np.random.seed(7)
        x = Variable(x0.copy())

        def segment(h):
            return F.dropout(h * 2.0, 0.5)

        y = checkpoint(segment, x) if use else segment(x)
        np.random.seed(99)               # backward must not depend on the state now
        F.sum(y * y).backward()
        grads.append(x.grad.data)
    np.testing.assert_array_equal(grads[0], grads[1])


def test_closure_over_an_outer_activation_gets_its_gradient():
    x = Variable(np.array([1.0, 2.0]))
    skip = F.sin(x)                      # read by the segment from outside, not an argument
    y = checkpoint(lambda h: h * skip, x * 3.0)
    F.sum(y).backward()
    expected = 3 * np.sin(x.data) + 3 * x.data * np.cos(x.data)   # d(3x sin x)/dx
    np.testing.assert_allclose(x.grad.data, expected)


def test_tuple_outputs_higher_order_and_autograd_grad():
    x = Variable(np.array([0.5, 1.5]))
    a, b = checkpoint(lambda h: (h ** 3, F.sin(h)), x)
    (g,) = autograd.grad(F.sum(a) + F.sum(b), x, create_graph=True)
    np.testing.assert_allclose(g.data, 3 * x.data ** 2 + np.cos(x.data))
    (gg,) = autograd.grad(F.sum(g), x)
    np.testing.assert_allclose(gg.data, 6 * x.data - np.sin(x.data))
    assert x.grad is None


def test_no_graph_needed_runs_fn_plainly():
    x = Variable(np.array([1.0]))
    with zerograd.no_grad():
        y = checkpoint(lambda h: h * 2.0, x)
    assert y.creator is None and y.data.tolist() == [2.0]
    c = checkpoint(lambda h: h * 2.0, Variable(np.array([1.0]), requires_grad=False))
    assert c.creator is None


def test_fn_must_return_variables():
    with pytest.raises(TypeError, match="checkpoint: fn returned a int"):
        checkpoint(lambda h: 3, Variable(np.array([1.0])))
