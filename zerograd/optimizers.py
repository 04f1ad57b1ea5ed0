"""``zerograd.optimizers``: DeZero's optimizer module. Re-exports only (see zerograd.optim)."""

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
    "MultiStepLR", "Optimizer", "RMSprop", "StepLR", "WeightDecay", "clip_grad_norm",
]
