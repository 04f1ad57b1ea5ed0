import numpy as np

import zerograd.functions as F
from tests.ops.harness import OpSpec

SPECS = [
    OpSpec("reshape", F.reshape, np.reshape, kwargs={"shape": (3, 2)}, double_backward=False),
    OpSpec("reshape_infer", F.reshape, np.reshape, kwargs={"shape": (-1,)},
           shapes=[((2, 3, 2),)], double_backward=False, covers=[]),
    OpSpec("transpose", F.transpose, np.transpose, shapes=[((2, 3),), ((2, 3, 4),)],
           double_backward=False),
    OpSpec("transpose_axes", F.transpose, np.transpose, kwargs={"axes": (1, 2, 0)},
           shapes=[((2, 3, 4),)], double_backward=False, covers=[]),
    OpSpec("broadcast_to", F.broadcast_to, np.broadcast_to, kwargs={"shape": (4, 2, 3)},
           shapes=[((2, 3),), ((1, 3),), ((),)], double_backward=False),
    OpSpec("sum_to", F.sum_to, lambda x, shape: x.sum(axis=0).sum(axis=1, keepdims=True),
           kwargs={"shape": (2, 1)}, shapes=[((4, 2, 3),)], double_backward=False),
    OpSpec("broadcast_square", lambda x: F.broadcast_to(x, (3, 2)) ** 2,
           lambda x: np.broadcast_to(x, (3, 2)) ** 2, shapes=[((2,),)], covers=[]),
]
