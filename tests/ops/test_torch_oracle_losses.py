"""Losses, normalization and attention against PyTorch in float64: forward values and the
gradients of every differentiable input (a random cotangent is backpropagated through both).

Skipped when torch is absent, except the ``*_by_hand`` tests, which need no oracle.
"""

import numpy as np
import pytest

import zerograd.functions as F
from zerograd import Variable, test_mode

try:
    import torch

    TF = torch.nn.functional
except ImportError:  # the oracle tests skip (see the fixture below)
    torch = TF = None

pytestmark = pytest.mark.torch


@pytest.fixture(autouse=True)
def oracle(request):
    if "by_hand" not in request.node.name:
        pytest.importorskip("torch")


def compare(ours, theirs, arrays, diff, rtol=1e-9, atol=1e-11, seed=0):
    """Run ``ours(*inputs)`` and ``theirs(*tensors)``; compare outputs and input gradients.

    diff: indices of the arrays to differentiate. Non-float arrays go to torch as int64.
    """
    variables = [Variable(a) if i in diff else a for i, a in enumerate(arrays)]
    tensors = [torch.tensor(a, requires_grad=i in diff) for i, a in enumerate(arrays)]
    y = ours(*variables)
    y_ref = theirs(*tensors)
    np.testing.assert_allclose(y.data, y_ref.detach().numpy(), rtol=rtol, atol=atol)
    w = np.random.default_rng(seed).standard_normal(y.shape)
    (y * w).sum().backward()
    (y_ref * torch.tensor(w)).sum().backward()
    for i in diff:
        np.testing.assert_allclose(variables[i].grad.data, tensors[i].grad.numpy(),
                                   rtol=rtol, atol=atol, err_msg=f"gradient of input {i}")


def labels(rng, shape, n_classes, ignored_every=None):
    t = rng.integers(0, n_classes, size=shape)
    if ignored_every:
        t.reshape(-1)[::ignored_every] = -100
    return t


# -- cross-entropies ----------------------------------------------------------------------------
def test_softmax_cross_entropy_equals_torch_cross_entropy():
    rng = np.random.default_rng(0)
    x, t = rng.standard_normal((6, 5)) * 3, labels(rng, 6, 5)
    compare(F.softmax_cross_entropy, TF.cross_entropy, [x, t], diff=[0])


@pytest.mark.parametrize("label_smoothing", [0.0, 0.15])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("x_shape", [(7, 4), (3, 4, 2, 3)])
def test_cross_entropy_labels(label_smoothing, reduction, x_shape):
    rng = np.random.default_rng(1)
    x = rng.standard_normal(x_shape) * 2
    t = labels(rng, (x_shape[0],) + x_shape[2:], x_shape[1], ignored_every=3)
    kwargs = {"label_smoothing": label_smoothing, "reduction": reduction, "ignore_index": -100}
    compare(lambda a, b: F.cross_entropy(a, b, **kwargs),
            lambda a, b: TF.cross_entropy(a, b, **kwargs), [x, t], diff=[0])


@pytest.mark.parametrize("label_smoothing", [0.0, 0.2])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_cross_entropy_probability_targets(label_smoothing, reduction):
    rng = np.random.default_rng(2)
    x = rng.standard_normal((5, 4))
    p = rng.uniform(0.1, 1, (5, 4))
    p /= p.sum(axis=1, keepdims=True)
    kwargs = {"label_smoothing": label_smoothing, "reduction": reduction}
    compare(lambda a, b: F.cross_entropy(a, b, **kwargs),
            lambda a, b: TF.cross_entropy(a, b, **kwargs), [x, p], diff=[0, 1])


def test_cross_entropy_unbatched_and_custom_ignore_index():
    rng = np.random.default_rng(3)
    x = rng.standard_normal(5)
    compare(F.cross_entropy, TF.cross_entropy, [x, np.array(3)], diff=[0])
    x2, t2 = rng.standard_normal((4, 3)), np.array([0, 2, 1, 2])
    compare(lambda a, b: F.cross_entropy(a, b, ignore_index=2),
            lambda a, b: TF.cross_entropy(a, b, ignore_index=2), [x2, t2], diff=[0])


