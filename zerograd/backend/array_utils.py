"""Array-level helpers (no graph): broadcasting reductions and shape arithmetic.

These are DeZero's ``dezero.utils`` array helpers; the ops and ``zerograd.utils`` share them.
They take NumPy or CuPy arrays (and some, Variables), so arrays are typed ``Any`` here: CuPy
has no type information.

An ``axis`` argument is NumPy's: None (every axis), an int, or a tuple of ints.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from zerograd.backend import get_array_module

Axis = int | tuple[int, ...] | None


def sum_to(x: Any, shape: tuple[int, ...]) -> Any:
    """Sum array ``x`` down to ``shape``, undoing NumPy broadcasting.

    Leading axes that broadcasting added are summed away; axes where ``shape`` has 1 are
    summed with keepdims. ``x.shape`` must be a broadcast of ``shape``.
    """
    shape = tuple(shape)
    if x.shape == shape:
        return x
    ndim = len(shape)
    lead = x.ndim - ndim
    lead_axis = tuple(range(lead))
    axis = tuple(i + lead for i, sx in enumerate(shape) if sx == 1 and x.shape[i + lead] != 1)
    y = x.sum(lead_axis + axis, keepdims=True)
    if lead > 0:
        y = y.reshape(y.shape[lead:])
    return y


def reshape_sum_backward(gy: Any, x_shape: tuple[int, ...], axis: Axis, keepdims: bool) -> Any:
    """Reshape the gradient of a sum so that it broadcasts back to ``x_shape``.

    gy: the gradient of ``x.sum(axis, keepdims)``; returns gy with the reduced axes
    re-inserted as size-1 axes (a Variable or an array, whatever ``gy`` is).
    """
    ndim = len(x_shape)
    tupled_axis: tuple[int, ...] | None
    if axis is None:
        tupled_axis = None
    elif not isinstance(axis, tuple):
        tupled_axis = (axis,)
    else:
        tupled_axis = axis

    shape: tuple[int, ...]
    if not (ndim == 0 or tupled_axis is None or keepdims):
        actual_axis = sorted(a if a >= 0 else a + ndim for a in tupled_axis)
        expanded = list(gy.shape)
        for a in actual_axis:
            expanded.insert(a, 1)
        shape = tuple(expanded)
    elif tupled_axis is None and not keepdims:
        shape = (1,) * ndim
    else:
        shape = tuple(gy.shape)
    return gy.reshape(shape)


def logsumexp(x: Any, axis: Axis = 1) -> Any:
    """log(sum(exp(x), axis, keepdims=True)), computed without overflow."""
    xp = get_array_module(x)
    m = x.max(axis=axis, keepdims=True)
    m = xp.where(xp.isfinite(m), m, 0)
    y = x - m
    xp.exp(y, out=y)
    s = y.sum(axis=axis, keepdims=True)
    if xp is np:
        with np.errstate(divide="ignore"):  # a row of -inf has log-sum-exp -inf, silently
            np.log(s, out=s)
    else:
        xp.log(s, out=s)
    m += s
    return m


def max_backward_shape(x: Any, axis: Axis) -> list[int]:
    """Shape of ``x`` with the reduced axes of a max/min set to 1."""
    given = range(x.ndim) if axis is None else (axis,) if isinstance(axis, int) else axis
    reduced = [a if a >= 0 else a + x.ndim for a in given]
    return [s if ax not in reduced else 1 for ax, s in enumerate(x.shape)]


def normalize_axes(axis: Axis, ndim: int) -> tuple[int, ...]:
    """Axis argument (None, int or tuple, negatives allowed) as a sorted tuple of non-negatives."""
    if axis is None:
        return tuple(range(ndim))
    if isinstance(axis, (int, np.integer)):
        axis = (axis,)
    return tuple(sorted(int(a) % ndim if ndim else 0 for a in axis))


def pair(x: int | tuple[int, ...] | list[int] | np.ndarray) -> tuple[int, int]:
    """An int (or NumPy integer) as ``(x, x)``; a pair (tuple, list, array) as a tuple of ints."""
    if isinstance(x, (int, np.integer)):
        return (int(x), int(x))
    if isinstance(x, (tuple, list, np.ndarray)) and len(x) == 2:
        return (int(x[0]), int(x[1]))
    raise ValueError(f"pair: expected an int or a pair of ints, got {x!r}")


def get_conv_outsize(input_size: int, kernel_size: int, stride: int, pad: int, dilation: int = 1,
                     ceil_mode: bool = False) -> int:
    """Output length of a convolution/pooling window sliding over ``input_size`` elements."""
    span = dilation * (kernel_size - 1) + 1
    room = input_size + 2 * pad - span
    if ceil_mode:
        out = -(-room // stride) + 1
        # The last window must start inside the input or the left padding (PyTorch's rule).
        if (out - 1) * stride >= input_size + pad:
            out -= 1
        return out
    return room // stride + 1


def get_deconv_outsize(size: int, k: int, s: int, p: int) -> int:
    """Output length of a transposed convolution: ``s * (size - 1) + k - 2p``."""
    return s * (size - 1) + k - 2 * p
