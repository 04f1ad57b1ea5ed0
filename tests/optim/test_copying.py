"""Optimizers, hooks and schedulers pickle and deep-copy; copied with their model, the copy's
state belongs to the copied parameters and the copy trains bit-identically."""

import copy
import pickle

import numpy as np
import pytest

import zerograd.layers as L
import zerograd.optim as optim
from zerograd import Parameter, Variable
from zerograd.optim import Optimizer, ParameterMap

# One factory per optimizer class; test_every_optimizer_class_is_covered enforces it.
OPTIMIZERS = {
    "SGD": lambda: optim.SGD(lr=0.1),
    "MomentumSGD": lambda: optim.MomentumSGD(lr=0.05, momentum=0.8, nesterov=True),
    "AdaGrad": lambda: optim.AdaGrad(lr=0.05),
    "AdaDelta": lambda: optim.AdaDelta(rho=0.9),
    "RMSprop": lambda: optim.RMSprop(lr=0.01, alpha=0.9),
    "Adam": lambda: optim.Adam(alpha=0.01),
    "AdamW": lambda: optim.AdamW(alpha=0.01, weight_decay=0.1),
}

COPIES = {
    "deepcopy": copy.deepcopy,
    "pickle": lambda obj: pickle.loads(pickle.dumps(obj)),
}


def _all_subclasses(cls):
    for sub in cls.__subclasses__():
        yield sub
        yield from _all_subclasses(sub)


def test_every_optimizer_class_is_covered():
    classes = {c.__name__ for c in _all_subclasses(Optimizer) if c.__module__.startswith(
        "zerograd.optim")}
    assert classes == set(OPTIMIZERS)


class Net(L.Layer):  # at module level: pickle finds classes by their qualified name
    def __init__(self):
        super().__init__()
        self.l0 = L.Linear(4, in_size=3)
        self.l1 = L.Linear(2, in_size=4)


def _model():
    rng = np.random.default_rng(0)
    net = Net()
    for p in net.params():
        p.data[...] = rng.normal(size=p.data.shape)
    return net


def _steps(model, optimizer, start, count):
    """``count`` updates with gradients that depend only on the step number."""
    for step in range(start, start + count):
        rng = np.random.default_rng(100 + step)
        for p in model.params():
            p.grad = Variable(rng.normal(size=p.data.shape).astype(p.data.dtype))
        optimizer.update()


@pytest.mark.parametrize("how", list(COPIES))
@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_a_copied_model_and_optimizer_train_identically(name, how):
    model = _model()
    optimizer = OPTIMIZERS[name]().setup(model)
    optimizer.add_hook(optim.WeightDecay(1e-3))
    optimizer.add_hook(optim.ClipGrad(5.0))
    optimizer.add_hook(optim.FreezeParam(model.l1.b))
    _steps(model, optimizer, 0, 3)

    model2, optimizer2 = COPIES[how]((model, optimizer))
    assert optimizer2.target is model2
    assert type(optimizer2) is type(optimizer)
    # The copy's state is keyed by the copy's parameters, holding equal but distinct arrays.
    assert len(optimizer2.state) == len(optimizer.state)
    for (_, p), (_, p2) in zip(model.named_params(), model2.named_params()):
        assert p2 is not p
        assert (p in optimizer.state) == (p2 in optimizer2.state)
        if p in optimizer.state:
            for key, value in optimizer.state[p].items():
                value2 = optimizer2.state[p2][key]
                assert value2 is not value
                np.testing.assert_array_equal(value2, value)
    assert optimizer2.hooks[2].freeze_params == [model2.l1.b]  # the hook froze the copy's b

    _steps(model, optimizer, 3, 4)
    _steps(model2, optimizer2, 3, 4)
    for (key, p), (_, p2) in zip(model.named_params(), model2.named_params()):
        np.testing.assert_array_equal(p2.data, p.data, err_msg=f"{name} {how} {key}")


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_copying_one_does_not_touch_the_other(name):
    model = _model()
    optimizer = OPTIMIZERS[name]().setup(model)
    _steps(model, optimizer, 0, 2)
    before = {k: p.data.copy() for k, p in model.named_params()}
    model2, optimizer2 = copy.deepcopy((model, optimizer))
    _steps(model2, optimizer2, 2, 3)
    for key, p in model.named_params():
        np.testing.assert_array_equal(p.data, before[key])
    assert getattr(optimizer, "t", 2) == 2


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_an_optimizer_alone_copies_with_its_target(name):
    model = _model()
    optimizer = OPTIMIZERS[name]().setup(model)
    _steps(model, optimizer, 0, 2)
    clone = copy.deepcopy(optimizer)
    assert clone.target is not model
    assert len(clone.state) == len(optimizer.state)
    for p, p2 in zip(model.params(), clone.target.params()):
        assert (p in optimizer.state) == (p2 in clone.state)
    assert repr(clone) == repr(optimizer)


def test_parameter_map_copies_keep_identity_and_stay_weak():
    a, b = Parameter(np.ones(2)), Parameter(np.zeros(2))
    m = ParameterMap()
    m[a], m[b] = "a", "b"
    a2, b2, m2 = copy.deepcopy((a, b, m))
    assert m2[a2] == "a" and m2[b2] == "b" and a not in m2 and len(m2) == 2
    del a2
    assert len(m2) == 1  # the copy is still weakly keyed
    a3, m3 = pickle.loads(pickle.dumps((a, m)))
    assert m3[a3] == "a" and len(m3) == 1  # b was not pickled with it: its entry is gone


SCHEDULERS = {
    "StepLR": lambda o: optim.StepLR(o, step_size=2, gamma=0.5),
    "MultiStepLR": lambda o: optim.MultiStepLR(o, milestones=[1, 3]),
    "ExponentialLR": lambda o: optim.ExponentialLR(o, gamma=0.9),
    "CosineAnnealingLR": lambda o: optim.CosineAnnealingLR(o, T_max=5, eta_min=0.001),
    "LinearWarmup": lambda o: optim.LinearWarmup(
        o, warmup=2, after=optim.CosineAnnealingLR(o, T_max=4)),
}


def test_every_scheduler_class_is_covered():
    classes = {c.__name__ for c in _all_subclasses(optim.LRScheduler)}
    assert classes == set(SCHEDULERS)


@pytest.mark.parametrize("how", list(COPIES))
@pytest.mark.parametrize("name", list(SCHEDULERS))
def test_schedulers_copy_with_their_optimizer(name, how):
    model = _model()
    optimizer = optim.MomentumSGD(lr=0.1).setup(model)
    scheduler = SCHEDULERS[name](optimizer)
    _steps(model, optimizer, 0, 1)
    scheduler.step()
    model2, optimizer2, scheduler2 = COPIES[how]((model, optimizer, scheduler))
    assert scheduler2.optimizer is optimizer2
    if name == "LinearWarmup":
        assert scheduler2.after.optimizer is optimizer2
    for step in range(1, 6):
        _steps(model, optimizer, step, 1)
        _steps(model2, optimizer2, step, 1)
        assert scheduler2.step() == scheduler.step()
        assert optimizer2.lr == optimizer.lr
    for (_, p), (_, p2) in zip(model.named_params(), model2.named_params()):
        np.testing.assert_array_equal(p2.data, p.data)
