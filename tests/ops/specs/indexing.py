import numpy as np

import zerograd.functions as F
from tests.ops.harness import OpSpec

SPECS = [
    OpSpec("get_item", F.get_item, lambda x, slices: x[slices], kwargs={"slices": (slice(None), 1)},
           shapes=[((3, 4),)], double_backward=False),
    OpSpec("get_item_repeated_rows", F.get_item, lambda x, slices: x[slices],
           kwargs={"slices": np.array([0, 2, 0, 0])}, shapes=[((3, 4),)], double_backward=False,
           covers=[]),
    OpSpec("get_item_int", F.get_item, lambda x, slices: x[slices], kwargs={"slices": 1},
           shapes=[((3, 2),)], double_backward=False, covers=[]),
    OpSpec("get_item_squared", lambda x: F.get_item(x, np.array([1, 1])) ** 2,
           lambda x: x[np.array([1, 1])] ** 2, shapes=[((3, 2),)], covers=[]),
]
