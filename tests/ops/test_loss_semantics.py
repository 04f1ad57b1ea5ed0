"""Loss semantics: DeZero's reductions, stability at extreme inputs, label validation, the
PyTorch-style options (ignore_index, label smoothing, reductions), against hand computations
and DeZero itself."""

import numpy as np
import pytest

import zerograd.functions as F
from zerograd import Variable
from zerograd.errors import DTypeError, ShapeError
from zerograd.ops.loss import LabelError


@pytest.fixture(scope="module")
def dezero_functions():
    np.int = int  # dezero 0.0.13 still uses the alias NumPy 2 removed
    pytest.importorskip("dezero")
    import dezero.functions as DF

    return DF


def softmax(x):
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


# -- mean squared error ------------------------------------------------------------------------
def test_mse_divides_by_the_batch_size_not_the_element_count():
    x0 = Variable(np.array([[1.0, 2.0], [3.0, 4.0]]))
    y = F.mean_squared_error(x0, np.zeros((2, 2)))
    assert y.item() == pytest.approx((1 + 4 + 9 + 16) / 2)
    y.backward()
    np.testing.assert_allclose(x0.grad.data, 2 * x0.data / 2)


def test_mse_broadcast_gradients_come_back_shaped_like_each_input():
    rng = np.random.default_rng(0)
    x0, x1 = Variable(rng.standard_normal((4, 3))), Variable(rng.standard_normal(3))
    with pytest.warns(UserWarning, match=r"x0 shape \(4, 3\) differs from x1 shape \(3,\)"):
        F.mean_squared_error(x0, x1).backward()
    diff = x0.data - x1.data
    assert x1.grad.shape == (3,)  # DeZero returns a (4, 3) gradient for x1 here
    np.testing.assert_allclose(x0.grad.data, 2 * diff / 4)
    np.testing.assert_allclose(x1.grad.data, -2 * diff.sum(axis=0) / 4)


def test_mse_simple_matches_and_keeps_float32():
    rng = np.random.default_rng(1)
    a = rng.standard_normal((5, 2)).astype(np.float32)
    b = rng.standard_normal((5, 2)).astype(np.float32)
    x = Variable(a)
    y = F.mean_squared_error(x, b)
    y.backward()
    assert y.dtype == np.float32 and x.grad.dtype == np.float32
    assert F.mean_squared_error_simple(a, b).item() == pytest.approx(y.item(), rel=1e-6)


def test_mse_matches_dezero(dezero_functions):
    rng = np.random.default_rng(2)
    a, b = rng.standard_normal((6, 3)), rng.standard_normal((6, 3))
    expected = dezero_functions.mean_squared_error(a, b).data
    assert F.mean_squared_error(a, b).item() == expected


def test_mse_of_a_0d_input_is_a_clear_error():
    with pytest.raises(ShapeError, match="mean_squared_error"):
        F.mean_squared_error(np.array(1.0), np.array(2.0))


# -- softmax cross-entropy -----------------------------------------------------------------------
def test_softmax_cross_entropy_value_and_gradient_by_hand():
    x = np.array([[1.0, 2.0, 3.0], [1.0, 1.0, 1.0]])
    t = np.array([2, 0])
    xv = Variable(x)
    y = F.softmax_cross_entropy(xv, t)
    expected = -(np.log(softmax(x)[0, 2]) + np.log(1 / 3)) / 2
    assert y.item() == pytest.approx(expected)
    y.backward()
    onehot = np.eye(3)[t]
    np.testing.assert_allclose(xv.grad.data, (softmax(x) - onehot) / 2)


def test_softmax_cross_entropy_ravels_labels_of_any_shape():
    x = np.random.default_rng(3).standard_normal((4, 3))
    t = np.array([0, 2, 1, 1])
    assert F.softmax_cross_entropy(x, t.reshape(2, 2)).item() == \
        F.softmax_cross_entropy(x, t).item()


def test_softmax_cross_entropy_is_finite_for_huge_logits():
    x = Variable(np.array([[1e4, -1e4, 0.0], [-1e4, 1e4, 5e3]]))
    y = F.softmax_cross_entropy(x, np.array([1, 1]))
    y.backward()
    assert y.item() == pytest.approx(2e4 / 2)
    assert np.isfinite(x.grad.data).all()
    np.testing.assert_allclose(x.grad.data, [[0.5, -0.5, 0], [0, 0, 0]], atol=1e-12)


