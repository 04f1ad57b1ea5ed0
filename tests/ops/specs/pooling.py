"""Specs of the pooling family: max pooling (DeZero's ``pooling``, ``max_pool2d``,
``pooling_simple``), average pooling (non-square kernels, ceil_mode, count_include_pad) and
adaptive average pooling. References loop over output pixels.

Max pooling inputs are distinct values with gaps far above the finite-difference step, so
no window has a tie (the argmax is a kink).
"""

import numpy as np

import zerograd.functions as F
from tests.ops.harness import OpSpec
from zerograd.backend.array_utils import pair


def _out(n, k, s, p, ceil_mode):
    if not ceil_mode:
        return (n + 2 * p - k) // s + 1
    out = -(-(n + 2 * p - k) // s) + 1
    return out - 1 if (out - 1) * s >= n + p else out


def _windows(x, kernel_size, stride, pad, ceil_mode, fill):
    """Yield (i, j, window, count_with_pad, count_real) for every output pixel."""
    (KH, KW), (sh, sw), (ph, pw) = pair(kernel_size), pair(stride), pair(pad)
    N, C, H, W = x.shape
    OH, OW = _out(H, KH, sh, ph, ceil_mode), _out(W, KW, sw, pw, ceil_mode)
    big = np.full((N, C, H + 2 * ph + KH + sh, W + 2 * pw + KW + sw), fill)
    big[:, :, ph:ph + H, pw:pw + W] = x
    for i in range(OH):
        for j in range(OW):
            r0, c0 = i * sh, j * sw
            rows = min(r0 + KH, H + 2 * ph) - r0
            cols = min(c0 + KW, W + 2 * pw) - c0
            real = ((min(r0 + KH, ph + H) - max(r0, ph)) * (min(c0 + KW, pw + W) - max(c0, pw)))
            yield i, j, big[:, :, r0:r0 + KH, c0:c0 + KW], rows * cols, real, (OH, OW)


def ref_max_pool(x, kernel_size, stride=1, pad=0, ceil_mode=False):
    y = None
    for i, j, window, _, _, out_hw in _windows(x, kernel_size, stride, pad, ceil_mode, -np.inf):
        if y is None:
            y = np.zeros(x.shape[:2] + out_hw)
        y[:, :, i, j] = window.max(axis=(2, 3))
    return y


def ref_avg_pool(x, kernel_size, stride=1, pad=0, ceil_mode=False, count_include_pad=True):
    y = None
    for i, j, window, with_pad, real, out_hw in _windows(x, kernel_size, stride, pad,
                                                        ceil_mode, 0.0):
        if y is None:
            y = np.zeros(x.shape[:2] + out_hw)
        y[:, :, i, j] = window.sum(axis=(2, 3)) / (with_pad if count_include_pad else real)
    return y


def ref_adaptive_avg_pool(x, output_size):
    OH, OW = pair(output_size)
    H, W = x.shape[2:]
    y = np.zeros(x.shape[:2] + (OH, OW))
    for i in range(OH):
        r0, r1 = (i * H) // OH, -(-((i + 1) * H) // OH)
        for j in range(OW):
            c0, c1 = (j * W) // OW, -(-((j + 1) * W) // OW)
            y[:, :, i, j] = x[:, :, r0:r1, c0:c1].mean(axis=(2, 3))
    return y


def distinct_values(rng, shapes, dtype):
    """Inputs whose elements all differ by at least 0.01 (no ties inside any window)."""
    arrays = []
    for shape in shapes:
        size = int(np.prod(shape))
        arrays.append((rng.permutation(size) * (4.0 / size) - 2.0).reshape(shape).astype(dtype))
    return arrays


SPECS = [
    OpSpec("pooling", F.pooling, ref_max_pool, make_inputs=distinct_values,
           kwargs={"kernel_size": 3, "stride": 2, "pad": 1},
           shapes=[((2, 3, 5, 6),), ((1, 2, 4, 4),)], double_backward=False, zero_d=False),
    OpSpec("pooling_nonsquare_ceil", F.pooling, ref_max_pool, make_inputs=distinct_values,
           kwargs={"kernel_size": (3, 2), "stride": 2, "pad": 0, "ceil_mode": True},
           shapes=[((2, 2, 6, 7),)], double_backward=False, covers=[],
           zero_d=False),  # windows overhang
    OpSpec("pooling_overlap", F.pooling, ref_max_pool, make_inputs=distinct_values,
           kwargs={"kernel_size": 3, "stride": 1},
           shapes=[((1, 2, 5, 5),)], double_backward=False, covers=[], zero_d=False),
    # Squaring makes the gradient depend on x: the second derivative runs the scatter's own
    # gradient (the gather by the stored argmax).
    OpSpec("pooling_squared", lambda x: F.pooling(x, 2, 2) ** 2,
           lambda x: ref_max_pool(x, 2, 2) ** 2, make_inputs=distinct_values,
           shapes=[((1, 2, 4, 6),)], covers=[], zero_d=False),
    OpSpec("max_pool2d", F.max_pool2d, lambda x, kernel_size: ref_max_pool(x, kernel_size,
                                                                           kernel_size),
           make_inputs=distinct_values, kwargs={"kernel_size": 2},
           shapes=[((2, 3, 4, 6),)], double_backward=False, zero_d=False),
    OpSpec("pooling_simple", F.pooling_simple, ref_max_pool, make_inputs=distinct_values,
           kwargs={"kernel_size": 2, "stride": 2},
           shapes=[((2, 3, 4, 6),)], double_backward=False, zero_d=False),
    OpSpec("average_pooling", F.average_pooling, ref_avg_pool,
           kwargs={"kernel_size": (2, 3), "stride": (2, 1), "pad": 1},
           shapes=[((2, 3, 5, 7),), ((1, 1, 3, 3),)], zero_d=False),
    OpSpec("average_pooling_ceil", F.average_pooling, ref_avg_pool,
           kwargs={"kernel_size": 3, "stride": 2, "pad": 1, "ceil_mode": True},
           shapes=[((2, 2, 6, 5),)], covers=[], zero_d=False),
    OpSpec("average_pooling_exclude_pad", F.average_pooling, ref_avg_pool,
           kwargs={"kernel_size": 3, "stride": 2, "pad": 1, "ceil_mode": True,
                   "count_include_pad": False},
           shapes=[((2, 2, 6, 5),)], covers=[], zero_d=False),
    OpSpec("average_pooling_squared", lambda x: F.average_pooling(x, 2, 1) ** 2,
           lambda x: ref_avg_pool(x, 2, 1) ** 2, shapes=[((1, 2, 3, 4),)], covers=[], zero_d=False),
    OpSpec("adaptive_avg_pool2d", F.adaptive_avg_pool2d, ref_adaptive_avg_pool,
           kwargs={"output_size": (3, 4)}, shapes=[((2, 3, 7, 9),)], zero_d=False),
    OpSpec("adaptive_avg_pool2d_divisible", F.adaptive_avg_pool2d, ref_adaptive_avg_pool,
           kwargs={"output_size": 2}, shapes=[((2, 3, 4, 6),)], covers=[], zero_d=False),
    OpSpec("adaptive_avg_pool2d_squared", lambda x: F.adaptive_avg_pool2d(x, (2, 3)) ** 2,
           lambda x: ref_adaptive_avg_pool(x, (2, 3)) ** 2, shapes=[((1, 2, 5, 5),)],
           covers=[], zero_d=False),
]
