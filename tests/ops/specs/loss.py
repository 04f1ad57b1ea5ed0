"""Specs for the loss family (zerograd/ops/loss.py): forward vs NumPy, gradients, dtypes."""

import functools
import warnings

import numpy as np

import zerograd.functions as F
from tests.ops.harness import OpSpec

NOT_DIFFERENTIABLE = {"accuracy"}


def broadcasting(loss):
    """``loss`` with its different-shapes UserWarning silenced: these specs broadcast on
    purpose, to check the gradients (the warning has its own tests)."""

    @functools.wraps(loss)
    def quiet(*args, **kwargs):
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".* differs from .* shape",
                                    category=UserWarning)
            return loss(*args, **kwargs)

    return quiet


# -- NumPy references ----------------------------------------------------------------------
def np_log_softmax(x, axis=1):
    m = x.max(axis=axis, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis=axis, keepdims=True))


def np_mse(x0, x1):
    diff = x0 - x1
    return np.sum(diff ** 2) / len(diff)


def np_softmax_cross_entropy(x, t):
    log_p = np_log_softmax(x)
    return -log_p[np.arange(len(x)), t.ravel()].mean()


def np_sigmoid_cross_entropy(x, t):
    t = t.reshape(x.shape)
    p = 1 / (1 + np.exp(-x))
    return -np.sum(t * np.log(p) + (1 - t) * np.log(1 - p)) / len(x)


def np_binary_cross_entropy(p, t):
    return -np.sum(t * np.log(p) + (1 - t) * np.log(1 - p)) / len(p)


def np_reduce(losses, reduction, count=None):
    if reduction == "none":
        return losses
    if reduction == "sum":
        return losses.sum()
    return losses.sum() / (losses.size if count is None else count)


def np_nll(log_p, t, ignore_index=-100, reduction="mean"):
    keep = t != ignore_index
    picked = np.take_along_axis(log_p, np.expand_dims(np.where(keep, t, 0), 1), axis=1)[:, 0]
    return np_reduce(np.where(keep, -picked, 0), reduction, keep.sum())


def np_cross_entropy(x, t, label_smoothing=0.0, ignore_index=-100, reduction="mean"):
    log_p = np_log_softmax(x)
    n_classes = x.shape[1]
    if t.dtype.kind == "f":
        q = t * (1 - label_smoothing) + label_smoothing / n_classes
        return np_reduce(-(q * log_p).sum(axis=1), reduction)
    keep = t != ignore_index
    picked = np.take_along_axis(log_p, np.expand_dims(np.where(keep, t, 0), 1), axis=1)[:, 0]
    losses = -(1 - label_smoothing) * picked - label_smoothing * log_p.mean(axis=1)
    return np_reduce(np.where(keep, losses, 0), reduction, keep.sum())


def np_huber(x, t, delta=1.0, reduction="mean"):
    d = np.abs(x - t)
    h = np.where(d <= delta, 0.5 * d ** 2, delta * (d - 0.5 * delta))
    return np_reduce(h, reduction)


def np_l1(x, t, reduction="mean"):
    return np_reduce(np.abs(x - t), reduction)


def np_kl_div(log_q, p, reduction="batchmean", log_target=False):
    if log_target:
        pointwise = np.exp(p) * (p - log_q)
    else:
        pointwise = np.where(p > 0, p * (np.log(np.where(p > 0, p, 1)) - log_q), 0)
    if reduction == "batchmean":
        return pointwise.sum() / len(log_q)
    return np_reduce(pointwise, reduction)


def np_cosine(x1, x2, axis=1, eps=1e-8):
    ndim = max(x1.ndim, x2.ndim)
    x1, x2 = x1.reshape((1,) * (ndim - x1.ndim) + x1.shape), x2.reshape(
        (1,) * (ndim - x2.ndim) + x2.shape)
    n1 = np.maximum(np.sqrt((x1 * x1).sum(axis=axis, keepdims=True)), eps)
    n2 = np.maximum(np.sqrt((x2 * x2).sum(axis=axis, keepdims=True)), eps)
    return np.squeeze((x1 * x2).sum(axis=axis, keepdims=True) / (n1 * n2), axis=axis)


