import numpy as np

import zerograd.functions as F
from tests.ops.harness import OpSpec


def _linear_ref(x, W, b=None):
    y = x @ W
    return y if b is None else y + b


def _einsum(subscripts):
    return lambda *ops: F.einsum(subscripts, *ops)


def _einsum_ref(subscripts):
    return lambda *ops: np.einsum(subscripts, *ops)


def _einsum_spec(name, subscripts, shapes, **options):
    options.setdefault("zero_d", False)  # every subscript but ",->" names axes
    return OpSpec(name, _einsum(subscripts), _einsum_ref(subscripts), shapes=shapes,
                  covers=options.pop("covers", []), **options)


def _ids_and_matrix(rng, shapes, dtype):
    """A constant x (the input batch, a plain array) and a differentiable W."""
    x_shape, w_shape = shapes
    return [rng.uniform(-1, 1, size=x_shape).astype(dtype),
            rng.uniform(-1, 1, size=w_shape).astype(dtype)]


SPECS = [
    OpSpec("matmul", F.matmul, np.matmul,
           shapes=[((2, 3), (3, 4)), ((3,), (3, 4)), ((2, 3), (3,)), ((3,), (3,)),
                   ((5, 2, 3), (3, 4)), ((2, 1, 2, 3), (3, 3, 2))], zero_d=False),
    OpSpec("matmul_batched_broadcast", F.matmul, np.matmul,
           shapes=[((2, 1, 4, 3), (5, 3, 2)), ((1, 2, 3), (4, 3, 2)), ((3,), (4, 3, 2)),
                   ((4, 2, 3), (3,)), ((2, 3), (4, 1, 3, 2))], covers=[], zero_d=False),
    # linear
    OpSpec("linear", F.linear, _linear_ref,
           shapes=[((4, 3), (3, 2), (2,)), ((4, 3), (3, 2), (1, 2)), ((3,), (3, 2), (2,)),
                   ((2, 4, 3), (3, 5), (5,))], zero_d=False),
    OpSpec("linear_no_bias", F.linear, _linear_ref, shapes=[((4, 3), (3, 2)), ((2, 2, 3), (3, 2))],
           covers=[], zero_d=False),
    OpSpec("linear_constant_x", lambda x, W: F.linear(x, W), _linear_ref,
           make_inputs=_ids_and_matrix, diff_args=[1], shapes=[((4, 3), (3, 2))], covers=[],
           zero_d=False),
    OpSpec("linear_squared", lambda x, W, b: F.linear(x, W, b) ** 2,
           lambda x, W, b: _linear_ref(x, W, b) ** 2, shapes=[((2, 3), (3, 2), (2,))],
           covers=[], zero_d=False),
    OpSpec("linear_simple", F.linear_simple, _linear_ref,
           shapes=[((4, 3), (3, 2), (2,)), ((4, 3), (3, 2))], zero_d=False),
    # dot / outer / tensordot
    OpSpec("dot", F.dot, np.dot,
           shapes=[((3,), (3,)), ((2, 3), (3, 4)), ((2, 3), (3,)), ((), (2, 3)),
                   ((2, 2, 3), (4, 3, 2)), ((2, 2, 3), (3,))]),
    OpSpec("outer", F.outer, np.outer, shapes=[((3,), (4,)), ((2, 2), (3,)), ((), (2,))]),
    OpSpec("tensordot", F.tensordot, np.tensordot,
           shapes=[((2, 3, 4), (3, 4, 5)), ((3, 4), (3, 4))], zero_d=False),
    OpSpec("tensordot_axes_pairs", F.tensordot, np.tensordot,
           kwargs={"axes": ([0, 2], [2, 1])}, shapes=[((3, 2, 4), (5, 4, 3))], covers=[],
           zero_d=False),
    OpSpec("tensordot_outer", F.tensordot, np.tensordot, kwargs={"axes": 0},
           shapes=[((2, 3), (2,))], covers=[]),
    OpSpec("tensordot_int_axis1", F.tensordot, np.tensordot, kwargs={"axes": 1},
           shapes=[((2, 3), (3, 4, 2))], covers=[], zero_d=False),
    # einsum
    _einsum_spec("einsum", "ij,jk->ik", [((2, 3), (3, 4))], covers=["einsum"]),
    _einsum_spec("einsum_batched", "bij,bjk->bik", [((2, 2, 3), (2, 3, 4))]),
    _einsum_spec("einsum_implicit", "ij,kj", [((2, 3), (4, 3))]),
    _einsum_spec("einsum_implicit_transpose", "ba", [((2, 3),)]),
    _einsum_spec("einsum_sum_axis", "ij->i", [((2, 3),)]),
    _einsum_spec("einsum_total", "ij->", [((2, 3),)]),
    _einsum_spec("einsum_trace", "ii", [((3, 3),)]),
    _einsum_spec("einsum_diagonal", "ii->i", [((3, 3),)]),
    _einsum_spec("einsum_diag_times_vector", "ii,i->i", [((3, 3), (3,))]),
    _einsum_spec("einsum_bilinear", "i,ij,j", [((3,), (3, 4), (4,))]),
    _einsum_spec("einsum_three_chain", "ij,jk,kl->il", [((2, 3), (3, 2), (2, 4))]),
    _einsum_spec("einsum_outer", "i,j->ij", [((2,), (3,))]),
    _einsum_spec("einsum_private_label", "ij,j->j", [((2, 3), (3,))]),
    _einsum_spec("einsum_ellipsis", "...ij,...jk->...ik", [((2, 2, 3), (3, 4)),
                                                           ((2, 1, 2, 3), (3, 3, 2))]),
    _einsum_spec("einsum_ellipsis_implicit", "...i,...i", [((2, 3), (2, 3))]),
    _einsum_spec("einsum_broadcast_size1", "...j,...j->...", [((1, 3), (4, 3))]),
    _einsum_spec("einsum_scalars", ",->", [((), ())], zero_d=True),
    _einsum_spec("einsum_spaces_uppercase", "Ab, bC -> AC", [((2, 3), (3, 2))]),
]
