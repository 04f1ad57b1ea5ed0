"""``zerograd.functions`` (import as ``F``): every op, under DeZero's names.

This module only re-exports; each op lives in its family module under ``zerograd/ops``.
"""

import importlib

from zerograd import cuda, utils  # noqa: F401  (DeZero's module imports them: F.cuda, F.utils)
from zerograd.core.function import Function, Variable, as_array, as_variable  # noqa: F401
from zerograd.ops.activation import *  # noqa: F403
from zerograd.ops.arithmetic import *  # noqa: F403
from zerograd.ops.attention import *  # noqa: F403
from zerograd.ops.conv import *  # noqa: F403
from zerograd.ops.elementwise import *  # noqa: F403
from zerograd.ops.indexing import *  # noqa: F403
from zerograd.ops.linalg import *  # noqa: F403
from zerograd.ops.loss import *  # noqa: F403
from zerograd.ops.normalization import *  # noqa: F403
from zerograd.ops.pooling import *  # noqa: F403
from zerograd.ops.random import *  # noqa: F403
from zerograd.ops.recurrent import *  # noqa: F403
from zerograd.ops.reduction import *  # noqa: F403
from zerograd.ops.shape import *  # noqa: F403

# Function names such as ``pooling`` shadow their family module's name here, so the
# families are looked up by module path.
_FAMILY_NAMES = ("activation", "arithmetic", "attention", "conv", "elementwise", "indexing",
                 "linalg", "loss", "normalization", "pooling", "random", "recurrent", "reduction",
                 "shape")
_FAMILIES = tuple(importlib.import_module(f"zerograd.ops.{name}") for name in _FAMILY_NAMES)

# The ops only: the names imported above for DeZero's ``F.Variable``, ``F.as_variable`` ...
# stay attributes, not part of ``from zerograd.functions import *``.
__all__ = sorted({name for family in _FAMILIES for name in family.__all__})
