"""Semantics of reductions, shape ops, indexing and linear algebra beyond the op specs:
kink conventions (ties), dtype rules, DeZero's conventions, and where DeZero is wrong."""

import numpy as np
import pytest

import zerograd.functions as F
from tests.ops.harness import check_double_backward, check_dtype_and_grad_shapes, check_grad
from tests.ops.specs.indexing import SPECS as INDEXING_SPECS
from zerograd import Variable
from zerograd.errors import DTypeError, ShapeError
from zerograd.ops import indexing
from zerograd.ops.linalg import Linear


def grad_of(fn, x, **kwargs):
    v = Variable(np.asarray(x))
    fn(v, **kwargs).backward()
    return v.grad.data


# -- max / min: tied extrema split the gradient (DeZero bug 17 gives each tie all of it) ------
def test_max_ties_split_the_gradient():
    g = grad_of(F.max, np.array([1.0, 3.0, 3.0]))
    np.testing.assert_array_equal(g, [0.0, 0.5, 0.5])
    assert g.sum() == 1.0


def test_min_ties_split_the_gradient():
    np.testing.assert_array_equal(grad_of(F.min, np.array([2.0, -1.0, 5.0, -1.0, -1.0])),
                                  [0, 1 / 3, 0, 1 / 3, 1 / 3])


def test_max_ties_per_row_with_axis_and_keepdims():
    x = np.array([[4.0, 4.0, 1.0], [0.0, 2.0, 7.0]], dtype=np.float32)
    for keepdims in (False, True):
        v = Variable(x)
        y = F.max(v, axis=1, keepdims=keepdims)
        assert y.shape == ((2, 1) if keepdims else (2,))
        np.testing.assert_array_equal(y.data.ravel(), [4.0, 7.0])
        y.backward()
        assert v.grad.dtype == np.float32
        np.testing.assert_array_equal(v.grad.data, [[0.5, 0.5, 0], [0, 0, 1]])


def test_max_gradient_is_scaled_by_the_output_gradient():
    v = Variable(np.array([[1.0, 5.0], [5.0, 5.0]]))
    (F.max(v, axis=0) * np.array([2.0, 10.0])).backward()
    np.testing.assert_array_equal(v.grad.data, [[0, 5], [2, 5]])


def test_max_of_nan_sends_gradient_to_the_nan():
    g = grad_of(F.max, np.array([1.0, np.nan, 3.0]))
    np.testing.assert_array_equal(g, [0, 1, 0])


# -- mean ------------------------------------------------------------------------------------
def test_mean_of_int_input_is_a_float64_mean():
    y = F.mean(np.arange(4))
    assert y.dtype == np.float64 and y.data == 1.5
    y = F.average(np.array([[1, 2], [4, 4]], dtype=np.int32), axis=1)
    np.testing.assert_array_equal(y.data, [1.5, 4.0])


def test_mean_keeps_float32_and_gradient_is_one_over_count():
    v = Variable(np.ones((2, 5), dtype=np.float32))
    y = F.mean(v, axis=1, keepdims=True)
    assert y.dtype == np.float32 and y.shape == (2, 1)
    y.backward()
    assert v.grad.dtype == np.float32
    np.testing.assert_allclose(v.grad.data, np.full((2, 5), 0.2))


def test_mean_is_average():
    assert F.mean is F.average


# -- var / std --------------------------------------------------------------------------------
@pytest.mark.parametrize("ddof", [0, 1, 2])
def test_var_and_std_follow_numpy_ddof(ddof):
    x = np.random.default_rng(0).standard_normal((4, 5))
    np.testing.assert_allclose(F.var(x, axis=1, ddof=ddof).data, np.var(x, axis=1, ddof=ddof))
    np.testing.assert_allclose(F.std(x, ddof=ddof).data, np.std(x, ddof=ddof))


def test_var_gradient_with_ddof():
    x = np.array([1.0, 2.0, 6.0])
    np.testing.assert_allclose(grad_of(F.var, x, ddof=1), 2 * (x - x.mean()) / 2)


def test_ddof_without_degrees_of_freedom_raises():
    with pytest.raises(ShapeError, match="ddof=3"):
        F.var(np.ones((2, 3)), axis=1, ddof=3)
    with pytest.raises(ShapeError, match="std"):
        F.std(np.ones(1), ddof=1)