def test_softmax_cross_entropy_backward_builds_no_dense_one_hot(monkeypatch):
    def forbidden(*args, **kwargs):
        raise AssertionError("a dense one-hot / identity matrix was built")

    monkeypatch.setattr(np, "eye", forbidden)
    monkeypatch.setattr(np, "identity", forbidden)
    x = Variable(np.random.default_rng(4).standard_normal((3, 5)))
    F.softmax_cross_entropy(x, np.array([4, 0, 2])).backward()
    assert x.grad is not None


def test_softmax_cross_entropy_float32_gradient_and_second_order():
    x = Variable(np.random.default_rng(5).standard_normal((4, 3)).astype(np.float32))
    y = F.softmax_cross_entropy(x, np.array([0, 1, 2, 0]))
    y.backward(create_graph=True)
    assert y.dtype == np.float32 and x.grad.dtype == np.float32
    gx = x.grad
    x.cleargrad()
    (gx * gx).sum().backward()
    assert x.grad is not None and x.grad.dtype == np.float32
    assert np.abs(x.grad.data).sum() > 0


def test_softmax_cross_entropy_simple_matches_the_fused_op():
    x = np.random.default_rng(6).standard_normal((5, 4))
    t = np.array([3, 0, 1, 2, 3])
    xa, xb = Variable(x), Variable(x)
    ya, yb = F.softmax_cross_entropy_simple(xa, t), F.softmax_cross_entropy(xb, t)
    assert ya.item() == pytest.approx(yb.item())
    ya.backward()
    yb.backward()
    np.testing.assert_allclose(xa.grad.data, xb.grad.data, rtol=1e-10)


def test_softmax_cross_entropy_matches_dezero(dezero_functions):
    rng = np.random.default_rng(7)
    x, t = rng.standard_normal((6, 4)), rng.integers(0, 4, 6)
    assert F.softmax_cross_entropy(x, t).item() == pytest.approx(
        float(dezero_functions.softmax_cross_entropy(x, t).data), rel=1e-12)


@pytest.mark.parametrize("op", [F.softmax_cross_entropy, F.softmax_cross_entropy_simple,
                                F.cross_entropy, F.nll_loss])
def test_out_of_range_labels_name_the_op_range_and_classes(op):
    x = np.zeros((3, 4))
    with pytest.raises(LabelError) as info:
        op(x, np.array([0, 4, 1]))
    message = str(info.value)
    assert message.startswith(op.__name__ + ":")
    assert "[0, 4)" in message and "4 classes" in message and "[0, 4]" in message
    with pytest.raises(LabelError, match=r"\[-1, 1\]"):
        op(x, np.array([0, -1, 1]))
    with pytest.raises(ValueError):  # LabelError is a ValueError
        op(x, np.array([0, 9, 1]))


@pytest.mark.parametrize("op", [F.softmax_cross_entropy, F.cross_entropy, F.nll_loss])
def test_non_integer_labels_are_a_dtype_error(op):
    with pytest.raises(DTypeError, match=f"^{op.__name__}: .*integer"):
        op(np.zeros((3, 4)), np.array([0.0, 1.5, 1.0]))


def test_label_count_mismatch_is_a_shape_error():
    with pytest.raises(ShapeError, match="3 labels for 2 rows"):
        F.softmax_cross_entropy(np.zeros((2, 4)), np.array([0, 1, 2]))
    with pytest.raises(ShapeError, match="labels of shape"):
        F.cross_entropy(np.zeros((2, 4)), np.array([0, 1, 2]))


# -- sigmoid and binary cross-entropy --------------------------------------------------------------
def test_sigmoid_cross_entropy_is_finite_for_confident_wrong_logits():
    x = Variable(np.array([[100.0], [-100.0]]))
    y = F.sigmoid_cross_entropy(x, np.array([0, 1]))
    y.backward()
    assert y.item() == pytest.approx((100 + 100) / 2)  # DeZero: inf
    np.testing.assert_allclose(x.grad.data, [[0.5], [-0.5]])  # DeZero: nan


def test_sigmoid_cross_entropy_matches_dezero_for_moderate_logits(dezero_functions):
    rng = np.random.default_rng(8)
    x, t = rng.uniform(-3, 3, (5, 1)), rng.integers(0, 2, 5)
    assert F.sigmoid_cross_entropy(x, t).item() == pytest.approx(
        float(dezero_functions.sigmoid_cross_entropy(x, t).data), rel=1e-9)


def test_sigmoid_cross_entropy_integer_labels_keep_float32():
    x = Variable(np.array([[0.3], [-2.0]], dtype=np.float32))
    y = F.sigmoid_cross_entropy(x, np.array([1, 0]))
    y.backward()
    assert y.dtype == np.float32 and x.grad.dtype == np.float32


