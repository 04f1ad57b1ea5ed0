import pickle

import numpy as np

import zerograd
from zerograd import random_state


def test_seed_seeds_numpy_global_state():
    zerograd.seed(123)
    a = np.random.rand(4)
    np.random.seed(123)
    np.testing.assert_array_equal(a, np.random.rand(4))
    assert zerograd.seed is random_state.seed


def test_state_roundtrip_is_exact_and_picklable():
    zerograd.seed(0)
    np.random.randn()  # leaves a cached gaussian in the state
    state = pickle.loads(pickle.dumps(random_state.get_state()))
    expected = (np.random.randn(5), np.random.permutation(7))
    np.random.seed(99)
    random_state.set_state(state)
    got = (np.random.randn(5), np.random.permutation(7))
    np.testing.assert_array_equal(got[0], expected[0])
    np.testing.assert_array_equal(got[1], expected[1])
