"""Normalization semantics: batch norm's modes and running statistics (against hand
computations and DeZero), frozen-statistics backward, layer/group norm, errors."""

import numpy as np
import pytest

import zerograd.functions as F
from zerograd import Variable, test_mode
from zerograd.errors import DTypeError, ShapeError


@pytest.fixture(scope="module")
def dezero():
    np.int = int  # dezero 0.0.13 still uses the alias NumPy 2 removed
    return pytest.importorskip("dezero")


def test_batch_nrom_is_deZeros_spelling_of_batch_norm():
    assert F.batch_nrom is F.batch_norm


def test_batch_norm_train_normalises_with_batch_stats_and_updates_running_stats_in_place():
    rng = np.random.default_rng(0)
    x = rng.normal(3.0, 2.0, (8, 3))
    gamma, beta = np.array([1.0, 2.0, 0.5]), np.array([0.0, -1.0, 1.0])
    mean, var = np.full(3, 0.5), np.full(3, 2.0)
    mean_before, var_before = mean.copy(), var.copy()
    mean_id, var_id = id(mean), id(var)

    y = F.batch_norm(x, gamma, beta, mean, var, decay=0.9, eps=2e-5)

    xhat = (x - x.mean(axis=0)) / np.sqrt(x.var(axis=0) + 2e-5)
    np.testing.assert_allclose(y.data, xhat * gamma + beta, rtol=1e-12)
    assert id(mean) == mean_id and id(var) == var_id
    np.testing.assert_allclose(mean, 0.9 * mean_before + 0.1 * x.mean(axis=0))
    np.testing.assert_allclose(var, 0.9 * var_before + 0.1 * x.var(axis=0) * 8 / 7)


def test_batch_norm_4d_uses_per_channel_statistics():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 3, 4, 5))
    mean, var = np.zeros(3), np.ones(3)
    y = F.batch_norm(x, np.ones(3), np.zeros(3), mean, var)
    np.testing.assert_allclose(y.data.mean(axis=(0, 2, 3)), 0, atol=1e-12)
    np.testing.assert_allclose(y.data.var(axis=(0, 2, 3)), 1, rtol=1e-3)
    m = 2 * 4 * 5
    np.testing.assert_allclose(var, 0.9 + 0.1 * x.var(axis=(0, 2, 3)) * m / (m - 1))


def test_batch_norm_test_mode_uses_running_stats_and_leaves_them_alone():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((4, 2))
    mean, var = np.array([0.5, -0.5]), np.array([4.0, 0.25])
    with test_mode():
        y = F.batch_norm(x, np.array([2.0, 1.0]), np.array([0.0, 1.0]), mean, var, eps=0.0)
    np.testing.assert_allclose(y.data, (x - mean) / np.sqrt(var) * [2.0, 1.0] + [0.0, 1.0])
    np.testing.assert_array_equal(mean, [0.5, -0.5])
    np.testing.assert_array_equal(var, [4.0, 0.25])


def test_batch_norm_backward_in_test_mode_frozen_statistics():
    """DeZero bug 8: its backward fails under test_mode(). Fine-tuning needs it."""
    rng = np.random.default_rng(3)
    x = Variable(rng.standard_normal((5, 3)))
    gamma, beta = Variable(np.array([1.0, 2.0, 3.0])), Variable(np.zeros(3))
    mean, var = rng.standard_normal(3), rng.uniform(0.5, 2, 3)
    gy = rng.standard_normal((5, 3))
    with test_mode():
        y = F.batch_norm(x, gamma, beta, mean, var)
    (y * gy).sum().backward()
    inv_std = 1 / np.sqrt(var + 2e-5)
    np.testing.assert_allclose(x.grad.data, gy * gamma.data * inv_std)
    np.testing.assert_allclose(gamma.grad.data, (gy * (x.data - mean) * inv_std).sum(axis=0))
    np.testing.assert_allclose(beta.grad.data, gy.sum(axis=0))


def test_batch_norm_train_gradient_by_formula():
    rng = np.random.default_rng(4)
    x = Variable(rng.standard_normal((6, 2)))
    gamma = Variable(np.array([1.5, -0.5]))
    gy = rng.standard_normal((6, 2))
    (F.batch_norm(x, gamma, np.zeros(2), np.zeros(2), np.ones(2)) * gy).sum().backward()
    inv_std = 1 / np.sqrt(x.data.var(axis=0) + 2e-5)
    xhat = (x.data - x.data.mean(axis=0)) * inv_std
    expected = gamma.data * inv_std * (gy - gy.mean(axis=0) - xhat * (gy * xhat).mean(axis=0))
    np.testing.assert_allclose(x.grad.data, expected, rtol=1e-10)


