"""Matrix products that OpenBLAS runs far below its speed: a @ b^T for a few rows of a and
of b over a long inner dimension (a convolution's weight gradient with few patch rows).

OpenBLAS packs and blocks a product for large outputs; with a (16, 9) output and an inner
dimension of 78,400 (conv1 of the small CNN: gy (16, N*H*W) against its 9 patch rows) it
runs on one thread at about 24 GFLOP/s. Here each pair of rows of a meets three rows of b
in one pass over a block of ``BLOCK`` columns: six running sums, five loads per six
multiply-adds, the block's rows in L1. About 3x faster on that shape (0.31-0.38 against
0.92-0.99 ms, float32, Zen 4; docs/performance.md, "Fifth round").

Values: each block of ``BLOCK`` terms is summed in the arrays' dtype in an order LLVM picks
(the kernel is compiled with reassociation allowed, which is what lets it vectorise the
sums), and the blocks' sums are added in float64. The NumPy path's product is OpenBLAS's,
whose order of additions is its own too, so no bitwise equality exists to keep; the error
against a float64 product is below OpenBLAS's (tests/fast/test_products.py).
"""

from __future__ import annotations

import numpy as np

from zerograd._fast._numba import kernel

__all__ = ["rows_by_rows", "BLOCK"]

BLOCK = 512  # terms of the inner dimension per pass: the five rows read stay in L1


@kernel(reassociate=True)
def _rows_by_rows(a, b, out):
    """out (M, K) float64 = a (M, T) @ b (K, T)^T, a and b with contiguous rows."""
    M, T = a.shape
    K = b.shape[0]
    zero = a.dtype.type(0)
    for m in range(M):
        for k in range(K):
            out[m, k] = 0.0
    for t0 in range(0, T, BLOCK):
        t1 = min(t0 + BLOCK, T)
        for m in range(0, M, 2):
            second = m + 1 < M
            a0 = a[m, t0:t1]
            a1 = a[m + 1 if second else m, t0:t1]  # an odd last row: computed twice, kept once
            for k in range(0, K, 3):  # a last one or two rows: clamped, their sums dropped
                b0 = b[k, t0:t1]
                b1 = b[min(k + 1, K - 1), t0:t1]
                b2 = b[min(k + 2, K - 1), t0:t1]
                s0 = s1 = s2 = r0 = r1 = r2 = zero
                for q in range(t1 - t0):
                    u = a0[q]
                    v = a1[q]
                    c0 = b0[q]
                    c1 = b1[q]
                    c2 = b2[q]
                    s0 += u * c0
                    s1 += u * c1
                    s2 += u * c2
                    r0 += v * c0
                    r1 += v * c1
                    r2 += v * c2
                out[m, k] += s0
                if second:
                    out[m + 1, k] += r0
                if k + 1 < K:
                    out[m, k + 1] += s1
                    if second:
                        out[m + 1, k + 1] += r1
                if k + 2 < K:
                    out[m, k + 2] += s2
                    if second:
                        out[m + 1, k + 2] += r2


def rows_by_rows(a, b):
    """a @ b^T for stacks a (G, M, T) and b (G, K, T) of one float dtype: (G, M, K) in that
    dtype. Rows that are not contiguous are copied first."""
    if (a.ndim != 3 or b.ndim != 3 or a.shape[0] != b.shape[0] or a.shape[2] != b.shape[2]
            or a.dtype != b.dtype or a.dtype not in (np.float32, np.float64)):
        raise TypeError(f"zerograd._fast.rows_by_rows: expected float32 or float64 stacks "
                        f"(G, M, T) and (G, K, T), got {a.dtype} {a.shape} and {b.dtype} "
                        f"{b.shape}")
    G, M, _ = a.shape
    K = b.shape[1]
    out = np.empty((G, M, K), dtype=np.float64)
    for g in range(G):
        ag, bg = a[g], b[g]
        if ag.strides[-1] != ag.itemsize:
            ag = np.ascontiguousarray(ag)
        if bg.strides[-1] != bg.itemsize:
            bg = np.ascontiguousarray(bg)
        _rows_by_rows(ag, bg, out[g])
    return out.astype(a.dtype, copy=False)