def test_cross_entropy_huge_logits_match_torch():
    x = np.array([[1e4, -1e4, 0.0], [3.0, -1e4, 1e4]])
    compare(lambda a, b: F.cross_entropy(a, b, label_smoothing=0.1),
            lambda a, b: TF.cross_entropy(a, b, label_smoothing=0.1),
            [x, np.array([1, 0])], diff=[0], rtol=1e-12)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_nll_loss(reduction):
    rng = np.random.default_rng(4)
    log_p = rng.standard_normal((6, 4, 3))
    t = labels(rng, (6, 3), 4, ignored_every=4)
    compare(lambda a, b: F.nll_loss(a, b, reduction=reduction),
            lambda a, b: TF.nll_loss(a, b, reduction=reduction), [log_p, t], diff=[0])


def test_sigmoid_cross_entropy_is_bce_with_logits_summed_over_batch_size():
    rng = np.random.default_rng(5)
    x = np.concatenate([rng.standard_normal((4, 3)) * 3, [[100.0, -100.0, 40.0]]])
    t = rng.uniform(0, 1, (5, 3))
    compare(F.sigmoid_cross_entropy,
            lambda a, b: TF.binary_cross_entropy_with_logits(a, b, reduction="sum") / 5,
            [x, t], diff=[0, 1])


def test_binary_cross_entropy_is_torch_bce_summed_over_batch_size():
    rng = np.random.default_rng(6)
    p, t = rng.uniform(0.01, 0.99, (4, 3)), rng.uniform(0, 1, (4, 3))
    compare(F.binary_cross_entropy,
            lambda a, b: TF.binary_cross_entropy(a, b, reduction="sum") / 4, [p, t], diff=[0, 1])


def test_mean_squared_error_is_torch_mse_summed_over_batch_size():
    rng = np.random.default_rng(7)
    a, b = rng.standard_normal((5, 3)), rng.standard_normal((5, 3))
    compare(F.mean_squared_error, lambda x, y: TF.mse_loss(x, y, reduction="sum") / 5,
            [a, b], diff=[0, 1])


# -- regression losses, divergences, similarities ---------------------------------------------
@pytest.mark.parametrize("delta", [0.5, 1.0, 2.0])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_huber_loss(delta, reduction):
    rng = np.random.default_rng(8)
    x, t = rng.standard_normal((4, 6)) * 2, rng.standard_normal((4, 6))
    compare(lambda a, b: F.huber_loss(a, b, delta=delta, reduction=reduction),
            lambda a, b: TF.huber_loss(a, b, delta=delta, reduction=reduction),
            [x, t], diff=[0, 1])


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_l1_loss(reduction):
    rng = np.random.default_rng(9)
    x, t = rng.standard_normal((3, 5)), rng.standard_normal((3, 5))
    compare(lambda a, b: F.l1_loss(a, b, reduction=reduction),
            lambda a, b: TF.l1_loss(a, b, reduction=reduction), [x, t], diff=[0, 1])


@pytest.mark.filterwarnings("ignore:reduction. 'mean' divides")  # torch's own advice
@pytest.mark.parametrize("log_target", [False, True])
@pytest.mark.parametrize("reduction", ["batchmean", "sum", "mean", "none"])
def test_kl_div(reduction, log_target):
    rng = np.random.default_rng(10)
    log_q = np.log(rng.dirichlet(np.ones(5), size=4))
    p = rng.dirichlet(np.ones(5), size=4)
    target = np.log(p) if log_target else p
    kwargs = {"reduction": reduction, "log_target": log_target}
    compare(lambda a, b: F.kl_div(a, b, **kwargs), lambda a, b: TF.kl_div(a, b, **kwargs),
            [log_q, target], diff=[0, 1])


def test_kl_div_with_zero_target_probabilities():
    rng = np.random.default_rng(11)
    log_q = np.log(rng.dirichlet(np.ones(4), size=3))
    p = np.array([[0.5, 0.5, 0, 0], [1.0, 0, 0, 0], [0.25, 0.25, 0.25, 0.25]])
    compare(F.kl_div, lambda a, b: TF.kl_div(a, b, reduction="batchmean"), [log_q, p], diff=[0])


@pytest.mark.parametrize("axis", [1, -1, 0])
def test_cosine_similarity(axis):
    rng = np.random.default_rng(12)
    x1, x2 = rng.standard_normal((3, 4, 5)), rng.standard_normal((3, 4, 5))
    compare(lambda a, b: F.cosine_similarity(a, b, axis=axis),
            lambda a, b: TF.cosine_similarity(a, b, dim=axis), [x1, x2], diff=[0, 1])


