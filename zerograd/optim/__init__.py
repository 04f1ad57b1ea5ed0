"""``zerograd.optim``: optimizers, hooks, gradient clipping and learning-rate schedulers.

``zerograd.optimizers`` re-exports the optimizers and hooks under DeZero's module name.
"""

from zerograd.optim.adaptive import AdaDelta, AdaGrad, Adam, AdamW, RMSprop
from zerograd.optim.clip import clip_grad_norm, global_grad_norm
from zerograd.optim.hooks import ClipGrad, FreezeParam, WeightDecay
from zerograd.optim.optimizer import Optimizer, OptimizerStateError, ParameterMap
from zerograd.optim.schedulers import (
    CosineAnnealingLR,
    ExponentialLR,
    LinearWarmup,
    LRScheduler,
    MultiStepLR,
    StepLR,
)
from zerograd.optim.sgd import SGD, MomentumSGD

__all__ = [
    "SGD", "AdaDelta", "AdaGrad", "Adam", "AdamW", "ClipGrad", "CosineAnnealingLR",
    "ExponentialLR", "FreezeParam", "LRScheduler", "LinearWarmup", "MomentumSGD",
    "MultiStepLR", "Optimizer", "OptimizerStateError", "ParameterMap", "RMSprop", "StepLR",
    "WeightDecay", "clip_grad_norm", "global_grad_norm",
]
