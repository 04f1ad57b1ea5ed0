"""zerograd.autograd: grad (no .grad touched), vjp, jvp, jacobian, hessian, hvp, vhp.

Values are checked against central differences and against PyTorch's
torch.autograd.functional on a dozen functions, including a small MLP's Hessian-vector
product.
"""

import threading

import numpy as np
import pytest

import zerograd.functions as F
from zerograd import Variable, autograd
from zerograd.errors import GraphError, ShapeError

torch = pytest.importorskip("torch")
TF = torch.autograd.functional

rng = np.random.default_rng(0)
W1 = rng.standard_normal((3, 4)) * 0.5
b1 = rng.standard_normal(4) * 0.1
W2 = rng.standard_normal((4, 2)) * 0.5


def zg_mlp(x):
    h = F.tanh(F.matmul(x, W1) + b1)
    return F.sum(F.matmul(h, W2) ** 2)


def torch_mlp(x):
    h = torch.tanh(x @ torch.from_numpy(W1) + torch.from_numpy(b1))
    return ((h @ torch.from_numpy(W2)) ** 2).sum()


# (name, zerograd function, torch function, input shape); scalar outputs, so every derivative
# of the functional API applies. Inputs are drawn in (0.5, 1.5) (log, sqrt, pow domains).
FUNCTIONS = [
    ("sum_sin", lambda x: F.sum(F.sin(x)), lambda x: torch.sin(x).sum(), (3,)),
    ("cubic", lambda x: F.sum(x ** 3), lambda x: (x ** 3).sum(), (4,)),
    ("exp_times_x", lambda x: F.sum(F.exp(x) * x), lambda x: (torch.exp(x) * x).sum(), (3,)),
    ("log", lambda x: F.sum(F.log(x) * x * x), lambda x: (torch.log(x) * x * x).sum(), (3,)),
    ("tanh_square", lambda x: F.sum(F.tanh(x) ** 2), lambda x: (torch.tanh(x) ** 2).sum(), (2, 3)),
    ("sigmoid", lambda x: F.sum(F.sigmoid(x) * x), lambda x: (torch.sigmoid(x) * x).sum(), (4,)),
    ("sqrt_cos", lambda x: F.sum(F.sqrt(x) * F.cos(x)),
     lambda x: (torch.sqrt(x) * torch.cos(x)).sum(), (3,)),
    ("quotient", lambda x: F.sum(1 / (1 + x * x)), lambda x: (1 / (1 + x * x)).sum(), (3,)),
    ("matmul_quadratic", lambda x: F.sum(F.matmul(F.reshape(x, (1, 3)), W1) ** 2),
     lambda x: ((x.reshape(1, 3) @ torch.from_numpy(W1)) ** 2).sum(), (3,)),
    ("softmax_entropy", lambda x: -F.sum(F.softmax(F.reshape(x, (1, 4)))
                                         * F.log_softmax(F.reshape(x, (1, 4)))),
     lambda x: -(torch.softmax(x, 0) * torch.log_softmax(x, 0)).sum(), (4,)),
    ("pairwise_product", lambda x: F.sum(x[:-1] * x[1:]), lambda x: (x[:-1] * x[1:]).sum(), (5,)),
    ("mlp", zg_mlp, torch_mlp, (2, 3)),
]
IDS = [f[0] for f in FUNCTIONS]


def point(shape, seed=1):
    return np.random.default_rng(seed).uniform(0.5, 1.5, shape)


def torch_of(a):
    return torch.tensor(a, dtype=torch.float64)


def value(v):
    return v.data if isinstance(v, Variable) else np.asarray(v)


def central_gradient(f, x, eps=1e-6):
    g = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        e = np.zeros_like(x)
        e[i] = eps
        g[i] = (float(f(Variable(x + e)).data) - float(f(Variable(x - e)).data)) / (2 * eps)
    return g


