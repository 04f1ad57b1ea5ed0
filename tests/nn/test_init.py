"""Initialisers and the layers' initial weights (DeZero's draws, in float32)."""

import math

import numpy as np
import pytest

import zerograd.layers as L
from tests.nn.helpers import import_dezero
from zerograd.nn import init


def test_linear_weights_are_dezeros_draws_kept_in_float32():
    np.random.seed(0)
    layer = L.Linear(4, in_size=3)
    np.random.seed(0)
    draws = np.random.randn(3, 4).astype(np.float32)
    # DeZero's formula as it ran under NumPy 1 (float32 array times a float32 scale).
    expected = draws * np.float32(np.sqrt(1 / 3))
    assert layer.W.data.dtype == np.float32 and layer.W.data.shape == (3, 4)
    np.testing.assert_array_equal(layer.W.data, expected)
    assert layer.b.data.dtype == np.float32
    np.testing.assert_array_equal(layer.b.data, np.zeros(4))


def test_linear_weights_equal_genuine_dezero_to_rounding():
    dezero = import_dezero()
    np.random.seed(42)
    theirs = dezero.layers.Linear(5, in_size=7)
    np.random.seed(42)
    ours = L.Linear(5, in_size=7)
    assert theirs.W.data.dtype == np.float64  # DeZero bug 1 under NumPy 2
    assert ours.W.data.dtype == np.float32
    np.testing.assert_allclose(ours.W.data, theirs.W.data, rtol=1e-6, atol=0)
    # ... and the random state moved on identically: the next draw agrees.
    state_after = np.random.get_state()[1].copy()
    np.random.seed(42)
    dezero.layers.Linear(5, in_size=7)
    np.testing.assert_array_equal(np.random.get_state()[1], state_after)


def test_float64_linear_when_asked():
    layer = L.Linear(2, in_size=2, dtype=np.float64)
    assert layer.W.data.dtype == np.float64 and layer.b.data.dtype == np.float64


def test_nobias_and_initializer_option():
    layer = L.Linear(3, nobias=True, in_size=2, initializer="zeros")
    assert layer.b is None
    assert [k for k, _ in layer.named_params()] == ["W"]
    np.testing.assert_array_equal(layer.W.data, np.zeros((2, 3)))
    layer = L.Linear(3, in_size=2, initializer=init.constant(0.5))
    np.testing.assert_array_equal(layer.W.data, np.full((2, 3), 0.5, np.float32))


def test_embedding_weights_are_dezeros_draws_in_float32():
    np.random.seed(1)
    emb = L.EmbedID(10, 4)
    np.random.seed(1)
    expected = np.random.randn(10, 4).astype(np.float32)
    assert emb.W.data.dtype == np.float32
    np.testing.assert_array_equal(emb.W.data, expected)
    assert L.Embedding(10, 4).W.shape == (10, 4)


def test_embedding_matches_dezero_embed_id_draws():
    dezero = import_dezero()
    np.random.seed(5)
    theirs = dezero.layers.EmbedID(6, 3)
    np.random.seed(5)
    ours = L.EmbedID(6, 3)
    np.testing.assert_allclose(ours.W.data, theirs.W.data, rtol=1e-7)


def test_compute_fans():
    assert init.compute_fans((3, 5)) == (3, 5)  # Linear (in, out)
    assert init.compute_fans((16, 8, 3, 3)) == (72, 144)  # conv (out, in, kh, kw)
    assert init.compute_fans((7,)) == (7, 7)


SAMPLES = (400, 300)


@pytest.mark.parametrize("make, std", [
    (lambda: init.normal(0.02), 0.02),
    (lambda: init.lecun_normal(), math.sqrt(1 / 400)),
    (lambda: init.xavier_normal(), math.sqrt(2 / 700)),
    (lambda: init.glorot_uniform(), math.sqrt(6 / 700) / math.sqrt(3)),
    (lambda: init.he_normal(), math.sqrt(2 / 400)),
    (lambda: init.kaiming_uniform(), math.sqrt(2) * math.sqrt(3 / 400) / math.sqrt(3)),
    (lambda: init.uniform(0.1), 0.1 / math.sqrt(3)),
], ids=["normal", "lecun", "xavier_normal", "glorot_uniform", "he_normal", "kaiming_uniform",
        "uniform"])
def test_initializer_statistics_and_dtype(make, std):
    np.random.seed(0)
    w = make()(SAMPLES, np.float32)
    assert w.dtype == np.float32 and w.shape == SAMPLES
    assert abs(w.mean()) < 0.02 * std + 1e-4
    assert w.std() == pytest.approx(std, rel=0.02)


def test_uniform_bounds_and_constants():
    np.random.seed(0)
    bound = math.sqrt(6 / 30)
    w = init.xavier_uniform()((10, 20))
    assert w.min() >= -bound and w.max() <= bound
    assert np.all(init.ones()((2, 2), np.float64) == 1)
    assert init.zeros()((3,)).dtype == np.float32


def test_rng_argument_draws_reproducibly_without_the_global_state():
    np.random.seed(0)
    state = np.random.get_state()[1].copy()
    a = init.he_normal(rng=np.random.default_rng(7))((3, 3))
    b = init.he_normal(rng=np.random.default_rng(7))((3, 3))
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(np.random.get_state()[1], state)


def test_explicit_fans_override_the_shape():
    np.random.seed(0)
    a = init.lecun_normal()((4, 4), fan_in=100)
    np.random.seed(0)
    np.testing.assert_allclose(a, np.random.randn(4, 4).astype(np.float32) * np.float32(0.1))


def test_get_initializer():
    assert init.get_initializer(None, default=init.ones())((1,))[0] == 1
    assert init.get_initializer(0.5)((1,))[0] == 0.5
    assert init.get_initializer("Kaiming_Normal").__name__ == "he_normal"
    with pytest.raises(ValueError, match="unknown initialiser 'bogus'"):
        init.get_initializer("bogus")
    with pytest.raises(TypeError, match="initialiser"):
        init.get_initializer([1, 2])
