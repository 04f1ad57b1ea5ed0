"""Gradient clipping by global norm."""

from __future__ import annotations

import math
from collections.abc import Iterable

from zerograd.core.variable import Variable
from zerograd.optim._checks import NON_NEGATIVE, POSITIVE
from zerograd.optim.optimizer import Target

__all__ = ["clip_grad_norm", "global_grad_norm"]

# Whose gradients: a Layer, a Parameter or Parameters (what Optimizer.setup takes), or plain
# Variables.
Gradients = Target | Variable | Iterable[Variable]


def _params_of(params: Gradients) -> list[Variable]:
    if isinstance(params, Variable):
        return [params]
    if hasattr(params, "params"):
        return list(params.params())
    return list(params)


def global_grad_norm(params: Gradients) -> float:
    """sqrt(sum over params of sum(g^2)) for the params that have a gradient."""
    total = 0.0
    for p in _params_of(params):
        if p.grad is not None:
            g = p.grad.data
            total += float((g * g).sum())
    return math.sqrt(total)


def clip_grad_norm(params: Gradients, max_norm: float, eps: float = 1e-6) -> float:
    """Scale all gradients by max_norm / (norm + eps) when that is below 1; returns the norm.

    ``params``: a Layer, a Parameter or an iterable of Parameters. The norm is the global one
    (all gradients as one vector), as DeZero's ClipGrad computes it. Gradients are replaced by
    new arrays, never scaled in place (two parameters may share one gradient array).
    """
    max_norm = POSITIVE.check("clip_grad_norm", "max_norm", max_norm)
    eps = NON_NEGATIVE.check("clip_grad_norm", "eps", eps)
    variables = _params_of(params)
    norm = global_grad_norm(variables)
    rate = max_norm / (norm + eps)
    if rate < 1.0:
        for p in variables:
            if p.grad is not None:
                g = p.grad.data
                p.grad = Variable(g * g.dtype.type(rate), requires_grad=False)
    return norm