def test_std_of_a_constant_has_zero_gradient_not_nan():
    g = grad_of(F.std, np.full((2, 3), 4.0), axis=1)
    np.testing.assert_array_equal(g, np.zeros((2, 3)))


# -- prod, cumsum, norm -----------------------------------------------------------------------
def test_prod_gradient_is_exact_with_zeros():
    np.testing.assert_array_equal(grad_of(F.prod, np.array([2.0, 0.0, 3.0])), [0, 6, 0])
    np.testing.assert_array_equal(grad_of(F.prod, np.array([0.0, 5.0, 0.0])), [0, 0, 0])


PROD_WITH_ZEROS = [np.array([0.0, 2.0, 3.0]), np.array([0.0, 2.0, 0.0]), np.zeros(3),
                   np.array([[0.0, 2.0, 3.0, 0.5], [0.0, 0.0, 3.0, -1.5], [0.0, 0.0, 0.0, 0.0],
                             [1.0, 2.0, -3.0, 0.5]])]


@pytest.mark.parametrize("x", PROD_WITH_ZEROS, ids=lambda x: f"{x.shape}-{int((x == 0).sum())}z")
@pytest.mark.parametrize("axis, keepdims", [(None, False), (0, False), (-1, True)])
def test_prod_first_and_second_derivatives_with_zeros_match_torch(x, axis, keepdims):
    """Exact with one, two or all elements zero: the Hessian-vector product of prod([0, 2, 3])
    along ones is [5, 3, 2] (it was [nan, 3, 2] when the Hessian divided by x)."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    w = rng.standard_normal(np.prod(x, axis=axis, keepdims=keepdims).shape)
    u = rng.standard_normal(x.shape)
    v = Variable(x.copy())
    (F.prod(v, axis=axis, keepdims=keepdims) * w).sum().backward(create_graph=True)
    g = v.grad
    v.cleargrad()
    (g * u).sum().backward()

    t = torch.tensor(x, requires_grad=True)
    ty = torch.prod(t) if axis is None else torch.prod(t, dim=axis, keepdim=keepdims)
    (tg,) = torch.autograd.grad((ty * torch.tensor(w)).sum(), t, create_graph=True)
    (th,) = torch.autograd.grad((tg * torch.tensor(u)).sum(), t)
    np.testing.assert_allclose(g.data, tg.detach().numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(v.grad.data, th.numpy(), rtol=1e-12, atol=1e-12)
    assert np.isfinite(v.grad.data).all()


def test_prod_hessian_vector_product_at_a_zero():
    v = Variable(np.array([0.0, 2.0, 3.0]))
    F.prod(v).backward(create_graph=True)
    g = v.grad
    np.testing.assert_array_equal(g.data, [6.0, 0.0, 0.0])
    v.cleargrad()
    g.sum().backward()
    np.testing.assert_array_equal(v.grad.data, [5.0, 3.0, 2.0])


def test_prod_third_derivative_without_zeros():
    """d^3 prod(x) / dx0 dx1 dx2 = 1 for three elements, from the third backward."""
    v = Variable(np.array([1.5, 2.0, -0.5]))
    F.prod(v).backward(create_graph=True)
    g0 = v.grad[0]
    v.cleargrad()
    g0.backward(create_graph=True)
    g01 = v.grad[1]  # d^2 / dx0 dx1 = x2
    v.cleargrad()
    g01.backward()
    np.testing.assert_allclose(v.grad.data, [0.0, 0.0, 1.0])


def test_cumsum_gradient_is_the_reverse_cumsum():
    np.testing.assert_array_equal(grad_of(F.cumsum, np.zeros(4)), [4, 3, 2, 1])
    assert F.cumsum(np.ones((2, 3))).shape == (6,)


def test_norm_is_stable_for_huge_and_tiny_inputs():
    huge = np.array([3e200, 4e200])
    np.testing.assert_allclose(F.norm(huge).data, 5e200)
    np.testing.assert_allclose(grad_of(F.norm, huge), [0.6, 0.8])
    tiny = np.array([3e-200, 4e-200])
    np.testing.assert_allclose(F.norm(tiny).data, 5e-200)
    big32 = np.array([3e30, 4e30], dtype=np.float32)
    y = F.norm(big32)
    assert y.dtype == np.float32
    np.testing.assert_allclose(y.data, 5e30, rtol=1e-6)


def test_norm_of_zero_has_zero_gradient_and_matrix_norm_is_frobenius():
    np.testing.assert_array_equal(grad_of(F.norm, np.zeros(3)), np.zeros(3))
    a = np.array([[1.0, 2.0], [3.0, 4.0]])
    np.testing.assert_allclose(F.norm(a).data, np.linalg.norm(a, "fro"))
    with pytest.raises(ValueError, match="ord"):
        F.norm(a, ord=3)


# -- argmax / argmin --------------------------------------------------------------------------
def test_argmax_argmin_over_axes_return_plain_int_arrays():
    x = np.array([[1.0, 9.0, 9.0], [7.0, 0.0, 3.0]])
    for arg in (x, Variable(x)):
        a = F.argmax(arg)
        assert isinstance(a, np.ndarray) and a.dtype.kind == "i" and a == 1  # first tie wins
        np.testing.assert_array_equal(F.argmax(arg, axis=0), [1, 0, 0])
        np.testing.assert_array_equal(F.argmax(arg, axis=1), [1, 0])
        np.testing.assert_array_equal(F.argmax(arg, axis=-1, keepdims=True), [[1], [0]])
        np.testing.assert_array_equal(F.argmin(arg, axis=1), [0, 1])
    with pytest.raises(ShapeError, match="argmax"):
        F.argmax(x, axis=2)


# -- shape ops --------------------------------------------------------------------------------
def test_concat_split_roundtrip_and_gradient():
    x = Variable(np.arange(24.0).reshape(2, 6, 2))
    pieces = F.split(x, [1, 4], axis=1)
    assert [p.shape for p in pieces] == [(2, 1, 2), (2, 3, 2), (2, 2, 2)]
    y = F.concat(pieces, axis=1)
    np.testing.assert_array_equal(y.data, x.data)
    (y * 3.0).backward()
    np.testing.assert_array_equal(x.grad.data, np.full((2, 6, 2), 3.0))


def test_split_unused_pieces_get_zero_gradient():
    x = Variable(np.arange(6.0))
    a, b, c = F.split(x, 3)
    (b * 2.0).backward()
    np.testing.assert_array_equal(x.grad.data, [0, 0, 2, 2, 0, 0])


def test_split_into_one_piece_is_still_a_list():
    pieces = F.split(Variable(np.ones((2, 3))), 1)
    assert isinstance(pieces, list) and len(pieces) == 1 and pieces[0].shape == (2, 3)


def test_stack_then_index_gradient():
    a, b = Variable(np.ones(3)), Variable(np.zeros(3))
    y = F.stack([a, b], axis=1)
    assert y.shape == (3, 2)
    (y[:, 1] * 5.0).sum().backward()
    np.testing.assert_array_equal(a.grad.data, np.zeros(3))
    np.testing.assert_array_equal(b.grad.data, np.full(3, 5.0))


def test_flatten_keeps_the_batch_axis():
    assert F.flatten(np.zeros((4, 3, 2, 5))).shape == (4, 30)
    assert F.flatten(np.zeros((4,))).shape == (4, 1)
    with pytest.raises(ShapeError, match="flatten"):
        F.flatten(np.zeros(()))


def test_expand_dims_squeeze_roundtrip():
    x = Variable(np.ones((2, 3)))
    y = F.unsqueeze(x, (0, -1))
    assert y.shape == (1, 2, 3, 1)
    assert F.squeeze(y).shape == (2, 3)
    assert F.squeeze(y, axis=0).shape == (2, 3, 1)


# -- embed_id ---------------------------------------------------------------------------------
def test_embed_id_shapes():
    W = Variable(np.random.default_rng(0).standard_normal((10, 4)).astype(np.float32))
    assert F.embed_id(np.array([[1, 2, 3], [4, 5, 6]]), W).shape == (2, 3, 4)
    assert F.embed_id(np.array(7), W).shape == (4,)
    y = F.embed_id(Variable(np.array([9, 0])), W)
    np.testing.assert_array_equal(y.data, W.data[[9, 0]])
    assert y.dtype == np.float32


def test_embed_id_gradient_accumulates_repeated_ids():
    rng = np.random.default_rng(1)
    ids = np.array([[3, 1, 3], [3, 0, 1]])
    W = Variable(rng.standard_normal((5, 2)).astype(np.float32))
    gy = rng.standard_normal((2, 3, 2)).astype(np.float32)
    (F.embed_id(ids, W) * gy).sum().backward()
    expected = np.zeros((5, 2), np.float32)
    np.add.at(expected, ids, gy)
    assert W.grad.dtype == np.float32
    np.testing.assert_allclose(W.grad.data, expected, rtol=1e-6)
    np.testing.assert_array_equal(W.grad.data[[2, 4]], 0)  # unused rows


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fast_row_scatter_matches_add_at(dtype):
    rng = np.random.default_rng(2)
    x = Variable(rng.standard_normal((50, 3, 4)).astype(dtype))
    ids = rng.integers(-50, 50, size=(30, 7))
    gy = rng.standard_normal((50, 30, 7, 4)).astype(dtype)
    y = F.get_item(x, (slice(None), ids % 3 - 3))  # axis 1, negative ids
    (y * gy).sum().backward()
    expected = np.zeros(x.shape, dtype)
    np.add.at(expected, (slice(None), ids % 3 - 3), gy)
    np.testing.assert_allclose(x.grad.data, expected, rtol=1e-5, atol=1e-5)


def test_fast_row_scatter_without_repeats_assigns():
    rng = np.random.default_rng(4)
    W = Variable(rng.standard_normal((3000, 8)).astype(np.float32))
    ids = rng.permutation(3000)[:1000].reshape(10, 100)
    gy = rng.standard_normal((10, 100, 8)).astype(np.float32)
    (F.embed_id(ids, W) * gy).sum().backward()
    expected = np.zeros((3000, 8), np.float32)
    expected[ids] = gy
    np.testing.assert_array_equal(W.grad.data, expected)


@pytest.mark.parametrize("spec", [s for s in INDEXING_SPECS
                                  if s.name.startswith(("get_item", "embed_id", "take"))],
                         ids=str)
def test_fast_scatter_path_passes_the_indexing_specs(spec, monkeypatch):
    """The specs' inputs are small, which take plain add.at; force the fast path on them."""
    monkeypatch.setattr(indexing, "_SMALL_SCATTER", 0)
    check_grad(spec)
    check_double_backward(spec)
    check_dtype_and_grad_shapes(spec)


