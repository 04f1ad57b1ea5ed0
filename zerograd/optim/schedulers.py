"""Learning-rate schedules.

A scheduler owns a counter ``epoch`` (starting at 0) and a pure rule ``lr_at(epoch)`` built
on the optimizer's learning rate at construction (``base_lr``). Creating it sets the
optimizer's rate to ``lr_at(0)``; each ``step()`` advances the counter and sets
``lr_at(epoch)``. Call ``step()`` once per epoch, after the epoch's updates (or once per
iteration, if the schedule's lengths are counted in iterations)::

    optimizer = optimizers.MomentumSGD(lr=0.1).setup(model)
    scheduler = optim.StepLR(optimizer, step_size=30, gamma=0.1)
    for epoch in range(90):
        train_one_epoch(...)
        scheduler.step()

The rate written is the optimizer's ``lr_attribute``: ``lr`` for the SGD family, AdaGrad and
RMSprop, ``alpha`` for Adam/AdamW. AdaDelta has none, so it cannot be scheduled.

Every argument is validated (ValueError naming the scheduler, the argument, the value and
the valid range; TypeError for a wrong type); schedulers pickle and deep-copy with their
optimizer.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, Mapping, Sequence

from zerograd.optim._checks import NON_NEGATIVE, POSITIVE, UNIT, Integer
from zerograd.optim.optimizer import Optimizer

__all__ = ["LRScheduler", "StepLR", "MultiStepLR", "ExponentialLR", "CosineAnnealingLR",
           "LinearWarmup"]


class LRScheduler:
    """Base class: subclasses define ``lr_at(epoch)`` in terms of ``self.base_lr``."""

    def __init__(self, optimizer: Optimizer, base_lr: float | None = None) -> None:
        if getattr(optimizer, "lr_attribute", None) is None:
            raise TypeError(f"{type(self).__name__}: {type(optimizer).__name__} has no learning "
                            "rate to schedule")
        self.optimizer = optimizer
        self.base_lr = NON_NEGATIVE.check(type(self).__name__, "base_lr",
                                          optimizer.get_lr() if base_lr is None else base_lr)
        self.epoch = 0

    def lr_at(self, epoch: int) -> float:
        raise NotImplementedError

    def _apply(self) -> None:
        self.optimizer.set_lr(float(self.lr_at(self.epoch)))

    def step(self) -> float:
        """Advance one epoch and set the optimizer's rate; returns the new rate."""
        self.epoch += 1
        self._apply()
        return self.get_lr()

    def get_lr(self) -> float:
        """The rate of the current epoch."""
        return float(self.lr_at(self.epoch))

    def state_dict(self) -> dict:
        return {"type": type(self).__name__, "epoch": self.epoch, "base_lr": self.base_lr}

    def load_state_dict(self, state: dict) -> None:
        """Restore the counter and base rate, and set the optimizer's rate accordingly."""
        owner = f"{type(self).__name__}.load_state_dict"
        if not isinstance(state, Mapping):
            raise TypeError(f"{owner}: expected the dict state_dict() returns, got "
                            f"{type(state).__name__}")
        if state.get("type") != type(self).__name__:
            raise ValueError(f"{owner}: the state was saved by {state.get('type')}")
        epoch = Integer(0).check(owner, "epoch", state.get("epoch"))
        base_lr = NON_NEGATIVE.check(owner, "base_lr", state.get("base_lr"))
        self.epoch, self.base_lr = epoch, base_lr
        self._apply()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(epoch={self.epoch}, lr={self.get_lr():g})"