def test_binary_cross_entropy_clips_symmetrically():
    p = Variable(np.array([0.9999]))
    y = F.binary_cross_entropy(p, np.array([1]))
    y.backward()
    assert y.item() == pytest.approx(-np.log(0.9999), rel=1e-9)  # ~1e-4; DeZero: 1e-3
    assert p.grad.item() == pytest.approx(-1 / 0.9999)  # DeZero: 0


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_binary_cross_entropy_is_finite_at_0_and_1(dtype):
    p = Variable(np.array([0.0, 1.0, 1.0, 0.0], dtype=dtype))
    y = F.binary_cross_entropy(p, np.array([0, 1, 0, 1]))
    y.backward()
    assert np.isfinite(y.data) and y.dtype == dtype
    assert np.isfinite(p.grad.data).all() and p.grad.dtype == dtype
    np.testing.assert_array_equal(p.grad.data, 0)  # outside the clip range: no gradient


def test_binary_cross_entropy_matches_dezero_inside_its_clip_range(dezero_functions):
    rng = np.random.default_rng(9)
    p, t = rng.uniform(0.05, 0.95, (4, 3)), rng.integers(0, 2, (4, 3))
    assert F.binary_cross_entropy(p, t).item() == pytest.approx(
        float(dezero_functions.binary_cross_entropy(p, t).data), rel=1e-9)


# -- accuracy ------------------------------------------------------------------------------------
def test_accuracy_is_a_variable_holding_the_hit_rate(dezero_functions):
    y = np.array([[0.1, 0.9], [0.8, 0.2], [0.3, 0.7], [0.6, 0.4]])
    t = np.array([1, 1, 1, 0])
    acc = F.accuracy(Variable(y), t)
    assert isinstance(acc, Variable) and acc.creator is None
    assert acc.item() == 0.75
    assert acc.item() == float(dezero_functions.accuracy(y, t).data)


def test_accuracy_label_count_mismatch():
    with pytest.raises(ShapeError, match="accuracy"):
        F.accuracy(np.zeros((3, 2)), np.array([0, 1]))


# -- nll_loss and cross_entropy --------------------------------------------------------------------
def test_nll_loss_ignore_index_and_reductions_by_hand():
    log_p = np.log(np.array([[0.2, 0.8], [0.6, 0.4], [0.5, 0.5]]))
    t = np.array([1, -100, 0])
    expected = np.array([-np.log(0.8), 0.0, -np.log(0.5)])
    np.testing.assert_allclose(F.nll_loss(log_p, t, reduction="none").data, expected)
    assert F.nll_loss(log_p, t, reduction="sum").item() == pytest.approx(expected.sum())
    lp = Variable(log_p)
    y = F.nll_loss(lp, t)
    assert y.item() == pytest.approx(expected.sum() / 2)  # mean over the 2 kept labels
    y.backward()
    np.testing.assert_allclose(lp.grad.data, [[0, -0.5], [0, 0], [-0.5, 0]])


def test_nll_loss_all_ignored_gives_zero_not_nan():
    lp = Variable(np.log(np.full((2, 3), 1 / 3)))
    y = F.nll_loss(lp, np.array([-100, -100]))
    y.backward()
    assert y.item() == 0.0
    np.testing.assert_array_equal(lp.grad.data, 0)


def test_nll_loss_unbatched_input():
    log_p = np.log(np.array([0.1, 0.7, 0.2]))
    assert F.nll_loss(log_p, np.array(1)).item() == pytest.approx(-np.log(0.7))
    assert F.nll_loss(log_p, np.array(1), reduction="none").shape == ()


def test_cross_entropy_label_smoothing_by_hand():
    x = np.array([[2.0, 0.0, -1.0]])
    eps = 0.3
    log_p = np.log(softmax(x))[0]
    expected = -((1 - eps) * log_p[0] + eps * log_p.mean())
    assert F.cross_entropy(x, np.array([0]), label_smoothing=eps).item() == pytest.approx(expected)


def test_cross_entropy_with_probability_targets_equals_labels_when_one_hot():
    x = np.random.default_rng(10).standard_normal((4, 3))
    t = np.array([2, 0, 1, 1])
    onehot = np.eye(3)[t]
    assert F.cross_entropy(x, onehot).item() == pytest.approx(F.cross_entropy(x, t).item())
    assert F.cross_entropy(x, t).item() == pytest.approx(F.softmax_cross_entropy(x, t).item())