# -- linear -----------------------------------------------------------------------------------
def test_linear_skips_the_gradient_of_a_constant_x():
    x = np.ones((4, 3))
    W = Variable(np.ones((3, 2)))
    f = Linear()
    y = f(x, W)
    gx, gW = f.backward(Variable(np.ones_like(y.data)))
    assert gx is None
    np.testing.assert_array_equal(gW.data, np.full((3, 2), 4.0))


def test_linear_n_dimensional_x_and_bias_gradient():
    x = Variable(np.ones((2, 5, 3)))
    W = Variable(np.ones((3, 4)))
    b = Variable(np.zeros(4))
    y = F.linear(x, W, b)
    assert y.shape == (2, 5, 4)
    y.backward()
    np.testing.assert_array_equal(b.grad.data, np.full(4, 10.0))
    np.testing.assert_array_equal(W.grad.data, np.full((3, 4), 10.0))


def test_linear_keeps_float32():
    x = np.ones((2, 3), np.float32)
    W = Variable(np.ones((3, 2), np.float32))
    b = Variable(np.ones(2, np.float32))
    y = F.linear(x, W, b)
    y.backward()
    assert y.dtype == W.grad.dtype == b.grad.dtype == np.float32


def test_linear_simple_frees_the_intermediate_product():
    x, W, b = Variable(np.ones((64, 32))), Variable(np.ones((32, 16))), Variable(np.zeros(16))
    y = F.linear_simple(x, W, b)
    product = y.creator.inputs[0]
    assert product.shape == (64, 16) and product.data.strides == (0, 0)
    y.backward()
    np.testing.assert_array_equal(W.grad.data, np.full((32, 16), 64.0))
    np.testing.assert_array_equal(b.grad.data, np.full(16, 64.0))


