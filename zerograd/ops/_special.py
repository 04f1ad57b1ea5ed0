"""Special-function kernels on raw arrays (no graph): erf, erfc, the normal CDF, sigmoid.

NumPy has none of them; the ops in ``elementwise.py``, ``activation.py`` and ``recurrent.py``
are built on these. Every kernel keeps float32 float32 (integers compute in float64).
"""

from __future__ import annotations

import math

import numpy as np

from zerograd.backend import get_array_module

_TWO_OVER_SQRT_PI = 2.0 / math.sqrt(math.pi)
_INV_SQRT2 = 1.0 / math.sqrt(2.0)


# -- sigmoid -----------------------------------------------------------------------------------
def sigmoid_(a):
    """a <- 1 / (1 + e^-a) in place (a float array, any strides, at least 1-d); returns a."""
    np.negative(a, out=a)
    return _sigmoid_of_negated(a)


def sigmoid_array(x):
    """sigmoid of an array x of any shape, as a new array (float32 stays float32)."""
    flat = x.reshape(-1)  # 1-d: in-place ufuncs on a 0-d array would hand back scalars
    if flat.dtype.kind != "f":
        flat = flat.astype(np.float64)
    return _sigmoid_of_negated(np.negative(flat)).reshape(x.shape)


def _sigmoid_of_negated(y):
    """y <- 1 / (1 + e^y) in place: three passes, full relative accuracy where e^y is huge.

    For -y < -88 (float32) / -709 (float64) e^y overflows to inf and 1 / (1 + inf) = 0,
    which is the correctly rounded answer down to the subnormal range, so the overflow is
    silenced rather than avoided. (DeZero's tanh(x/2)/2 + 1/2 is overflow-free too, but it
    rounds sigmoid(-40) = 4e-18 to 0.)
    """
    with np.errstate(over="ignore"):
        np.exp(y, out=y)
    y += 1
    np.reciprocal(y, out=y)
    return y


# -- erf and erfc on arrays ------------------------------------------------------------------
# NumPy has no erf. erfc(z) for z >= 0 is written as exp(-z^2) * g(u) with u = (3-z)/(3+z):
# g (the scaled erfc, exp(z^2) erfc(z), as a function of u in (-1, 1]) is smooth and is
# interpolated at Chebyshev points by a polynomial of degree 20 (float64: relative error
# about 1e-13 over the whole range) or 11 (float32: 6e-8, float32's own rounding). The
# coefficients are computed once, on first use, from math.erfc: no table of magic numbers.
_ERFC_DEGREE = {np.dtype(np.float64): 20, np.dtype(np.float32): 11}
_ERFC_SCALE = 3.0
_erfc_coefficients: dict = {}


def _scaled_erfc(z: float) -> float:
    """exp(z^2) * erfc(z) for z >= 0 (asymptotic series where exp(z^2) would overflow)."""
    if z < 25.0:
        return math.exp(z * z) * math.erfc(z)
    total, term = 1.0, 1.0
    for k in range(1, 12):
        term *= -(2 * k - 1) / (2 * z * z)
        total += term
    return total / (z * math.sqrt(math.pi))


def _erfc_polynomial(degree: int) -> tuple:
    """Power-basis coefficients in u (highest first) of the interpolant of g(u)."""
    if degree not in _erfc_coefficients:
        chebyshev = np.polynomial.chebyshev

        def g(u):
            z = _ERFC_SCALE * (1 - u) / (1 + u)
            return np.array([_scaled_erfc(float(v)) for v in z])

        coefficients = chebyshev.cheb2poly(chebyshev.chebinterpolate(g, degree))
        _erfc_coefficients[degree] = tuple(float(c) for c in coefficients[::-1])
    return _erfc_coefficients[degree]


def _working_dtype(x):
    dtype = np.dtype(x.dtype)
    if dtype.kind != "f":
        return np.dtype(np.float64)
    return dtype


def _erfc_of_nonnegative(z, xp):
    """erfc(z) for a 1-d float array z >= 0, computed in the buffer of z (which it consumes).

    Two arrays in total, every step in place: a fresh temporary per step would cost more
    than the arithmetic on large arrays.
    """
    coefficients = _erfc_polynomial(_ERFC_DEGREE.get(z.dtype, 20))
    u = z + _ERFC_SCALE
    xp.divide(2 * _ERFC_SCALE, u, out=u)
    u -= 1  # u = (3 - z) / (3 + z), and -1 at z = inf (no inf / inf)
    acc = u * coefficients[0]
    acc += coefficients[1]
    for c in coefficients[2:]:
        acc *= u
        acc += c
    z *= z
    xp.negative(z, out=z)
    xp.exp(z, out=z)
    acc *= z
    return acc


def _as_float_vector(x, xp):
    """x as a 1-d float array (a view when possible): in-place ufuncs on 0-d arrays would
    return scalars, and integers compute in float64."""
    return xp.asarray(x, dtype=_working_dtype(x)).reshape(-1)


def erfc_array(x):
    """erfc of an array (float32 stays float32; integers give float64). No graph."""
    xp = get_array_module(x)
    flat = _as_float_vector(x, xp)
    r = _erfc_of_nonnegative(xp.abs(flat), xp)
    negative = flat < 0
    if negative.any():
        # erfc(-z) = 2 - erfc(z), blended arithmetically (np.where is slow on random masks).
        fix = r * -2
        fix += 2
        fix *= negative
        r += fix
    return r.reshape(x.shape)


def normal_cdf_array(x):
    """Phi(x) = erfc(-x / sqrt 2) / 2, the standard normal CDF, with relative accuracy in
    both tails' small side (Phi(-10) ~ 7.6e-24). No graph."""
    xp = get_array_module(x)
    flat = _as_float_vector(x, xp)
    z = xp.abs(flat)
    z *= _INV_SQRT2
    q = _erfc_of_nonnegative(z, xp)  # 2 Phi(-|x|)
    q *= 0.5
    # Phi(x) = q for x < 0 and 1 - q for x >= 0.
    fix = q * -2
    fix += 1
    fix *= flat >= 0
    q += fix
    return q.reshape(x.shape)


def erf_array(x):
    """erf of an array: a Taylor series near 0 (keeps relative accuracy), 1 - erfc beyond."""
    xp = get_array_module(x)
    dtype = _working_dtype(x)
    shape = x.shape
    x = xp.asarray(x, dtype=dtype).reshape(-1)
    terms = 13 if dtype == np.float64 else 7
    small = xp.clip(x, -0.5, 0.5)
    x2 = small * small
    # erf(x) = 2/sqrt(pi) * sum_n (-1)^n x^(2n+1) / (n! (2n+1)), Horner in x^2.
    coefficients = [(-1) ** n / (math.factorial(n) * (2 * n + 1)) for n in range(terms)]
    acc = xp.full_like(x2, coefficients[-1])
    for c in reversed(coefficients[:-1]):
        acc *= x2
        acc += c
    acc *= small * _TWO_OVER_SQRT_PI
    large = _erfc_of_nonnegative(xp.abs(x), xp)
    xp.subtract(1, large, out=large)
    xp.copysign(large, x, out=large)
    return xp.where(xp.abs(x) < 0.5, acc, large).reshape(shape)
