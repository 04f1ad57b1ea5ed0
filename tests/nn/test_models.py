"""Model, Sequential and MLP: structure, training, plot, summary."""

import numpy as np
import pytest

import zerograd.functions as F
import zerograd.layers as L
import zerograd.optimizers as O
from tests.nn.helpers import import_dezero, require_ops
from zerograd import Variable, utils
from zerograd.models import MLP, Model, Sequential


def test_mlp_structure_matches_dezero():
    model = MLP((10, 5, 1))
    assert [k for k, _ in model.named_params()] == ["l0/W", "l0/b", "l1/W", "l1/b", "l2/W",
                                                      "l2/b"]
    assert model.activation is F.sigmoid
    assert [layer.out_size for layer in model.layers] == [10, 5, 1]
    assert repr(model).splitlines()[:2] == ["MLP(activation=sigmoid",
                                            "  (l0): Linear(in_size=None, out_size=10)"]


@require_ops("linear", "sigmoid")
def test_mlp_forward_applies_activation_between_layers_only():
    np.random.seed(0)
    model = MLP((3, 2))
    x = np.random.rand(4, 5).astype(np.float32)
    y = model(x)
    l0, l1 = model.layers
    h = 1 / (1 + np.exp(-(x @ l0.W.data + l0.b.data)))
    np.testing.assert_allclose(y.data, h @ l1.W.data + l1.b.data, rtol=1e-5, atol=1e-6)
    assert y.dtype == np.float32


@require_ops("linear", "sigmoid")
def test_mlp_same_numbers_as_dezero_for_the_same_seed():
    dezero = import_dezero()
    x = np.random.default_rng(1).normal(size=(6, 2)).astype(np.float32)
    np.random.seed(0)
    theirs = dezero.models.MLP((4, 1))(x).data
    np.random.seed(0)
    ours = MLP((4, 1))(x).data
    np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-6)


@pytest.mark.slow
@require_ops("linear", "sigmoid", "mean_squared_error")
def test_mlp_learns_a_small_regression():
    # The book's step 45 task: y = sin(2 pi x) + noise, MLP((10, 1)), SGD lr 0.2.
    # Mean squared error starts near 0.7 and must fall below 0.1 (noise floor ~0.08).
    np.random.seed(0)
    x = np.random.rand(100, 1).astype(np.float32)
    y = (np.sin(2 * np.pi * x) + np.random.rand(100, 1)).astype(np.float32)
    model = MLP((10, 1))
    optimizer = O.SGD(lr=0.2).setup(model)
    losses = []
    for _ in range(10000):
        loss = F.mean_squared_error(model(x), y)
        model.cleargrads()
        loss.backward()
        optimizer.update()
        losses.append(float(loss.data))
    assert losses[0] > 0.5
    assert losses[-1] < 0.1
    assert all(p.data.dtype == np.float32 for p in model.params())


@require_ops("linear", "relu", "mean_squared_error")
def test_sequential_with_a_plain_function_takes_a_correct_training_step():
    np.random.seed(0)
    model = Sequential(L.Linear(4, in_size=3), F.relu, L.Linear(1, in_size=4))
    assert model.l1 is F.relu and len(model) == 3 and model[1] is F.relu
    assert [k for k, _ in model.named_params()] == ["l0/W", "l0/b", "l2/W", "l2/b"]
    x = np.random.rand(8, 3).astype(np.float32)
    t = np.random.rand(8, 1).astype(np.float32)
    W0, b0 = model.l0.W.data.copy(), model.l0.b.data.copy()
    W2, b2 = model.l2.W.data.copy(), model.l2.b.data.copy()

    loss = F.mean_squared_error(model(x), t)
    model.cleargrads()
    loss.backward()
    O.SGD(lr=0.1).setup(model).update()

    # The same step by hand: forward, MSE (sum / batch), backward through relu.
    h_pre = x @ W0 + b0
    h = np.maximum(h_pre, 0)
    y = h @ W2 + b2
    assert float(loss.data) == pytest.approx(((y - t) ** 2).sum() / 8, rel=1e-5)
    gy = 2 * (y - t) / 8
    gW2, gb2 = h.T @ gy, gy.sum(0)
    gh = (gy @ W2.T) * (h_pre > 0)
    gW0, gb0 = x.T @ gh, gh.sum(0)
    for p, before, g in [(model.l0.W, W0, gW0), (model.l0.b, b0, gb0),
                         (model.l2.W, W2, gW2), (model.l2.b, b2, gb2)]:
        np.testing.assert_allclose(p.data, before - 0.1 * g, rtol=1e-5, atol=1e-6)
        assert p.data.dtype == np.float32


def test_sequential_repr_lists_functions_and_rejects_non_callables():
    model = Sequential(L.Linear(2), F.relu)
    assert repr(model) == ("Sequential(\n  (l0): Linear(in_size=None, out_size=2)\n"
                           "  (l1): relu\n)")
    with pytest.raises(TypeError, match="entry 1 is a int"):
        Sequential(L.Linear(2), 3)


def test_model_plot_draws_the_forward_graph(tmp_path, monkeypatch):
    calls = []

    def fake_plot(y, verbose=True, to_file="graph.png"):
        calls.append((y, verbose, to_file))
        return "image"

    monkeypatch.setattr(utils, "plot_dot_graph", fake_plot)

    class Double(Model):
        def forward(self, x):
            return x * 2.0

    x = Variable(np.ones(2))
    out = Double().plot(x, to_file=str(tmp_path / "m.png"))
    assert out == "image"
    (y, verbose, to_file), = calls
    np.testing.assert_array_equal(y.data, [2, 2])
    assert verbose is True and to_file.endswith("m.png")


@require_ops("linear", "relu", "dropout")
def test_summary_lists_layers_shapes_and_counts():
    np.random.seed(0)
    model = Sequential(L.Linear(16), F.relu, L.Dropout(0.5), L.Linear(3))
    text = model.summary((5, 8))
    lines = text.splitlines()
    assert lines[0].split() == ["layer", "type", "output", "shape", "params"]
    body = [line.split(None, 2) for line in lines[2:6]]
    assert [row[0] for row in body] == ["Sequential", "l0", "l2", "l3"]
    assert "(5, 16)" in lines[3] and lines[3].rstrip().endswith("144")
    assert "(5, 3)" in lines[5] and lines[5].rstrip().endswith("51")
    assert lines[-1] == "total parameters: 195"
    assert model.training  # summary does not switch modes


@require_ops("linear", "sigmoid")
def test_model_weights_round_trip_after_training_step(tmp_path):
    np.random.seed(0)
    model = MLP((4, 2))
    x = np.random.rand(3, 5).astype(np.float32)
    y = model(x)
    model.save_weights(tmp_path / "mlp.npz")
    np.random.seed(1)
    other = MLP((4, 2))
    other.load_weights(tmp_path / "mlp.npz")  # lazy layers take the saved arrays
    np.testing.assert_array_equal(other(x).data, y.data)


def test_vision_models_are_reachable_from_zerograd_models():
    import zerograd.models as models

    for name in ("VGG16", "ResNet", "ResNet50", "ResNet101", "ResNet152", "LeNet",
                 "SmallResNet", "BuildingBlock", "BottleneckA", "BottleneckB"):
        assert name in models.__all__
        assert isinstance(getattr(models, name), type)
