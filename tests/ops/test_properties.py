"""Property-based tests: random compositions of ops, differentiated twice, against PyTorch.

Hypothesis draws a small program: two inputs x and y (y's shape broadcast-compatible with
x's), then a chain of 2-5 steps from elementwise functions, broadcasting binary ops with
y, reductions (axis, keepdims), reshape/transpose, matmul and the softmax family. Both
frameworks run it in float64; the loss is <w, h>. First order (the gradients of x and y,
with create_graph) and second order (the gradient of <u, dx> + <v, dy>) must agree.

Deterministic (``derandomize=True``, no example database) and bounded: EXAMPLES programs,
a few seconds on a 2-core machine.
"""

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
torch = pytest.importorskip("torch")

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import zerograd.functions as F  # noqa: E402
from zerograd import Variable  # noqa: E402

EXAMPLES = 300
PROFILE = settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None)

# name -> (zerograd, torch); smooth, or kinked only where random floats never land.
UNARY = {
    "tanh": (F.tanh, torch.tanh),
    "sin": (F.sin, torch.sin),
    "cos": (F.cos, torch.cos),
    "sigmoid": (F.sigmoid, torch.sigmoid),
    "softplus": (F.softplus, torch.nn.functional.softplus),
    "exp_tanh": (lambda h: F.exp(F.tanh(h)), lambda h: torch.exp(torch.tanh(h))),
    "square": (lambda h: h * h, lambda h: h * h),
    "cube": (lambda h: h ** 3, lambda h: h ** 3),
    "log1p_square": (lambda h: F.log(1 + h * h), lambda h: torch.log(1 + h * h)),
    "relu": (F.relu, torch.relu),
    "gelu": (F.gelu, torch.nn.functional.gelu),
    "neg": (lambda h: -h, lambda h: -h),
}
BINARY = {
    "add": (lambda a, b: a + b, lambda a, b: a + b),
    "sub": (lambda a, b: b - a, lambda a, b: b - a),
    "mul": (lambda a, b: a * b, lambda a, b: a * b),
    "div": (lambda a, b: a / b, lambda a, b: a / b),  # y is kept in [0.5, 2]
    "maximum": (F.maximum, torch.maximum),
}
SOFTMAX = {
    "softmax": (F.softmax, lambda h, axis: torch.softmax(h, axis)),
    "log_softmax": (F.log_softmax, lambda h, axis: torch.log_softmax(h, axis)),
}


@st.composite
def shapes(draw):
    """x's shape (0-3 axes of 1-3) and a broadcast-compatible shape for y."""
    x_shape = tuple(draw(st.lists(st.integers(1, 3), min_size=0, max_size=3)))
    keep = draw(st.integers(0, len(x_shape)))  # y drops leading axes...
    y_shape = tuple(1 if draw(st.booleans()) else n  # ...and squeezes some to 1
                    for n in x_shape[len(x_shape) - keep:])
    return x_shape, y_shape


def _step(draw, h, th, y, ty):
    """One random op applied to (h, th) in both frameworks; returns the new pair."""
    kinds = ["unary", "unary"]
    if _broadcasts(h.shape, y.shape):  # after a reshape or reduction y may no longer fit
        kinds += ["binary", "binary"]
    if h.ndim >= 1:
        kinds += ["reduce", "softmax", "matmul", "reshape"]
    if h.ndim >= 2:
        kinds += ["transpose"]
    kind = draw(st.sampled_from(kinds))
    if kind == "unary":
        ours, theirs = UNARY[draw(st.sampled_from(sorted(UNARY)))]
        return ours(h), theirs(th)
    if kind == "binary":
        ours, theirs = BINARY[draw(st.sampled_from(sorted(BINARY)))]
        return ours(h, y), theirs(th, ty)
    axis = draw(st.integers(-h.ndim, h.ndim - 1))
    if kind == "reduce":
        name = draw(st.sampled_from(["sum", "mean", "max", "logsumexp"]))
        keepdims = draw(st.booleans())
        if draw(st.booleans()) and name != "logsumexp":
            return getattr(F, name)(h, keepdims=keepdims), _torch_all(name, th, keepdims, h.ndim)
        ours = getattr(F, name)(h, axis=axis, keepdims=keepdims)
        if name == "max":
            return ours, torch.amax(th, dim=axis, keepdim=keepdims)
        return ours, getattr(torch, name)(th, dim=axis, keepdim=keepdims)
    if kind == "softmax":
        ours, theirs = SOFTMAX[draw(st.sampled_from(sorted(SOFTMAX)))]
        return ours(h, axis=axis), theirs(th, axis)
    if kind == "matmul":
        k = draw(st.integers(1, 3))
        W = np.random.default_rng(draw(st.integers(0, 2**16))).standard_normal((h.shape[-1], k))
        return F.matmul(h, W), th @ torch.tensor(W)
    if kind == "reshape":
        shape = draw(st.sampled_from([(-1,), tuple(reversed(h.shape)), h.shape + (1,)]))
        return F.reshape(h, shape), th.reshape(shape)
    axes = tuple(draw(st.permutations(range(h.ndim))))
    return F.transpose(h, axes), th.permute(axes)


