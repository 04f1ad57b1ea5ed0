"""Fused elementwise kernels (numba): bias + ReLU, and the exact (erf) GELU.

**bias + ReLU** ``y = max(a + b, 0)`` with b broadcast along one axis, in place on a, and
its backward ``gx = gy where y > 0 else 0`` with, optionally, the bias gradient (gx summed
over every axis but b's) in the same pass. One pass instead of two (a + b, then maximum) or
three (gy * (y > 0), then the bias sum). Same values as NumPy's ``np.maximum(a + b, 0)``
and ``gy * (y > 0)`` (bitwise for finite gy; the bias sum accumulates in float64, so it is
closer to the exact sum than a float32 BLAS reduction).

**GELU** ``y = x Phi(x)``, ``Phi(x) = erfc(-x / sqrt 2) / 2``, with derivative
``Phi(x) + x phi(x)``, ``phi(x) = exp(-x^2 / 2) / sqrt(2 pi)``. erfc is computed as in
``ops/_special.py``: ``erfc(z) = exp(-z^2) g(u)``, ``u = (3 - z) / (3 + z)``, g the same
Chebyshev interpolant (degree 11 in float32, 20 in float64, its coefficients taken from
``ops/_special.py``), every step in the array's dtype. One pass per element instead of
about thirty array passes; the NumPy path rounds exactly the same way except inside exp,
so the two agree to a few units in the last place.

The exp here is written out (``_exp_nonpositive``: Cody-Waite reduction, a Taylor
polynomial in fused multiply-adds where the CPU has them (``_muladd``), 2^k built from its
bits) instead of calling libm's scalar exp, so that LLVM can vectorise the loop: with
libm's exp (no vector math library in a default numba install) the GELU loop runs about 5x
slower. It is used for arguments <= 0 only (exp(-z^2)), and gives 0 below the smallest
normal number (float32: exp(-87.3), 1e-38; float64: exp(-708), 2e-308), where NumPy's exp
returns subnormals: an absolute difference below 1.2e-38 / 2.3e-308.
"""

from __future__ import annotations

import math

import numpy as np
from llvmlite import ir
from numba.core import types
from numba.extending import intrinsic

from zerograd._fast._numba import kernel, prange
from zerograd.ops._special import _ERFC_DEGREE, _ERFC_SCALE, _erfc_polynomial

__all__ = ["bias_relu", "bias_relu_backward", "gelu", "gelu_grad", "gelu_backward"]


def _check(op: str, *arrays) -> None:
    for a in arrays:
        if a.dtype not in (np.float32, np.float64):
            raise TypeError(f"zerograd._fast.{op}: expected float32 or float64 arrays, got "
                            f"{', '.join(f'{b.dtype} {b.shape}' for b in arrays)}")


# -- bias + ReLU --------------------------------------------------------------------------
def _as_3d(a, axis: int):
    """a as (lead, a.shape[axis], trail), a C-contiguous view (a copy if a is not)."""
    a = np.ascontiguousarray(a)
    lead = int(np.prod(a.shape[:axis], dtype=np.int64))
    trail = int(np.prod(a.shape[axis + 1:], dtype=np.int64))  # (-1 fails on empty arrays)
    return a.reshape(lead, a.shape[axis], trail)


