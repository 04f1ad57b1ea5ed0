"""copy.copy, copy.deepcopy and pickle of Variables: a copy is a leaf.

A copy keeps data, grad, name and requires_grad (and a Parameter's own attributes) and drops
creator and generation: the creator's weak references point at the original outputs, so a
copy that kept it could not be backpropagated through.
"""

import copy
import pickle

import numpy as np
import pytest

import zerograd.functions as F
import zerograd.layers as L
from zerograd import Parameter, Variable

COPIERS = [
    ("copy", copy.copy),
    ("deepcopy", copy.deepcopy),
    ("pickle", lambda v: pickle.loads(pickle.dumps(v))),
]


@pytest.mark.parametrize("name, clone", COPIERS, ids=[c[0] for c in COPIERS])
def test_copy_of_a_leaf_keeps_data_grad_name_and_requires_grad(name, clone):
    v = Variable(np.array([1.0, 2.0], dtype=np.float32), name="w", requires_grad=False)
    v.grad = Variable(np.array([0.5, 0.25], dtype=np.float32))
    c = clone(v)
    assert type(c) is Variable and c is not v
    assert c.name == "w" and c.requires_grad is False
    assert c.creator is None and c.generation == 0
    assert c.data.dtype == np.float32
    np.testing.assert_array_equal(c.data, [1.0, 2.0])
    np.testing.assert_array_equal(c.grad.data, [0.5, 0.25])
    if name != "copy":  # a deep copy owns its arrays
        assert c.data is not v.data and c.grad is not v.grad
        c.data[0] = 9.0
        assert v.data[0] == 1.0


@pytest.mark.parametrize("name, clone", COPIERS, ids=[c[0] for c in COPIERS])
def test_copy_of_a_non_leaf_is_a_leaf_that_backpropagates(name, clone):
    x = Variable(np.array([1.0, 2.0]))
    y = F.sin(x)
    y.name = "y"
    c = clone(y)
    assert c.creator is None and c.generation == 0 and y.creator is not None
    np.testing.assert_array_equal(c.data, np.sin([1.0, 2.0]))
    z = F.sum(c * 3.0)
    z.backward()
    np.testing.assert_array_equal(c.grad.data, [3.0, 3.0])
    assert x.grad is None  # the copy is cut from the original graph
    y.backward()  # the original is untouched
    np.testing.assert_allclose(x.grad.data, np.cos([1.0, 2.0]))


@pytest.mark.parametrize("name, clone", COPIERS, ids=[c[0] for c in COPIERS])
def test_parameter_stays_a_parameter_with_its_attributes(name, clone):
    p = Parameter(np.ones((2, 2)), name="W")
    p.tag = "decay"  # layers and users tag parameters
    p.grad = Variable(np.full((2, 2), 0.5))
    c = clone(p)
    assert type(c) is Parameter and c.name == "W" and c.tag == "decay"
    assert c.requires_grad is True and c.creator is None
    np.testing.assert_array_equal(c.grad.data, np.full((2, 2), 0.5))


def test_create_graph_gradient_is_copied_as_a_leaf_too():
    x = Variable(np.array(2.0))
    (x ** 3).backward(create_graph=True)
    assert x.grad.creator is not None
    c = copy.deepcopy(x)
    assert c.grad.creator is None and float(c.grad) == 12.0


def test_deepcopy_keeps_shared_references_shared():
    p = Parameter(np.ones(2))
    a, b = copy.deepcopy([p, p])
    assert a is b and a is not p


def test_stateful_lstm_deepcopies_and_backpropagates_through_the_copy():
    # An LSTM carries h and c (Variables with creators) between calls: copying it must work,
    # and backward through the copy must reach the copy's own parameters only.
    rng = np.random.default_rng(0)
    layer = L.LSTM(4, in_size=3)
    x = rng.standard_normal((2, 3)).astype(np.float32)
    layer(x)  # the state now hangs on the first step's graph
    assert layer.h.creator is not None
    twin = copy.deepcopy(layer)
    assert twin.h.creator is None and twin.c.creator is None
    np.testing.assert_array_equal(twin.h.data, layer.h.data)
    y_twin = F.sum(twin(x))
    y_twin.backward()
    assert all(p.grad is not None for p in twin.params())
    assert all(p.grad is None for p in layer.params())
    # From the same state the copy computes what the original computes.
    y = F.sum(layer(x))
    assert float(y_twin) == pytest.approx(float(y), rel=1e-6)
    # and the original still backpropagates through both of its steps
    y.backward()
    assert all(p.grad is not None for p in layer.params())