def test_cosine_similarity_broadcasting():
    rng = np.random.default_rng(13)
    x1, x2 = rng.standard_normal((4, 3)), rng.standard_normal(3)
    compare(lambda a, b: F.cosine_similarity(a, b, axis=1),
            lambda a, b: TF.cosine_similarity(a, b.expand(4, 3), dim=1), [x1, x2], diff=[0, 1])


def test_cosine_similarity_norm_below_eps():
    """Values match torch; for the gradient torch's backward does not treat the clamped norm
    as the constant eps (it is off by ~1% from central differences here), ours does."""
    x1 = np.full((1, 3), 1e-10)
    x2 = np.array([[0.3, -1.2, 0.5]])
    v = Variable(x1)
    y = F.cosine_similarity(v, x2, eps=1e-8)
    expected = TF.cosine_similarity(torch.tensor(x1), torch.tensor(x2), dim=1, eps=1e-8)
    np.testing.assert_allclose(y.data, expected.numpy(), rtol=1e-12)
    y.backward()
    h = 1e-14
    numeric = [(F.cosine_similarity(x1 + h * e, x2).item()
                - F.cosine_similarity(x1 - h * e, x2).item()) / (2 * h) for e in np.eye(3)]
    np.testing.assert_allclose(v.grad.data[0], numeric, rtol=1e-6)
    np.testing.assert_allclose(v.grad.data[0], x2[0] / (1e-8 * np.linalg.norm(x2)), rtol=1e-9)


# -- normalization ------------------------------------------------------------------------------
@pytest.mark.parametrize("shape", [(8, 3), (4, 3, 2, 5)])
def test_batch_norm_train_values_grads_and_running_stats(shape):
    rng = np.random.default_rng(14)
    x = rng.standard_normal(shape) * 2 + 1
    gamma, beta = rng.uniform(0.5, 1.5, 3), rng.standard_normal(3)
    ours = [rng.standard_normal(3), rng.uniform(0.5, 2, 3)]
    theirs = [torch.tensor(a.copy()) for a in ours]
    compare(lambda a, g, b: F.batch_norm(a, g, b, ours[0], ours[1], decay=0.8, eps=1e-3),
            lambda a, g, b: TF.batch_norm(a, theirs[0], theirs[1], g, b, training=True,
                                          momentum=0.2, eps=1e-3),
            [x, gamma, beta], diff=[0, 1, 2])
    for mine, reference in zip(ours, theirs):
        np.testing.assert_allclose(mine, reference.numpy(), rtol=1e-12)


def test_batch_norm_test_mode_values_and_grads():
    rng = np.random.default_rng(15)
    x = rng.standard_normal((2, 3, 4, 4))
    gamma, beta = rng.uniform(0.5, 1.5, 3), rng.standard_normal(3)
    mean, var = rng.standard_normal(3), rng.uniform(0.5, 2, 3)

    def ours(a, g, b):
        with test_mode():
            return F.batch_norm(a, g, b, mean, var, eps=1e-5)

    compare(ours, lambda a, g, b: TF.batch_norm(a, torch.tensor(mean), torch.tensor(var), g, b,
                                                training=False, eps=1e-5),
            [x, gamma, beta], diff=[0, 1, 2])


@pytest.mark.parametrize("normalized_shape", [(6,), (4, 6)])
def test_layer_norm(normalized_shape):
    rng = np.random.default_rng(16)
    x = rng.standard_normal((3, 4, 6)) * 3
    gamma, beta = rng.uniform(0.5, 1.5, normalized_shape), rng.standard_normal(normalized_shape)
    compare(lambda a, g, b: F.layer_norm(a, g, b, eps=1e-5, normalized_shape=normalized_shape),
            lambda a, g, b: TF.layer_norm(a, normalized_shape, g, b, eps=1e-5),
            [x, gamma, beta], diff=[0, 1, 2])


@pytest.mark.parametrize("num_groups", [1, 2, 4])
def test_group_norm(num_groups):
    rng = np.random.default_rng(17)
    x = rng.standard_normal((2, 4, 3, 3))
    gamma, beta = rng.uniform(0.5, 1.5, 4), rng.standard_normal(4)
    compare(lambda a, g, b: F.group_norm(a, num_groups, g, b),
            lambda a, g, b: TF.group_norm(a, num_groups, g, b, eps=1e-5),
            [x, gamma, beta], diff=[0, 1, 2])


