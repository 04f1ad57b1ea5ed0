"""Embedding backward as a compiled loop (numba): rows of gy added at repeated ids.

The NumPy path (``ops/indexing.py``'s ``_scatter_rows``) builds the flat position of every
element and runs one ``np.add.at``; here each gy row is added to its id's row directly. The
additions into each element happen in the order of the ids, as in ``np.add.at``, so the
values are bitwise equal.

Threads: the columns are split between threads (each thread adds whole id sequences into its
own columns, so no two threads write one element and the order of additions is kept).
"""

from __future__ import annotations

import numpy as np

from zerograd._fast._numba import kernel, prange

__all__ = ["scatter_rows"]

# Columns per thread task: a few cache lines of float32, enough work per task.
_COLUMN_BLOCK = 32


@kernel
def _scatter_rows3(ids, gy, out, block):
    lead, M, trail = gy.shape
    n = out.shape[1]
    blocks = (trail + block - 1) // block
    for task in prange(lead * blocks):
        l = task // blocks
        first = (task % blocks) * block
        last = min(first + block, trail)
        for m in range(M):
            row = ids[m]
            if row < 0:
                row += n
            for t in range(first, last):
                out[l, row, t] += gy[l, m, t]


def scatter_rows(shape, axis: int, ids, gy):
    """zeros(shape) with slices of gy added at ``ids`` along ``axis`` (ids of any shape, in
    [-n, n), checked by the caller; negative ids count from the end): ops/indexing.py's
    ``_scatter_rows``. gy: shape[:axis] + ids.shape + shape[axis + 1:]."""
    if gy.dtype not in (np.float32, np.float64):
        raise TypeError(f"zerograd._fast.scatter_rows: gy must be float32 or float64, got "
                        f"{gy.dtype} {gy.shape}")
    shape = tuple(shape)
    lead = int(np.prod(shape[:axis], dtype=np.int64))
    trail = int(np.prod(shape[axis + 1:], dtype=np.int64))
    flat_ids = np.ascontiguousarray(ids, dtype=np.int64).reshape(-1)
    # A view whenever NumPy can make one: the loop reads any strides, and the gradient of a
    # sum arrives as a broadcast (all strides 0) that a contiguous copy would expand into a
    # full-size array (25 MB for 100,000 ids of 64 floats, as long again as the scatter).
    gy3 = gy.reshape(lead, flat_ids.size, trail)
    out = np.zeros((lead, shape[axis], trail), dtype=gy.dtype)
    _scatter_rows3(flat_ids, gy3, out, _COLUMN_BLOCK)
    return out.reshape(shape)
