"""Dropout: DeZero's mask draw (seeded scripts print the same numbers), inverted scaling,
identity under test_mode(), dtypes and gradients."""

import numpy as np
import pytest

import zerograd.functions as F
from zerograd import Variable, test_mode


def test_seeded_dropout_reproduces_the_hand_computation():
    x = np.arange(12, dtype=np.float64).reshape(3, 4) + 1
    np.random.seed(0)
    y = F.dropout(Variable(x), dropout_ratio=0.3)
    np.random.seed(0)
    mask = np.random.rand(3, 4) > 0.3
    np.testing.assert_array_equal(y.data, x * mask / 0.7)
    # The next draw continues the same global stream, as it does in DeZero.
    assert np.random.rand() == pytest.approx(_stream_after(0, 12))


def _stream_after(seed, n_drawn):
    np.random.seed(seed)
    np.random.rand(n_drawn)
    return np.random.rand()


def test_dropout_matches_dezero_bit_for_bit():
    np.int = int  # dezero 0.0.13 still uses the alias NumPy 2 removed
    dezero = pytest.importorskip("dezero")
    import dezero.functions as DF

    x = np.random.default_rng(1).standard_normal((5, 6))
    np.random.seed(42)
    expected = DF.dropout(dezero.Variable(x), 0.4).data
    np.random.seed(42)
    np.testing.assert_array_equal(F.dropout(x, 0.4).data, expected)


def test_dropout_is_the_identity_in_test_mode():
    x = Variable(np.ones((2, 3)))
    state = np.random.get_state()[1].copy()
    with test_mode():
        y = F.dropout(x)
    assert y is x
    np.testing.assert_array_equal(np.random.get_state()[1], state)  # no draw either


def test_dropout_gradient_is_the_scaled_mask():
    x = Variable(np.random.default_rng(2).standard_normal((4, 5)))
    np.random.seed(3)
    y = F.dropout(x, 0.5)
    y.backward()
    kept = y.data != 0
    np.testing.assert_array_equal(x.grad.data, kept * 2.0)


def test_dropout_keeps_float32():
    x = Variable(np.ones((3, 3), dtype=np.float32))
    y = F.dropout(x, 0.25)
    y.backward()
    assert y.dtype == np.float32 and x.grad.dtype == np.float32
    assert set(np.unique(y.data)) <= {np.float32(0), np.float32(1 / 0.75)}


def test_dropout_keeps_the_expected_fraction_and_the_mean():
    np.random.seed(4)
    y = F.dropout(np.ones((200, 500)), 0.2)
    kept = (y.data != 0).mean()
    assert kept == pytest.approx(0.8, abs=0.005)
    assert y.data.mean() == pytest.approx(1.0, abs=0.01)


def test_dropout_ratio_edges_and_validation():
    x = np.random.default_rng(5).standard_normal((3, 4))
    np.testing.assert_array_equal(F.dropout(x, 0.0).data, x)
    v = Variable(x)
    y = F.dropout(v, 1.0)
    y.backward()
    np.testing.assert_array_equal(y.data, 0)
    np.testing.assert_array_equal(v.grad.data, 0)
    with pytest.raises(ValueError, match="dropout_ratio"):
        F.dropout(x, 1.5)
    with pytest.raises(ValueError, match="dropout_ratio"):
        F.dropout(x, -0.1)


def test_dropout_on_a_0d_input():
    np.random.seed(6)
    expected = np.random.rand() > 0.5
    np.random.seed(6)
    y = F.dropout(np.array(3.0), 0.5)
    assert y.shape == () and y.item() == (6.0 if expected else 0.0)
