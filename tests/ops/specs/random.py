"""Specs for the random family (zerograd/ops/random.py).

Dropout draws a new mask on every call, so the spec re-seeds the global RNG before each call:
the op is then a fixed function of x, and the reference repeats DeZero's draw by hand.
"""

import numpy as np

import zerograd.functions as F
from tests.ops.harness import OpSpec


def seeded_dropout(x, dropout_ratio=0.5):
    np.random.seed(7)
    return F.dropout(x, dropout_ratio)


def np_dropout(x, dropout_ratio=0.5):
    np.random.seed(7)
    mask = np.random.rand(*x.shape) > dropout_ratio
    return x * mask / np.asarray(1.0 - dropout_ratio, dtype=x.dtype)


SPECS = [
    OpSpec("dropout", seeded_dropout, np_dropout, shapes=[((4, 5),), ((2, 3, 4),)],
           double_backward=False),
    OpSpec("dropout_ratio_0.2", seeded_dropout, np_dropout, kwargs={"dropout_ratio": 0.2},
           shapes=[((4, 5),)], double_backward=False, covers=[]),
]
