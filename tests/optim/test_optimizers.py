"""Optimizers: update rules against hand-computed references (and DeZero), hooks, state."""

import gc
import math

import numpy as np
import pytest

import zerograd.layers as L
import zerograd.optimizers as O
from zerograd import Parameter, Variable
from zerograd.errors import ShapeError
from zerograd.optim import ParameterMap, clip_grad_norm, global_grad_norm
from zerograd.serialization import load_state, save_state

W0 = np.array([[0.5, -1.0], [2.0, 0.25]])
GRADS = [np.array([[0.1, -0.2], [0.3, 0.05]]),
         np.array([[-0.4, 0.1], [0.2, -0.3]]),
         np.array([[0.05, 0.6], [-0.1, 0.2]])]


def run(optimizer, steps=3, dtype=np.float64):
    """Apply ``steps`` updates with the fixed gradients; returns the weights after each."""
    w = Parameter(W0.astype(dtype))
    optimizer.setup(w)
    history = []
    for g in GRADS[:steps]:
        w.grad = Variable(g.astype(dtype))
        optimizer.update()
        history.append(w.data.copy())
    return history


# Hand-computed references: the formulas written out with NumPy, step by step.
def ref_sgd(lr):
    w, out = W0.copy(), []
    for g in GRADS:
        w = w - lr * g
        out.append(w)
    return out


def ref_momentum(lr, m, nesterov=False):
    w, v, out = W0.copy(), np.zeros_like(W0), []
    for g in GRADS:
        v = m * v - lr * g
        w = w + (m * v - lr * g if nesterov else v)
        out.append(w)
    return out


def ref_adagrad(lr, eps):
    w, h, out = W0.copy(), np.zeros_like(W0), []
    for g in GRADS:
        h = h + g * g
        w = w - lr * g / (np.sqrt(h) + eps)
        out.append(w)
    return out


def ref_adadelta(rho, eps):
    w, msg, msdx, out = W0.copy(), np.zeros_like(W0), np.zeros_like(W0), []
    for g in GRADS:
        msg = rho * msg + (1 - rho) * g * g
        dx = np.sqrt((msdx + eps) / (msg + eps)) * g
        msdx = rho * msdx + (1 - rho) * dx * dx
        w = w - dx
        out.append(w)
    return out


def ref_rmsprop(lr, alpha, eps):
    w, ms, out = W0.copy(), np.zeros_like(W0), []
    for g in GRADS:
        ms = alpha * ms + (1 - alpha) * g * g
        w = w - lr * g / (np.sqrt(ms) + eps)
        out.append(w)
    return out


def ref_adam(alpha, b1, b2, eps, weight_decay=0.0):
    w, m, v, out = W0.copy(), np.zeros_like(W0), np.zeros_like(W0), []
    for t, g in enumerate(GRADS, start=1):
        w = w * (1 - alpha * weight_decay)
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        lr_t = alpha * math.sqrt(1 - b2 ** t) / (1 - b1 ** t)
        w = w - lr_t * m / (np.sqrt(v) + eps)
        out.append(w)
    return out


CASES = [
    ("sgd", lambda: O.SGD(lr=0.1), lambda: ref_sgd(0.1)),
    ("momentum", lambda: O.MomentumSGD(lr=0.1, momentum=0.9), lambda: ref_momentum(0.1, 0.9)),
    ("nesterov", lambda: O.MomentumSGD(lr=0.1, momentum=0.8, nesterov=True),
     lambda: ref_momentum(0.1, 0.8, nesterov=True)),
    ("adagrad", lambda: O.AdaGrad(lr=0.05, eps=1e-8), lambda: ref_adagrad(0.05, 1e-8)),
    ("adadelta", lambda: O.AdaDelta(rho=0.9, eps=1e-6), lambda: ref_adadelta(0.9, 1e-6)),
    ("rmsprop", lambda: O.RMSprop(lr=0.01, alpha=0.9, eps=1e-8),
     lambda: ref_rmsprop(0.01, 0.9, 1e-8)),
    ("adam", lambda: O.Adam(alpha=0.01, beta1=0.8, beta2=0.9),
     lambda: ref_adam(0.01, 0.8, 0.9, 1e-8)),
    ("adamw", lambda: O.AdamW(alpha=0.01, beta1=0.8, beta2=0.9, weight_decay=0.1),
     lambda: ref_adam(0.01, 0.8, 0.9, 1e-8, weight_decay=0.1)),
]


