"""``zerograd.optimizers``: DeZero's optimizer module. Re-exports only (see zerograd.optim)."""

# DeZero's module imports these two for its own use, so `dezero.optimizers.Parameter` and
# `dezero.optimizers.cuda` exist; a program may reach them through this module.
from zerograd import cuda
from zerograd.core.variable import Parameter
from zerograd.optim import (
    SGD,
    AdaDelta,
    AdaGrad,
    Adam,
    AdamW,
    ClipGrad,
    CosineAnnealingLR,
    ExponentialLR,
    FreezeParam,
    LinearWarmup,
    LRScheduler,
    MomentumSGD,
    MultiStepLR,
    Optimizer,
    RMSprop,
    StepLR,
    WeightDecay,
    clip_grad_norm,
)

__all__ = [
    "SGD", "AdaDelta", "AdaGrad", "Adam", "AdamW", "ClipGrad", "CosineAnnealingLR",
    "ExponentialLR", "FreezeParam", "LRScheduler", "LinearWarmup", "MomentumSGD",
    "MultiStepLR", "Optimizer", "Parameter", "RMSprop", "StepLR", "WeightDecay",
    "clip_grad_norm", "cuda",
]
