"""The input-dtype rule: a layer with float weights casts integer and bool inputs to its
dtype (a float32 layer gives float32 out); float inputs keep their dtype.

PyTorch raises for an integer input to a float ``nn.Linear``; DeZero promotes it (int64 @
float32 is float64 in NumPy). zerograd gives what a PyTorch user casting by hand gets.
"""

from __future__ import annotations

import numpy as np
import pytest

import zerograd.functions as F
import zerograd.layers as L
from zerograd import Variable, test_mode

torch = pytest.importorskip("torch")


def _ints(*shape):
    return np.random.default_rng(0).integers(-3, 4, size=shape)


# name -> (build(dtype), integer input)
LAYERS = {
    "Linear": (lambda dtype: L.Linear(4, dtype=dtype), _ints(2, 3)),
    "Linear_sized": (lambda dtype: L.Linear(4, in_size=3, dtype=dtype), _ints(2, 3)),
    "Conv2d": (lambda dtype: L.Conv2d(4, 3, pad=1, dtype=dtype), _ints(2, 3, 5, 5)),
    "Conv1d": (lambda dtype: L.Conv1d(4, 3, dtype=dtype), _ints(2, 3, 7)),
    "Deconv2d": (lambda dtype: L.Deconv2d(4, 3, 2, dtype=dtype), _ints(2, 3, 4, 4)),
    "LayerNorm": (lambda dtype: L.LayerNorm(dtype=dtype), _ints(2, 3, 6)),
    "BatchNorm": (lambda dtype: L.BatchNorm(dtype=dtype), _ints(4, 3, 2, 2)),
    "GroupNorm": (lambda dtype: L.GroupNorm(2, dtype=dtype), _ints(2, 4, 3)),
    "MultiHeadAttention": (lambda dtype: L.MultiHeadAttention(8, 2, dtype=dtype),
                           _ints(2, 3, 5)),
}


def _call(build, dtype, x):
    np.random.seed(0)  # the same weights (drawn at construction or lazily) for every input
    layer = build(dtype)
    with test_mode():
        return layer(x)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", list(LAYERS))
def test_integer_and_bool_inputs_are_cast_to_the_layer_dtype(name, dtype):
    build, x = LAYERS[name]
    expected = _call(build, dtype, x.astype(dtype)).data
    for given in (x, x.astype(np.int32), Variable(x)):
        y = _call(build, dtype, given)
        assert y.dtype == dtype, type(given)
        np.testing.assert_array_equal(y.data, expected)
    mask = x > 0
    y = _call(build, dtype, mask)
    assert y.dtype == dtype
    np.testing.assert_array_equal(y.data, _call(build, dtype, mask.astype(dtype)).data)


def test_batchnorm_without_a_dtype_casts_integers_to_float32_or_its_weights_dtype():
    with test_mode():
        assert L.BatchNorm()(_ints(4, 3)).dtype == np.float32
        bn = L.BatchNorm()
        bn.gamma.data = np.ones(3)  # float64 weights fix the dtype
        assert bn(_ints(4, 3)).dtype == np.float64


def test_float_inputs_keep_their_dtype():
    # float64 into a float32 layer still follows NumPy's promotion (and DeZero's).
    layer = L.Linear(2, in_size=3)
    assert layer(np.ones((1, 3))).dtype == np.float64
    assert layer(np.ones((1, 3), np.float32)).dtype == np.float32


def test_linear_on_integers_equals_torch_on_the_cast_input_and_grads_stay_float32():
    x = _ints(5, 3)
    layer = L.Linear(4, in_size=3)
    y = layer(x)
    W = torch.from_numpy(layer.W.data.copy()).requires_grad_()
    b = torch.from_numpy(layer.b.data.copy())
    with pytest.raises(RuntimeError):  # PyTorch refuses the integer input itself
        torch.nn.functional.linear(torch.from_numpy(x), W.T, b)
    expected = torch.nn.functional.linear(torch.from_numpy(x).float(), W.T, b)
    assert y.dtype == np.float32
    np.testing.assert_allclose(y.data, expected.detach().numpy(), rtol=1e-6, atol=1e-6)
    F.sum(y * y).backward()
    (expected * expected).sum().backward()
    assert layer.W.grad.dtype == np.float32
    np.testing.assert_allclose(layer.W.grad.data, W.grad.numpy(), rtol=1e-5, atol=1e-4)


def test_embedding_ids_are_not_cast():
    emb = L.Embedding(5, 2)
    ids = np.array([[0, 4], [2, 2]])
    np.testing.assert_array_equal(emb(ids).data, emb.W.data[ids])
