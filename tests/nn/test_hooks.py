"""Layer.register_forward_pre_hook / register_forward_hook (PyTorch's Module hooks)."""

import numpy as np
import pytest

import zerograd.functions as F
import zerograd.layers as L
from zerograd import Variable
from zerograd.models import Sequential


def linear():
    np.random.seed(0)
    return L.Linear(2, in_size=3)


def test_forward_hook_sees_inputs_and_output_and_can_replace_the_output():
    layer = linear()
    x = np.ones((1, 3))
    seen = []
    handle = layer.register_forward_hook(lambda lay, args, out: seen.append((lay, args, out)))
    y = layer(x)
    assert seen[0][0] is layer and seen[0][1][0] is x and seen[0][2] is y
    handle.remove()
    layer.register_forward_hook(lambda lay, args, out: out * 0.0)
    np.testing.assert_array_equal(layer(x).data, [[0.0, 0.0]])


def test_pre_hook_can_replace_the_inputs_and_gradients_flow_through():
    layer = linear()
    x = Variable(np.ones((1, 3)))
    layer.register_forward_pre_hook(lambda lay, args: args[0] * 2.0)   # a single value
    y = layer(x)
    expected = 2.0 * np.ones((1, 3)) @ layer.W.data + layer.b.data
    np.testing.assert_allclose(y.data, expected)
    F.sum(y).backward()
    np.testing.assert_allclose(x.grad.data, 2.0 * layer.W.data.sum(axis=1, keepdims=True).T)
    assert layer.inputs[0]() is not x                                  # the replaced input


def test_hooks_run_in_registration_order_prepend_and_with_kwargs():
    layer = linear()
    order = []
    layer.register_forward_pre_hook(lambda lay, args: order.append("pre1"))
    layer.register_forward_pre_hook(lambda lay, args: order.append("pre0"), prepend=True)
    layer.register_forward_hook(lambda lay, args, kwargs, out: order.append(("post", kwargs)),
                                with_kwargs=True)
    layer(np.ones((1, 3)))
    assert order == ["pre0", "pre1", ("post", {})]


def test_hooks_on_sub_layers_see_each_call():
    model = Sequential(L.Linear(4, in_size=3), F.relu, L.Linear(2, in_size=4))
    shapes = []
    for layer in model.layers:
        if isinstance(layer, L.Layer):
            layer.register_forward_hook(lambda lay, args, out: shapes.append(out.shape))
    model(np.ones((5, 3)))
    assert shapes == [(5, 4), (5, 2)]


def test_handle_removes_once_and_context_manager():
    layer = linear()
    calls = []
    with layer.register_forward_hook(lambda *a: calls.append(1)):
        layer(np.ones((1, 3)))
    layer(np.ones((1, 3)))
    assert calls == [1]


def test_hook_errors():
    layer = linear()
    with pytest.raises(TypeError, match=r"Linear\.register_forward_hook: hook must be callable"):
        layer.register_forward_hook("no")
    layer.register_forward_pre_hook(lambda lay, args, kwargs: 5, with_kwargs=True)
    with pytest.raises(TypeError, match=r"\(with_kwargs=True\) returned a int; return None or "
                                        r"a tuple \(args, kwargs\)"):
        layer(np.ones((1, 3)))


def test_a_layer_with_hooks_still_copies_and_saves(tmp_path):
    import copy

    layer = linear()
    layer.register_forward_hook(lambda lay, args, out: out * 2.0)
    twin = copy.deepcopy(layer)
    np.testing.assert_allclose(twin(np.ones((1, 3))).data, layer(np.ones((1, 3))).data)
    layer.save_weights(str(tmp_path / "w.npz"))
    fresh = linear()
    fresh.load_weights(str(tmp_path / "w.npz"))
    np.testing.assert_allclose(2.0 * fresh(np.ones((1, 3))).data, layer(np.ones((1, 3))).data)
