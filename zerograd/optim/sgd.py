"""Plain and momentum stochastic gradient descent."""

from __future__ import annotations

from zerograd.core.variable import Parameter
from zerograd.optim._checks import NON_NEGATIVE, UNIT_OPEN, Flag
from zerograd.optim.optimizer import Optimizer, add_scaled

__all__ = ["SGD", "MomentumSGD"]


class SGD(Optimizer):
    """w <- w - lr * g."""

    hyperparams = {"lr": NON_NEGATIVE}

    def __init__(self, lr: float = 0.01) -> None:
        super().__init__()
        self.lr = lr

    def update_one(self, param: Parameter) -> None:
        w = param.data
        add_scaled(w, -self.lr, self._grad_of(param))
        param.data = w  # the same array back: counted as an in-place write (docs/engine.md)


class MomentumSGD(Optimizer):
    """Momentum (DeZero's form): v <- momentum * v - lr * g;  w <- w + v.

    ``nesterov=True`` takes the Nesterov step in the same variables (Sutskever et al. 2013,
    as PyTorch writes it): v <- momentum * v - lr * g;  w <- w + momentum * v - lr * g.
    """

    # PyTorch allows momentum >= 1, where the velocity never decays and training diverges.
    hyperparams = {"lr": NON_NEGATIVE, "momentum": UNIT_OPEN, "nesterov": Flag()}
    state_names = ("v",)

    def __init__(self, lr: float = 0.01, momentum: float = 0.9, nesterov: bool = False) -> None:
        super().__init__()
        self.lr = lr
        self.momentum = momentum
        self.nesterov = nesterov
        if self.nesterov and self.momentum == 0:
            # PyTorch's rule: the Nesterov look-ahead is meaningless without momentum.
            raise ValueError("MomentumSGD: nesterov=True needs momentum in (0, 1), got "
                             "momentum=0.0")

    def update_one(self, param: Parameter) -> None:
        v = self._state_for(param)["v"]
        grad = self._grad_of(param)
        v *= self.momentum
        add_scaled(v, -self.lr, grad)
        if self.nesterov:
            w = param.data
            add_scaled(w, self.momentum, v)
            add_scaled(w, -self.lr, grad)
            param.data = w  # counted as an in-place write, as `+=` below is
        else:
            param.data += v