def test_einsum_matches_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    a, b = rng.standard_normal((2, 3, 3)), rng.standard_normal((3, 4))
    va, vb = Variable(a), Variable(b)
    F.einsum("bii,ij->bj", va, vb).sum().backward()
    ta = torch.tensor(a, requires_grad=True)
    tb = torch.tensor(b, requires_grad=True)
    torch.einsum("bii,ij->bj", ta, tb).sum().backward()
    np.testing.assert_allclose(va.grad.data, ta.grad.numpy(), rtol=1e-12)
    np.testing.assert_allclose(vb.grad.data, tb.grad.numpy(), rtol=1e-12)


@pytest.mark.torch
def test_reduction_gradients_match_torch():
    torch = pytest.importorskip("torch")
    x = np.array([[3.0, 1.0, 3.0, 0.0], [2.0, 0.0, 5.0, -1.0], [4.0, 4.0, 4.0, 4.0]])
    w = np.random.default_rng(5).standard_normal(3)
    cases = [
        (lambda v: F.max(v, axis=1), lambda t: torch.amax(t, dim=1)),
        (lambda v: F.min(v, axis=1), lambda t: torch.amin(t, dim=1)),
        (lambda v: F.prod(v, axis=1), lambda t: torch.prod(t, dim=1)),
        (lambda v: F.std(v[:2], axis=1, ddof=1), lambda t: torch.std(t[:2], dim=1)),
        (lambda v: F.var(v, axis=1), lambda t: torch.var(t, dim=1, correction=0)),
        (lambda v: F.norm(v, axis=1), lambda t: torch.linalg.vector_norm(t, dim=1)),
        (lambda v: F.cumsum(v, axis=1)[:, 1], lambda t: torch.cumsum(t, dim=1)[:, 1]),
    ]
    for ours, theirs in cases:
        v = Variable(x.copy())
        y = ours(v)
        (y * w[: y.shape[0]]).sum().backward()
        t = torch.tensor(x, requires_grad=True)
        ty = theirs(t)
        (ty * torch.tensor(w[: ty.shape[0]])).sum().backward()
        np.testing.assert_allclose(y.data, ty.detach().numpy(), rtol=1e-12)
        np.testing.assert_allclose(v.grad.data, t.grad.numpy(), rtol=1e-12, atol=1e-12)


