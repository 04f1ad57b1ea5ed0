"""Every layer and model pickles and deep-copies, before and after its first call.

The copy computes what the original computes and trains on its own: its parameters are
other objects holding other arrays. The layer classes are enumerated from
``zerograd.layers`` and ``zerograd.models``, so a new layer without a recipe here fails
``test_every_layer_and_model_class_has_a_recipe``.
"""

from __future__ import annotations

import copy
import inspect
import os
import pickle
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import zerograd.functions as F
import zerograd.layers as L
import zerograd.models as M
from zerograd import test_mode
from zerograd.nn import init


def _rand(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def _ids(*shape):
    return np.random.default_rng(0).integers(0, 10, size=shape)


# name -> (build, input). Small sizes: the point is the copying, not the arithmetic.
RECIPES = {
    "Linear": (lambda: L.Linear(4), _rand(2, 3)),
    "Conv2d": (lambda: L.Conv2d(4, 3, pad=1), _rand(2, 3, 5, 5)),
    "Conv1d": (lambda: L.Conv1d(4, 3), _rand(2, 3, 7)),
    "Deconv2d": (lambda: L.Deconv2d(4, 4, 2, 1), _rand(2, 3, 4, 4)),
    "BatchNorm": (lambda: L.BatchNorm(), _rand(4, 3, 2, 2)),
    "GroupNorm": (lambda: L.GroupNorm(2), _rand(2, 4, 3)),
    "LayerNorm": (lambda: L.LayerNorm(), _rand(2, 3, 6)),
    "Dropout": (lambda: L.Dropout(0.5), _rand(3, 4)),
    "Embedding": (lambda: L.Embedding(10, 4), _ids(2, 3)),
    "EmbedID": (lambda: L.EmbedID(10, 4), _ids(2, 3)),
    "Flatten": (lambda: L.Flatten(), _rand(2, 3, 4)),
    "MaxPool2d": (lambda: L.MaxPool2d(2), _rand(2, 3, 4, 4)),
    "AvgPool2d": (lambda: L.AvgPool2d(2), _rand(2, 3, 4, 4)),
    "AdaptiveAvgPool2d": (lambda: L.AdaptiveAvgPool2d(1), _rand(2, 3, 4, 4)),
    "MultiHeadAttention": (lambda: L.MultiHeadAttention(8, 2), _rand(2, 3, 5)),
    "TransformerEncoderLayer": (lambda: L.TransformerEncoderLayer(8, 2, 16), _rand(2, 3, 8)),
    "RNN": (lambda: L.RNN(4), _rand(2, 3)),
    "LSTM": (lambda: L.LSTM(4), _rand(2, 3)),
    "GRU": (lambda: L.GRU(4), _rand(2, 3)),
    "RNNSeq": (lambda: L.RNNSeq(4, num_layers=2), _rand(2, 5, 3)),
    "LSTMSeq": (lambda: L.LSTMSeq(4, bidirectional=True), _rand(2, 5, 3)),
    "GRUSeq": (lambda: L.GRUSeq(4), _rand(2, 5, 3)),
    "Sequential": (lambda: M.Sequential(L.Linear(5), F.relu, L.Dropout(0.2), L.Linear(2)),
                   _rand(4, 3)),
    "MLP": (lambda: M.MLP((5, 2)), _rand(4, 3)),
    "LeNet": (lambda: M.LeNet(channels=(2, 3), hidden_size=8), _rand(2, 1, 28, 28)),
    "SmallResNet": (lambda: M.SmallResNet(blocks_per_stage=1, widths=(2, 4, 4)),
                    _rand(2, 3, 32, 32)),
    "BasicBlock": (lambda: M.BasicBlock(3, 4, stride=2), _rand(2, 3, 6, 6)),
    "BasicStage": (lambda: M.BasicStage(2, 3, 4), _rand(2, 3, 6, 6)),
    "BottleneckA": (lambda: M.BottleneckA(3, 2, 4), _rand(2, 3, 6, 6)),
    "BottleneckB": (lambda: M.BottleneckB(4, 2), _rand(2, 4, 6, 6)),
    "BuildingBlock": (lambda: M.BuildingBlock(2, 3, 2, 4, 2), _rand(2, 3, 6, 6)),
}

# Full-size ImageNet models: the same checks on one small image, in their own test.
BIG_MODELS = {
    "VGG16": lambda: M.VGG16(),
    "ResNet": lambda: M.ResNet(50),
    "ResNet50": lambda: M.ResNet50(),
    "ResNet101": lambda: M.ResNet101(),
    "ResNet152": lambda: M.ResNet152(),
}

# Base classes with no forward of their own.
ABSTRACT = {"Layer", "Model"}


def _layer_classes() -> set[str]:
    names = set()
    for module in (L, M):
        for name in getattr(module, "__all__", dir(module)):
            obj = getattr(module, name)
            if inspect.isclass(obj) and issubclass(obj, L.Layer):
                names.add(name)
    return names - ABSTRACT


def test_every_layer_and_model_class_has_a_recipe():
    missing = _layer_classes() - set(RECIPES) - set(BIG_MODELS)
    assert not missing, f"add a pickling recipe for {sorted(missing)}"


def _run(layer, x, seed=5):
    """One call from a fixed random state (dropout masks, lazy weights drawn now)."""
    np.random.seed(seed)
    y = layer(x)
    return np.array(y.data, copy=True)


def _pickle_copy(layer):
    return pickle.loads(pickle.dumps(layer))


COPIERS = {"pickle": _pickle_copy, "deepcopy": copy.deepcopy}


def _assert_distinct(original, duplicate):
    ours = list(original.params())
    theirs = list(duplicate.params())
    assert len(ours) == len(theirs)
    for p, q in zip(ours, theirs):
        assert p is not q
        if p.data is not None:
            assert not np.shares_memory(p.data, q.data)
            np.testing.assert_array_equal(p.data, q.data)
    for a, b in zip(original.buffers(), duplicate.buffers()):
        if a is not None:
            assert not np.shares_memory(a, b)


def _train_step(layer, x) -> None:
    """One SGD step on sum(y^2), so that every parameter that took part moves."""
    layer.cleargrads()
    y = layer(x)
    F.sum(y * y).backward()
    for param in layer.params():
        if param.grad is not None:
            param.data -= 0.1 * param.grad.data


@pytest.mark.parametrize("how", list(COPIERS))
@pytest.mark.parametrize("name", list(RECIPES))
def test_copy_before_the_first_call(name, how):
    build, x = RECIPES[name]
    np.random.seed(0)
    original = build()
    duplicate = COPIERS[how](original)
    _assert_distinct(original, duplicate)
    # Lazy weights are drawn at these calls, from the same random state for both.
    np.testing.assert_array_equal(_run(duplicate, x), _run(original, x))
    _assert_distinct(original, duplicate)


@pytest.mark.parametrize("how", list(COPIERS))
@pytest.mark.parametrize("name", list(RECIPES))
def test_copy_after_a_call_computes_the_same_and_trains_independently(name, how):
    build, x = RECIPES[name]
    np.random.seed(0)
    original = build()
    _run(original, x)
    duplicate = COPIERS[how](original)
    _assert_distinct(original, duplicate)
    assert "inputs" not in duplicate.__dict__  # the last call's weak references stay behind
    np.testing.assert_array_equal(_run(duplicate, x, seed=7), _run(original, x, seed=7))

    if not list(original.params()):
        return
    before = {k: v.data.copy() for k, v in original.named_params()}
    np.random.seed(9)
    _train_step(duplicate, x)
    for key, param in original.named_params():
        np.testing.assert_array_equal(param.data, before[key])  # the original did not move
    moved = [k for k, p in duplicate.named_params() if not np.array_equal(p.data, before[k])]
    assert moved  # ...while the copy did


@pytest.mark.slow
@pytest.mark.parametrize("name", list(BIG_MODELS))
def test_big_models_copy_before_and_after_a_call(name):
    np.random.seed(0)
    original = BIG_MODELS[name]()
    x = _rand(1, 3, 32, 32)
    copies = [_pickle_copy(original), copy.deepcopy(original)]
    with test_mode():
        y = _run(original, x)
        for duplicate in copies:
            np.testing.assert_array_equal(_run(duplicate, x), y)
            _assert_distinct(original, duplicate)
        again = _pickle_copy(original)  # after the call (VGG16's fc6 is sized now)
        np.testing.assert_array_equal(_run(again, x), y)


def test_initialisers_pickle_and_draw_the_same():
    for make in (init.normal(0.1), init.uniform(0.2), init.lecun_normal(),
                 init.xavier_normal(), init.xavier_uniform(), init.he_normal(),
                 init.he_uniform(), init.constant(0.5), init.he_normal(
                     rng=np.random.default_rng(3))):
        duplicate = pickle.loads(pickle.dumps(make))
        assert repr(duplicate) == repr(make)
        np.random.seed(1)
        a = make((3, 4), np.float32)
        np.random.seed(1)
        b = duplicate((3, 4), np.float32)
        np.testing.assert_array_equal(a, b)


def test_pickled_in_one_process_loaded_in_another(tmp_path):
    np.random.seed(0)
    model = M.Sequential(L.Conv2d(3, 3, pad=1), F.relu, L.Flatten(), L.Linear(4),
                         L.BatchNorm(), L.Linear(2))
    x = _rand(4, 2, 5, 5)
    with test_mode():
        expected = model(x).data
    lazy = M.MLP((6, 2), activation=F.relu)  # never called: sized in the other process
    with open(tmp_path / "models.pkl", "wb") as f:
        pickle.dump((model, lazy, x), f)
    script = textwrap.dedent("""
        import pickle, sys
        import numpy as np
        from zerograd import test_mode
        with open(sys.argv[1], "rb") as f:
            model, lazy, x = pickle.load(f)
        with test_mode():
            y = model(x).data
        np.random.seed(0)
        z = lazy(x.reshape(len(x), -1)).data
        np.savez(sys.argv[2], y=y, z=z)
    """)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    subprocess.run([sys.executable, "-c", script, str(tmp_path / "models.pkl"),
                    str(tmp_path / "out.npz")], check=True, env=env, timeout=120)
    out = np.load(tmp_path / "out.npz")
    np.testing.assert_array_equal(out["y"], expected)
    np.random.seed(0)
    np.testing.assert_array_equal(out["z"], lazy(x.reshape(len(x), -1)).data)