# -- input makers ----------------------------------------------------------------------------
def logits_and_labels(rng, shapes, dtype):
    (x_shape, t_shape) = shapes
    n_classes = x_shape[1]
    return [rng.uniform(-3, 3, size=x_shape), rng.integers(0, n_classes, size=t_shape)]


def logits_and_labels_with_ignored(rng, shapes, dtype):
    x, t = logits_and_labels(rng, shapes, dtype)
    t.reshape(-1)[::3] = -100
    return [x, t]


def logits_and_probabilities(rng, shapes, dtype):
    x_shape, _ = shapes
    t = rng.uniform(0.1, 1.0, size=x_shape)
    return [rng.uniform(-3, 3, size=x_shape), t / t.sum(axis=1, keepdims=True)]


def log_probs_and_labels(rng, shapes, dtype):
    x, t = logits_and_labels_with_ignored(rng, shapes, dtype)
    return [np_log_softmax(x), t]


def logits_and_binary_labels(rng, shapes, dtype):
    x_shape, t_shape = shapes
    return [rng.uniform(-4, 4, size=x_shape), rng.integers(0, 2, size=t_shape)]


def huber_inputs(rng, shapes, dtype):
    """|x - t| spread over both sides of delta = 1, never within 0.05 of it."""
    x_shape, t_shape = shapes
    magnitude = np.concatenate([rng.uniform(0.1, 0.9, 50), rng.uniform(1.1, 3.0, 50)])
    d = rng.choice(magnitude, size=x_shape) * rng.choice([-1, 1], size=x_shape)
    t = rng.uniform(-1, 1, size=t_shape)
    return [t + d, t]


def l1_inputs(rng, shapes, dtype):
    x_shape, t_shape = shapes
    d = rng.uniform(0.1, 2.0, size=x_shape) * rng.choice([-1, 1], size=x_shape)
    t = rng.uniform(-1, 1, size=t_shape)
    return [t + d, t]


def kl_inputs(rng, shapes, dtype):
    x_shape, p_shape = shapes
    p = rng.uniform(0.05, 1.0, size=p_shape)
    return [np_log_softmax(rng.uniform(-2, 2, size=x_shape)), p / p.sum(axis=-1, keepdims=True)]


def kl_inputs_with_zero_targets(rng, shapes, dtype):
    log_q, p = kl_inputs(rng, shapes, dtype)
    p[..., 0] = 0.0
    return [log_q, p]


