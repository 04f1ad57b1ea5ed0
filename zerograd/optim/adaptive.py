"""Optimizers with per-coordinate step sizes: AdaGrad, AdaDelta, RMSprop, Adam, AdamW.

All state arrays have the parameter's dtype; every scalar is a Python float, so float32
parameters are updated in float32.
"""

from __future__ import annotations

import math

from zerograd import _fast as fast
from zerograd.backend import get_array_module
from zerograd.core.variable import Parameter
from zerograd.optim._checks import NON_NEGATIVE, POSITIVE, UNIT, UNIT_OPEN
from zerograd.optim.optimizer import Optimizer

__all__ = ["AdaGrad", "AdaDelta", "RMSprop", "Adam", "AdamW"]


class AdaGrad(Optimizer):
    """Duchi et al. (2011): h <- h + g^2;  w <- w - lr * g / (sqrt(h) + eps)."""

    # eps > 0 (PyTorch allows 0): with eps = 0 a coordinate whose gradients were all zero
    # divides 0 by 0.
    hyperparams = {"lr": NON_NEGATIVE, "eps": POSITIVE}
    state_names = ("h",)

    def __init__(self, lr: float = 0.001, eps: float = 1e-8) -> None:
        super().__init__()
        self.lr = lr
        self.eps = eps

    def update_one(self, param: Parameter) -> None:
        xp = get_array_module(param.data)
        h = self._state_for(param)["h"]
        grad = self._grad_of(param)
        h += grad * grad
        param.data -= self.lr * grad / (xp.sqrt(h) + self.eps)


class AdaDelta(Optimizer):
    """Zeiler (2012), no learning rate:

    msg <- rho msg + (1 - rho) g^2;  dx = sqrt((msdx + eps) / (msg + eps)) g;
    msdx <- rho msdx + (1 - rho) dx^2;  w <- w - dx.
    """

    hyperparams = {"rho": UNIT, "eps": POSITIVE}  # rho as PyTorch: [0, 1]
    state_names = ("msg", "msdx")
    lr_attribute = None

    def __init__(self, rho: float = 0.95, eps: float = 1e-6) -> None:
        super().__init__()
        self.rho = rho
        self.eps = eps

    def update_one(self, param: Parameter) -> None:
        xp = get_array_module(param.data)
        state = self._state_for(param)
        msg, msdx = state["msg"], state["msdx"]
        rho, eps = self.rho, self.eps
        grad = self._grad_of(param)
        msg *= rho
        msg += (1 - rho) * grad * grad
        dx = xp.sqrt((msdx + eps) / (msg + eps)) * grad
        msdx *= rho
        msdx += (1 - rho) * dx * dx
        param.data -= dx


class RMSprop(Optimizer):
    """Tieleman & Hinton (2012): ms <- alpha ms + (1 - alpha) g^2;
    w <- w - lr * g / (sqrt(ms) + eps)."""

    # alpha in [0, 1) (PyTorch only asks alpha >= 0): at 1 the average never moves from 0,
    # above 1 it can go negative and sqrt gives NaN.
    hyperparams = {"lr": NON_NEGATIVE, "alpha": UNIT_OPEN, "eps": POSITIVE}
    state_names = ("ms",)

    def __init__(self, lr: float = 0.01, alpha: float = 0.99, eps: float = 1e-8) -> None:
        super().__init__()
        self.lr = lr
        self.alpha = alpha
        self.eps = eps

    def update_one(self, param: Parameter) -> None:
        xp = get_array_module(param.data)
        ms = self._state_for(param)["ms"]
        grad = self._grad_of(param)
        ms *= self.alpha
        ms += (1 - self.alpha) * grad * grad
        param.data -= self.lr * grad / (xp.sqrt(ms) + self.eps)


class Adam(Optimizer):
    """Kingma & Ba (2015), in DeZero's form. With t the step count (from 1):

    m <- m + (1 - beta1)(g - m);  v <- v + (1 - beta2)(g^2 - v);
    w <- w - lr_t * m / (sqrt(v) + eps),  lr_t = alpha sqrt(1 - beta2^t) / (1 - beta1^t).

    ``lr`` is lr_t: the step size of the latest step, and before the first step that of
    step 1 (DeZero divided by zero there). A scheduler scales ``alpha``.
    """

    hyperparams = {"alpha": NON_NEGATIVE, "beta1": UNIT_OPEN, "beta2": UNIT_OPEN,
                   "eps": POSITIVE}
    counters = ("t",)
    state_names = ("m", "v")
    lr_attribute = "alpha"

    def __init__(self, alpha: float = 0.001, beta1: float = 0.9, beta2: float = 0.999,
                 eps: float = 1e-8) -> None:
        super().__init__()
        self.t = 0
        self.alpha = alpha
        self.beta1 = beta1
        self.beta2 = beta2
        self.eps = eps

    def begin_step(self) -> None:
        self.t += 1  # update_one's lr (the bias correction) reads the new count

    @property
    def lr(self) -> float:
        t = max(self.t, 1)
        fix1 = 1.0 - math.pow(self.beta1, t)
        fix2 = 1.0 - math.pow(self.beta2, t)
        return self.alpha * math.sqrt(fix2) / fix1

    @lr.setter
    def lr(self, value) -> None:
        raise AttributeError(f"{type(self).__name__}.lr is the bias-corrected step size derived "
                             "from alpha and t; set alpha instead (or use set_lr)")

    def update_one(self, param: Parameter) -> None:
        xp = get_array_module(param.data)
        state = self._state_for(param)
        m, v = state["m"], state["v"]
        grad = self._grad_of(param)
        w, lr = param.data, self.lr
        if fast.use("adam", w, m, v, grad):
            # The three lines below in one compiled pass, bitwise the same values: the
            # hyperparameters are Python floats (the optimizer stores them so), which NumPy
            # rounds to the arrays' dtype, as the kernel does.
            from zerograd._fast import optim as fast_optim  # imports numba (see fast.use)

            if fast_optim.supports(w, m, v, grad):
                fast_optim.adam(w, m, v, grad, 1 - self.beta1, 1 - self.beta2, lr, self.eps)
                param.data = w  # the same array back: counted as an in-place write
                return
        m += (1 - self.beta1) * (grad - m)
        v += (1 - self.beta2) * (grad * grad - v)
        param.data -= lr * m / (xp.sqrt(v) + self.eps)


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter, 2019):

    w <- w * (1 - alpha * weight_decay), then the Adam step above. The decay does not pass
    through the gradient moments, unlike L2 regularisation (the WeightDecay hook).
    """

    hyperparams = {**Adam.hyperparams, "weight_decay": NON_NEGATIVE}

    def __init__(self, alpha: float = 0.001, beta1: float = 0.9, beta2: float = 0.999,
                 eps: float = 1e-8, weight_decay: float = 0.01) -> None:
        super().__init__(alpha, beta1, beta2, eps)
        self.weight_decay = weight_decay

    def update_one(self, param: Parameter) -> None:
        self._grad_of(param)  # refuses a missing or misshapen gradient before the decay
        if self.weight_decay:
            param.data *= 1.0 - self.alpha * self.weight_decay
        super().update_one(param)
