import numpy as np

import zerograd.functions as F
from tests.ops.harness import OpSpec

NOT_DIFFERENTIABLE = {"one_hot"}

IDS = np.array([[0, 2], [0, 0], [3, 2]])  # repeated ids: gradients must accumulate


def _take_along(x, indices, axis):
    return np.take_along_axis(x, indices, axis)


def _scatter_add_ref(x, updates, indices, axis):
    out = x.astype(np.result_type(x, updates)).copy()
    index = list(np.indices(indices.shape, sparse=True))
    index[axis] = indices
    np.add.at(out, tuple(index), updates)
    return out


def _scatter_add(x, updates, indices, axis):
    return F.scatter_add(x, indices, updates, axis)


def _embed_inputs(rng, shapes, dtype):
    ids_shape, w_shape = shapes
    return [rng.integers(0, w_shape[0], size=ids_shape) if ids_shape != "fixed" else IDS,
            rng.uniform(-1, 1, size=w_shape).astype(dtype)]


def _embed_ref(ids, W):
    return W[ids]


SPECS = [
    OpSpec("get_item", F.get_item, lambda x, slices: x[slices], kwargs={"slices": (slice(None), 1)},
           shapes=[((3, 4),)], double_backward=False, zero_d=False),
    OpSpec("get_item_repeated_rows", F.get_item, lambda x, slices: x[slices],
           kwargs={"slices": np.array([0, 2, 0, 0])}, shapes=[((3, 4),)], double_backward=False,
           covers=[], zero_d=False),
    OpSpec("get_item_int", F.get_item, lambda x, slices: x[slices], kwargs={"slices": 1},
           shapes=[((3, 2),)], double_backward=False, covers=[], zero_d=False),
    OpSpec("get_item_squared", lambda x: F.get_item(x, np.array([1, 1])) ** 2,
           lambda x: x[np.array([1, 1])] ** 2, shapes=[((3, 2),)], covers=[], zero_d=False),
    # the fast scatter: one integer array among full slices
    OpSpec("get_item_ids_2d", F.get_item, lambda x, slices: x[slices],
           kwargs={"slices": IDS}, shapes=[((4, 3),), ((4,),), ((4, 2, 2),)],
           double_backward=False, covers=[], zero_d=False),
    OpSpec("get_item_ids_axis1", F.get_item, lambda x, slices: x[slices],
           kwargs={"slices": (slice(None), np.array([2, 0, 2, -1]))}, shapes=[((2, 3, 2),)],
           double_backward=False, covers=[], zero_d=False),
    OpSpec("get_item_ids_unique", F.get_item, lambda x, slices: x[slices],
           kwargs={"slices": np.array([3, 0, 1])}, shapes=[((4, 2),)], double_backward=False,
           covers=[], zero_d=False),
    OpSpec("get_item_list_ellipsis", F.get_item, lambda x, slices: x[np.array(slices[0]), ...],
           kwargs={"slices": ([1, 1, 0], Ellipsis)}, shapes=[((2, 3),)], double_backward=False,
           covers=[], zero_d=False),
    # the general fallback: two index arrays, boolean masks
    OpSpec("get_item_pairs", F.get_item, lambda x, slices: x[slices],
           kwargs={"slices": (np.array([0, 1, 1, 0]), np.array([2, 0, 2, 2]))},
           shapes=[((2, 3),)], double_backward=False, covers=[], zero_d=False),
    OpSpec("get_item_mask", F.get_item, lambda x, slices: x[slices],
           kwargs={"slices": np.array([True, False, True])}, shapes=[((3, 2),)],
           double_backward=False, covers=[], zero_d=False),
    OpSpec("get_item_basic_slices", F.get_item, lambda x, slices: x[slices],
           kwargs={"slices": (slice(None, None, -1), None, slice(1, 3))}, shapes=[((3, 4),)],
           double_backward=False, covers=[], zero_d=False),
    # gather / take / scatter_add
    OpSpec("gather", F.gather, _take_along, kwargs={"indices": np.array([[0, 2, 2], [1, 1, 0]]),
                                                    "axis": 1},
           shapes=[((2, 3),)], double_backward=False, zero_d=False),
    OpSpec("gather_axis0_broadcast", F.gather, _take_along,
           kwargs={"indices": np.array([[0], [1], [0], [-1]]), "axis": 0},
           shapes=[((2, 3),)], double_backward=False, covers=[], zero_d=False),
    OpSpec("gather_broadcast_x", F.gather, _take_along,
           kwargs={"indices": np.array([[0, 1], [1, 1], [0, 0]]), "axis": 1},
           shapes=[((1, 2),)], double_backward=False, covers=[], zero_d=False),
    OpSpec("gather_squared", lambda x: F.gather(x, np.array([[1, 1], [0, 1]]), axis=1) ** 2,
           lambda x: np.take_along_axis(x, np.array([[1, 1], [0, 1]]), 1) ** 2,
           shapes=[((2, 3),)], covers=[], zero_d=False),
    OpSpec("take", F.take, np.take, kwargs={"indices": np.array([5, 0, 5, 2])},
           shapes=[((2, 3),)], double_backward=False, zero_d=False),
    OpSpec("take_axis", F.take, np.take, kwargs={"indices": np.array([[2, 0], [2, 2]]),
                                                 "axis": 1},
           shapes=[((2, 3, 2),)], double_backward=False, covers=[], zero_d=False),
    OpSpec("scatter_add", _scatter_add, _scatter_add_ref,
           kwargs={"indices": np.array([[0, 2, 0], [1, 1, 1]]), "axis": 1},
           shapes=[((2, 4), (2, 3))], double_backward=False, zero_d=False),
    OpSpec("scatter_add_axis0_smaller", _scatter_add, _scatter_add_ref,
           kwargs={"indices": np.array([[2, 0], [2, 2]]), "axis": 0},
           shapes=[((3, 3), (2, 2))], double_backward=False, covers=[], zero_d=False),
    OpSpec("scatter_add_squared",
           lambda x, u: F.scatter_add(x, np.array([0, 0, 1]), u, axis=0) ** 2,
           lambda x, u: _scatter_add_ref(x, u, np.array([0, 0, 1]), 0) ** 2,
           shapes=[((3,), (3,))], covers=[], zero_d=False),
    # embed_id
    OpSpec("embed_id", F.embed_id, _embed_ref, make_inputs=_embed_inputs,
           shapes=[("fixed", (4, 3)), ((5,), (3, 2)), ((2, 3, 4), (6, 5))],
           double_backward=False, zero_d=False),
    OpSpec("embed_id_squared", lambda ids, W: F.embed_id(ids, W) ** 2,
           lambda ids, W: W[ids] ** 2, make_inputs=_embed_inputs, shapes=[("fixed", (4, 3))],
           covers=[], zero_d=False),
]
