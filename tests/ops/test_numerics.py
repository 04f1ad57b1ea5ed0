"""Stability of the softmax family and the saturating activations at magnitude 1e4.

Each op must give finite, correct values and finite gradients in float32 and float64, with
no floating-point overflow, invalid operation or division by zero along the way.
"""

import math

import numpy as np
import pytest

import zerograd.functions as F
from zerograd import Variable

DTYPES = [np.float32, np.float64]
BIG = 1e4

ROWS = np.array([
    [BIG, 0.0, -BIG, 0.5 * BIG],
    [-BIG, -BIG, -BIG, -BIG],
    [BIG, BIG, -BIG, -BIG],
    [1.0, 2.0, 3.0, 4.0],
])


def stable_softmax64(x, axis=1):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def value_and_grad(fn, x, dtype, seed=0):
    """fn(x) and the gradient of <w, fn(x)> for a random w, with FP errors raising."""
    v = Variable(np.asarray(x, dtype=dtype))
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        y = fn(v)
        w = np.random.default_rng(seed).standard_normal(y.shape).astype(dtype)
        (y * w).sum().backward()
    assert y.dtype == dtype and v.grad.dtype == dtype
    assert np.all(np.isfinite(y.data)), y.data
    assert np.all(np.isfinite(v.grad.data)), v.grad.data
    return y.data, v.grad.data, w


def rtol(dtype):
    return 1e-6 if dtype == np.float32 else 1e-12


