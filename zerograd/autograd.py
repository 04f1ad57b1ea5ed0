"""``zerograd.autograd``: functional differentiation and the debugging switches, under the
name PyTorch users look for (``torch.autograd``). The code lives in ``zerograd.core``."""

from zerograd._config import detect_anomaly
from zerograd.core.autograd import checkpoint, grad, hessian, hvp, jacobian, jvp, vhp, vjp

__all__ = ["grad", "vjp", "jvp", "jacobian", "hessian", "hvp", "vhp", "checkpoint",
           "detect_anomaly"]
