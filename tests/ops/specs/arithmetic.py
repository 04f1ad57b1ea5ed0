import numpy as np

import zerograd.functions as F
from tests.ops.harness import OpSpec

BINARY_SHAPES = [((2, 3), (2, 3)), ((2, 3), (3,)), ((4, 1, 3), (2, 1)), ((), ()), ((2, 3), ())]

SPECS = [
    OpSpec("add", F.add, np.add, shapes=BINARY_SHAPES, double_backward=False),
    OpSpec("sub", F.sub, np.subtract, shapes=BINARY_SHAPES, double_backward=False),
    OpSpec("rsub", F.rsub, lambda a, b: b - a, shapes=BINARY_SHAPES, double_backward=False),
    OpSpec("mul", F.mul, np.multiply, shapes=BINARY_SHAPES),
    OpSpec("div", F.div, np.divide, shapes=BINARY_SHAPES, domain=[(-2, 2), (0.5, 2)]),
    OpSpec("rdiv", F.rdiv, lambda a, b: b / a, shapes=BINARY_SHAPES, domain=[(0.5, 2), (-2, 2)]),
    OpSpec("neg", F.neg, np.negative, shapes=[((2, 3),), ((),)], double_backward=False),
    OpSpec("pow", F.pow, lambda x, c: x ** c, kwargs={"c": 3}, shapes=[((2, 3),), ((),)]),
    OpSpec("pow_fractional", F.pow, lambda x, c: x ** c, kwargs={"c": 0.5}, domain=(0.5, 2.0),
           covers=[]),
    OpSpec("operator_scalars", lambda x: 2.5 + x * 0.5 - 1 / (x + 3),
           lambda x: 2.5 + x * 0.5 - 1 / (x + 3), covers=[]),
    # The scalar-constant ops on the left of a Variable (RSubConstant, RDivConstant), and
    # x / c (DivConstant).
    OpSpec("operator_reflected_scalars", lambda x: (3 - x) * (2 / (x + 3)) / 4,
           lambda x: (3 - x) * (2 / (x + 3)) / 4, covers=[]),
    OpSpec("operator_matmul_pow", lambda x, w: (x @ w) ** 2, lambda x, w: (x @ w) ** 2,
           shapes=[((2, 3), (3, 4))], covers=[], zero_d=False),
]
