import numpy as np

import zerograd.functions as F
from tests.ops.harness import OpSpec

SPECS = [
    OpSpec("sum", F.sum, np.sum, shapes=[((2, 3),), ((),), ((2, 3, 4),)], double_backward=False),
    OpSpec("sum_axis", F.sum, np.sum, kwargs={"axis": 1}, shapes=[((2, 3, 4),)],
           double_backward=False, covers=[]),
    OpSpec("sum_axes_keepdims", F.sum, np.sum, kwargs={"axis": (0, -1), "keepdims": True},
           shapes=[((2, 3, 4),)], double_backward=False, covers=[]),
    OpSpec("sum_squared", lambda x: F.sum(x * x, axis=0), lambda x: np.sum(x * x, axis=0),
           shapes=[((3, 2),)], covers=[]),
]