# -- attention -----------------------------------------------------------------------------------
def sdpa(mask=None, scale=None):
    def ours(q, k, v):
        return F.scaled_dot_product_attention(q, k, v, mask=mask, scale=scale)

    def theirs(q, k, v):
        m = None if mask is None else torch.tensor(mask)
        return TF.scaled_dot_product_attention(q, k, v, attn_mask=m, scale=scale)

    return ours, theirs


@pytest.mark.parametrize("mask_kind", [None, "bool", "float"])
def test_attention(mask_kind):
    rng = np.random.default_rng(18)
    q, k, v = (rng.standard_normal((2, 3, 5, 4)), rng.standard_normal((2, 3, 6, 4)),
               rng.standard_normal((2, 3, 6, 2)))
    mask = None
    if mask_kind == "bool":
        mask = rng.uniform(size=(1, 3, 5, 6)) > 0.3
        mask[..., 0] = True  # every query keeps a key (torch gives nan otherwise)
    elif mask_kind == "float":
        mask = rng.standard_normal((5, 6))
    ours, theirs = sdpa(mask)
    compare(ours, theirs, [q, k, v], diff=[0, 1, 2])


def test_attention_custom_scale_and_causal_mask():
    rng = np.random.default_rng(19)
    q, k, v = rng.standard_normal((4, 3)), rng.standard_normal((4, 3)), rng.standard_normal((4, 2))
    ours, theirs = sdpa(np.tril(np.ones((4, 4), dtype=bool)), scale=0.7)
    compare(ours, theirs, [q, k, v], diff=[0, 1, 2])


def test_fully_masked_query_attends_to_nothing_by_hand():
    """torch returns nan for a query whose keys are all masked; we return a zero row."""
    rng = np.random.default_rng(20)
    q, k, v = (Variable(rng.standard_normal((3, 2))), Variable(rng.standard_normal((4, 2))),
               Variable(rng.standard_normal((4, 3))))
    mask = np.ones((3, 4), dtype=bool)
    mask[1] = False
    y = F.scaled_dot_product_attention(q, k, v, mask=mask)
    np.testing.assert_array_equal(y.data[1], 0)
    (y * y).sum().backward()
    for a in (q, k, v):
        assert np.isfinite(a.grad.data).all()
    np.testing.assert_array_equal(q.grad.data[1], 0)
    additive = np.where(mask, 0.0, -np.inf)
    np.testing.assert_array_equal(
        F.scaled_dot_product_attention(q, k, v, mask=additive).data, y.data)


def test_attention_values_by_hand():
    q = np.array([[1.0, 0.0]])
    k = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
    v = np.array([[1.0], [2.0], [3.0]])
    scores = np.array([1.0, 0.0, -1.0]) / np.sqrt(2)
    weights = np.exp(scores) / np.exp(scores).sum()
    y = F.scaled_dot_product_attention(q, k, v)
    np.testing.assert_allclose(y.data, [[weights @ v[:, 0]]])
    keep_first_two = np.array([[True, True, False]])
    w2 = np.exp(scores[:2]) / np.exp(scores[:2]).sum()
    np.testing.assert_allclose(
        F.scaled_dot_product_attention(q, k, v, mask=keep_first_two).data, [[w2 @ v[:2, 0]]])


def test_attention_float32_and_errors_by_hand():
    from zerograd.errors import DTypeError, ShapeError

    q = Variable(np.ones((2, 3), dtype=np.float32))
    y = F.scaled_dot_product_attention(q, np.ones((4, 3), np.float32), np.ones((4, 5), np.float32),
                                       mask=np.zeros((2, 4)))  # float64 mask: no upcast
    y.sum().backward()
    assert y.dtype == np.float32 and q.grad.dtype == np.float32
    with pytest.raises(ShapeError, match="scaled_dot_product_attention"):
        F.scaled_dot_product_attention(np.ones((2, 3)), np.ones((4, 2)), np.ones((4, 5)))
    with pytest.raises(ShapeError, match="mask"):
        F.scaled_dot_product_attention(np.ones((2, 3)), np.ones((4, 3)), np.ones((4, 5)),
                                       mask=np.ones((3, 4), dtype=bool))
    with pytest.raises(DTypeError, match="mask"):
        F.scaled_dot_product_attention(np.ones((2, 3)), np.ones((4, 3)), np.ones((4, 5)),
                                       mask=np.ones((2, 4), dtype=int))
