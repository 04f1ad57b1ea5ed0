"""The basic layers' forward passes, lazy sizes, modes and errors."""

import numpy as np
import pytest

import zerograd.functions as F
import zerograd.layers as L
from tests.nn.helpers import import_dezero, require_ops
from zerograd import Variable, test_mode
from zerograd.errors import ShapeError


@require_ops("linear")
def test_linear_lazy_in_size_draws_at_first_call():
    np.random.seed(0)
    layer = L.Linear(4)
    assert layer.W.data is None
    x = np.random.rand(2, 3).astype(np.float32)  # drawn before the weights, as in a script
    y = layer(x)
    state = np.random.get_state()[1].copy()
    np.random.seed(0)
    np.random.rand(2, 3)
    W = np.random.randn(3, 4).astype(np.float32) * np.float32(np.sqrt(1 / 3))
    np.testing.assert_array_equal(np.random.get_state()[1], state)
    assert layer.in_size == 3
    np.testing.assert_array_equal(layer.W.data, W)
    np.testing.assert_allclose(y.data, x @ W, rtol=1e-6)
    assert y.dtype == np.float32


@require_ops("linear")
def test_linear_forward_and_grads():
    layer = L.Linear(2, in_size=3)
    layer.b.data[...] = [1.0, -1.0]
    x = Variable(np.arange(6, dtype=np.float32).reshape(2, 3))
    y = layer(x)
    np.testing.assert_allclose(y.data, x.data @ layer.W.data + [1.0, -1.0], rtol=1e-6)
    y.backward()
    np.testing.assert_allclose(layer.W.grad.data, x.data.T @ np.ones((2, 2)), rtol=1e-6)
    np.testing.assert_allclose(layer.b.grad.data, [2.0, 2.0])
    assert layer.W.grad.dtype == np.float32


@require_ops("linear")
def test_linear_matches_dezero_forward_for_the_same_seed():
    dezero = import_dezero()
    x = np.random.default_rng(0).normal(size=(4, 5)).astype(np.float32)
    np.random.seed(3)
    theirs = dezero.layers.Linear(3)(x).data
    np.random.seed(3)
    ours = L.Linear(3)(x).data
    assert ours.dtype == np.float32
    np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-6)


@require_ops("linear")
def test_linear_wrong_input_size_is_a_shape_error():
    layer = L.Linear(2, in_size=3)
    with pytest.raises(ShapeError):
        layer(np.ones((2, 4), np.float32))


@require_ops("dropout")
def test_dropout_layer_respects_layer_flag_and_config():
    layer = L.Dropout(0.5)
    x = np.ones((100, 10), np.float32)
    np.random.seed(0)
    y = layer(x)
    np.random.seed(0)
    mask = np.random.rand(100, 10) > 0.5
    np.testing.assert_array_equal(y.data, x * mask / np.float32(0.5))
    with test_mode():
        np.testing.assert_array_equal(layer(x).data, x)
    layer.eval()
    state = np.random.get_state()[1].copy()
    np.testing.assert_array_equal(layer(x).data, x)
    np.testing.assert_array_equal(np.random.get_state()[1], state)  # no draw when off
    with pytest.raises(ValueError, match="ratio"):
        L.Dropout(1.0)


@require_ops("embed_id")
def test_embedding_lookup_and_gradient():
    emb = L.Embedding(5, 3)
    ids = np.array([[0, 4], [4, 1]])
    y = emb(ids)
    assert y.shape == (2, 2, 3) and y.dtype == np.float32
    np.testing.assert_array_equal(y.data, emb.W.data[ids])
    y.backward()
    np.testing.assert_array_equal(emb.W.grad.data[:, 0], [1, 1, 0, 0, 2])


@require_ops("layer_norm")
def test_layer_norm_normalises_the_last_axes():
    x = np.random.default_rng(0).normal(3.0, 2.0, size=(4, 2, 6)).astype(np.float32)
    ln = L.LayerNorm((2, 6))
    y = ln(x).data
    flat = y.reshape(4, -1)
    np.testing.assert_allclose(flat.mean(axis=1), 0, atol=1e-5)
    np.testing.assert_allclose(flat.std(axis=1), 1, rtol=1e-3)
    assert y.dtype == np.float32 and ln.gamma.shape == (2, 6)

    lazy = L.LayerNorm()
    y = lazy(x)
    assert lazy.normalized_shape == (6,)
    np.testing.assert_allclose(y.data.mean(axis=-1), 0, atol=1e-5)
    ref = (x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, keepdims=True) + 1e-5)
    np.testing.assert_allclose(y.data, ref, rtol=1e-4, atol=1e-5)
    with pytest.raises(ShapeError, match="LayerNorm"):
        ln(np.ones((4, 6, 2), np.float32))


def test_flatten_keeps_the_batch_axis():
    x = Variable(np.arange(24, dtype=np.float32).reshape(2, 3, 4))
    y = L.Flatten()(x)
    assert y.shape == (2, 12)
    y.backward()
    assert x.grad.shape == (2, 3, 4)
    with pytest.raises(ShapeError, match="batch axis"):
        L.Flatten()(Variable(np.array(1.0)))


def test_layers_module_exports_dezero_names():
    for name in ("Layer", "Linear", "Dropout", "Embedding", "EmbedID", "LayerNorm", "Flatten",
                 "Parameter", "Conv2d", "Deconv2d", "BatchNorm"):
        assert hasattr(L, name)
    assert F is not None
