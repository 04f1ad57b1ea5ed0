"""Max and average pooling as compiled loops (numba), beside ``zerograd/ops/pooling.py``.

The NumPy path loops over the KH*KW window offsets and, in max pooling's backward, builds one
0/1 mask of the whole output per offset (``indexes == k``). Here each output element is
visited once: the forward finds the maximum and its offset in one pass, the backward adds
gy to that one input element. The argmax is kept in the NumPy path's format (the offset
``i*KW + j`` inside the window, uint8 or int32), so the Grad nodes of either path can read
it.

Layout: a batch (N, C, H, W) is a stack of N*C independent planes. If x is laid out
channel-major (as conv2d's outputs are: a (C, N, H, W) array seen as NCHW) the planes are
taken in that order and the results keep that layout, so that gradients flow back into
conv2d's backward without a transposing copy.

Same values as the NumPy path, bitwise: the same comparisons and the same additions in the
same order (the backward visits the windows in reverse so that overlapping windows add into
an element in the NumPy path's order of offsets). Differences: an element that no window
picks gets +0.0 where the NumPy path may write -0.0 (gy * 0 for negative gy), and a
non-finite gy goes only where the argmax is (the NumPy path spreads inf * 0 = nan).

Threads: ``parallel=True`` over the planes (see docs/performance.md for what was measured).
"""

from __future__ import annotations

import numpy as np

from zerograd._fast._numba import kernel, prange

__all__ = ["max_pool_forward", "max_pool_backward", "max_pool_gather", "avg_pool_forward",
           "avg_pool_backward", "max_pool_2x2", "max_pool_2x2_backward", "as_planes",
           "from_planes", "FLOATS"]

FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


# -- layout -------------------------------------------------------------------------------
def is_channel_major(a) -> bool:
    """a (N, C, H, W) is the NCHW view of a C-contiguous (C, N, H, W) array."""
    return a.shape[0] > 1 and a.transpose(1, 0, 2, 3).flags.c_contiguous


def as_planes(a, channel_major: bool):
    """a (N, C, H, W) as a C-contiguous (P, H, W) stack of planes, in (c, n) order if
    ``channel_major`` else (n, c) order; a view when a is already so laid out."""
    if channel_major:
        a = a.transpose(1, 0, 2, 3)
    return np.ascontiguousarray(a).reshape(-1, a.shape[2], a.shape[3])


def from_planes(planes, N: int, C: int, channel_major: bool):
    """The (N, C, H, W) view of a (P, H, W) stack made by :func:`as_planes`."""
    H, W = planes.shape[1:]
    if channel_major:
        return planes.reshape(C, N, H, W).transpose(1, 0, 2, 3)
    return planes.reshape(N, C, H, W)


def _check(op: str, a) -> None:
    if a.ndim != 4 or a.dtype not in FLOATS:
        raise TypeError(f"zerograd._fast.{op}: expected a 4-D float32 or float64 array "
                        f"(N, C, H, W), got {a.dtype} {a.shape}")


# -- max pooling ----------------------------------------------------------------------------
@kernel
def _running_max(m, v):
    """np.maximum(m, v) for one pair as NumPy 2 computes it: m when m is NaN, v when v is NaN
    and m is not (so a running max keeps the window's first NaN), and v on ties: of 0.0 and
    -0.0 the later one (tests/fast/test_pooling.py checks this against NumPy itself)."""
    return m if (m > v or m != m) else v


@kernel
def _max_pool_planes(x, KH, KW, SH, SW, PH, PW, neg_inf, y, idx):
    P, H, W = x.shape
    OH, OW = y.shape[1], y.shape[2]
    for p in prange(P):
        for oy in range(OH):
            top = oy * SH - PH
            for ox in range(OW):
                left = ox * SW - PW
                best = neg_inf
                arg = 0
                for i in range(KH):
                    r = top + i
                    for j in range(KW):
                        c = left + j
                        v = x[p, r, c] if 0 <= r < H and 0 <= c < W else neg_inf
                        if i == 0 and j == 0:
                            best = v
                        else:
                            if v > best:  # strictly larger: the first maximum wins ties
                                arg = i * KW + j
                            # np.maximum's value: the first NaN, the later of tied zeros
                            best = _running_max(best, v)
                y[p, oy, ox] = best
                idx[p, oy, ox] = arg