@pytest.mark.parametrize("shape", [(6, 3), (2, 3, 2, 2)])
def test_batch_norm_matches_dezero_values_running_stats_and_grads(dezero, shape):
    import dezero.functions as DF

    rng = np.random.default_rng(5)
    x = rng.standard_normal(shape)
    gamma, beta = rng.uniform(0.5, 1.5, 3), rng.standard_normal(3)
    ours_stats = [np.zeros(3), np.ones(3)]
    theirs_stats = [np.zeros(3), np.ones(3)]
    xv, gv = Variable(x), Variable(gamma)
    y = F.batch_norm(xv, gv, beta, *ours_stats)
    dx, dg = dezero.Variable(x), dezero.Variable(gamma)
    y_ref = DF.batch_nrom(dx, dg, dezero.Variable(beta), *theirs_stats)
    np.testing.assert_allclose(y.data, y_ref.data, rtol=1e-10, atol=1e-12)
    for ours, theirs in zip(ours_stats, theirs_stats):
        np.testing.assert_allclose(ours, theirs, rtol=1e-12)
    y.backward()
    y_ref.backward()
    np.testing.assert_allclose(xv.grad.data, dx.grad.data, atol=1e-10)
    np.testing.assert_allclose(gv.grad.data, dg.grad.data, atol=1e-10)
    with test_mode(), dezero.test_mode():
        y = F.batch_norm(x, gamma, beta, *ours_stats)
        y_ref = DF.batch_nrom(x, gamma, beta, *theirs_stats)
    np.testing.assert_allclose(y.data, y_ref.data, rtol=1e-10, atol=1e-12)


def test_batch_norm_float32_stays_float32_with_float64_running_stats():
    x = Variable(np.random.default_rng(6).standard_normal((4, 3)).astype(np.float32))
    gamma = Variable(np.ones(3, dtype=np.float32))
    mean, var = np.zeros(3), np.ones(3)
    for mode_is_test in (False, True):
        if mode_is_test:
            with test_mode():
                y = F.batch_norm(x, gamma, np.zeros(3, np.float32), mean, var)
        else:
            y = F.batch_norm(x, gamma, np.zeros(3, np.float32), mean, var)
        x.cleargrad()
        gamma.cleargrad()
        y.sum().backward()
        assert y.dtype == np.float32 and x.grad.dtype == np.float32
        assert gamma.grad.dtype == np.float32
    assert mean.dtype == np.float64


def test_batch_norm_without_running_stats_uses_batch_stats_in_both_modes():
    x = np.random.default_rng(7).standard_normal((5, 2))
    with test_mode():
        y = F.batch_norm(x, np.ones(2), np.zeros(2), None, None)
    np.testing.assert_allclose(y.data.mean(axis=0), 0, atol=1e-12)


def test_batch_norm_second_order_in_both_modes():
    rng = np.random.default_rng(8)
    for use_test_mode in (False, True):
        x = Variable(rng.standard_normal((4, 2)))
        gamma = Variable(np.array([1.2, 0.7]))
        if use_test_mode:
            with test_mode():
                y = F.batch_norm(x, gamma, np.zeros(2), np.zeros(2), np.full(2, 2.0))
        else:
            y = F.batch_norm(x, gamma, np.zeros(2), np.zeros(2), np.full(2, 2.0))
        (y ** 3).sum().backward(create_graph=True)
        gx = x.grad
        x.cleargrad()
        gamma.cleargrad()
        (gx * gx).sum().backward()
        assert gamma.grad is not None and np.isfinite(gamma.grad.data).all()


def test_batch_norm_shape_errors():
    with pytest.raises(ShapeError, match="gamma has shape"):
        F.batch_norm(np.zeros((2, 3)), np.ones(4), np.zeros(3), np.zeros(3), np.ones(3))
    with pytest.raises(ShapeError, match="batch_norm"):
        F.batch_norm(np.zeros(3), np.ones(3), np.zeros(3), np.zeros(3), np.ones(3))
    with pytest.raises(DTypeError, match="float"):
        F.batch_norm(np.zeros((2, 3), int), np.ones(3), np.zeros(3), np.zeros(3), np.ones(3))


def test_layer_norm_by_hand():
    x = np.array([[1.0, 2.0, 3.0], [0.0, 0.0, 6.0]])
    y = F.layer_norm(x, np.array([1.0, 1.0, 2.0]), np.array([0.0, 1.0, 0.0]), eps=0.0)
    xhat = (x - x.mean(axis=1, keepdims=True)) / x.std(axis=1, keepdims=True)
    np.testing.assert_allclose(y.data, xhat * [1.0, 1.0, 2.0] + [0.0, 1.0, 0.0])


def test_layer_norm_without_affine_and_errors():
    x = np.random.default_rng(9).standard_normal((2, 3, 4))
    y = F.layer_norm(x, normalized_shape=(3, 4))
    np.testing.assert_allclose(y.data.reshape(2, -1).mean(axis=1), 0, atol=1e-12)
    with pytest.raises(ShapeError, match="normalized_shape"):
        F.layer_norm(x, normalized_shape=(4, 3))
    with pytest.raises(ShapeError, match="gamma"):
        F.layer_norm(x, np.ones(3), np.zeros(4))


