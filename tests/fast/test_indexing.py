"""zerograd._fast.indexing.scatter_rows (embedding backward) against ops/indexing.py's
_scatter_rows: bitwise equal (additions in the order of the ids, as np.add.at)."""

import numpy as np
import pytest

pytest.importorskip("numba")

from zerograd._fast.indexing import scatter_rows  # noqa: E402
from zerograd.ops.indexing import _scatter_rows  # noqa: E402

# (table shape, axis, ids shape, id range): embeddings with many repeats, a small gradient
# (the NumPy path's add.at branch), distinct ids (its assignment branch), another axis,
# an odd column count, empty ids, a 1x1 table.
CASES = [((1000, 64), 0, (100_000,), 1000), ((50, 3), 0, (7, 9), 50), ((37, 5), 0, (37,), 0),
         ((4, 30, 5), 1, (3, 8), 30), ((100, 33), 0, (2000,), 100), ((9, 4), 0, (0,), 9),
         ((1, 1), 0, (5,), 1)]


@pytest.mark.parametrize("case", CASES, ids=str)
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=lambda d: d.__name__)
def test_scatter_rows_matches_numpy(case, dtype):
    shape, axis, ids_shape, high = case
    rng = np.random.default_rng(0)
    if high == 0:  # a permutation: no id repeats
        ids = rng.permutation(shape[axis]).reshape(ids_shape)
    else:
        ids = rng.integers(0, high, size=ids_shape)
    gy_shape = shape[:axis] + ids_shape + shape[axis + 1:]
    gy = rng.standard_normal(gy_shape).astype(dtype)
    got = scatter_rows(shape, axis, ids, gy)
    assert got.shape == shape and got.dtype == dtype
    np.testing.assert_array_equal(got, _scatter_rows(shape, axis, ids, gy))


def test_negative_ids_count_from_the_end():
    gy = np.arange(6, dtype=np.float64).reshape(3, 2)
    got = scatter_rows((4, 2), 0, np.array([-1, 3, 0]), gy)
    np.testing.assert_array_equal(got, [[4, 5], [0, 0], [0, 0], [0 + 2, 1 + 3]])


def test_error_names_the_kernel():
    with pytest.raises(TypeError, match=r"scatter_rows: gy must be float32 or float64, got "
                                        r"int64 \(2, 2\)"):
        scatter_rows((3, 2), 0, np.array([0, 1]), np.zeros((2, 2), dtype=np.int64))


@pytest.mark.parametrize("layout", ["broadcast", "strided", "transposed"])
def test_non_contiguous_gy_is_read_in_place_with_the_same_sums(layout):
    """The gradient of a sum arrives as a broadcast (strides 0): the kernel reads it through
    its strides instead of expanding it, and adds exactly what the NumPy path adds."""
    rng = np.random.default_rng(1)
    ids = rng.integers(0, 40, size=3000)
    base = rng.standard_normal((3000, 24))
    gy = {"broadcast": np.broadcast_to(np.float64(0.3), (3000, 12)),
          "strided": base[:, ::2],
          "transposed": np.ascontiguousarray(base[:, :12].T).T}[layout]
    got = scatter_rows((40, 12), 0, ids, gy)
    np.testing.assert_array_equal(got, _scatter_rows((40, 12), 0, ids, np.ascontiguousarray(gy)))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_rows_broadcast_along_the_ids_with_distinct_columns(dtype):
    # gy's rows all one row (strides 0 along the ids) but not one value: read as that row.
    rng = np.random.default_rng(2)
    ids = rng.integers(-30, 30, size=5000)
    row = rng.standard_normal(7).astype(dtype)
    gy = np.broadcast_to(row, (5000, 7))
    got = scatter_rows((30, 7), 0, ids, gy)
    np.testing.assert_array_equal(got, _scatter_rows((30, 7), 0, ids, np.ascontiguousarray(gy)))
    # ... and along an inner axis (lead > 1), where each lead slice has its own row.
    rows = rng.standard_normal((3, 1, 5)).astype(dtype)
    gy = np.broadcast_to(rows, (3, 5000, 5))
    got = scatter_rows((3, 30, 5), 1, ids, gy)
    np.testing.assert_array_equal(got, _scatter_rows((3, 30, 5), 1, ids,
                                                     np.ascontiguousarray(gy)))
