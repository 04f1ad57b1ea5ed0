"""prod's derivatives of orders 1 to 3 are exact and finite where x has zeros.

F(x) = <w, prod(x, axis, keepdims)>; order 1 is grad F, order 2 grad <grad F, u>, order 3
grad <grad <grad F, u>, v>, each taken by backward(create_graph=True) through the one before.
The third order divided by x once (nan at a zero); now every order is the same
division-free Function, ProductOfOthers, with one more direction.
"""

import numpy as np
import pytest

import zerograd.functions as F
from zerograd import Variable

# (shape, axis, keepdims, where the zeros go: all in one reduction group, so that the
# derivatives that survive them are tested, not just zeros)
CASES = [
    ((5,), None, False, [(1,), (3,), (4,)]),
    ((3, 4), None, False, [(0, 1), (2, 3), (1, 0)]),
    ((3, 4), 1, False, [(0, 1), (0, 3), (0, 0)]),
    ((3, 4), -1, True, [(2, 0), (2, 2), (2, 3)]),
    ((3, 4), 0, True, [(1, 2), (0, 2), (2, 2)]),
    ((2, 3, 4), (0, 2), False, [(0, 1, 0), (1, 1, 2), (0, 1, 3)]),
    ((2, 3, 4), (2, 0), True, [(1, 2, 1), (0, 2, 2), (1, 2, 3)]),
]
CASE_IDS = [f"{shape}-axis{axis}-keep{keepdims}" for shape, axis, keepdims, _ in CASES]


def _inputs(shape, axis, keepdims, zeros, n_zeros, seed=0):
    """x in +-[0.5, 1.5] with its first ``n_zeros`` listed places set to 0, plus the
    directions w (the output's shape), u and v (x's shape)."""
    rng = np.random.default_rng(seed)
    x = rng.choice([-1.0, 1.0], size=shape) * rng.uniform(0.5, 1.5, size=shape)
    for place in zeros[:n_zeros]:
        x[place] = 0.0
    w = rng.standard_normal(np.prod(x, axis=axis, keepdims=keepdims).shape)
    return x, w, rng.standard_normal(shape), rng.standard_normal(shape)


def _zerograd_orders(x, axis, keepdims, w, u, v):
    """The three derivatives of F as arrays, each from a backward through the previous."""
    xv = Variable(x.copy())
    (F.prod(xv, axis=axis, keepdims=keepdims) * w).sum().backward(create_graph=True)
    g1 = xv.grad
    xv.cleargrad()
    (g1 * u).sum().backward(create_graph=True)
    g2 = xv.grad
    xv.cleargrad()
    (g2 * v).sum().backward()
    return g1.data, g2.data, xv.grad.data


def _central_gradient(scalar, x, eps=1e-5):
    """The gradient of ``scalar`` (array -> float) by central differences, coordinatewise."""
    grad = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        step = np.zeros_like(x)
        step[i] = eps
        grad[i] = (scalar(x + step) - scalar(x - step)) / (2 * eps)
    return grad


