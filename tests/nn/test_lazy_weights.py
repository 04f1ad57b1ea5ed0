"""Lazily sized layers whose weights arrive before the first call (set by hand or loaded).

Every lazy layer reads its size from the weights that are there (``Layer``'s ``LazySize``),
so the first call uses them instead of failing or drawing new ones; a weight that
contradicts the input raises ShapeError naming the layer, the weight's and the input's
shapes.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pytest

import zerograd.functions as F
import zerograd.layers as L
from tests.nn.helpers import import_dezero
from zerograd import test_mode
from zerograd.errors import ShapeError
from zerograd.models import MLP, Sequential


def _rand(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


@dataclass
class Case:
    make: Callable[[], L.Layer]
    x: np.ndarray
    sizes: dict  # lazy size attribute -> its value once the weights are there
    bad_x: np.ndarray  # an input the weights do not fit
    bad_message: str  # regex the ShapeError must match
    extra: dict = field(default_factory=dict)


CASES = {
    "Linear": Case(lambda: L.Linear(4), _rand(2, 3), {"in_size": 3}, _rand(2, 5),
                   r"Linear: the input float32 \(2, 5\) .* W has shape \(3, 4\)"),
    "Linear_nobias": Case(lambda: L.Linear(4, nobias=True), _rand(2, 3), {"in_size": 3},
                          _rand(2, 5), r"Linear: .*\(2, 5\).*W has shape \(3, 4\)"),
    "Conv2d": Case(lambda: L.Conv2d(4, 3, pad=1), _rand(2, 3, 5, 5), {"in_channels": 3},
                   _rand(2, 2, 5, 5),
                   r"Conv2d: the input float32 \(2, 2, 5, 5\) .* W has shape \(4, 3, 3, 3\)"),
    "Conv2d_groups": Case(lambda: L.Conv2d(4, 3, pad=1, groups=2), _rand(2, 6, 5, 5),
                          {"in_channels": 6}, _rand(2, 4, 5, 5),
                          r"Conv2d: .*\(2, 4, 5, 5\).*W has shape \(4, 3, 3, 3\)"),
    "Conv1d": Case(lambda: L.Conv1d(4, 3), _rand(2, 3, 7), {"in_channels": 3}, _rand(2, 5, 7),
                   r"Conv1d: .*\(2, 5, 7\).*W has shape \(4, 3, 3\)"),
    "Deconv2d": Case(lambda: L.Deconv2d(4, 3, stride=2), _rand(2, 3, 4, 4), {"in_channels": 3},
                     _rand(2, 5, 4, 4), r"Deconv2d: .*\(2, 5, 4, 4\).*W has shape \(3, 4, 3, 3\)"),
    "LayerNorm": Case(lambda: L.LayerNorm(), _rand(2, 5, 6), {"normalized_shape": (6,)},
                      _rand(2, 5, 7), r"LayerNorm: input float32 \(2, 5, 7\).*gamma \(6,\)"),
    "BatchNorm": Case(lambda: L.BatchNorm(), _rand(4, 3, 2, 2), {"size": 3}, _rand(4, 5, 2, 2),
                      r"BatchNorm: the input float32 \(4, 5, 2, 2\) .* gamma has shape \(3,\)"),
    "GroupNorm": Case(lambda: L.GroupNorm(2), _rand(2, 4, 3), {"num_channels": 4},
                      _rand(2, 6, 3), r"GroupNorm: .*\(2, 6, 3\).*gamma has shape \(4,\)"),
    "MultiHeadAttention": Case(lambda: L.MultiHeadAttention(8, 2), _rand(2, 3, 5), {},
                               _rand(2, 3, 7), r"Linear: .*\(2, 3, 7\).*W has shape \(5, 8\)"),
    "Embedding": Case(lambda: L.Embedding(10, 4), np.array([[1, 2], [3, 9]]),
                      {"num_embeddings": 10, "embedding_dim": 4}, None, ""),
}


def _weights_for(case: Case) -> dict[str, np.ndarray]:
    """New random values (not the defaults) for every entry the layer has after a call."""
    probe = case.make()
    with test_mode():
        probe(case.x)
    rng = np.random.default_rng(1)
    weights = {}
    for key, value in probe.state_dict().items():
        # Positive everywhere, so that a variance buffer is a valid variance.
        weights[key] = (np.abs(rng.standard_normal(value.shape)) + 0.5).astype(value.dtype)
    return weights


def _set_by_hand(layer: L.Layer, weights: dict) -> None:
    """``layer.W.data = ...`` (parameters) and ``layer.avg_mean = ...`` (buffers)."""
    for key, value in weights.items():
        *path, name = key.split("/")
        owner = layer
        for part in path:
            owner = getattr(owner, part)
        target = getattr(owner, name)
        if isinstance(target, L.Parameter):
            target.data = value.copy()
        else:
            setattr(owner, name, value.copy())


def _expected(case: Case, weights: dict) -> np.ndarray:
    """The output of a layer sized by a first call, then given ``weights`` (the path that
    worked before lazy sizing read the weights)."""
    ref = case.make()
    with test_mode():
        ref(case.x)
        ref.load_state_dict(weights)
        return ref(case.x).data


@pytest.mark.parametrize("name", list(CASES))
def test_weights_set_by_hand_before_the_first_call_are_used(name):
    case = CASES[name]
    weights = _weights_for(case)
    layer = case.make()
    _set_by_hand(layer, weights)
    for attr, value in case.sizes.items():
        assert getattr(layer, attr) == value  # read from the weights, before any call
    state = np.random.get_state()[1].copy()
    with test_mode():
        y = layer(case.x)
    np.testing.assert_array_equal(np.random.get_state()[1], state)  # nothing redrawn
    np.testing.assert_array_equal(y.data, _expected(case, weights))
    for key, value in layer.state_dict().items():
        np.testing.assert_array_equal(value, weights[key])  # the weights were not replaced


@pytest.mark.parametrize("name", list(CASES))
def test_save_then_load_into_a_fresh_layer_gives_identical_outputs(name, tmp_path):
    case = CASES[name]
    np.random.seed(3)
    trained = case.make()
    with test_mode():
        y = trained(case.x).data
    path = trained.save_weights(tmp_path / "w.npz")
    fresh = case.make()  # never called: its lazy sizes are unknown until the load
    fresh.load_weights(path)
    for attr, value in case.sizes.items():
        assert getattr(fresh, attr) == value
    with test_mode():
        np.testing.assert_array_equal(fresh(case.x).data, y)


@pytest.mark.parametrize("name", [n for n in CASES if CASES[n].bad_x is not None])
def test_weights_that_contradict_the_input_raise_naming_layer_and_shapes(name):
    case = CASES[name]
    layer = case.make()
    _set_by_hand(layer, _weights_for(case))
    with pytest.raises(ShapeError, match=case.bad_message):
        with test_mode():
            layer(case.bad_x)


def test_the_reported_case_conv2d_with_ones():
    layer = L.Conv2d(16, 3, pad=1)
    layer.W.data = np.ones((16, 3, 3, 3), np.float32)
    x = _rand(1, 3, 4, 4)
    y = layer(x)
    # Every output channel is the sum of the zero-padded 3x3 neighbourhood over channels.
    padded = np.pad(x.sum(axis=1), ((0, 0), (1, 1), (1, 1)))
    box = sum(padded[:, i:i + 4, j:j + 4] for i in range(3) for j in range(3))
    np.testing.assert_allclose(y.data, np.repeat(box[:, None], 16, axis=1), rtol=1e-5)
    assert layer.in_channels == 3 and "in_channels=3" in repr(layer)


def test_out_size_contradicted_by_a_nobias_weight_is_an_error():
    layer = L.Linear(4, nobias=True)
    layer.W.data = _rand(3, 5)
    with pytest.raises(ShapeError, match=re.escape("needs W of shape (3, 4)")):
        layer(_rand(2, 3))


def test_partial_weights_batchnorm_creates_only_the_missing_entries():
    bn = L.BatchNorm()
    bn.gamma.data = np.array([1.0, 2.0, 3.0])  # float64, set by hand
    x = _rand(4, 3)
    with test_mode():
        y = bn(x)
    np.testing.assert_array_equal(bn.gamma.data, [1.0, 2.0, 3.0])  # kept, not reset to ones
    for name, value in (("beta", 0.0), ("avg_mean", 0.0), ("avg_var", 1.0)):
        entry = getattr(bn, name)
        data = entry.data if isinstance(entry, L.Parameter) else entry
        assert data.shape == (3,) and data.dtype == np.float64  # the present entry's dtype
        np.testing.assert_array_equal(data, np.full(3, value))
    np.testing.assert_allclose(y.data, x / np.sqrt(1 + 2e-5) * np.array([1.0, 2.0, 3.0]),
                               rtol=1e-6)


def test_partial_weights_layernorm_and_groupnorm():
    ln = L.LayerNorm()
    ln.gamma.data = np.full((2, 3), 2.0, np.float32)  # a 2-D normalized shape, from gamma
    x = _rand(4, 2, 3)
    y = ln(x)
    assert ln.normalized_shape == (2, 3) and ln.beta.shape == (2, 3)
    mean = x.mean(axis=(1, 2), keepdims=True)
    var = x.var(axis=(1, 2), keepdims=True)
    np.testing.assert_allclose(y.data, 2 * (x - mean) / np.sqrt(var + 1e-5), rtol=1e-4,
                               atol=1e-5)
    gn = L.GroupNorm(2)
    gn.beta.data = np.arange(4, dtype=np.float32)
    x = _rand(2, 4, 3)
    y = gn(x)
    assert gn.num_channels == 4
    np.testing.assert_array_equal(gn.gamma.data, np.ones(4, np.float32))
    groups = x.reshape(2, 2, 6)
    z = (groups - groups.mean(-1, keepdims=True)) / np.sqrt(groups.var(-1, keepdims=True) + 1e-5)
    np.testing.assert_allclose(y.data, z.reshape(2, 4, 3) + np.arange(4)[:, None], rtol=1e-4,
                               atol=1e-5)


def _cli_cnn():
    """The model of ``zerograd train --model cnn`` (zerograd/cli.py), for 8x8 images."""
    def pool(x):
        return F.pooling(x, 2, 2)

    def flatten(x):
        return x.reshape(len(x), -1)

    return Sequential(L.Conv2d(16, 3, pad=1), F.relu, pool, L.Conv2d(32, 3, pad=1), F.relu,
                      pool, flatten, L.Linear(8), F.relu, L.Linear(3))


def test_a_trained_cnn_loads_into_a_fresh_model_for_evaluation(tmp_path):
    np.random.seed(0)
    model = _cli_cnn()
    x = _rand(5, 1, 8, 8)
    y = model(x).data
    path = model.save_weights(tmp_path / "model.npz")
    fresh = _cli_cnn()
    fresh.load_weights(path)
    np.testing.assert_array_equal(fresh(x).data, y)
    assert fresh.l0.in_channels == 1 and fresh.l3.in_channels == 16
    assert fresh.l7.in_size == 32 * 2 * 2 and fresh.l9.in_size == 8


# -- genuine DeZero as the oracle ---------------------------------------------------------------
@pytest.mark.parametrize("kind", ["Linear", "Conv2d", "Deconv2d"])
def test_weights_set_by_hand_match_genuine_dezero(kind):
    dezero = import_dezero()
    import dezero.layers as DL

    x = _rand(2, 3) if kind == "Linear" else _rand(2, 3, 5, 5)
    W = _rand(3, 4) if kind == "Linear" else _rand(4, 3, 3, 3) if kind == "Conv2d" else _rand(
        3, 4, 3, 3)
    args = (4,) if kind == "Linear" else (4, 3, 1, 1)
    theirs, ours = getattr(DL, kind)(*args), getattr(L, kind)(*args)
    theirs.W.data = W.copy()
    ours.W.data = W.copy()
    expected = theirs(dezero.Variable(x)).data
    y = ours(x)
    assert y.dtype == np.float32
    np.testing.assert_allclose(y.data, expected, rtol=1e-5, atol=1e-6)


def _dezero_roundtrip(make_theirs, make_ours, x, tmp_path):
    """Train-free round trip: a genuine DeZero layer/model is called (so its lazy weights
    are drawn) and saved with DeZero's save_weights; a fresh zerograd one loads the file."""
    dezero = import_dezero()
    np.random.seed(0)
    theirs = make_theirs()
    expected = theirs(dezero.Variable(x)).data
    path = str(tmp_path / "dezero.npz")
    theirs.save_weights(path)
    ours = make_ours()
    ours.load_weights(path)
    y = ours(x)
    assert y.dtype == np.float32  # DeZero's float64 arrays took the layers' dtype
    np.testing.assert_allclose(y.data, expected, rtol=1e-5, atol=1e-5)
    return ours


def test_dezero_linear_file_loads_into_a_fresh_lazy_linear(tmp_path):
    import_dezero()
    import dezero.layers as DL

    ours = _dezero_roundtrip(lambda: DL.Linear(4), lambda: L.Linear(4), _rand(2, 3), tmp_path)
    assert ours.in_size == 3


def test_dezero_conv2d_file_loads_into_a_fresh_lazy_conv2d(tmp_path):
    import_dezero()
    import dezero.layers as DL

    ours = _dezero_roundtrip(lambda: DL.Conv2d(4, 3, 1, 1), lambda: L.Conv2d(4, 3, 1, 1),
                             _rand(2, 3, 6, 6), tmp_path)
    assert ours.in_channels == 3


def test_dezero_mlp_file_loads_into_a_fresh_mlp(tmp_path):
    import_dezero()
    import dezero.models as DM

    ours = _dezero_roundtrip(lambda: DM.MLP((5, 2)), lambda: MLP((5, 2)), _rand(4, 3), tmp_path)
    assert (ours.l0.in_size, ours.l1.in_size) == (3, 5)
