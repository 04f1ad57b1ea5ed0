"""Learning-rate schedulers: values per epoch, wrapping, Adam's alpha, state."""

import math

import pytest

import zerograd.optimizers as O
from zerograd import optim


def lrs(scheduler, epochs):
    """The optimizer's rate at epochs 0..epochs-1 (read after construction / each step)."""
    out = [scheduler.optimizer.get_lr()]
    for _ in range(epochs - 1):
        scheduler.step()
        out.append(scheduler.optimizer.get_lr())
    return out


def test_step_lr():
    s = optim.StepLR(O.SGD(lr=1.0), step_size=2, gamma=0.5)
    assert lrs(s, 6) == [1.0, 1.0, 0.5, 0.5, 0.25, 0.25]


def test_multi_step_lr():
    s = optim.MultiStepLR(O.MomentumSGD(lr=0.1), milestones=[3, 1], gamma=0.1)
    assert lrs(s, 5) == pytest.approx([0.1, 0.01, 0.01, 0.001, 0.001])


def test_exponential_lr():
    s = optim.ExponentialLR(O.SGD(lr=2.0), gamma=0.5)
    assert lrs(s, 4) == [2.0, 1.0, 0.5, 0.25]


def test_cosine_annealing_lr_reaches_eta_min_and_stays():
    s = optim.CosineAnnealingLR(O.SGD(lr=1.0), T_max=4, eta_min=0.1)
    expected = [0.1 + 0.9 * (1 + math.cos(math.pi * min(e, 4) / 4)) / 2 for e in range(7)]
    got = lrs(s, 7)
    assert got == pytest.approx(expected)
    assert got[2] == pytest.approx(0.55) and got[4:] == pytest.approx([0.1] * 3)


def test_linear_warmup_standalone():
    s = optim.LinearWarmup(O.SGD(lr=0.4), warmup=4)
    assert lrs(s, 6) == pytest.approx([0.08, 0.16, 0.24, 0.32, 0.4, 0.4])
    s = optim.LinearWarmup(O.SGD(lr=1.0), warmup=2, start_factor=0.0)
    assert lrs(s, 3) == pytest.approx([0.0, 0.5, 1.0])


def test_linear_warmup_then_cosine():
    opt = O.SGD(lr=1.0)
    s = optim.LinearWarmup(opt, warmup=2, after=optim.CosineAnnealingLR(opt, T_max=2))
    assert lrs(s, 5) == pytest.approx([1 / 3, 2 / 3, 1.0, 0.5, 0.0])
    assert s.after.epoch == 2


def test_adam_schedules_alpha_and_adadelta_cannot_be_scheduled():
    adam = O.Adam(alpha=0.01)
    s = optim.StepLR(adam, step_size=1, gamma=0.1)
    s.step()
    assert adam.alpha == pytest.approx(0.001)
    assert adam.lr == pytest.approx(0.001 * math.sqrt(1 - 0.999) / (1 - 0.9))
    with pytest.raises(TypeError, match="AdaDelta has no learning rate"):
        optim.ExponentialLR(O.AdaDelta(), gamma=0.9)


def test_rates_are_python_floats():
    opt = O.SGD(lr=0.1)
    optim.ExponentialLR(opt, gamma=0.9).step()
    assert type(opt.lr) is float


def test_state_dict_round_trip():
    opt = O.SGD(lr=1.0)
    s = optim.LinearWarmup(opt, warmup=2, after=optim.StepLR(opt, step_size=1, gamma=0.5))
    for _ in range(3):
        s.step()
    state = s.state_dict()
    opt2 = O.SGD(lr=1.0)
    s2 = optim.LinearWarmup(opt2, warmup=2, after=optim.StepLR(opt2, step_size=1, gamma=0.5))
    s2.load_state_dict(state)
    assert opt2.lr == opt.lr == pytest.approx(0.5)
    assert s2.step() == s.step() == pytest.approx(0.25)
    with pytest.raises(ValueError, match="saved by LinearWarmup"):
        optim.StepLR(O.SGD(), step_size=1).load_state_dict(state)


def test_bad_arguments():
    with pytest.raises(ValueError, match="step_size"):
        optim.StepLR(O.SGD(), step_size=0)
    with pytest.raises(ValueError, match="T_max"):
        optim.CosineAnnealingLR(O.SGD(), T_max=0)
    with pytest.raises(ValueError, match="another optimizer"):
        optim.LinearWarmup(O.SGD(), warmup=2, after=optim.StepLR(O.SGD(), step_size=1))