def test_non_contiguous_inputs():
    base = np.arange(1.0, 7.0).reshape(3, 2)
    x = base.T  # (2, 3), Fortran-ordered
    y = F.scatter_add(x, np.array([[0], [1]]), np.ones((2, 1)), axis=1)
    np.testing.assert_array_equal(y.data, np.array([[2, 3, 5], [2, 5, 6]]))
    np.testing.assert_array_equal(F.gather(x, np.array([[2], [0]]), axis=1).data, [[5], [2]])
    v = Variable(x)
    F.prod(v, axis=1).backward()
    np.testing.assert_allclose(v.grad.data, np.prod(x, axis=1, keepdims=True) / x)
    v = Variable(np.ascontiguousarray(np.broadcast_to(np.arange(3.0), (4000, 3))).T)
    (F.get_item(v, (slice(None), np.arange(4000) % 7)) * 2.0).sum().backward()
    expected = np.zeros((3, 4000))
    expected[:, :7] = 2.0 * np.bincount(np.arange(4000) % 7)
    np.testing.assert_array_equal(v.grad.data, expected)
    v = Variable(x)
    F.pad(v, 1, mode="edge").backward()
    np.testing.assert_array_equal(v.grad.data, [[4, 2, 4], [4, 2, 4]])


def test_reshape_and_outer_of_a_non_array_name_the_op():
    """reshape read ``x.shape`` before checking x: a str gave an AttributeError."""
    with pytest.raises(DTypeError, match=r"Reshape: input 0 is a str"):
        F.reshape("ab", (2,))
    with pytest.raises(DTypeError, match=r"Reshape: input 0 is a str"):
        F.outer(np.ones(2), "a")
