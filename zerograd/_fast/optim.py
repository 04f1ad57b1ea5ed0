"""The optimizers' in-place updates in one pass (numba): ``w += scale * x``, and Adam's step.

NumPy needs two passes for it: ``scale * x`` into a temporary, then ``w + temporary`` into
w (``optim.optimizer.add_scaled`` blocks the temporary so that it stays in cache, which
still leaves two ufunc calls per block and a second read of every element). Here each
element of x is read once and each element of w read and written once, the memory traffic
of a plain ``w += x``.

Values: each element is ``w + s * x`` with s = scale in w's dtype, the product rounded to
that dtype and then the sum, as NumPy computes ``w += scale * x`` for a Python float scale
(NEP 50: the Python float takes the array's dtype). No fastmath, so no fused multiply-add:
bitwise equal to the NumPy path.
"""

from __future__ import annotations

import numpy as np

from zerograd._fast._numba import kernel

__all__ = ["add_scaled", "adam"]


@kernel
def _add_scaled1(w, scale, x):
    for i in range(w.shape[0]):
        w[i] += scale * x[i]


def add_scaled(w, scale: float, x) -> None:
    """``w += scale * x`` in place for C-contiguous float32/float64 arrays of one shape and
    dtype (the caller checks; ``optim.optimizer.add_scaled`` is the entry point)."""
    if w.shape != x.shape or w.dtype != x.dtype or w.dtype not in (np.float32, np.float64) \
            or not (w.flags.c_contiguous and x.flags.c_contiguous):
        raise TypeError(f"zerograd._fast.add_scaled: expected C-contiguous float arrays of one "
                        f"shape and dtype, got w {w.dtype} {w.shape} and x {x.dtype} {x.shape}")
    _add_scaled1(w.reshape(-1), w.dtype.type(scale), x.reshape(-1))


@kernel
def _adam1(w, m, v, g, rest1, rest2, lr, eps):
    # The NumPy path's expressions, element by element and in its order (no fused
    # multiply-add): m += rest1 * (g - m); v += rest2 * (g * g - v); w -= lr * m / (sqrt(v)
    # + eps), so the values are bitwise the same.
    for i in range(w.shape[0]):
        gi = g[i]
        mi = m[i] + rest1 * (gi - m[i])
        vi = v[i] + rest2 * (gi * gi - v[i])
        m[i] = mi
        v[i] = vi
        w[i] -= lr * mi / (np.sqrt(vi) + eps)


def supports(*arrays) -> bool:
    """Whether :func:`adam` takes these arrays: one shape, all C-contiguous. (A version for
    strided matrices, the LSTM's gate weights, took 23 against NumPy's 20 us on a (100, 100)
    column block: its loop does not vectorise; not kept.)"""
    shape = arrays[0].shape
    return all(a.shape == shape and a.flags.c_contiguous for a in arrays)


def adam(w, m, v, g, rest1: float, rest2: float, lr: float, eps: float) -> None:
    """One Adam step in place, in one pass: ``m += rest1 * (g - m)``, ``v += rest2 * (g * g -
    v)``, ``w -= lr * m / (sqrt(v) + eps)`` (rest1 = 1 - beta1, rest2 = 1 - beta2), for
    C-contiguous float32/float64 arrays of one shape and dtype (``optim.adaptive.Adam`` is
    the entry point); the scalars are rounded to that dtype, as NumPy rounds Python
    floats."""
    arrays = (w, m, v, g)
    if (any(a.dtype != w.dtype for a in arrays) or w.dtype not in (np.float32, np.float64)
            or not supports(*arrays)):
        raise TypeError("zerograd._fast.adam: expected C-contiguous float arrays of one "
                        "shape and dtype, got "
                        + ", ".join(f"{a.dtype} {a.shape}" for a in arrays))
    t = w.dtype.type
    _adam1(w.reshape(-1), m.reshape(-1), v.reshape(-1), g.reshape(-1), t(rest1), t(rest2),
           t(lr), t(eps))
