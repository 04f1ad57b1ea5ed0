import numpy as np

import zerograd.functions as F
from tests.ops.harness import OpSpec

SHAPES = [((2, 3),), ((),), ((2, 1, 3),)]

SPECS = [
    OpSpec("square", F.square, np.square, shapes=SHAPES),
    OpSpec("exp", F.exp, np.exp, shapes=SHAPES),
    OpSpec("log", F.log, np.log, shapes=SHAPES, domain=(0.5, 3.0)),
    OpSpec("sin", F.sin, np.sin, shapes=SHAPES, domain=(-3, 3)),
    OpSpec("cos", F.cos, np.cos, shapes=SHAPES, domain=(-3, 3)),
    OpSpec("tanh", F.tanh, np.tanh, shapes=SHAPES, domain=(-3, 3)),
]