def _broadcasts(a: tuple, b: tuple) -> bool:
    try:
        np.broadcast_shapes(a, b)
    except ValueError:
        return False
    return True


def _torch_all(name, th, keepdims, ndim):
    """A reduction over every axis in torch, with keepdims."""
    y = {"sum": torch.sum, "mean": torch.mean, "max": torch.amax}[name](th)
    return y.reshape((1,) * ndim) if keepdims else y


def _run(draw):
    """Draw a program and run it in both frameworks; returns what the checks need."""
    x_shape, y_shape = draw(shapes())
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    x0 = rng.uniform(-1.5, 1.5, x_shape)
    y0 = rng.uniform(0.5, 2.0, y_shape)
    x, y = Variable(x0.copy()), Variable(y0.copy())
    tx = torch.tensor(x0, requires_grad=True)
    ty = torch.tensor(y0, requires_grad=True)
    h, th = x, tx
    for _ in range(draw(st.integers(2, 5))):
        h, th = _step(draw, h, th, y, ty)
    assert h.shape == tuple(th.shape)
    w = rng.standard_normal(h.shape)
    u, v = rng.standard_normal(x.shape), rng.standard_normal(y.shape)
    return x, y, tx, ty, h, th, w, u, v


@PROFILE
@given(st.data())
def test_random_compositions_match_torch_to_second_order(data):
    x, y, tx, ty, h, th, w, u, v = _run(data.draw)
    np.testing.assert_allclose(h.data, th.detach().numpy(), rtol=1e-10, atol=1e-12)

    (h * w).sum().backward(create_graph=True)
    gx, gy = x.grad, y.grad
    tgx, tgy = torch.autograd.grad((th * torch.tensor(w)).sum(), (tx, ty), create_graph=True,
                                   allow_unused=True)
    for ours, theirs, name in ((gx, tgx, "dx"), (gy, tgy, "dy")):
        expected = np.zeros(x.shape if name == "dx" else y.shape) if theirs is None else (
            theirs.detach().numpy())
        got = np.zeros_like(expected) if ours is None else ours.data
        np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-11, err_msg=name)

    second = None
    for g, direction in ((gx, u), (gy, v)):
        if g is not None:
            term = (g * direction).sum()
            second = term if second is None else second + term
    x.cleargrad()
    y.cleargrad()
    if second is not None and second.creator is not None:
        second.backward()
    t_second = sum(((g * torch.tensor(d)).sum() for g, d in ((tgx, u), (tgy, v))
                    if g is not None and g.requires_grad), torch.zeros((), dtype=torch.float64))
    if t_second.requires_grad:
        tggx, tggy = torch.autograd.grad(t_second, (tx, ty), allow_unused=True)
    else:
        tggx = tggy = None
    for var, theirs, name in ((x, tggx, "d2x"), (y, tggy, "d2y")):
        expected = np.zeros(var.shape) if theirs is None else theirs.numpy()
        got = np.zeros(var.shape) if var.grad is None else var.grad.data
        np.testing.assert_allclose(got, expected, rtol=1e-8, atol=1e-10, err_msg=name)