@pytest.mark.parametrize("dtype", DTYPES)
def test_softmax_large_inputs(dtype):
    y, gx, w = value_and_grad(F.softmax, ROWS, dtype)
    expected = stable_softmax64(ROWS)
    np.testing.assert_allclose(y, expected, rtol=rtol(dtype), atol=1e-7)
    np.testing.assert_allclose(y[0], [1, 0, 0, 0])
    np.testing.assert_allclose(y[1], [0.25] * 4)
    np.testing.assert_allclose(y[2], [0.5, 0.5, 0, 0])
    np.testing.assert_allclose(y.sum(axis=1), 1, rtol=1e-6)
    expected_grad = expected * (w - (expected * w).sum(axis=1, keepdims=True))
    np.testing.assert_allclose(gx, expected_grad, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("dtype", DTYPES)
def test_log_softmax_large_inputs(dtype):
    y, gx, w = value_and_grad(F.log_softmax, ROWS, dtype)
    np.testing.assert_allclose(y[0], [0, -BIG, -2 * BIG, -0.5 * BIG], rtol=rtol(dtype))
    np.testing.assert_allclose(y[1], [math.log(0.25)] * 4, rtol=1e-6)
    np.testing.assert_allclose(y[2, :2], [-math.log(2)] * 2, rtol=1e-6)
    np.testing.assert_allclose(y[2, 2:], [-2 * BIG - math.log(2)] * 2, rtol=rtol(dtype))
    p = stable_softmax64(ROWS)
    expected_grad = w - p * w.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(gx, expected_grad, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("dtype", DTYPES)
def test_logsumexp_large_inputs(dtype):
    y, gx, w = value_and_grad(F.logsumexp, ROWS, dtype)
    expected = [BIG, -BIG + math.log(4), BIG + math.log(2), math.log(np.exp(ROWS[3]).sum())]
    np.testing.assert_allclose(y, expected, rtol=rtol(dtype))
    np.testing.assert_allclose(gx, w[:, None] * stable_softmax64(ROWS), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("dtype", DTYPES)
def test_logsumexp_of_all_minus_inf_is_minus_inf_without_nan(dtype):
    x = Variable(np.full((2, 3), -np.inf, dtype=dtype))
    y = F.logsumexp(x, axis=1)
    assert np.all(y.data == -np.inf)
    p = F.softmax(Variable(np.array([[-np.inf, 0.0]], dtype=dtype)))
    np.testing.assert_array_equal(p.data, [[0, 1]])


@pytest.mark.parametrize("dtype", DTYPES)
def test_sigmoid_large_inputs_and_tail_accuracy(dtype):
    x = np.array([BIG, -BIG, 0.0, 30.0, -30.0, -80.0, 88.0, -88.0])
    y, gx, w = value_and_grad(F.sigmoid, x, dtype)
    exact = np.array([1 / (1 + math.exp(-float(v))) if v > -700 else 0.0
                      for v in x.astype(dtype)])
    np.testing.assert_allclose(y, exact, rtol=4 * np.finfo(dtype).eps, atol=0)
    assert y[1] == 0 and y[0] == 1 and y[2] == 0.5
    # Full relative accuracy deep in the tail, where tanh(x/2)/2 + 1/2 (DeZero) gives 0.
    assert y[5] > 0
    # y (1 - y) loses sigmoid'(30) = 9e-14 to rounding in float32 (as PyTorch): the error
    # is below float epsilon in absolute terms.
    eps = np.finfo(dtype).eps
    np.testing.assert_allclose(gx, w * exact * (1 - exact), rtol=1e-5, atol=eps)


@pytest.mark.parametrize("dtype", DTYPES)
def test_softplus_large_inputs_and_tail_accuracy(dtype):
    x = np.array([BIG, -BIG, 0.0, 50.0, -50.0, -80.0])  # softplus(-80) = 1.8e-35: normal
    y, gx, w = value_and_grad(F.softplus, x, dtype)
    xd = x.astype(dtype).astype(np.float64)
    exact = np.array([max(v, 0) + math.log1p(math.exp(-abs(v))) for v in xd])
    np.testing.assert_allclose(y, exact, rtol=4 * np.finfo(dtype).eps, atol=0)
    assert y[0] == BIG and y[1] == 0
    sig = np.array([1 / (1 + math.exp(-v)) if v > -700 else 0.0 for v in xd])
    np.testing.assert_allclose(gx, w * sig, rtol=1e-5, atol=0)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", ["gelu", "gelu_tanh", "silu", "mish", "elu", "selu",
                                  "hard_sigmoid", "leaky_relu", "relu", "tanh"])
def test_other_activations_are_finite_and_saturate_at_large_inputs(name, dtype):
    fn = {"gelu_tanh": lambda v: F.gelu(v, approximate="tanh")}.get(name) or getattr(F, name)
    x = np.array([BIG, -BIG, 100.0, -100.0])
    y, gx, w = value_and_grad(fn, x, dtype)
    # Every one of these is the identity (slope 1) far right; far left it is flat or linear.
    right = {"hard_sigmoid": 1.0, "tanh": 1.0, "selu": BIG * 1.0507009873554805}.get(name, BIG)
    assert y[0] == pytest.approx(right, rel=1e-6)
    assert np.all(np.abs(gx) <= np.abs(w) * 1.06)  # |f'| <= 1 (selu: its scale 1.0507)


@pytest.mark.parametrize("dtype", DTYPES)
def test_second_derivatives_finite_at_large_inputs(dtype):
    for fn in (F.sigmoid, F.softplus, F.gelu, F.silu, F.mish, F.elu):
        x = Variable(np.array([BIG, -BIG, 50.0, -50.0], dtype=dtype))
        with np.errstate(over="raise", invalid="raise", divide="raise"):
            fn(x).sum().backward(create_graph=True)
            gx = x.grad
            x.cleargrad()
            gx.sum().backward()
        assert np.all(np.isfinite(x.grad.data)), (fn.__name__, x.grad.data)
    for fn in (F.softmax, F.log_softmax):
        x = Variable(ROWS.astype(dtype))
        w = np.random.default_rng(0).standard_normal(ROWS.shape).astype(dtype)
        with np.errstate(over="raise", invalid="raise", divide="raise"):
            (fn(x) * w).sum().backward(create_graph=True)
            gx = x.grad
            x.cleargrad()
            (gx * gx).sum().backward()
        assert np.all(np.isfinite(x.grad.data)), (fn.__name__, x.grad.data)


def test_softmax_simple_keeps_deZeros_overflow():
    """The composed, unshifted softmax (DeZero's) overflows; softmax does not."""
    x = Variable(np.array([[1000.0, 0.0]]))
    with np.errstate(over="ignore", invalid="ignore"):
        assert np.isnan(F.softmax_simple(x).data[0, 0])
    np.testing.assert_allclose(F.softmax(x).data, [[1.0, 0.0]])


def test_erf_and_erfc_match_math_to_float64_precision():
    xs = np.concatenate([np.linspace(-6, 6, 4001), np.geomspace(1e-300, 0.5, 50)])
    erf = F.erf(Variable(xs)).data
    erfc = F.erfc(Variable(xs)).data
    exact_erf = np.array([math.erf(v) for v in xs])
    exact_erfc = np.array([math.erfc(v) for v in xs])
    np.testing.assert_allclose(erf, exact_erf, rtol=1e-13, atol=0)
    np.testing.assert_allclose(erfc, exact_erfc, rtol=2e-13, atol=0)
    tail = np.linspace(6, 26, 201)  # erfc down to 1e-296, relative accuracy kept
    np.testing.assert_allclose(F.erfc(Variable(tail)).data,
                               [math.erfc(v) for v in tail], rtol=2e-13, atol=0)


def test_erf_float32_accuracy_and_infinities():
    xs = np.linspace(-5, 5, 1001).astype(np.float32)
    y = F.erf(Variable(xs)).data
    assert y.dtype == np.float32
    np.testing.assert_allclose(y, [math.erf(float(v)) for v in xs], rtol=3e-7, atol=1e-7)
    inf = Variable(np.array([np.inf, -np.inf]))
    np.testing.assert_array_equal(F.erf(inf).data, [1, -1])
    np.testing.assert_array_equal(F.erfc(inf).data, [0, 2])


def test_gelu_tail_keeps_relative_accuracy():
    """x Phi(x) with Phi from erfc: gelu(-10) ~ -7.6e-23 (1 + erf(...) would give 0)."""
    x = np.array([-10.0, -20.0, -5.0])
    y = F.gelu(Variable(x)).data
    exact = [v * 0.5 * math.erfc(-v / math.sqrt(2)) for v in x]
    np.testing.assert_allclose(y, exact, rtol=1e-12, atol=0)


def test_against_torch_float64():
    torch = pytest.importorskip("torch")
    x = np.linspace(-6, 6, 97)
    cases = {
        "sigmoid": (F.sigmoid, torch.sigmoid),
        "softplus": (F.softplus, torch.nn.functional.softplus),
        "gelu": (F.gelu, torch.nn.functional.gelu),
        "gelu_tanh": (lambda v: F.gelu(v, approximate="tanh"),
                      lambda t: torch.nn.functional.gelu(t, approximate="tanh")),
        "elu": (F.elu, torch.nn.functional.elu),
        "selu": (F.selu, torch.nn.functional.selu),
        "silu": (F.silu, torch.nn.functional.silu),
        "mish": (F.mish, torch.nn.functional.mish),
        "hard_sigmoid": (F.hard_sigmoid, torch.nn.functional.hardsigmoid),
        "leaky_relu": (F.leaky_relu, lambda t: torch.nn.functional.leaky_relu(t, 0.2)),
        "erf": (F.erf, torch.erf),
        "erfc": (F.erfc, torch.erfc),
    }
    for name, (ours, theirs) in cases.items():
        v = Variable(x.copy())
        y = ours(v)
        y.backward()
        t = torch.tensor(x, requires_grad=True)
        ty = theirs(t)
        ty.sum().backward()
        np.testing.assert_allclose(y.data, ty.detach().numpy(), rtol=1e-12, atol=1e-15,
                                   err_msg=name)
        # PyTorch's hardsigmoid backward multiplies by 1/6 rounded to float32.
        grad_rtol = 1e-7 if name == "hard_sigmoid" else 1e-10
        np.testing.assert_allclose(v.grad.data, t.grad.numpy(), rtol=grad_rtol, atol=1e-14,
                                   err_msg=name)
    rows = np.random.default_rng(0).standard_normal((3, 5)) * 50
    for ours, theirs in ((F.softmax, torch.softmax), (F.log_softmax, torch.log_softmax),
                         (F.logsumexp, torch.logsumexp)):
        v = Variable(rows.copy())
        w = np.random.default_rng(1).standard_normal(ours(v).shape)
        (ours(v) * w).sum().backward()
        t = torch.tensor(rows, requires_grad=True)
        (theirs(t, 1) * torch.tensor(w)).sum().backward()
        np.testing.assert_allclose(ours(Variable(rows)).data, theirs(torch.tensor(rows), 1),
                                   rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(v.grad.data, t.grad.numpy(), rtol=1e-10, atol=1e-14)


def nth_derivative(fn, x0, n):
    x = Variable(np.array(x0))
    y = fn(x)
    for _ in range(n):
        x.cleargrad()
        y.backward(create_graph=True)
        y = x.grad
    return float(y.data)


def test_third_derivatives_through_the_fused_gradient_nodes():
    """Tanh/Sigmoid/Softmax/LogSoftmax backward are single fused nodes; their own backward
    must still give every higher order."""
    x0 = 0.7
    t, s = math.tanh(x0), 1 / (1 + math.exp(-x0))
    assert nth_derivative(F.tanh, x0, 3) == pytest.approx(-2 * (1 - t * t) * (1 - 3 * t * t))
    assert nth_derivative(F.sigmoid, x0, 3) == pytest.approx(s * (1 - s) * (1 - 6 * s + 6 * s * s))
    xv = np.array([[0.3, -0.2, 0.9]])
    w = np.array([[0.5, -1.0, 2.0]])
    for fn in (F.softmax, F.log_softmax, F.logsumexp):
        def second(xa):
            x = Variable(xa)
            y = fn(x)
            (y * w if y.shape == w.shape else y).sum().backward(create_graph=True)
            g = x.grad
            x.cleargrad()
            (g * g).sum().backward(create_graph=True)
            return x.grad, x

        g2, x = second(xv)
        x.cleargrad()
        (g2 * g2).sum().backward()
        numeric = np.zeros(3)
        for k in range(3):
            e = np.zeros((1, 3))
            e[0, k] = 1e-6
            plus = (second(xv + e)[0].data ** 2).sum()
            minus = (second(xv - e)[0].data ** 2).sum()
            numeric[k] = (plus - minus) / 2e-6
        np.testing.assert_allclose(x.grad.data[0], numeric, rtol=1e-5, atol=1e-8)


def test_matches_dezero_where_dezero_is_right(monkeypatch):
    """DeZero's names, signatures and defaults are the API: same values and gradients."""
    monkeypatch.setattr(np, "int", int, raising=False)  # dezero 0.0.13 needs it at import
    dezero = pytest.importorskip("dezero")
    import dezero.functions as DF

    x = np.random.default_rng(0).uniform(-5, 5, size=(4, 3))
    cases = [
        (F.sigmoid, DF.sigmoid), (F.sigmoid_simple, DF.sigmoid_simple), (F.relu, DF.relu),
        (F.leaky_relu, DF.leaky_relu), (lambda v: F.leaky_relu(v, 0.1),
                                        lambda v: DF.leaky_relu(v, 0.1)),
        (F.softmax, DF.softmax), (F.softmax_simple, DF.softmax_simple),
        (F.log_softmax, DF.log_softmax), (lambda v: F.softmax(v, axis=0),
                                          lambda v: DF.softmax(v, axis=0)),
        (lambda v: F.clip(v, -1.0, 2.0), lambda v: DF.clip(v, -1.0, 2.0)),
        (F.tanh, DF.tanh), (F.exp, DF.exp), (F.sin, DF.sin), (F.cos, DF.cos),
    ]
    w = np.random.default_rng(1).standard_normal(x.shape)
    for ours, theirs in cases:
        v, d = Variable(x.copy()), dezero.Variable(x.copy())
        y, yd = ours(v), theirs(d)
        np.testing.assert_allclose(y.data, yd.data, rtol=1e-12, atol=1e-15)
        (y * w).sum().backward()
        (yd * w).sum().backward()
        np.testing.assert_allclose(v.grad.data, d.grad.data, rtol=1e-10, atol=1e-14)
    # DeZero's class signatures work unchanged.
    v = Variable(x.copy())
    np.testing.assert_allclose(F.Clip(-1.0, 2.0)(v).data, np.clip(x, -1.0, 2.0))
    np.testing.assert_allclose(F.Softmax(axis=0)(v).data, DF.Softmax(axis=0)(x).data)
    np.testing.assert_allclose(F.LeakyReLU(0.3)(v).data, DF.LeakyReLU(0.3)(x).data)
    np.testing.assert_allclose(F.LogSoftmax(axis=1)(v).data, DF.LogSoftmax(axis=1)(x).data)