@kernel
def _bias_relu3(a, b):
    lead, C, trail = a.shape
    for task in prange(lead * C):
        c = task % C
        bias = b[c]
        for t in range(trail):
            v = a[task // C, c, t] + bias
            a[task // C, c, t] = v if v > 0 or v != v else 0  # NaN stays NaN (np.maximum)


def bias_relu(a, b, axis: int = 1):
    """max(a + b, 0), b (a.shape[axis],) broadcast along ``axis``, in place on ``a`` when a
    is C-contiguous or the channel-major view of a conv2d output (axis 1); returns y.

    Linear layers: a (N, F), axis 1. conv2d: a (N, OC, OH, OW), axis 1; a channel-major a
    is worked on as (1, OC, N*OH*OW)."""
    _check("bias_relu", a, b)
    if a.ndim == 4 and axis == 1 and a.shape[0] > 1 and a.transpose(1, 0, 2, 3).flags.c_contiguous:
        _bias_relu3(a.transpose(1, 0, 2, 3).reshape(1, a.shape[1], -1), b.astype(a.dtype))
        return a
    a3 = _as_3d(a, axis)
    _bias_relu3(a3, b.astype(a.dtype))
    return a3.reshape(a.shape)


@kernel
def _relu_grad3(y, gy, gx, gb, want_gb):
    lead, C, trail = y.shape
    for c in prange(C):  # one channel per task: its bias-gradient sum stays in one thread
        total = 0.0  # float64 accumulation
        for n in range(lead):
            for t in range(trail):
                g = gy[n, c, t]
                if not y[n, c, t] > 0:
                    g = 0
                gx[n, c, t] = g
                total += g
        if want_gb:
            gb[c] = total


def bias_relu_backward(y, gy, axis: int = 1, bias_grad: bool = True):
    """(gx, gb) of y = max(a + b, 0): gx = gy where y > 0, else 0 (relu'(0) = 0), shaped and
    laid out like y; gb = gx summed over every axis but ``axis`` (None if not
    ``bias_grad``). y and gy must have the same shape."""
    _check("bias_relu_backward", y, gy)
    if y.shape != gy.shape:
        raise ValueError(f"zerograd._fast.bias_relu_backward: y {y.shape} and gy {gy.shape} "
                         f"must have the same shape")
    channel_major = (y.ndim == 4 and axis == 1 and y.shape[0] > 1
                     and y.transpose(1, 0, 2, 3).flags.c_contiguous)
    if channel_major:
        y3 = y.transpose(1, 0, 2, 3).reshape(1, y.shape[1], -1)
        g3 = np.ascontiguousarray(gy.transpose(1, 0, 2, 3)).reshape(y3.shape)
    else:
        y3, g3 = _as_3d(y, axis), _as_3d(gy.astype(y.dtype, copy=False), axis)
    gx = np.empty(y3.shape, dtype=y.dtype)
    gb = np.zeros(y3.shape[1], dtype=np.float64)
    _relu_grad3(y3, g3.astype(y.dtype, copy=False), gx, gb, bias_grad)
    if channel_major:
        gx = gx.reshape(y.shape[1], y.shape[0], *y.shape[2:]).transpose(1, 0, 2, 3)
    else:
        gx = gx.reshape(y.shape)
    return gx, (gb.astype(y.dtype) if bias_grad else None)


# -- exp for arguments <= 0, vectorisable ------------------------------------------------------
@intrinsic
def _pow2(typingctx, k):
    """2.0**k for an integer-valued float k in the normal range: its exponent bits set
    directly (a bitcast LLVM vectorises; math.ldexp is a libm call it does not)."""
    if k == types.float32:
        bits, mantissa, bias = ir.IntType(32), 23, 127
    elif k == types.float64:
        bits, mantissa, bias = ir.IntType(64), 52, 1023
    else:
        return None

    def codegen(context, builder, signature, args):
        exponent = builder.add(builder.fptosi(args[0], bits), ir.Constant(bits, bias))
        shifted = builder.shl(exponent, ir.Constant(bits, mantissa))
        return builder.bitcast(shifted, context.get_value_type(k))

    return k(k), codegen


@intrinsic
def _muladd(typingctx, a, b, c):
    """a * b + c, as one fused multiply-add where the CPU has one (LLVM's ``fmuladd``:
    one rounding, and half the instructions of a Horner step), else a product then a sum.

    For the polynomials inside this module's own exp, sigmoid and tanh only, whose error
    bounds hold either way; arithmetic that must round as the NumPy path does stays
    separate products and sums."""
    if not (a == b == c and a in (types.float32, types.float64)):
        return None

    def codegen(context, builder, signature, args):
        t = context.get_value_type(a)
        fmuladd = builder.module.declare_intrinsic("llvm.fmuladd", [t],
                                                   ir.FunctionType(t, [t, t, t]))
        return builder.call(fmuladd, args)

    return a(a, b, c), codegen


def _exp_constants(dtype):
    """(log2 e, ln2 high, ln2 low, lowest argument, 1/k! for the Taylor polynomial, 1/2),
    each in ``dtype``: numba types a float literal as float64, which would promote float32."""
    if dtype == np.float32:
        # |r| <= ln2/2 = 0.347: degree 7 leaves 0.347^8 / 8! = 6e-9 relative.
        ln2_hi, ln2_lo, lowest, degree = 0.693359375, -2.12194440e-4, -87.33654, 7
    else:
        # fdlibm's split of ln 2; degree 13: 0.347^14 / 14! = 4e-18.
        ln2_hi, ln2_lo, lowest, degree = 6.93147180369123816490e-01, 1.90821492927058770002e-10, \
            -708.3964185322641, 13
    t = dtype.type
    taylor = tuple(t(1.0 / math.factorial(n)) for n in range(degree, -1, -1))
    return t(1.0 / math.log(2.0)), t(ln2_hi), t(ln2_lo), t(lowest), taylor, t(0.5)


@kernel
def _exp_nonpositive(a, log2e, ln2_hi, ln2_lo, lowest, taylor, half):
    """e^a for a <= 0 (0 below ``lowest``, nan for nan), branch-free."""
    safe = a if a >= lowest else lowest  # also maps nan to a finite value
    k = np.floor(_muladd(safe, log2e, half))
    r = safe - k * ln2_hi  # exact: ln2_hi has few enough bits
    r = _muladd(k, -ln2_lo, r)
    p = taylor[0]
    for c in taylor[1:]:
        p = _muladd(p, r, c)
    e = p * _pow2(k)
    if a < lowest:
        e = e - e  # 0 (e is finite here)
    if a != a:
        e = a
    return e


# -- GELU -------------------------------------------------------------------------------------
_constants: dict = {}


def _gelu_constants(dtype):
    """Every number the GELU kernels use, in the array's dtype (the kernels then compute in
    that dtype throughout, as the NumPy path does under NEP 50)."""
    dtype = np.dtype(dtype)
    if dtype not in _constants:
        t = dtype.type
        erfc_poly = tuple(t(c) for c in _erfc_polynomial(_ERFC_DEGREE[dtype]))
        _constants[dtype] = (t(1.0 / math.sqrt(2.0)), t(1.0 / math.sqrt(2.0 * math.pi)),
                             t(_ERFC_SCALE), t(2 * _ERFC_SCALE), erfc_poly,
                             _exp_constants(dtype), t(0.5), t(1), t(2))
    return _constants[dtype]


@kernel
def _normal_cdf(x, consts):
    """Phi(x), in ops/_special.py's normal_cdf_array's steps and rounding."""
    inv_sqrt2, _, scale, twice_scale, poly, e, half, one, two = consts
    z = abs(x) * inv_sqrt2
    u = twice_scale / (z + scale) - one  # (3 - z) / (3 + z)
    acc = u * poly[0] + poly[1]
    for c in poly[2:]:
        acc = acc * u + c
    q = acc * _exp_nonpositive(-(z * z), e[0], e[1], e[2], e[3], e[4], e[5])
    q = q * half  # = Phi(-|x|)
    if x >= 0:
        q = q + (q * -two + one)
    return q


def _make_gelu_kernels(consts):
    """The two GELU loops for one dtype. ``consts`` is a closure constant, not an argument:
    numba's threaded loops cannot take tuples as arguments, and as a constant every
    coefficient is folded into the compiled loop (numba's cache keys on its values)."""
    inv_sqrt_2pi, e, half = consts[1], consts[5], consts[6]

    @kernel(parallel=True)
    def forward(x, y, cdf):
        for k in prange(x.size):
            c = _normal_cdf(x[k], consts)
            y[k] = x[k] * c
            if cdf.size:
                cdf[k] = c

    @kernel(parallel=True)
    def grad(x, cdf, g, out):
        """out = g * (Phi(x) + x phi(x)) for one number g (1 for the derivative alone: exact),
        Phi from cdf unless that is empty. An array gy is not read here: a gy[k] in this loop
        keeps LLVM from vectorising it (6x slower than this loop and a NumPy product)."""
        for k in prange(x.size):
            v = x[k]
            c = cdf[k] if cdf.size else _normal_cdf(v, consts)
            d = _exp_nonpositive(v * v * -half, e[0], e[1], e[2], e[3], e[4], e[5]) * v
            out[k] = g * (d * inv_sqrt_2pi + c)

    return forward, grad


_kernels: dict = {}


def _gelu_kernels(dtype):
    dtype = np.dtype(dtype)
    if dtype not in _kernels:
        _kernels[dtype] = _make_gelu_kernels(_gelu_constants(dtype))
    return _kernels[dtype]


def _flat(a, dtype=None):
    return np.ascontiguousarray(a, dtype=dtype).reshape(-1)


def gelu(x, keep_cdf: bool = False):
    """y = x Phi(x), x float32/float64 of any shape; with ``keep_cdf`` returns (y, Phi(x))
    (what ops/activation.py's GELU keeps for its backward)."""
    _check("gelu", x)
    flat = _flat(x)
    y = np.empty_like(flat)
    cdf = np.empty_like(flat) if keep_cdf else np.empty(0, dtype=x.dtype)
    _gelu_kernels(x.dtype)[0](flat, y, cdf)
    if keep_cdf:
        return y.reshape(x.shape), cdf.reshape(x.shape)
    return y.reshape(x.shape)


def gelu_grad(x, cdf=None):
    """dy/dx = Phi(x) + x phi(x) (GELUGrad's forward); ``cdf`` = Phi(x) if already known."""
    return gelu_backward(x, None, cdf)


def gelu_backward(x, gy, cdf=None):
    """gx = gy * (Phi(x) + x phi(x)) (gy None: the derivative alone), gy * d rounded as NumPy
    rounds it.

    A gy broadcast from one value (all strides 0, as the gradient of a sum) is multiplied in
    the pass that computes d; any other gy in one in-place NumPy product after it."""
    _check("gelu_backward", x)
    flat = _flat(x)
    c = np.empty(0, dtype=x.dtype) if cdf is None else _flat(cdf, x.dtype)
    one_value = gy is not None and gy.size > 0 and not any(gy.strides)
    g = x.dtype.type(gy.flat[0] if one_value else 1)
    out = np.empty_like(flat)
    _gelu_kernels(x.dtype)[1](flat, c, g, out)
    if gy is not None and not one_value:
        out *= _flat(gy, x.dtype)
    return out.reshape(x.shape)
