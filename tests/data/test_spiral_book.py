"""The book's spiral steps (48-50) print DeZero's numbers on zerograd.

DeZero's ``get_spiral`` reseeds NumPy's global random state, and the book's printed losses
follow from the weights and shuffles drawn after it. These loops seed the global state with
something else first, so they only agree if zerograd reseeds it exactly as DeZero does.
"""

import importlib
import math

import numpy as np
import pytest

from zerograd import datasets


def framework(name: str):
    """The package and its DeZero-named submodules (zerograd or genuine dezero)."""
    package = importlib.import_module(name)
    subs = {sub: importlib.import_module(f"{name}.{sub}")
            for sub in ("datasets", "functions", "models", "optimizers", "dataloaders")}
    return package, subs


def step48_losses(name: str, epochs: int = 300) -> list[float]:
    """Step 48: get_spiral, MLP((10, 3)), SGD(1.0), hand-made shuffled batches of 30."""
    _, m = framework(name)
    F = m["functions"]
    np.random.seed(0)  # overwritten by get_spiral, as in DeZero
    x, t = m["datasets"].get_spiral(train=True)
    model = m["models"].MLP((10, 3))
    optimizer = m["optimizers"].SGD(1.0).setup(model)
    data_size, batch_size = len(x), 30
    max_iter = math.ceil(data_size / batch_size)
    losses = []
    for _ in range(epochs):
        index = np.random.permutation(data_size)
        sum_loss = 0.0
        for i in range(max_iter):
            batch = index[i * batch_size:(i + 1) * batch_size]
            loss = F.softmax_cross_entropy(model(x[batch]), t[batch])
            model.cleargrads()
            loss.backward()
            optimizer.update()
            sum_loss += float(loss.data) * len(batch)
        losses.append(sum_loss / data_size)
    return losses


def step50_history(name: str, epochs: int = 20) -> list[tuple[float, float, float, float]]:
    """Step 50: Spiral train and test sets, DataLoader, train and test loss/accuracy."""
    package, m = framework(name)
    F = m["functions"]
    np.random.seed(0)
    train_set = m["datasets"].Spiral(train=True)
    test_set = m["datasets"].Spiral(train=False)  # reseeds again, with 2020
    train_loader = m["dataloaders"].DataLoader(train_set, 30)
    test_loader = m["dataloaders"].DataLoader(test_set, 30, shuffle=False)
    model = m["models"].MLP((10, 3))
    optimizer = m["optimizers"].SGD(1.0).setup(model)
    history = []
    for _ in range(epochs):
        sum_loss = sum_acc = 0.0
        for x, t in train_loader:
            y = model(x)
            loss = F.softmax_cross_entropy(y, t)
            acc = F.accuracy(y, t)
            model.cleargrads()
            loss.backward()
            optimizer.update()
            sum_loss += float(loss.data) * len(t)
            sum_acc += float(acc.data) * len(t)
        test_loss = test_acc = 0.0
        with package.no_grad():
            for x, t in test_loader:
                y = model(x)
                test_loss += float(F.softmax_cross_entropy(y, t).data) * len(t)
                test_acc += float(F.accuracy(y, t).data) * len(t)
        n_train, n_test = len(train_set), len(test_set)
        history.append((sum_loss / n_train, sum_acc / n_train,
                        test_loss / n_test, test_acc / n_test))
    return history


def test_step48_prints_the_books_losses(dezero):
    ours = step48_losses("zerograd")
    theirs = step48_losses("dezero")
    # zerograd keeps float32 weights: agreement to float32 rounding over 3,000 updates.
    np.testing.assert_allclose(ours, theirs, rtol=1e-4)
    # The book's printout: epoch 1..5 losses 1.13, 1.05, 0.95, 0.92, 0.87.
    assert [f"{v:.2f}" for v in ours[:5]] == ["1.13", "1.05", "0.95", "0.92", "0.87"]


def test_step50_train_and_test_numbers_match_dezero(dezero):
    ours = np.array(step50_history("zerograd"))
    theirs = np.array(step50_history("dezero"))
    np.testing.assert_allclose(ours, theirs, rtol=1e-4)


def test_step48_without_reseeding_differs(monkeypatch):
    """The same loop with the opt-out draws its weights from seed 0 instead: other losses."""
    import zerograd.data.spiral as spiral

    reseeding = step48_losses("zerograd", epochs=3)
    real = spiral.get_spiral
    monkeypatch.setattr(datasets, "get_spiral",
                        lambda train=True: real(train, seed_global=False))
    private = step48_losses("zerograd", epochs=3)
    assert not np.allclose(reseeding, private)


@pytest.mark.parametrize("train, seed", [(True, 1984), (False, 2020)])
def test_global_state_is_left_where_dezero_leaves_it(dezero, train, seed):
    np.random.seed(5)
    datasets.get_spiral(train=train)
    ours = np.random.rand(4)
    np.random.seed(5)
    dezero.datasets.get_spiral(train=train)
    np.testing.assert_array_equal(ours, np.random.rand(4))
    # ... which is: seeded, then 300 normal draws and one permutation of 300.
    np.random.seed(seed)
    np.random.randn(300)
    np.random.permutation(300)
    np.testing.assert_array_equal(ours, np.random.rand(4))


def test_opt_out_leaves_global_state_alone():
    x_global, t_global = datasets.get_spiral(seed_global=True)
    np.random.seed(11)
    expected = np.random.rand(4)
    np.random.seed(11)
    x, t = datasets.get_spiral(seed_global=False)
    ds = datasets.Spiral(train=False, seed_global=False)
    np.testing.assert_array_equal(np.random.rand(4), expected)  # the stream is undisturbed
    np.testing.assert_array_equal(x, x_global)  # and the data are the same either way
    np.testing.assert_array_equal(t, t_global)
    assert ds.seed_global is False
    np.testing.assert_array_equal(ds.data, datasets.get_spiral(train=False)[0])


def test_mnist_show_draws_the_same_tiles_as_dezero(dezero, tmp_path, monkeypatch):
    """The other global-state user among DeZero's data sets: show()'s random picks."""
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = []
    monkeypatch.setattr(plt, "show", lambda: shown.append(plt.gca().images[-1].get_array()))
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (50, 1, 28, 28), dtype=np.uint8)
    ours = datasets.MNIST.__new__(datasets.MNIST)
    theirs = dezero.datasets.MNIST.__new__(dezero.datasets.MNIST)
    ours.data = theirs.data = images
    np.random.seed(3)
    ours.show(row=3, col=4)
    after_ours = np.random.rand()
    np.random.seed(3)
    theirs.show(row=3, col=4)
    after_theirs = np.random.rand()
    plt.close("all")
    np.testing.assert_array_equal(np.asarray(shown[0]), np.asarray(shown[1]))
    assert after_ours == after_theirs  # the same draws, one randint per tile
