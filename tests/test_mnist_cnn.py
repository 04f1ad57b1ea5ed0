"""A shorter run of examples/mnist_cnn.py on the real MNIST images: at least 95% test accuracy.

Skipped when ``../shared/data/mnist`` is absent. The full example (docs/cnn.md) reaches 98%.
"""

import importlib.util
import os

import numpy as np
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED_MNIST = os.path.join(REPO, "..", "shared", "data", "mnist")
HAVE_MNIST = os.path.isfile(os.path.join(SHARED_MNIST, "t10k-images-idx3-ubyte.gz"))


def _example():
    spec = importlib.util.spec_from_file_location(
        "mnist_cnn_example", os.path.join(REPO, "examples", "mnist_cnn.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
@pytest.mark.skipif(not HAVE_MNIST, reason="needs ../shared/data/mnist")
def test_short_mnist_cnn_run_reaches_95_percent():
    example = _example()
    # A small LeNet (8 and 16 channels), two epochs over the first 8,000 images.
    result = example.run(epochs=2, channels=(8, 16), hidden_size=64, lr=2e-3,
                         data_dir=SHARED_MNIST, verbose=False)
    assert result["accuracy"] >= 0.95, result
    assert result["losses"][1] < result["losses"][0]
    model = result["model"]
    assert all(p.dtype == np.float32 for p in model.params())


@pytest.mark.skipif(not HAVE_MNIST, reason="needs ../shared/data/mnist")
def test_split_is_first_8000_and_last_2000():
    example = _example()
    x_train, t_train, x_test, t_test = example.load_split(SHARED_MNIST)
    assert x_train.shape == (8000, 1, 28, 28) and x_test.shape == (2000, 1, 28, 28)
    assert x_train.dtype == np.float32 and 0.0 <= x_train.min() and x_train.max() <= 1.0
    # The MNIST readme: the test split's labels start 7 2 1 0 4 1 4 9 5 9.
    assert list(t_train[:10]) == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
    assert len(t_test) == 2000


def test_random_shift_moves_each_image_within_bounds():
    example = _example()
    x = np.zeros((4, 1, 6, 6), np.float32)
    x[:, 0, 2:4, 2:4] = 1.0
    shifted = example.random_shift(x, 2, np.random.default_rng(0))
    assert shifted.shape == x.shape and shifted.dtype == np.float32
    np.testing.assert_array_equal(shifted.sum(axis=(1, 2, 3)), 4.0)  # the blob stays inside
    assert example.random_shift(x, 0, np.random.default_rng(0)) is x
