"""The optimizers' in-place update ``w += scale * x`` in one pass (numba).

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

__all__ = ["add_scaled"]


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