def max_pool_forward(x, kernel, stride, pad, out_hw):
    """(y, indexes) of max pooling x (N, C, H, W) -> (N, C, OH, OW), padding -inf.

    ``pad`` = (top, left); the bottom/right overhang of ceil_mode needs no number, the loop
    checks bounds. ``indexes``: the argmax's offset i*KW + j in its window (the first one on
    ties), uint8 for windows of at most 256 elements, else int32 (ops/pooling.py's format).
    """
    _check("max_pool_forward", x)
    (KH, KW), (SH, SW), (PH, PW), (OH, OW) = kernel, stride, pad, out_hw
    N, C = x.shape[:2]
    cm = is_channel_major(x)
    planes = as_planes(x, cm)
    y = np.empty((planes.shape[0], OH, OW), dtype=x.dtype)
    idx = np.empty((planes.shape[0], OH, OW), dtype=np.uint8 if KH * KW <= 256 else np.int32)
    _max_pool_planes(planes, KH, KW, SH, SW, PH, PW, x.dtype.type(-np.inf), y, idx)
    return from_planes(y, N, C, cm), from_planes(idx, N, C, cm)


@kernel
def _max_pool_grad_planes(gy, idx, KH, KW, SH, SW, PH, PW, gx):
    P, OH, OW = gy.shape
    H, W = gx.shape[1], gx.shape[2]
    for p in prange(P):
        # Reverse raster order: where windows overlap, an element then receives its terms in
        # increasing window offset, the order in which the NumPy path adds them.
        for oy in range(OH - 1, -1, -1):
            for ox in range(OW - 1, -1, -1):
                k = idx[p, oy, ox]
                r = oy * SH - PH + k // KW
                c = ox * SW - PW + k % KW
                if 0 <= r < H and 0 <= c < W:
                    gx[p, r, c] += gy[p, oy, ox]


def max_pool_backward(gy, indexes, kernel, stride, pad, in_hw):
    """gx (N, C, H, W): gy (N, C, OH, OW) added at each window's argmax (``indexes`` from
    :func:`max_pool_forward` or ops/pooling.py), in the layout of ``indexes``."""
    _check("max_pool_backward", gy)
    N, C = gy.shape[:2]
    cm = is_channel_major(indexes)
    idx = as_planes(indexes, cm)
    g = as_planes(gy, cm)
    gx = np.zeros((idx.shape[0],) + tuple(in_hw), dtype=gy.dtype)
    _max_pool_grad_planes(g, idx, kernel[0], kernel[1], stride[0], stride[1], pad[0], pad[1],
                          gx)
    return from_planes(gx, N, C, cm)


@kernel
def _max_pool_gather_planes(x, idx, KH, KW, SH, SW, PH, PW, y):
    P, H, W = x.shape
    OH, OW = y.shape[1], y.shape[2]
    for p in prange(P):
        for oy in range(OH):
            for ox in range(OW):
                k = idx[p, oy, ox]
                r = oy * SH - PH + k // KW
                c = ox * SW - PW + k % KW
                y[p, oy, ox] = x[p, r, c] if 0 <= r < H and 0 <= c < W else 0


def max_pool_gather(x, indexes, kernel, stride, pad):
    """y (N, C, OH, OW) = x (N, C, H, W) read at each window's argmax (0 in the padding): the
    gradient of :func:`max_pool_backward` (ops/pooling.py's Pooling2DWithIndexes)."""
    _check("max_pool_gather", x)
    N, C = x.shape[:2]
    cm = is_channel_major(indexes)
    idx = as_planes(indexes, cm)
    y = np.empty(idx.shape, dtype=x.dtype)
    _max_pool_gather_planes(as_planes(x, cm), idx, kernel[0], kernel[1], stride[0], stride[1],
                            pad[0], pad[1], y)
    return from_planes(y, N, C, cm)