@pytest.mark.parametrize("n_zeros", [0, 1, 2, 3])
@pytest.mark.parametrize("shape, axis, keepdims, zeros", CASES, ids=CASE_IDS)
def test_orders_one_to_three_match_central_differences(shape, axis, keepdims, zeros, n_zeros):
    """Order 1 against differences of NumPy's prod; orders 2 and 3 against differences of
    the order below (in float64, where a difference of eps = 1e-5 is good to ~1e-9)."""
    x, w, u, v = _inputs(shape, axis, keepdims, zeros, n_zeros)
    g1, g2, g3 = _zerograd_orders(x, axis, keepdims, w, u, v)

    def order0(a):
        return float(np.sum(w * np.prod(a, axis=axis, keepdims=keepdims)))

    def order1(a):
        return float(np.sum(_zerograd_orders(a, axis, keepdims, w, u, v)[0] * u))

    def order2(a):
        return float(np.sum(_zerograd_orders(a, axis, keepdims, w, u, v)[1] * v))

    for got, scalar in [(g1, order0), (g2, order1), (g3, order2)]:
        assert np.isfinite(got).all()
        np.testing.assert_allclose(got, _central_gradient(scalar, x), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("n_zeros", [0, 1, 2, 3])
@pytest.mark.parametrize("shape, axis, keepdims, zeros", CASES, ids=CASE_IDS)
def test_orders_one_to_three_match_torch(shape, axis, keepdims, zeros, n_zeros):
    torch = pytest.importorskip("torch")
    x, w, u, v = _inputs(shape, axis, keepdims, zeros, n_zeros, seed=1)
    got = _zerograd_orders(x, axis, keepdims, w, u, v)

    t = torch.tensor(x, requires_grad=True)
    if axis is None:
        ty = torch.prod(t)
    else:  # torch.prod takes one dim: reduce the axes one at a time, the highest first
        ty = t
        for a in sorted((a % len(shape) for a in np.atleast_1d(axis)), reverse=True):
            ty = torch.prod(ty, dim=int(a), keepdim=keepdims)
    (t1,) = torch.autograd.grad((ty * torch.tensor(w)).sum(), t, create_graph=True)
    (t2,) = torch.autograd.grad((t1 * torch.tensor(u)).sum(), t, create_graph=True)
    (t3,) = torch.autograd.grad((t2 * torch.tensor(v)).sum(), t)
    for ours, theirs in zip(got, (t1, t2, t3), strict=True):
        np.testing.assert_allclose(ours, theirs.detach().numpy(), rtol=1e-12, atol=1e-12)
        assert np.isfinite(ours).all()


def _mixed_third(x, i, j, k):
    """d^3 prod(x) / dx_i dx_j dx_k by three backwards through single elements."""
    xv = Variable(np.asarray(x, dtype=np.float64))
    F.prod(xv).backward(create_graph=True)
    g = xv.grad[i]
    xv.cleargrad()
    g.backward(create_graph=True)
    gg = xv.grad[j]
    xv.cleargrad()
    gg.backward()
    return xv.grad.data[k]


def test_mixed_third_derivatives_by_hand():
    """d^3/dx_i dx_j dx_k prod(x) is the product of the other elements (0 if two indices are
    equal): 1 for [0, 0, 0]; 2 for [0, 0, 0, 2]; x3 for any x0..x2, zero or not."""
    assert _mixed_third([0.0, 0.0, 0.0], 0, 1, 2) == 1.0
    assert _mixed_third([0.0, 0.0, 0.0, 2.0], 2, 0, 1) == 2.0
    assert _mixed_third([0.0, 0.0, 0.0, 2.0], 0, 1, 3) == 0.0
    assert _mixed_third([1.5, 0.0, -0.5, 4.0], 1, 2, 0) == 4.0
    assert _mixed_third([1.5, 0.0, -0.5, 4.0], 1, 1, 0) == 0.0


def test_a_0d_input_has_zero_second_and_third_derivatives():
    xv = Variable(np.array(0.0))
    F.prod(xv).backward(create_graph=True)
    g = xv.grad
    assert g.data == 1.0
    xv.cleargrad()
    g.backward(create_graph=True)
    gg = xv.grad
    assert gg.data == 0.0
    xv.cleargrad()
    gg.backward()
    assert xv.grad.data == 0.0


def test_third_order_stays_float32():
    x = np.array([[0.0, 2.0, 0.5], [1.0, 0.0, 0.0]], dtype=np.float32)
    ones = np.ones_like(x)
    got = _zerograd_orders(x, 1, False, np.ones(2, np.float32), ones, ones)
    assert [g.dtype for g in got] == [np.float32] * 3
    # entry l sums d^3 prod / dx_l dx_j dx_k over j, k: 1 (the empty product) for each of
    # the 2 orderings of the two other elements, whatever their values
    np.testing.assert_array_equal(got[2], [[2.0, 2.0, 2.0], [2.0, 2.0, 2.0]])