# -- specs -------------------------------------------------------------------------------------
SPECS = [
    OpSpec("mean_squared_error", broadcasting(F.mean_squared_error), np_mse,
           shapes=[((4, 3), (4, 3)), ((4, 3), (3,)), ((5,), (5,)), ((2, 1, 3), (4, 3))],
           zero_d=False),
    OpSpec("mean_squared_error_simple", broadcasting(F.mean_squared_error_simple), np_mse,
           shapes=[((4, 3), (4, 3)), ((4, 3), (3,))], zero_d=False),
    OpSpec("softmax_cross_entropy", F.softmax_cross_entropy, np_softmax_cross_entropy,
           shapes=[((4, 3), (4,)), ((6, 5), (2, 3)), ((1, 2), (1,))],
           make_inputs=logits_and_labels, zero_d=False),
    OpSpec("softmax_cross_entropy_simple", F.softmax_cross_entropy_simple,
           np_softmax_cross_entropy, shapes=[((4, 3), (4,))], make_inputs=logits_and_labels,
           zero_d=False),
    OpSpec("sigmoid_cross_entropy", F.sigmoid_cross_entropy, np_sigmoid_cross_entropy,
           shapes=[((5, 1), (5,)), ((3, 4), (3, 4))], make_inputs=logits_and_binary_labels,
           zero_d=False),
    OpSpec("sigmoid_cross_entropy_soft_targets", F.sigmoid_cross_entropy,
           np_sigmoid_cross_entropy, shapes=[((3, 4), (3, 4))], domain=[(-4, 4), (0, 1)],
           covers=[], zero_d=False),
    OpSpec("binary_cross_entropy", F.binary_cross_entropy, np_binary_cross_entropy,
           shapes=[((4, 3), (4, 3)), ((5,), (5,))], domain=[(0.05, 0.95), (0, 1)], zero_d=False),
    OpSpec("nll_loss", F.nll_loss, np_nll, shapes=[((6, 4), (6,)), ((3, 4, 5), (3, 5))],
           make_inputs=log_probs_and_labels, double_backward=False, zero_d=False),
    OpSpec("nll_loss_sum", F.nll_loss, np_nll, kwargs={"reduction": "sum"},
           shapes=[((6, 4), (6,))], make_inputs=log_probs_and_labels, double_backward=False,
           covers=[], zero_d=False),
    OpSpec("nll_loss_none", F.nll_loss, np_nll, kwargs={"reduction": "none"},
           shapes=[((6, 4), (6,)), ((2, 3, 2, 2), (2, 2, 2))], make_inputs=log_probs_and_labels,
           double_backward=False, covers=[], zero_d=False),
    OpSpec("cross_entropy", F.cross_entropy, np_cross_entropy,
           shapes=[((5, 4), (5,)), ((2, 3, 4), (2, 4))], make_inputs=logits_and_labels,
           zero_d=False),
    OpSpec("cross_entropy_smoothing_ignore", F.cross_entropy, np_cross_entropy,
           kwargs={"label_smoothing": 0.2, "ignore_index": -100},
           shapes=[((6, 4), (6,)), ((2, 3, 4), (2, 4))],
           make_inputs=logits_and_labels_with_ignored, covers=[], zero_d=False),
    OpSpec("cross_entropy_none", F.cross_entropy, np_cross_entropy,
           kwargs={"reduction": "none", "label_smoothing": 0.1}, shapes=[((6, 4), (6,))],
           make_inputs=logits_and_labels_with_ignored, covers=[], zero_d=False),
    OpSpec("cross_entropy_probabilities", F.cross_entropy, np_cross_entropy,
           kwargs={"label_smoothing": 0.1}, shapes=[((5, 4), (5, 4))],
           make_inputs=logits_and_probabilities, covers=[], zero_d=False),
    OpSpec("huber_loss", broadcasting(F.huber_loss), np_huber,
           shapes=[((4, 5), (4, 5)), ((3, 4), (4,))], make_inputs=huber_inputs),
    OpSpec("huber_loss_delta_none", F.huber_loss, np_huber,
           kwargs={"delta": 0.5, "reduction": "none"}, shapes=[((4, 5), (4, 5))],
           make_inputs=huber_inputs, covers=[]),
    OpSpec("l1_loss", broadcasting(F.l1_loss), np_l1, shapes=[((4, 5), (4, 5)), ((3, 4), (4,))],
           make_inputs=l1_inputs, double_backward=False),
    OpSpec("l1_loss_sum", F.l1_loss, np_l1, kwargs={"reduction": "sum"},
           shapes=[((4, 5), (4, 5))], make_inputs=l1_inputs, double_backward=False, covers=[]),
    OpSpec("kl_div", F.kl_div, np_kl_div, shapes=[((3, 4), (3, 4))], make_inputs=kl_inputs,
           zero_d=False),
    OpSpec("kl_div_zero_targets", F.kl_div, np_kl_div, kwargs={"reduction": "sum"},
           shapes=[((3, 4), (3, 4))], make_inputs=kl_inputs_with_zero_targets, diff_args=[0],
           covers=[], zero_d=False),
    OpSpec("kl_div_log_target_mean", F.kl_div, np_kl_div,
           kwargs={"reduction": "mean", "log_target": True}, shapes=[((3, 4), (3, 4))],
           domain=[(-3, 0), (-3, 0)], covers=[]),
    OpSpec("cosine_similarity", F.cosine_similarity, np_cosine,
           shapes=[((3, 4), (3, 4)), ((3, 4), (4,)), ((2, 3, 2), (2, 3, 2))],
           domain=(0.2, 2.0), zero_d=False),
    OpSpec("cosine_similarity_last_axis", F.cosine_similarity, np_cosine,
           kwargs={"axis": -1}, shapes=[((2, 3, 4), (2, 3, 4))], covers=[], zero_d=False),
]