def test_cross_entropy_is_finite_for_huge_logits_with_smoothing():
    x = Variable(np.array([[1e4, -1e4, 0.0], [3.0, -1e4, 1e4]], dtype=np.float32))
    y = F.cross_entropy(x, np.array([1, 0]), label_smoothing=0.1)
    y.backward()
    assert np.isfinite(y.data) and np.isfinite(x.grad.data).all()
    assert x.grad.dtype == np.float32


def test_loss_reduction_is_validated():
    with pytest.raises(ValueError, match="reduction"):
        F.cross_entropy(np.zeros((2, 3)), np.array([0, 1]), reduction="avg")
    with pytest.raises(ValueError, match="label_smoothing"):
        F.cross_entropy(np.zeros((2, 3)), np.array([0, 1]), label_smoothing=1.5)


# -- regression losses, divergences, similarities -------------------------------------------------
def test_huber_loss_by_hand():
    x = Variable(np.array([0.5, -2.0, 1.0]))
    t = np.zeros(3)
    y = F.huber_loss(x, t, delta=1.0)
    assert y.item() == pytest.approx((0.125 + 1.5 + 0.5) / 3)
    y.backward()
    np.testing.assert_allclose(x.grad.data, np.array([0.5, -1.0, 1.0]) / 3)
    np.testing.assert_allclose(F.huber_loss(x, t, delta=0.5, reduction="none").data,
                               [0.125, 0.5 * (2 - 0.25), 0.5 * (1 - 0.25)])


def test_huber_integer_targets_keep_float32():
    x = Variable(np.array([0.5, 3.0], dtype=np.float32))
    y = F.huber_loss(x, np.array([0, 1]))
    y.backward()
    assert y.dtype == np.float32 and x.grad.dtype == np.float32


def test_l1_loss_gradient_is_zero_at_a_tie():
    x = Variable(np.array([1.0, 2.0, 3.0]))
    y = F.l1_loss(x, np.array([0.0, 2.0, 4.0]))
    assert y.item() == pytest.approx(2 / 3)
    y.backward()
    np.testing.assert_allclose(x.grad.data, [1 / 3, 0, -1 / 3])


def test_kl_div_convention_and_reductions():
    p = np.array([[0.5, 0.5, 0.0], [0.2, 0.3, 0.5]])
    q = np.array([[0.25, 0.25, 0.5], [0.2, 0.3, 0.5]])
    log_q = Variable(np.log(q))
    y = F.kl_div(log_q, p)  # batchmean: the KL per sample
    assert y.item() == pytest.approx(np.log(2) / 2)
    y.backward()
    np.testing.assert_allclose(log_q.grad.data, -p / 2)
    assert F.kl_div(np.log(q), p, reduction="sum").item() == pytest.approx(np.log(2))
    assert F.kl_div(np.log(q), p, reduction="mean").item() == pytest.approx(np.log(2) / 6)
    assert F.kl_div(np.log(q), np.log(p + 1e-300), log_target=True,
                    reduction="sum").item() == pytest.approx(np.log(2))


def test_cosine_similarity_by_hand_and_zero_vectors():
    x1 = np.array([[1.0, 0.0], [1.0, 1.0], [0.0, 0.0]])
    x2 = np.array([[0.0, 2.0], [3.0, 3.0], [1.0, 1.0]])
    v = Variable(x1)
    y = F.cosine_similarity(v, x2)
    np.testing.assert_allclose(y.data, [0.0, 1.0, 0.0], atol=1e-12)
    y.sum().backward()
    assert np.isfinite(v.grad.data).all()


def test_cosine_similarity_shape_error():
    with pytest.raises(ShapeError, match="cosine_similarity"):
        F.cosine_similarity(np.ones((2, 3)), np.ones((2, 4)))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("loss", [
    lambda x: F.softmax_cross_entropy(x, np.array([0, 2])),
    lambda x: F.softmax_cross_entropy_simple(x, np.array([0, 2])),
    lambda x: F.cross_entropy(x, np.array([0, 2]), label_smoothing=0.1, reduction="sum"),
    lambda x: F.sigmoid_cross_entropy(x, np.array([[0, 1, 1], [1, 0, 0]])),
], ids=["softmax_cross_entropy", "softmax_cross_entropy_simple", "cross_entropy",
        "sigmoid_cross_entropy"])
def test_every_cross_entropy_is_finite_at_logits_of_magnitude_1e4(loss, dtype):
    x = Variable(np.array([[1e4, -1e4, 0.0], [-1e4, 3.0, 1e4]], dtype=dtype))
    y = loss(x)
    y.backward()
    assert np.isfinite(y.data) and y.dtype == dtype
    assert np.isfinite(x.grad.data).all() and x.grad.dtype == dtype