@pytest.mark.parametrize("name, zf, tf, shape", FUNCTIONS, ids=IDS)
def test_grad_matches_torch_and_central_differences(name, zf, tf, shape):
    x0 = point(shape)
    x = Variable(x0.copy())
    (g,) = autograd.grad(zf(x), x)
    t = torch_of(x0).requires_grad_()
    (tg,) = torch.autograd.grad(tf(t), t)
    np.testing.assert_allclose(g.data, tg.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(g.data, central_gradient(zf, x0), rtol=1e-5, atol=1e-7)
    assert x.grad is None


@pytest.mark.parametrize("name, zf, tf, shape", FUNCTIONS, ids=IDS)
def test_hessian_matches_torch(name, zf, tf, shape):
    x0 = point(shape)
    H = autograd.hessian(zf, x0)
    tH = TF.hessian(tf, torch_of(x0))
    assert H.shape == shape + shape
    np.testing.assert_allclose(H.data, tH.numpy(), rtol=1e-9, atol=1e-12)
    # ... and the gradient's central differences (the Hessian's columns).
    flat = np.zeros((x0.size, x0.size))
    for j in range(x0.size):
        e = np.zeros(x0.size)
        e[j] = 1e-6
        e = e.reshape(shape)
        xp_, xm_ = Variable(x0 + e), Variable(x0 - e)
        gp = autograd.grad(zf(xp_), xp_)[0].data
        gm = autograd.grad(zf(xm_), xm_)[0].data
        flat[:, j] = ((gp - gm) / 2e-6).reshape(-1)
    np.testing.assert_allclose(H.data.reshape(x0.size, x0.size), flat, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name, zf, tf, shape", FUNCTIONS, ids=IDS)
def test_hvp_vhp_vjp_jvp_match_torch(name, zf, tf, shape):
    x0 = point(shape)
    v = np.random.default_rng(2).standard_normal(shape)
    out, hv = autograd.hvp(zf, x0, v)
    t_out, t_hv = TF.hvp(tf, torch_of(x0), torch_of(v))
    np.testing.assert_allclose(out.data, t_out.numpy(), rtol=1e-12)
    np.testing.assert_allclose(hv.data, t_hv.numpy(), rtol=1e-9, atol=1e-12)
    _, vh = autograd.vhp(zf, x0, v)
    np.testing.assert_allclose(vh.data, TF.vhp(tf, torch_of(x0), torch_of(v))[1].numpy(),
                               rtol=1e-9, atol=1e-12)
    _, g = autograd.vjp(zf, x0)  # a one-element output: v may be left out
    np.testing.assert_allclose(g.data, TF.vjp(tf, torch_of(x0))[1].numpy(), rtol=1e-10)
    _, jv = autograd.jvp(zf, x0, v)
    np.testing.assert_allclose(jv.data, TF.jvp(tf, torch_of(x0), torch_of(v))[1].numpy(),
                               rtol=1e-10, atol=1e-12)


def test_mlp_hvp_against_torch_func():
    """A small MLP's Hessian-vector product w.r.t. its input, against torch.func (forward
    over reverse) and against central differences of the gradient."""
    x0 = point((2, 3))
    v = np.random.default_rng(5).standard_normal((2, 3))
    _, hv = autograd.hvp(zg_mlp, x0, v)
    expected = torch.func.jvp(torch.func.grad(torch_mlp), (torch_of(x0),), (torch_of(v),))[1]
    np.testing.assert_allclose(hv.data, expected.numpy(), rtol=1e-9, atol=1e-12)
    eps = 1e-6
    xp_, xm_ = Variable(x0 + eps * v), Variable(x0 - eps * v)
    fd = (autograd.grad(zg_mlp(xp_), xp_)[0].data
          - autograd.grad(zg_mlp(xm_), xm_)[0].data) / (2 * eps)
    np.testing.assert_allclose(hv.data, fd, rtol=1e-5, atol=1e-7)


def test_jacobian_of_a_vector_function_both_strategies_against_torch():
    x0 = point((3,))

    def zf(x):
        return F.sin(x) * F.sum(x * x)

    def tf(x):
        return torch.sin(x) * (x * x).sum()

    expected = TF.jacobian(tf, torch_of(x0)).numpy()
    for strategy in ("reverse-mode", "forward-mode"):
        J = autograd.jacobian(zf, x0, strategy=strategy)
        np.testing.assert_allclose(J.data, expected, rtol=1e-10, atol=1e-12)


def test_jacobian_and_hessian_of_tuples_follow_torch_nesting():
    a0, b0 = point((2,)), point((3,), seed=3)

    def zf(a, b):
        return F.sum(a * a) * F.sum(F.sin(b)), a * 2.0

    def tf(a, b):
        return (a * a).sum() * torch.sin(b).sum(), a * 2.0

    J = autograd.jacobian(zf, (a0, b0))
    tJ = TF.jacobian(tf, (torch_of(a0), torch_of(b0)))
    assert len(J) == 2 and len(J[0]) == 2
    for i in range(2):
        for j in range(2):
            np.testing.assert_allclose(J[i][j].data, tJ[i][j].numpy(), rtol=1e-10, atol=1e-12)

    def zs(a, b):
        return zf(a, b)[0]

    def ts(a, b):
        return tf(a, b)[0]

    H = autograd.hessian(zs, (a0, b0))
    tH = TF.hessian(ts, (torch_of(a0), torch_of(b0)))
    for i in range(2):
        for j in range(2):
            np.testing.assert_allclose(H[i][j].data, tH[i][j].numpy(), rtol=1e-10, atol=1e-12)


def test_linear_function_has_a_zero_hessian_not_an_error():
    H = autograd.hessian(lambda x: F.sum(3 * x), np.array([1.0, 2.0]))
    np.testing.assert_array_equal(H.data, np.zeros((2, 2)))
    _, hv = autograd.hvp(lambda x: F.sum(3 * x), np.array([1.0, 2.0]), np.ones(2))
    np.testing.assert_array_equal(hv.data, [0.0, 0.0])


# -- grad's own semantics ---------------------------------------------------------------------
def test_grad_touches_no_grad_attribute_of_inputs_or_intermediates():
    x = Variable(np.array([1.0, 2.0]))
    x.grad = Variable(np.array([100.0, 100.0]))  # must be neither used nor changed
    h = F.sin(x)
    y = F.sum(h * h)
    (gx, gh) = autograd.grad(y, [x, h])
    np.testing.assert_allclose(gh.data, 2 * np.sin([1.0, 2.0]))
    np.testing.assert_allclose(gx.data, 2 * np.sin([1.0, 2.0]) * np.cos([1.0, 2.0]))
    np.testing.assert_array_equal(x.grad.data, [100.0, 100.0])
    assert h.grad is None and y.grad is None


def test_grad_with_respect_to_an_intermediate_is_its_total_gradient():
    x = Variable(np.array(3.0))
    h = x * x          # used twice below
    y = h * 2.0 + h * x
    (gh,) = autograd.grad(y, h, retain_graph=True)
    assert float(gh.data) == pytest.approx(2.0 + 3.0)
    (gx,) = autograd.grad(y, x)
    assert float(gx.data) == pytest.approx(4 * 3.0 + 3 * 9.0)  # d(2x^2 + x^3)/dx


def test_grad_outputs_seed_and_several_outputs():
    x = Variable(np.array([1.0, 2.0]))
    y1, y2 = x * 3.0, x * x
    (g,) = autograd.grad([y1, y2], x, [np.array([1.0, 0.0]), np.array([0.0, 1.0])])
    np.testing.assert_allclose(g.data, [3.0, 4.0])


def test_grad_refuses_an_implicit_seed_for_a_non_scalar_output():
    x = Variable(np.array([1.0, 2.0]))
    with pytest.raises(ShapeError, match=r"outputs\[0\] has shape \(2,\); grad_outputs"):
        autograd.grad(x * 2.0, x)


def test_unused_input_raises_or_gives_none_or_zeros():
    x, z = Variable(np.array([1.0, 2.0])), Variable(np.array([5.0]))
    y = F.sum(x * x)
    with pytest.raises(GraphError, match=r"inputs\[1\] \(float64 \(1,\)\) is not reached"):
        autograd.grad(y, [x, z], retain_graph=True)
    gx, gz = autograd.grad(y, [x, z], allow_unused=True, retain_graph=True)
    assert gz is None and np.allclose(gx.data, [2.0, 4.0])
    _, gz = autograd.grad(y, [x, z], materialize_grads=True)
    np.testing.assert_array_equal(gz.data, [0.0])


def test_constant_gradient_of_a_linear_function_is_unused_not_an_error():
    x = Variable(np.array(2.0))
    (g,) = autograd.grad(3 * x, x, create_graph=True)
    assert float(g.data) == 3.0 and g.creator is None
    (gg,) = autograd.grad(g, x, allow_unused=True)
    assert gg is None


def test_grad_frees_the_graph_by_default_as_pytorch():
    x = Variable(np.array([1.0, 2.0]))
    y = F.sum(F.sin(x))
    autograd.grad(y, x)
    with pytest.raises(GraphError, match="earlier pass freed"):
        autograd.grad(y, x)
    y = F.sum(F.sin(x))
    autograd.grad(y, x, retain_graph=True)
    (g,) = autograd.grad(y, x)
    np.testing.assert_allclose(g.data, np.cos([1.0, 2.0]))


def test_input_that_needs_no_gradient_is_refused():
    x = Variable(np.array(1.0), requires_grad=False)
    with pytest.raises(ValueError, match=r"inputs\[0\] .* does not require a gradient"):
        autograd.grad(x * 2.0, x)


def test_create_graph_gives_nth_derivatives():
    x = Variable(np.array(0.7))
    y = F.sin(x)
    derivatives = []
    g = y
    for _ in range(4):
        (g,) = autograd.grad(g, x, create_graph=True)
        derivatives.append(float(g.data))
    s, c = np.sin(0.7), np.cos(0.7)
    np.testing.assert_allclose(derivatives, [c, -s, -c, s], rtol=1e-12)
    assert x.grad is None


def test_grad_from_several_threads_on_one_graph():
    """Each call has its own gradient table: concurrent passes over one shared graph (kept
    with retain_graph=True) all get the right answer and leave .grad alone."""
    x = Variable(np.linspace(0.1, 1.0, 50))
    y = F.sum(F.tanh(x) * F.exp(x))
    expected = ((1 - np.tanh(x.data) ** 2) * np.exp(x.data)
                + np.tanh(x.data) * np.exp(x.data))
    results, errors = [], []

    def work():
        try:
            for _ in range(20):
                (g,) = autograd.grad(y, x, retain_graph=True)
                results.append(np.allclose(g.data, expected, rtol=1e-12))
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(results) == 80 and all(results)
    assert x.grad is None


def test_functional_api_on_variables_keeps_the_callers_graph_with_create_graph():
    """With create_graph=True the results stay differentiable in the caller's Variable: the
    third derivative of x^4 from hvp's second derivative, by backward."""
    x = Variable(np.array([1.5]))
    _, hv = autograd.hvp(lambda a: F.sum(a ** 4), x, np.array([1.0]), create_graph=True)
    np.testing.assert_allclose(hv.data, [12 * 1.5 ** 2])
    F.sum(hv).backward()
    np.testing.assert_allclose(x.grad.data, [24 * 1.5])


def test_vjp_returns_the_function_value_detached_and_keeps_input_structure():
    out, (ga, gb) = autograd.vjp(lambda a, b: a * b, (np.array([2.0]), np.array([3.0])),
                                 np.array([1.0]))
    assert out.creator is None and out.data.tolist() == [6.0]
    assert ga.data.tolist() == [3.0] and gb.data.tolist() == [2.0]


def test_functional_api_errors_name_the_function_and_shapes():
    with pytest.raises(ShapeError, match=r"vjp: v\[0\] has shape \(3,\), expected \(2,\)"):
        autograd.vjp(lambda x: x * 2.0, np.ones(2), np.ones(3))
    with pytest.raises(ShapeError, match="hessian: func must return a single one-element"):
        autograd.hessian(lambda x: x * 2.0, np.ones(2))
    with pytest.raises(TypeError, match="jacobian: func returned a ndarray"):
        autograd.jacobian(lambda x: np.ones(2), np.ones(2))
    with pytest.raises(TypeError, match=r"jvp: inputs\[0\] has dtype int64"):
        autograd.jvp(lambda x: x, np.arange(2), np.ones(2))
