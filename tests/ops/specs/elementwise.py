import math

import numpy as np

import zerograd.functions as F
from tests.ops.harness import OpSpec

SHAPES = [((2, 3),), ((),), ((2, 1, 3),)]
BINARY_SHAPES = [((2, 3), (2, 3)), ((2, 3), (3,)), ((4, 1, 3), (2, 1)), ((), ()), ((2, 3), ())]

_erf_ref = np.vectorize(math.erf, otypes=[np.float64])
_erfc_ref = np.vectorize(math.erfc, otypes=[np.float64])


def away_from(kinks, low=-2.0, high=2.0, margin=0.1):
    """make_inputs drawing uniform values, each at least ``margin`` from every kink."""

    def make(rng, shapes, dtype):
        arrays = []
        for shape in shapes:
            x = rng.uniform(low, high, size=shape)
            for k in kinks:
                near = np.abs(x - k) < margin
                x = np.where(near, k + np.where(x >= k, margin, -margin), x)
            arrays.append(np.asarray(x).astype(dtype))
        return arrays

    return make


def distinct_pair(rng, shapes, dtype, margin=0.1):
    """Two inputs whose broadcast elements differ by at least ``margin`` (no max/min ties)."""
    for _ in range(1000):
        x0 = rng.uniform(-2, 2, size=shapes[0])
        x1 = rng.uniform(-2, 2, size=shapes[1])
        if np.all(np.abs(np.subtract(x0, x1)) >= margin):
            return [np.asarray(x0).astype(dtype), np.asarray(x1).astype(dtype)]
    raise AssertionError("could not draw a tie-free pair")


def condition_and_branches(rng, shapes, dtype):
    c_shape, x_shape, y_shape = shapes
    condition = rng.uniform(size=c_shape) > 0.5
    return [condition, rng.uniform(-2, 2, size=x_shape).astype(dtype),
            rng.uniform(-2, 2, size=y_shape).astype(dtype)]


def clip_with_bounds(rng, shapes, dtype):
    x_shape, lo_shape, hi_shape = shapes
    lo = rng.uniform(-1.0, -0.2, size=lo_shape)
    hi = rng.uniform(0.2, 1.0, size=hi_shape)
    for _ in range(1000):
        x = rng.uniform(-2, 2, size=x_shape)
        if np.all(np.abs(x - lo) > 0.05) and np.all(np.abs(x - hi) > 0.05):
            return [np.asarray(a).astype(dtype) for a in (x, lo, hi)]
    raise AssertionError("could not draw x away from the bounds")


def ref_power_scalar_base(x):
    return 2.0 ** x


