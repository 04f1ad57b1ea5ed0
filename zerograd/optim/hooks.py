"""Optimizer hooks: callables run on the list of parameters with gradients before an update.

``optimizer.add_hook(WeightDecay(1e-4))``. A hook replaces a gradient with a new Variable
instead of writing into it, because one gradient array may belong to two parameters.
"""

from __future__ import annotations

from zerograd.core.variable import Parameter, Variable
from zerograd.optim._checks import NON_NEGATIVE, POSITIVE
from zerograd.optim.clip import clip_grad_norm

__all__ = ["WeightDecay", "ClipGrad", "FreezeParam"]


class WeightDecay:
    """L2 regularisation: g <- g + rate * w (the gradient of rate/2 * ||w||^2)."""

    def __init__(self, rate: float) -> None:
        self.rate = NON_NEGATIVE.check("WeightDecay", "rate", rate)

    def __call__(self, params: list[Parameter]) -> None:
        for param in params:
            if param.grad is not None:
                grad = param.grad.data
                param.grad = Variable(grad + self.rate * param.data, requires_grad=False)

    def __repr__(self) -> str:
        return f"WeightDecay(rate={self.rate})"


class ClipGrad:
    """Scale all gradients so that their global norm is at most ``max_norm``."""

    def __init__(self, max_norm: float) -> None:
        self.max_norm = POSITIVE.check("ClipGrad", "max_norm", max_norm)

    def __call__(self, params: list[Parameter]) -> None:
        clip_grad_norm(params, self.max_norm)

    def __repr__(self) -> str:
        return f"ClipGrad(max_norm={self.max_norm})"


class FreezeParam:
    """Keep the given layers' parameters (or the given Parameters) fixed: their gradients
    are dropped before the update, so the optimizer skips them and keeps no state for them."""

    def __init__(self, *layers) -> None:
        self.freeze_params: list[Parameter] = []
        for item in layers:
            if isinstance(item, Parameter):
                self.freeze_params.append(item)
            elif hasattr(item, "params"):
                self.freeze_params.extend(item.params())
            else:
                raise TypeError(f"FreezeParam: expected Layers or Parameters, got "
                                f"{type(item).__name__}")

    def __call__(self, params: list[Parameter]) -> None:
        for param in self.freeze_params:
            param.grad = None

    def __repr__(self) -> str:
        return f"FreezeParam({len(self.freeze_params)} parameters)"