class StepLR(LRScheduler):
    """lr = base_lr * gamma ** (epoch // step_size)."""

    def __init__(self, optimizer: Optimizer, step_size: int, gamma: float = 0.1) -> None:
        self.step_size = Integer(1).check("StepLR", "step_size", step_size)
        self.gamma = POSITIVE.check("StepLR", "gamma", gamma)
        super().__init__(optimizer)
        self._apply()

    def lr_at(self, epoch: int) -> float:
        return self.base_lr * self.gamma ** (epoch // self.step_size)


class MultiStepLR(LRScheduler):
    """lr = base_lr * gamma ** (number of milestones <= epoch)."""

    def __init__(self, optimizer: Optimizer, milestones: Sequence[int], gamma: float = 0.1) -> None:
        if isinstance(milestones, (str, bytes)) or not isinstance(milestones, Iterable):
            raise TypeError(f"MultiStepLR: milestones must be a sequence of epochs (integers "
                            f">= 0), got {type(milestones).__name__} {milestones!r}")
        self.milestones = sorted(Integer(0).check("MultiStepLR", "each milestone", m)
                                 for m in milestones)
        self.gamma = POSITIVE.check("MultiStepLR", "gamma", gamma)
        super().__init__(optimizer)
        self._apply()

    def lr_at(self, epoch: int) -> float:
        return self.base_lr * self.gamma ** bisect.bisect_right(self.milestones, epoch)


class ExponentialLR(LRScheduler):
    """lr = base_lr * gamma ** epoch."""

    def __init__(self, optimizer: Optimizer, gamma: float) -> None:
        self.gamma = POSITIVE.check("ExponentialLR", "gamma", gamma)
        super().__init__(optimizer)
        self._apply()

    def lr_at(self, epoch: int) -> float:
        return self.base_lr * self.gamma ** epoch


class CosineAnnealingLR(LRScheduler):
    """lr = eta_min + (base_lr - eta_min) * (1 + cos(pi * min(epoch, T_max) / T_max)) / 2.

    Falls from base_lr to eta_min over T_max epochs, then stays at eta_min (no restarts).
    """

    def __init__(self, optimizer: Optimizer, T_max: int, eta_min: float = 0.0) -> None:
        self.T_max = Integer(1).check("CosineAnnealingLR", "T_max", T_max)
        # A negative floor would hand the optimizer a negative rate.
        self.eta_min = NON_NEGATIVE.check("CosineAnnealingLR", "eta_min", eta_min)
        super().__init__(optimizer)
        self._apply()

    def lr_at(self, epoch: int) -> float:
        progress = min(epoch, self.T_max) / self.T_max
        return self.eta_min + (self.base_lr - self.eta_min) * (1 + math.cos(math.pi * progress)) / 2


class LinearWarmup(LRScheduler):
    """Linear warm-up for ``warmup`` epochs, then ``after`` (another scheduler) or base_lr.

    During warm-up lr = base_lr * (s + (1 - s) * epoch / warmup) with s = ``start_factor``,
    a straight line from s * base_lr at epoch 0 to base_lr at epoch ``warmup``. The default
    s = 1 / (warmup + 1) makes the steps equal: base_lr * (epoch + 1) / (warmup + 1).
    Epoch e >= warmup uses ``after.lr_at(e - warmup)`` (the wrapped schedule starts when
    warm-up ends) or base_lr when there is no ``after``.

    Build the wrapped scheduler first, on the same optimizer: ``LinearWarmup(opt, 5,
    after=CosineAnnealingLR(opt, T_max=95))``; its base rate is the warm-up's target.
    """

    def __init__(self, optimizer: Optimizer, warmup: int, start_factor: float | None = None,
                 after: LRScheduler | None = None) -> None:
        self.warmup = Integer(1).check("LinearWarmup", "warmup", warmup)
        # [0, 1]: PyTorch's LinearLR excludes 0 because it multiplies rates step by step;
        # this closed form starts from a zero rate without dividing by it.
        self.start_factor = (1.0 / (self.warmup + 1) if start_factor is None
                             else UNIT.check("LinearWarmup", "start_factor", start_factor))
        if after is not None and not isinstance(after, LRScheduler):
            raise TypeError(f"LinearWarmup: after must be a scheduler or None, got "
                            f"{type(after).__name__}")
        if after is not None and after.optimizer is not optimizer:
            raise ValueError("LinearWarmup: the wrapped scheduler drives another optimizer")
        base_lr = after.base_lr if after is not None else None
        super().__init__(optimizer, base_lr=base_lr)
        self.after = after
        self._apply()

    def lr_at(self, epoch: int) -> float:
        if epoch < self.warmup:
            s = self.start_factor
            return self.base_lr * (s + (1.0 - s) * epoch / self.warmup)
        if self.after is not None:
            return self.after.lr_at(epoch - self.warmup)
        return self.base_lr

    def step(self) -> float:
        lr = super().step()
        if self.after is not None:
            self.after.epoch = max(0, self.epoch - self.warmup)
        return lr

    def state_dict(self) -> dict:
        state = super().state_dict()
        if self.after is not None:
            state["after"] = self.after.state_dict()
        return state

    def load_state_dict(self, state: dict) -> None:
        if self.after is not None and "after" in state:
            self.after.load_state_dict(state["after"])
        super().load_state_dict(state)