# -- average pooling --------------------------------------------------------------------------
@kernel
def _avg_pool_planes(x, KH, KW, SH, SW, PH, PW, divisor, y):
    P, H, W = x.shape
    OH, OW = y.shape[1], y.shape[2]
    zero = divisor[0, 0] - divisor[0, 0]  # 0 in x's dtype (a literal 0 would be float64)
    for p in prange(P):
        for oy in range(OH):
            top = oy * SH - PH
            for ox in range(OW):
                left = ox * SW - PW
                acc = zero
                for i in range(KH):
                    r = top + i
                    for j in range(KW):
                        c = left + j
                        v = x[p, r, c] if 0 <= r < H and 0 <= c < W else zero
                        # The first term is taken as it is (0 + v would turn -0.0 into 0.0).
                        acc = v if i == 0 and j == 0 else acc + v
                y[p, oy, ox] = acc / divisor[oy, ox]


def _divisor_array(divisor, out_hw, dtype):
    """The divisor as an (OH, OW) array of x's dtype (a number means the same everywhere)."""
    d = np.asarray(divisor, dtype=dtype)
    return np.ascontiguousarray(np.broadcast_to(d, tuple(out_hw)))


def avg_pool_forward(x, kernel, stride, pad, out_hw, divisor):
    """y (N, C, OH, OW) = the sum of each window (zero padding) over ``divisor``: a number
    or an (OH, OW) array of element counts (ops/pooling.py's AveragePooling._divisor)."""
    _check("avg_pool_forward", x)
    (KH, KW), (SH, SW), (PH, PW) = kernel, stride, pad
    N, C = x.shape[:2]
    cm = is_channel_major(x)
    planes = as_planes(x, cm)
    y = np.empty((planes.shape[0],) + tuple(out_hw), dtype=x.dtype)
    _avg_pool_planes(planes, KH, KW, SH, SW, PH, PW, _divisor_array(divisor, out_hw, x.dtype),
                     y)
    return from_planes(y, N, C, cm)


@kernel
def _avg_pool_grad_planes(gy, KH, KW, SH, SW, PH, PW, divisor, gx):
    P, OH, OW = gy.shape
    H, W = gx.shape[1], gx.shape[2]
    for p in prange(P):
        # Offsets outermost, as the NumPy path adds them (same sums in the same order).
        for i in range(KH):
            for j in range(KW):
                for oy in range(OH):
                    r = oy * SH - PH + i
                    if r < 0 or r >= H:
                        continue
                    for ox in range(OW):
                        c = ox * SW - PW + j
                        if 0 <= c < W:
                            gx[p, r, c] += gy[p, oy, ox] / divisor[oy, ox]


def avg_pool_backward(gy, kernel, stride, pad, in_hw, divisor):
    """gx (N, C, H, W): each gy (N, C, OH, OW) / divisor spread over its window."""
    _check("avg_pool_backward", gy)
    N, C = gy.shape[:2]
    cm = is_channel_major(gy)
    g = as_planes(gy, cm)
    gx = np.zeros((g.shape[0],) + tuple(in_hw), dtype=gy.dtype)
    _avg_pool_grad_planes(g, kernel[0], kernel[1], stride[0], stride[1], pad[0], pad[1],
                          _divisor_array(divisor, gy.shape[2:], gy.dtype), gx)
    return from_planes(gx, N, C, cm)