# -- regression losses warn when their two sides differ in shape (PyTorch's rule) -----------
@pytest.mark.parametrize("name, sides", [("mean_squared_error", ("x0", "x1")),
                                         ("mean_squared_error_simple", ("x0", "x1")),
                                         ("huber_loss", ("input", "target")),
                                         ("l1_loss", ("input", "target"))])
def test_regression_loss_of_n1_against_n_warns_naming_both_shapes(name, sides):
    """(N, 1) against (N,) broadcasts to (N, N): a silent all-pairs loss."""
    x, t = np.arange(4.0).reshape(4, 1), np.arange(4.0)
    with pytest.warns(UserWarning) as record:
        loss = getattr(F, name)(x, t)
    message = str(record[0].message)
    assert message.startswith(f"{name}: {sides[0]} shape (4, 1) differs from {sides[1]} shape "
                              f"(4,); they broadcast to (4, 4)")
    assert record[0].filename == __file__  # the warning points at the caller
    # The value is still the broadcast one (a warning, not a change of meaning):
    diff = x - t
    expected = {"mean_squared_error": (diff ** 2).sum() / 4,
                "mean_squared_error_simple": (diff ** 2).sum() / 4,
                "huber_loss": np.where(abs(diff) <= 1, 0.5 * diff ** 2, abs(diff) - 0.5).mean(),
                "l1_loss": abs(diff).mean()}[name]
    assert float(loss.data) == pytest.approx(expected)


@pytest.mark.parametrize("name", ["mean_squared_error", "huber_loss", "l1_loss"])
def test_regression_loss_of_equal_shapes_does_not_warn(name):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        getattr(F, name)(np.zeros((4, 1)), np.ones((4, 1)))


@pytest.mark.parametrize("a, b", [((1, 1), (1,)), ((3, 1), (1, 3, 1)), ((), (1,))])
def test_shapes_differing_only_by_unit_axes_do_not_warn(a, b):
    """Each prediction still meets its own target (book step 59: (1, 1) against (1,))."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        x = np.arange(np.prod(a), dtype=float).reshape(a)
        y = F.mean_squared_error(x, np.zeros(b))
        shape = np.broadcast_shapes(a, b)
        same_shapes = F.mean_squared_error(x.reshape(shape), np.zeros(shape))
    assert y.item() == same_shapes.item()


def test_mse_warning_matches_torch_condition():
    """PyTorch warns for the same pairs of shapes (except those differing only by unit axes,
    tested above)."""
    torch = pytest.importorskip("torch")
    import warnings

    for a, b in [((4, 1), (4,)), ((4, 3), (3,)), ((4, 3), (4, 3)), ((2, 1, 3), (4, 3))]:
        with warnings.catch_warnings(record=True) as ours:
            warnings.simplefilter("always")
            F.mean_squared_error(np.zeros(a), np.zeros(b))
        with warnings.catch_warnings(record=True) as theirs:
            warnings.simplefilter("always")
            torch.nn.functional.mse_loss(torch.zeros(a), torch.zeros(b))
        assert bool(ours) == bool(theirs), (a, b)


# -- accuracy refuses labels that can never match ---------------------------------------------
def test_accuracy_refuses_labels_out_of_range():
    y = np.array([[0.1, 0.9], [0.8, 0.2], [0.3, 0.7]])
    with pytest.raises(ShapeError, match=r"accuracy: labels range over \[0, 2\] but y \(3, 2\) "
                                         r"has 2 classes; expected 0 <= t < 2"):
        F.accuracy(y, np.array([1, 0, 2]))
    with pytest.raises(ShapeError, match=r"labels range over \[-1, 1\]"):
        F.accuracy(y, np.array([1, -1, 1]))


@pytest.mark.parametrize("t", [np.array([1.0, 0.0, 1.0]), np.array([True, False, True])])
def test_accuracy_refuses_non_integer_labels(t):
    y = np.array([[0.1, 0.9], [0.8, 0.2], [0.3, 0.7]])
    with pytest.raises(DTypeError, match=rf"accuracy: t must hold integer class ids, got "
                                         rf"{t.dtype} \(3,\) \(y float64 \(3, 2\)\)"):
        F.accuracy(y, t)


def test_accuracy_of_valid_labels_is_unchanged():
    y = np.array([[0.1, 0.9], [0.8, 0.2], [0.3, 0.7]])
    assert float(F.accuracy(y, np.array([1, 0, 0])).data) == pytest.approx(2 / 3)
    assert float(F.accuracy(y, np.array([1, 0, 1], np.uint8)).data) == 1.0