SPECS = [
    OpSpec("square", F.square, np.square, shapes=SHAPES),
    OpSpec("exp", F.exp, np.exp, shapes=SHAPES),
    OpSpec("log", F.log, np.log, shapes=SHAPES, domain=(0.5, 3.0)),
    OpSpec("sin", F.sin, np.sin, shapes=SHAPES, domain=(-3, 3)),
    OpSpec("cos", F.cos, np.cos, shapes=SHAPES, domain=(-3, 3)),
    OpSpec("tanh", F.tanh, np.tanh, shapes=SHAPES, domain=(-3, 3)),
    OpSpec("sqrt", F.sqrt, np.sqrt, shapes=SHAPES, domain=(0.3, 3.0)),
    OpSpec("abs", F.abs, np.abs, shapes=SHAPES, make_inputs=away_from([0.0]),
           double_backward=False),
    OpSpec("abs_operator", lambda x: abs(x), np.abs, make_inputs=away_from([0.0]),
           double_backward=False, covers=[]),
    OpSpec("power", F.power, np.power, shapes=BINARY_SHAPES, domain=[(0.5, 2.0), (-2.0, 2.0)]),
    OpSpec("power_scalar_exponent", lambda x: F.power(x, 2.5), lambda x: x ** 2.5,
           domain=(0.5, 2.0), covers=[]),
    OpSpec("power_scalar_base", lambda x: F.power(2.0, x), ref_power_scalar_base, covers=[]),
    OpSpec("power_operators", lambda x, y: x ** y + 2 ** y, lambda x, y: x ** y + 2.0 ** y,
           shapes=[((2, 3), (3,))], domain=[(0.5, 2.0), (-2.0, 2.0)], covers=[]),
    OpSpec("maximum", F.maximum, np.maximum, shapes=BINARY_SHAPES, make_inputs=distinct_pair,
           double_backward=False),
    OpSpec("minimum", F.minimum, np.minimum, shapes=BINARY_SHAPES, make_inputs=distinct_pair,
           double_backward=False),
    OpSpec("maximum_scalar", lambda x: F.maximum(x, 0.5), lambda x: np.maximum(x, 0.5),
           make_inputs=away_from([0.5]), double_backward=False, covers=[]),
    OpSpec("where", F.where, np.where, shapes=[((2, 3), (2, 3), (2, 3)), ((2, 3), (3,), ()),
                                               ((2, 1), (1, 3), (2, 3))],
           make_inputs=condition_and_branches, diff_args=[1, 2], double_backward=False),
    OpSpec("where_square", lambda c, x: F.where(c, x * x, 0.0),
           lambda c, x: np.where(c, x * x, 0.0), shapes=[((2, 3), (2, 3))],
           make_inputs=lambda rng, shapes, dtype: [rng.uniform(size=shapes[0]) > 0.5,
                                                   rng.uniform(-2, 2, shapes[1]).astype(dtype)],
           diff_args=[1], covers=[]),
    OpSpec("clip", lambda x: F.clip(x, -0.5, 0.8), lambda x: np.clip(x, -0.5, 0.8),
           shapes=SHAPES, make_inputs=away_from([-0.5, 0.8]), double_backward=False),
    OpSpec("clip_one_sided", lambda x: F.clip(x, None, 0.8), lambda x: np.minimum(x, 0.8),
           make_inputs=away_from([0.8]), double_backward=False, covers=[]),
    OpSpec("clip_variable_bounds", F.clip, lambda x, lo, hi: np.minimum(np.maximum(x, lo), hi),
           shapes=[((2, 3), (2, 3), (2, 3)), ((4, 3), (3,), (4, 1))],
           make_inputs=clip_with_bounds, double_backward=False, covers=[]),
    OpSpec("log1p", F.log1p, np.log1p, shapes=SHAPES, domain=(-0.5, 2.0)),
    OpSpec("expm1", F.expm1, np.expm1, shapes=SHAPES),
    OpSpec("log2", F.log2, np.log2, shapes=SHAPES, domain=(0.5, 3.0)),
    OpSpec("log10", F.log10, np.log10, shapes=SHAPES, domain=(0.5, 3.0)),
    OpSpec("sinh", F.sinh, np.sinh, shapes=SHAPES),
    OpSpec("cosh", F.cosh, np.cosh, shapes=SHAPES),
    OpSpec("arcsin", F.arcsin, np.arcsin, shapes=SHAPES, domain=(-0.8, 0.8)),
    OpSpec("arccos", F.arccos, np.arccos, shapes=SHAPES, domain=(-0.8, 0.8)),
    OpSpec("arctan", F.arctan, np.arctan, shapes=SHAPES, domain=(-3.0, 3.0)),
    OpSpec("erf", F.erf, _erf_ref, shapes=SHAPES, domain=(-3.0, 3.0)),
    OpSpec("erf_near_zero", F.erf, _erf_ref, domain=(-0.6, 0.6), covers=[]),
    OpSpec("erfc", F.erfc, _erfc_ref, shapes=SHAPES, domain=(-3.0, 3.0)),
    # One element: summed with larger ones, a 1e-13 value would drown in rounding.
    OpSpec("erfc_tail", F.erfc, _erfc_ref, shapes=[((),)], domain=(4.0, 8.0),
           dtypes=(np.float64,), rtol=1e-12, atol=0.0, grad_atol=1e-30, covers=[]),
]
