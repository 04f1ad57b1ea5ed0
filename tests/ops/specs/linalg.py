import numpy as np

import zerograd.functions as F
from tests.ops.harness import OpSpec

SPECS = [
    OpSpec("matmul", F.matmul, np.matmul,
           shapes=[((2, 3), (3, 4)), ((3,), (3, 4)), ((2, 3), (3,)), ((3,), (3,)),
                   ((5, 2, 3), (3, 4)), ((2, 1, 2, 3), (3, 3, 2))]),
]