def test_group_norm_by_hand_and_errors():
    x = np.random.default_rng(10).standard_normal((2, 4, 3))
    y = F.group_norm(x, 2, eps=0.0)
    grouped = x.reshape(2, 2, 6)
    expected = (grouped - grouped.mean(axis=2, keepdims=True)) / grouped.std(axis=2, keepdims=True)
    np.testing.assert_allclose(y.data, expected.reshape(x.shape), atol=1e-12)
    with pytest.raises(ShapeError, match="3 equal groups"):
        F.group_norm(x, 3)
    with pytest.raises(ShapeError, match="gamma"):
        F.group_norm(x, 2, np.ones(2))


def test_group_norm_with_one_group_per_channel_is_instance_norm():
    x = np.random.default_rng(11).standard_normal((2, 3, 4, 4))
    y = F.group_norm(x, 3, eps=0.0)
    np.testing.assert_allclose(y.data.mean(axis=(2, 3)), 0, atol=1e-12)
    np.testing.assert_allclose(y.data.std(axis=(2, 3)), 1, rtol=1e-10)


# -- empty batches: no statistics, so the running ones stay as they are (PyTorch's rule) ------
@pytest.mark.parametrize("shape", [(0, 3), (0, 3, 2, 2), (2, 3, 0, 4)])
def test_batch_norm_of_an_empty_batch_leaves_running_statistics_untouched(shape):
    mean, var = np.array([0.5, -1.0, 2.0]), np.array([2.0, 0.5, 1.0])
    x = Variable(np.zeros(shape, np.float32))
    gamma, beta = Variable(np.ones(3, np.float32)), Variable(np.zeros(3, np.float32))
    y = F.batch_norm(x, gamma, beta, mean, var)
    assert y.shape == shape and y.dtype == np.float32
    np.testing.assert_array_equal(mean, [0.5, -1.0, 2.0])
    np.testing.assert_array_equal(var, [2.0, 0.5, 1.0])
    y.sum().backward()
    assert x.grad.shape == shape
    np.testing.assert_array_equal(gamma.grad.data, np.zeros(3))
    np.testing.assert_array_equal(beta.grad.data, np.zeros(3))


def test_batch_norm_layer_survives_an_empty_batch_between_real_ones():
    """The layer's statistics after batches A, empty, B equal those after A, B (they used
    to turn nan for good at the empty batch), and match torch's BatchNorm1d."""
    import zerograd.layers as L

    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    a, b = (rng.standard_normal((4, 3)).astype(np.float32) for _ in range(2))
    layer = L.BatchNorm()
    for batch in (a, np.zeros((0, 3), np.float32), b):
        layer(batch)
    reference = torch.nn.BatchNorm1d(3, momentum=0.1, eps=2e-5)
    for batch in (a, np.zeros((0, 3), np.float32), b):
        reference(torch.tensor(batch))
    np.testing.assert_allclose(layer.avg_mean, reference.running_mean.numpy(), rtol=1e-6)
    np.testing.assert_allclose(layer.avg_var, reference.running_var.numpy(), rtol=1e-6)


def test_batch_norm_double_backward_of_an_empty_batch_is_empty():
    x = Variable(np.zeros((0, 2)))
    gamma = Variable(np.ones(2))
    y = F.batch_norm(x, gamma, Variable(np.zeros(2)), np.zeros(2), np.ones(2))
    (y * y).sum().backward(create_graph=True)
    gx, ggamma = x.grad, gamma.grad
    np.testing.assert_array_equal(ggamma.data, np.zeros(2))
    x.cleargrad()
    gamma.cleargrad()
    (gx.sum() + ggamma.sum()).backward()
    assert x.grad.shape == (0, 2)
    np.testing.assert_array_equal(gamma.grad.data, np.zeros(2))


@pytest.mark.parametrize("shape", [(3,), [3], 3])
def test_layer_norm_with_a_shape_as_second_argument_says_how_to_pass_it(shape):
    """PyTorch's layer_norm(x, normalized_shape) takes the shape second; here it is gamma."""
    with pytest.raises(DTypeError, match=r"layer_norm: gamma is .*3.*, a shape, not an array; "
                                         r".*write layer_norm\(x, normalized_shape="):
        F.layer_norm(np.zeros((2, 3)), shape)


def test_layer_norm_normalized_shape_keyword_matches_torch():
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(0).standard_normal((2, 3, 4))
    y = F.layer_norm(x, normalized_shape=(3, 4))
    expected = torch.nn.functional.layer_norm(torch.tensor(x), (3, 4), eps=1e-5)
    np.testing.assert_allclose(y.data, expected.numpy(), rtol=1e-12, atol=1e-12)
