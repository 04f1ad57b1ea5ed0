"""ReLU and its backward as compiled one-pass loops (numba), beside ``ops/activation.py``.

``relu(x)`` is ``np.maximum(x, 0)``: positive values and NaN pass, everything else
(negatives, -0.0, 0.0) becomes +0.0, the same values NumPy's maximum gives. NumPy 2's
``maximum`` with a scalar runs 3-4x slower than this loop on the CNN's activations
(docs/performance.md), which LLVM vectorises as one compare and one select per element.

``relu_grad(y, gy)`` is ``gy * (y > 0)`` in one pass instead of two (the mask, then the
product) and without the boolean mask array: each element is multiplied by 1 or 0, as the
NumPy path multiplies by its mask, so inf or NaN times 0 gives NaN and -0.0 stays -0.0
there too. Bitwise equal to the NumPy path.

Both work on any layout that ``y``/``x`` and ``gy`` share in memory (C order, the
channel-major view of a conv2d output, or any other order NumPy can view as one flat run);
the result has that layout too, as NumPy's elementwise ops keep it.
"""

from __future__ import annotations

import numpy as np

from zerograd._fast._numba import kernel

__all__ = ["relu", "relu_grad", "flat_order"]


def flat_order(a):
    """The axis order in which ``a`` is one C-contiguous run (an ndarray's own memory
    order: C, or the NCHW view of a channel-major array, ...), or None when it is not
    compact (a slice with gaps)."""
    order = tuple(sorted(range(a.ndim), key=lambda axis: -a.strides[axis]))
    return order if a.transpose(order).flags.c_contiguous else None


@kernel
def _relu(x, y):
    zero = x.dtype.type(0)
    for k in range(x.size):
        v = x[k]
        y[k] = v if v > zero or v != v else zero  # NaN stays NaN, as np.maximum


@kernel
def _relu_grad(y, gy, gx):
    zero, one = gy.dtype.type(0), gy.dtype.type(1)
    for k in range(gy.size):
        gx[k] = gy[k] * (one if y[k] > zero else zero)


def _flat(a, order):
    return a.transpose(order).reshape(-1)


def _like(a, order):
    """An uninitialised array with a's shape laid out in ``order`` (a's own)."""
    shape = tuple(a.shape[axis] for axis in order)
    inverse = tuple(np.argsort(order))
    return np.empty(shape, dtype=a.dtype).transpose(inverse)


def relu(x):
    """max(x, 0) for a float32/float64 ndarray in one compiled pass, in x's layout (a copy
    into C order first when x is not compact)."""
    order = flat_order(x)
    if order is None:
        x = np.ascontiguousarray(x)
        order = tuple(range(x.ndim))
    y = _like(x, order)
    _relu(_flat(x, order), _flat(y, order))
    return y


def relu_grad(y, gy):
    """gy * (y > 0) in one compiled pass, in gy's layout; y and gy of one shape and dtype
    (y is copied into gy's layout first if the two differ)."""
    if y.shape != gy.shape or y.dtype != gy.dtype:
        raise TypeError(f"zerograd._fast.relu_grad: y and gy must have one shape and dtype, "
                        f"got y {y.dtype} {y.shape} and gy {gy.dtype} {gy.shape}")
    order = flat_order(gy)
    if order is None:
        gy = np.ascontiguousarray(gy)
        order = tuple(range(gy.ndim))
    if flat_order(y) != order:
        copied = _like(gy, order)
        copied[...] = y
        y = copied
    gx = _like(gy, order)
    _relu_grad(_flat(y, order), _flat(gy, order), _flat(gx, order))
    return gx
