"""Shared fixtures for the data tests: DeZero as an oracle, the shared MNIST test split."""

import os

import numpy as np
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SHARED_MNIST = os.path.join(REPO, "..", "shared", "data", "mnist")


@pytest.fixture(scope="session")
def dezero():
    """DeZero 0.0.13 (needs ``np.int`` restored under NumPy 2); skipped when absent."""
    if not hasattr(np, "int"):
        np.int = int
    return pytest.importorskip("dezero")


@pytest.fixture(scope="session")
def mnist_dir():
    if not os.path.isfile(os.path.join(SHARED_MNIST, "t10k-images-idx3-ubyte.gz")):
        pytest.skip("the shared MNIST test split (../shared/data/mnist) is absent")
    return SHARED_MNIST


@pytest.fixture
def global_rng_guard():
    """Fails the test if the global NumPy random state changed during it."""
    before = np.random.get_state()
    yield
    after = np.random.get_state()
    assert before[0] == after[0] and np.array_equal(before[1], after[1])
    assert before[2:] == after[2:]