# -- 2x2 windows with stride 2, no padding (the CNN's pooling) ----------------------------
# The general kernels above loop over a window of run-time size inside each output
# element, which LLVM cannot vectorise: they lose to the NumPy path. With the 2x2 window
# written out the loop over a row of outputs vectorises, and it beats the NumPy path's
# four strided passes (docs/performance.md).
@kernel
def _max_pool_2x2_planes(x, y, idx):
    # The NumPy path's steps per window, in its order: a later element takes the argmax only
    # when it is strictly larger than the running max (so the first maximum wins ties, and
    # nothing exceeds a NaN), and the running max is np.maximum's. Branch-free selects with
    # the argmax in int32, the floats' width, so that the loop vectorises: 1.1 ms against
    # 1.6 for a select chain that carried a "frozen after the first NaN" flag.
    P, OH, OW = y.shape
    for p in prange(P):
        for oy in range(OH):
            top = 2 * oy
            for ox in range(OW):
                left = 2 * ox
                a1 = x[p, top, left + 1]
                a2 = x[p, top + 1, left]
                a3 = x[p, top + 1, left + 1]
                m = x[p, top, left]
                arg = np.int32(1) if a1 > m else np.int32(0)
                m = _running_max(m, a1)
                arg = np.int32(2) if a2 > m else arg
                m = _running_max(m, a2)
                arg = np.int32(3) if a3 > m else arg
                y[p, oy, ox] = _running_max(m, a3)
                idx[p, oy, ox] = arg


def max_pool_2x2(x):
    """(y, indexes) of 2x2 max pooling with stride 2 and no padding, x (N, C, H, W) ->
    (N, C, H // 2, W // 2) (an odd last row or column is dropped, as the NumPy path does);
    bitwise the NumPy path's values and argmax offsets (uint8), in x's layout."""
    _check("max_pool_2x2", x)
    N, C, H, W = x.shape
    cm = is_channel_major(x)
    planes = as_planes(x, cm)
    y = np.empty((planes.shape[0], H // 2, W // 2), dtype=x.dtype)
    idx = np.empty(y.shape, dtype=np.uint8)
    _max_pool_2x2_planes(planes, y, idx)
    return from_planes(y, N, C, cm), from_planes(idx, N, C, cm)


@kernel
def _max_pool_2x2_grad_planes(gy, idx, gx):
    # gy times the 0/1 mask, as the NumPy path multiplies (-0.0, and inf * 0 = nan,
    # included), every element of the window written. One loop per row of gx: a loop that
    # writes both rows of its windows does not vectorise and runs 3.6x slower.
    P, OH, OW = gy.shape
    one, zero = gy.dtype.type(1), gy.dtype.type(0)
    for p in prange(P):
        for oy in range(OH):
            top = 2 * oy
            for ox in range(OW):
                g = gy[p, oy, ox]
                k = idx[p, oy, ox]
                gx[p, top, 2 * ox] = g * (one if k == 0 else zero)
                gx[p, top, 2 * ox + 1] = g * (one if k == 1 else zero)
            for ox in range(OW):
                g = gy[p, oy, ox]
                k = idx[p, oy, ox]
                gx[p, top + 1, 2 * ox] = g * (one if k == 2 else zero)
                gx[p, top + 1, 2 * ox + 1] = g * (one if k == 3 else zero)
        for r in range(2 * OH, gx.shape[1]):  # an odd last row: no window reads it
            for c in range(gx.shape[2]):
                gx[p, r, c] = 0
        for r in range(2 * OH):
            for c in range(2 * OW, gx.shape[2]):
                gx[p, r, c] = 0


def max_pool_2x2_backward(gy, indexes, in_hw):
    """gx (N, C, H, W) of :func:`max_pool_2x2`: gy (N, C, OH, OW) at each window's argmax,
    zero elsewhere, in the layout of ``indexes``; bitwise the NumPy path's values."""
    _check("max_pool_2x2_backward", gy)
    N, C = gy.shape[:2]
    cm = is_channel_major(indexes)
    idx = as_planes(indexes, cm)
    gx = np.empty((idx.shape[0],) + tuple(in_hw), dtype=gy.dtype)
    _max_pool_2x2_grad_planes(as_planes(gy, cm), idx, gx)
    return from_planes(gx, N, C, cm)
