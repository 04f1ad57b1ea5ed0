"""Specs for the normalization family (zerograd/ops/normalization.py)."""

import numpy as np

import zerograd.functions as F
from tests.ops.harness import OpSpec
from zerograd import test_mode

RUNNING_MEAN = np.array([0.1, -0.2, 0.3])
RUNNING_VAR = np.array([0.5, 1.5, 2.0])


def np_standardize(x, axes, eps):
    mean = x.mean(axis=axes, keepdims=True)
    var = x.var(axis=axes, keepdims=True)
    return (x - mean) / np.sqrt(var + eps)


def channel_shape(x):
    return (1, x.shape[1]) + (1,) * (x.ndim - 2)


def np_batch_norm_train(x, gamma, beta, eps=2e-5):
    axes = (0,) + tuple(range(2, x.ndim))
    shape = channel_shape(x)
    return np_standardize(x, axes, eps) * gamma.reshape(shape) + beta.reshape(shape)


def np_batch_norm_test(x, gamma, beta, eps=2e-5):
    shape = channel_shape(x)
    xhat = (x - RUNNING_MEAN.reshape(shape)) / np.sqrt(RUNNING_VAR.reshape(shape) + eps)
    return xhat * gamma.reshape(shape) + beta.reshape(shape)


def batch_norm_train(x, gamma, beta):
    # Fresh running statistics per call: the harness calls the op many times.
    c = gamma.size
    return F.batch_norm(x, gamma, beta, np.zeros(c), np.ones(c))


def batch_norm_test(x, gamma, beta):
    with test_mode():
        return F.batch_norm(x, gamma, beta, RUNNING_MEAN.copy(), RUNNING_VAR.copy())


def np_layer_norm(x, gamma, beta, eps=1e-5, n_axes=1):
    return np_standardize(x, tuple(range(-n_axes, 0)), eps) * gamma + beta


def np_group_norm(x, gamma, beta, num_groups=2, eps=1e-5):
    n, c = x.shape[:2]
    xhat = np_standardize(x.reshape(n, num_groups, -1), (2,), eps).reshape(x.shape)
    shape = channel_shape(x)
    return xhat * gamma.reshape(shape) + beta.reshape(shape)


def x_gamma_beta(rng, shapes, dtype):
    x_shape, gamma_shape, beta_shape = shapes
    return [rng.uniform(-2, 2, x_shape), rng.uniform(0.5, 1.5, gamma_shape),
            rng.uniform(-1, 1, beta_shape)]


SPECS = [
    OpSpec("batch_norm", batch_norm_train, np_batch_norm_train,
           shapes=[((5, 3), (3,), (3,)), ((2, 3, 2, 2), (3,), (3,))], make_inputs=x_gamma_beta,
           covers=["batch_norm", "batch_nrom"], zero_d=False),
    OpSpec("batch_norm_test_mode", batch_norm_test, np_batch_norm_test,
           shapes=[((4, 3), (3,), (3,)), ((2, 3, 2, 2), (3,), (3,))], make_inputs=x_gamma_beta,
           covers=[], zero_d=False),
    OpSpec("layer_norm", F.layer_norm, np_layer_norm,
           shapes=[((3, 5), (5,), (5,)), ((2, 3, 4), (4,), (4,))], make_inputs=x_gamma_beta,
           zero_d=False),
    OpSpec("layer_norm_two_axes",
           lambda x, g, b: F.layer_norm(x, g, b, normalized_shape=(3, 4)),
           lambda x, g, b: np_layer_norm(x, g, b, n_axes=2),
           shapes=[((2, 3, 4), (3, 4), (3, 4))], make_inputs=x_gamma_beta, covers=[], zero_d=False),
    OpSpec("group_norm", lambda x, g, b: F.group_norm(x, 2, g, b), np_group_norm,
           shapes=[((2, 4, 3), (4,), (4,)), ((2, 4, 2, 2), (4,), (4,))],
           make_inputs=x_gamma_beta, zero_d=False),
]