@pytest.mark.parametrize("name, make, reference", CASES, ids=[c[0] for c in CASES])
def test_update_rule_matches_hand_computed_reference(name, make, reference):
    got = run(make())
    for step, (w, expected) in enumerate(zip(got, reference()), start=1):
        np.testing.assert_allclose(w, expected, rtol=1e-12, atol=1e-14,
                                   err_msg=f"{name}, step {step}")


def test_first_steps_by_hand():
    # Numbers worked out on paper, independent of the reference helpers above.
    w = run(O.SGD(lr=0.1), steps=1)[0]
    np.testing.assert_allclose(w[0, 0], 0.5 - 0.1 * 0.1)
    w1, w2 = run(O.MomentumSGD(lr=0.1, momentum=0.9), steps=2)
    np.testing.assert_allclose(w1[0, 0], 0.49)  # v = -0.01
    np.testing.assert_allclose(w2[0, 0], 0.49 + (0.9 * -0.01 + 0.04))  # v = 0.031
    # Adam's first step moves every coordinate by about alpha * sign(g).
    w = run(O.Adam(alpha=0.01), steps=1)[0]
    np.testing.assert_allclose(w - W0, -0.01 * np.sign(GRADS[0]), rtol=1e-5)


DEZERO_CASES = [
    ("SGD", {"lr": 0.1}), ("MomentumSGD", {"lr": 0.1, "momentum": 0.9}),
    ("AdaGrad", {"lr": 0.05}), ("AdaDelta", {"rho": 0.9}),
    ("Adam", {"alpha": 0.01, "beta1": 0.8, "beta2": 0.9}),
]


@pytest.mark.parametrize("name, kwargs", DEZERO_CASES, ids=[c[0] for c in DEZERO_CASES])
def test_update_rule_matches_dezero(name, kwargs):
    from tests.nn.helpers import import_dezero

    dezero = import_dezero()
    theirs = getattr(dezero.optimizers, name)(**kwargs)
    w = dezero.Parameter(W0.copy())

    class Holder:
        def params(self):
            yield w

    theirs.setup(Holder())
    expected = []
    for g in GRADS:
        w.grad = dezero.Variable(g.copy())
        theirs.update()
        expected.append(w.data.copy())
    got = run(getattr(O, name)(**kwargs))
    for a, b in zip(got, expected):
        np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("name, make, reference", CASES, ids=[c[0] for c in CASES])
