"""``zerograd.functions`` (import as ``F``): every op, under DeZero's names.

This module only re-exports; each op lives in its family module under ``zerograd/ops``.
"""

from zerograd.ops import arithmetic, elementwise, indexing, linalg, reduction, shape
from zerograd.ops.arithmetic import *  # noqa: F403
from zerograd.ops.elementwise import *  # noqa: F403
from zerograd.ops.indexing import *  # noqa: F403
from zerograd.ops.linalg import *  # noqa: F403
from zerograd.ops.reduction import *  # noqa: F403
from zerograd.ops.shape import *  # noqa: F403

_FAMILIES = (arithmetic, elementwise, indexing, linalg, reduction, shape)

__all__ = sorted({name for family in _FAMILIES for name in family.__all__})
