import numpy as np

import zerograd.functions as F
from tests.ops.harness import OpSpec

NOT_DIFFERENTIABLE = {"argmax", "argmin"}


def _away_from_zero(rng, shapes, dtype):
    """Values in +-[0.5, 1.5]: products and norms stay well conditioned."""
    return [np.asarray(rng.choice([-1.0, 1.0], size=s) * rng.uniform(0.5, 1.5, size=s), dtype)
            for s in shapes]


def _with_zeros(rng, shapes, dtype):
    """One zero in a row, two in another, none in the third (and columns with 0, 1 and 2
    zeros): prod's first and second derivatives must stay exact."""
    (shape,) = shapes
    x = rng.uniform(0.5, 1.5, size=shape)
    x[0, 1] = 0.0
    x[1, 0] = x[1, 2] = 0.0
    return [x.astype(dtype)]


def _norm2(x, ord=2, axis=None, keepdims=False):
    return np.sqrt(np.sum(x * x, axis=axis, keepdims=keepdims))


def _norm1(x, ord=1, axis=None, keepdims=False):
    return np.sum(np.abs(x), axis=axis, keepdims=keepdims)


SHAPES = [((2, 3),), ((),), ((2, 3, 4),)]

SPECS = [
    OpSpec("sum", F.sum, np.sum, shapes=SHAPES, double_backward=False),
    OpSpec("sum_axis", F.sum, np.sum, kwargs={"axis": 1}, shapes=[((2, 3, 4),)],
           double_backward=False, covers=[], zero_d=False),
    OpSpec("sum_axes_keepdims", F.sum, np.sum, kwargs={"axis": (0, -1), "keepdims": True},
           shapes=[((2, 3, 4),)], double_backward=False, covers=[], zero_d=False),
    OpSpec("sum_squared", lambda x: F.sum(x * x, axis=0), lambda x: np.sum(x * x, axis=0),
           shapes=[((3, 2),)], covers=[]),
    # mean / average
    OpSpec("mean", F.mean, np.mean, shapes=SHAPES, double_backward=False,
           covers=["mean", "average"]),
    OpSpec("mean_axis_keepdims", F.average, np.mean, kwargs={"axis": (0, 2), "keepdims": True},
           shapes=[((2, 3, 4),)], double_backward=False, covers=[], zero_d=False),
    OpSpec("mean_negative_axis", F.mean, np.mean, kwargs={"axis": -1}, shapes=[((2, 3, 4),)],
           double_backward=False, covers=[], zero_d=False),
    OpSpec("mean_squared", lambda x: F.mean(x * x, axis=1), lambda x: np.mean(x * x, axis=1),
           shapes=[((3, 4),)], covers=[], zero_d=False),
    # max / min (continuous random inputs: no ties; ties are tested in test_reduction_semantics)
    OpSpec("max", F.max, np.max, shapes=SHAPES, double_backward=False),
    OpSpec("max_axis", F.max, np.max, kwargs={"axis": 1}, shapes=[((3, 4),), ((2, 3, 4),)],
           double_backward=False, covers=[], zero_d=False),
    OpSpec("max_axes_keepdims", F.max, np.max, kwargs={"axis": (0, 2), "keepdims": True},
           shapes=[((2, 3, 4),)], double_backward=False, covers=[], zero_d=False),
    OpSpec("min", F.min, np.min, shapes=SHAPES, double_backward=False),
    OpSpec("min_axis_keepdims", F.min, np.min, kwargs={"axis": -1, "keepdims": True},
           shapes=[((3, 4),)], double_backward=False, covers=[]),
    OpSpec("max_squared", lambda x: F.max(x, axis=0) ** 2, lambda x: np.max(x, axis=0) ** 2,
           shapes=[((3, 4),)], covers=[]),
    # prod
    OpSpec("prod", F.prod, np.prod, shapes=SHAPES, make_inputs=_away_from_zero),
    OpSpec("prod_axis", F.prod, np.prod, kwargs={"axis": 1}, shapes=[((3, 4),), ((2, 3, 4),)],
           make_inputs=_away_from_zero, covers=[], zero_d=False),
    OpSpec("prod_axes_keepdims", F.prod, np.prod, kwargs={"axis": (0, 2), "keepdims": True},
           shapes=[((2, 3, 4),)], make_inputs=_away_from_zero, covers=[], zero_d=False),
    OpSpec("prod_with_zeros", F.prod, np.prod, kwargs={"axis": 1}, shapes=[((3, 4),)],
           make_inputs=_with_zeros, covers=[], zero_d=False),
    OpSpec("prod_with_zeros_all_axes", F.prod, np.prod, shapes=[((3, 4),)],
           make_inputs=_with_zeros, covers=[], zero_d=False),
    OpSpec("prod_with_zeros_axis0_keepdims", F.prod, np.prod,
           kwargs={"axis": 0, "keepdims": True}, shapes=[((3, 4),)], make_inputs=_with_zeros,
           covers=[], zero_d=False),
    # cumsum
    OpSpec("cumsum", F.cumsum, np.cumsum, shapes=[((2, 3),), ((5,),)], double_backward=False),
    OpSpec("cumsum_axis", F.cumsum, np.cumsum, kwargs={"axis": 1},
           shapes=[((2, 3),), ((2, 3, 4),)], double_backward=False, covers=[], zero_d=False),
    OpSpec("cumsum_negative_axis", F.cumsum, np.cumsum, kwargs={"axis": -3},
           shapes=[((2, 3, 4),)], double_backward=False, covers=[], zero_d=False),
    OpSpec("cumsum_squared", lambda x: F.cumsum(x, axis=0) ** 2,
           lambda x: np.cumsum(x, axis=0) ** 2, shapes=[((4, 2),)], covers=[]),
    # var / std
    OpSpec("var", F.var, np.var, shapes=[((2, 3),), ((2, 3, 4),)]),
    OpSpec("var_axis_ddof", F.var, np.var, kwargs={"axis": 1, "ddof": 1},
           shapes=[((3, 4),), ((2, 3, 4),)], covers=[], zero_d=False),
    OpSpec("var_axes_keepdims", F.var, np.var, kwargs={"axis": (0, 2), "keepdims": True},
           shapes=[((2, 3, 4),)], covers=[], zero_d=False),
    OpSpec("std", F.std, np.std, shapes=[((2, 3),), ((2, 3, 4),)]),
    OpSpec("std_axis_ddof", F.std, np.std, kwargs={"axis": 0, "ddof": 1},
           shapes=[((3, 4),)], covers=[], zero_d=False),
    OpSpec("std_keepdims", F.std, np.std, kwargs={"axis": -1, "keepdims": True},
           shapes=[((2, 3, 4),)], covers=[], zero_d=False),
    # norm
    OpSpec("norm", F.norm, _norm2, shapes=SHAPES[:1] + SHAPES[2:], make_inputs=_away_from_zero),
    OpSpec("norm_axis_keepdims", F.norm, _norm2, kwargs={"axis": 1, "keepdims": True},
           shapes=[((3, 4),), ((2, 3, 4),)], covers=[], zero_d=False),
    OpSpec("norm_fro_axes", F.norm, _norm2, kwargs={"ord": "fro", "axis": (1, 2)},
           shapes=[((2, 3, 4),)], covers=[], zero_d=False),
    OpSpec("norm_ord1", F.norm, _norm1, kwargs={"ord": 1, "axis": 0},
           shapes=[((3, 4),)], make_inputs=_away_from_zero, double_backward=False, covers=[]),
]