def test_float32_params_and_state_stay_float32(name, make, reference):
    optimizer = make()
    got = run(optimizer, dtype=np.float32)
    assert all(w.dtype == np.float32 for w in got)
    for _, state in optimizer.state.items():
        assert all(v.dtype == np.float32 for v in state.values())
    np.testing.assert_allclose(got[-1], reference()[-1], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name, make, reference", CASES, ids=[c[0] for c in CASES])
def test_shared_gradient_arrays_are_never_written(name, make, reference):
    # The engine may give two parameters the same gradient object (y = W + b, equal shapes).
    a = Parameter(np.ones(3))
    b = Parameter(np.full(3, 2.0))
    shared = Variable(np.array([0.5, -1.0, 2.0]))
    optimizer = make().setup([a, b])
    optimizer.add_hook(O.WeightDecay(0.1))
    optimizer.add_hook(O.ClipGrad(0.5))
    a.grad = b.grad = shared
    optimizer.update()
    np.testing.assert_array_equal(shared.data, [0.5, -1.0, 2.0])


def test_shared_gradient_from_the_engine():
    W = Parameter(np.ones(3, np.float32))
    b = Parameter(np.zeros(3, np.float32))
    y = (W + b).sum()
    y.backward()
    shared = W.grad
    before = shared.data.copy()
    optimizer = O.MomentumSGD(lr=0.1).setup([W, b])
    optimizer.add_hook(O.WeightDecay(0.5))
    optimizer.update()
    np.testing.assert_array_equal(shared.data, before)  # b's gradient is intact
    np.testing.assert_allclose(W.grad.data, before + 0.5)
    np.testing.assert_allclose(W.data, 1 - 0.1 * 1.5)
    np.testing.assert_allclose(b.data, 0 - 0.1 * 1.0)


def test_adam_lr_is_defined_before_the_first_step():
    adam = O.Adam(alpha=0.001)
    assert adam.lr == pytest.approx(0.001 * math.sqrt(1 - 0.999) / (1 - 0.9))
    run(adam, steps=2)
    assert adam.t == 2
    assert adam.lr == pytest.approx(0.001 * math.sqrt(1 - 0.999 ** 2) / (1 - 0.9 ** 2))
    with pytest.raises(AttributeError, match="set alpha instead"):
        adam.lr = 0.1
    adam.set_lr(0.1)
    assert adam.alpha == 0.1


def test_weight_decay_hook_adds_rate_times_weight():
    got = run(O.SGD(lr=0.1).setup(Parameter(W0.copy())), steps=1)  # setup twice is fine
    w = Parameter(W0.copy())
    optimizer = O.SGD(lr=0.1).setup(w)
    optimizer.add_hook(O.WeightDecay(0.01))
    w.grad = Variable(GRADS[0].copy())
    optimizer.update()
    np.testing.assert_allclose(w.data, W0 - 0.1 * (GRADS[0] + 0.01 * W0))
    assert got[0].shape == W0.shape


def test_clip_grad_hook_and_function():
    a, b = Parameter(np.zeros(2)), Parameter(np.zeros(1))
    a.grad, b.grad = Variable(np.array([3.0, 0.0])), Variable(np.array([4.0]))
    assert global_grad_norm([a, b]) == pytest.approx(5.0)
    norm = clip_grad_norm([a, b], max_norm=1.0)
    assert norm == pytest.approx(5.0)
    np.testing.assert_allclose(a.grad.data, [3 / (5 + 1e-6), 0])
    np.testing.assert_allclose(b.grad.data, [4 / (5 + 1e-6)])
    assert clip_grad_norm([a, b], max_norm=10.0) == pytest.approx(1.0, rel=1e-5)  # no change
    np.testing.assert_allclose(b.grad.data, [4 / (5 + 1e-6)])

    w = Parameter(np.zeros(2, np.float32))
    optimizer = O.SGD(lr=1.0).setup(w)
    optimizer.add_hook(O.ClipGrad(max_norm=1.0))
    w.grad = Variable(np.array([30.0, 40.0], np.float32))
    optimizer.update()
    np.testing.assert_allclose(w.data, [-0.6, -0.8], rtol=1e-5)
    assert w.data.dtype == np.float32


def test_freeze_param_keeps_the_frozen_layer_fixed():
    # DeZero's FreezeParam crashes (AttributeError on grad None); here it freezes.
    frozen = L.Linear(2, in_size=2)
    free = L.Linear(2, in_size=2)

    class Model(L.Layer):
        def __init__(self):
            super().__init__()
            self.frozen, self.free = frozen, free

    model = Model()
    optimizer = O.Adam(alpha=0.1).setup(model)
    optimizer.add_hook(O.FreezeParam(frozen, free.b))
    before = {k: p.data.copy() for k, p in model.named_params()}
    for p in model.params():
        p.grad = Variable(np.ones_like(p.data))
    optimizer.update()
    after = dict(model.named_params())
    np.testing.assert_array_equal(after["frozen/W"].data, before["frozen/W"])
    np.testing.assert_array_equal(after["frozen/b"].data, before["frozen/b"])
    np.testing.assert_array_equal(after["free/b"].data, before["free/b"])
    assert not np.array_equal(after["free/W"].data, before["free/W"])
    assert free.W in optimizer.state and frozen.W not in optimizer.state


def test_state_is_keyed_by_parameter_and_dies_with_it():
    optimizer = O.MomentumSGD(lr=0.1)
    for size in (3, 5, 2, 7, 3):  # DeZero failed here: a new param reused a dead one's id
        w = Parameter(np.ones(size))
        optimizer.setup(w)
        w.grad = Variable(np.ones(size))
        optimizer.update()
        np.testing.assert_allclose(w.data, np.full(size, 0.9))  # fresh momentum every time
        optimizer.target = None
        del w
        gc.collect()
        assert len(optimizer.state) == 0


def test_parameter_map_uses_identity_not_values():
    a, b = Parameter(np.ones(3)), Parameter(np.ones(3))  # equal values, distinct params
    m = ParameterMap()
    m[a] = "a"
    m[b] = "b"
    assert m[a] == "a" and m.get(b) == "b" and len(m) == 2
    assert [k is a for k, _ in m.items()] == [True, False]
    del m[a]
    assert a not in m and b in m


def test_setup_accepts_layer_parameter_or_list_and_rejects_variables():
    layer = L.Linear(2, in_size=2)
    assert O.SGD().setup(layer).target is layer
    assert list(O.SGD().setup(layer.W).target_params()) == [layer.W]
    assert len(list(O.SGD().setup(iter([layer.W, layer.b])).target_params())) == 2
    with pytest.raises(TypeError, match="Parameter"):
        O.SGD().setup(Variable(np.ones(2)))
    with pytest.raises(RuntimeError, match="setup"):
        O.SGD().update()


def _train(optimizer, model, steps, start=0):
    rng = np.random.default_rng(0)
    grads = [[rng.normal(size=p.data.shape).astype(p.data.dtype) for p in model.params()]
             for _ in range(start + steps)]
    for step in range(start, start + steps):
        for p, g in zip(model.params(), grads[step]):
            p.grad = Variable(g)
        optimizer.update()


@pytest.mark.parametrize("name, make, reference", CASES, ids=[c[0] for c in CASES])
def test_state_dict_round_trip_resumes_identically(tmp_path, name, make, reference):
    def model():
        np.random.seed(3)
        net = L.Layer()
        net.l0 = L.Linear(3, in_size=4)
        net.l1 = L.Linear(2, in_size=3)
        return net

    straight = model()
    opt = make().setup(straight)
    _train(opt, straight, 6)

    first = model()
    opt1 = make().setup(first)
    _train(opt1, first, 3)
    first.save_weights(tmp_path / "w.npz")
    save_state(tmp_path / "opt.npz", opt1.state_dict())

    resumed = model()
    resumed.load_weights(tmp_path / "w.npz")
    opt2 = make().setup(resumed)
    opt2.load_state_dict(load_state(tmp_path / "opt.npz"))
    _train(opt2, resumed, 3, start=3)
    for (_, a), (_, b) in zip(straight.named_params(), resumed.named_params()):
        np.testing.assert_array_equal(a.data, b.data)


def test_adam_state_dict_contents_and_errors():
    net = L.Linear(2, in_size=3)
    adam = O.Adam(alpha=0.01).setup(net)
    _train(adam, net, 2)
    state = adam.state_dict()
    assert state["type"] == "Adam" and state["counters"] == {"t": 2}
    assert state["hyperparams"]["alpha"] == 0.01
    assert [p["name"] for p in state["params"]] == ["W", "b"]
    assert set(state["params"][0]["state"]) == {"m", "v"}

    fresh = O.Adam().setup(L.Linear(2, in_size=3))
    fresh.load_state_dict(state)
    assert fresh.t == 2 and fresh.alpha == 0.01
    with pytest.raises(ValueError, match="saved by Adam"):
        O.SGD().setup(net).load_state_dict(state)
    with pytest.raises(ShapeError, match="'m' of parameter 'W'"):
        O.Adam().setup(L.Linear(2, in_size=4)).load_state_dict(state)
    with pytest.raises(ValueError, match="2 parameters, the target has 1"):
        O.Adam().setup(L.Linear(2, in_size=3, nobias=True)).load_state_dict(state)


def test_update_skips_parameters_without_gradients():
    a, b = Parameter(np.ones(2)), Parameter(np.ones(2))
    optimizer = O.SGD(lr=1.0).setup([a, b])
    a.grad = Variable(np.ones(2))
    optimizer.update()
    np.testing.assert_array_equal(a.data, [0, 0])
    np.testing.assert_array_equal(b.data, [1, 1])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("size", [10, (1 << 15) + 7, 3 * (1 << 15)])
def test_add_scaled_equals_the_plain_expression(dtype, size):
    from zerograd.optim.optimizer import add_scaled

    rng = np.random.default_rng(0)
    w = rng.normal(size=size).astype(dtype)
    x = rng.normal(size=size).astype(dtype)
    x_before = x.copy()
    expected = w + (-0.01) * x
    add_scaled(w, -0.01, x)
    np.testing.assert_array_equal(w, expected)
    np.testing.assert_array_equal(x, x_before)
    assert w.dtype == dtype
    strided = rng.normal(size=(2 * size,)).astype(dtype)[::2]  # non-contiguous: plain path
    w2 = np.zeros(size, dtype)
    add_scaled(w2, 2.0, strided)
    np.testing.assert_array_equal(w2, 2.0 * strided)
