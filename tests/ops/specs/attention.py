"""Specs for the attention family (zerograd/ops/attention.py)."""

import numpy as np

import zerograd.functions as F
from tests.ops.harness import OpSpec

CAUSAL = np.tril(np.ones((3, 4), dtype=bool))
ONE_ROW_MASKED = np.ones((3, 4), dtype=bool)
ONE_ROW_MASKED[1] = False  # query 1 attends to nothing: a zero row, by our convention
ADDITIVE = np.where(np.tril(np.ones((3, 4), dtype=bool), 1), 0.0, -np.inf)


def np_attention(q, k, v, mask=None, scale=None):
    scale = 1 / np.sqrt(q.shape[-1]) if scale is None else scale
    scores = q @ np.swapaxes(k, -1, -2) * scale
    if mask is not None and mask.dtype == bool:
        scores = np.where(mask, scores, -np.inf)
    elif mask is not None:
        scores = scores + mask
    row_max = scores.max(axis=-1, keepdims=True)
    e = np.exp(scores - np.where(np.isfinite(row_max), row_max, 0))
    total = e.sum(axis=-1, keepdims=True)
    return (e / np.where(total > 0, total, 1)) @ v


SPECS = [
    OpSpec("scaled_dot_product_attention", F.scaled_dot_product_attention, np_attention,
           shapes=[((3, 2), (4, 2), (4, 5)), ((2, 3, 2), (2, 4, 2), (2, 4, 3)),
                   ((2, 1, 3, 2), (3, 4, 2), (4, 2))], zero_d=False),
    OpSpec("attention_boolean_mask", F.scaled_dot_product_attention, np_attention,
           kwargs={"mask": CAUSAL}, shapes=[((2, 3, 2), (2, 4, 2), (2, 4, 3))], covers=[],
           zero_d=False),
    OpSpec("attention_fully_masked_row", F.scaled_dot_product_attention, np_attention,
           kwargs={"mask": ONE_ROW_MASKED}, shapes=[((3, 2), (4, 2), (4, 3))], covers=[],
           zero_d=False),
    OpSpec("attention_additive_mask_scale", F.scaled_dot_product_attention, np_attention,
           kwargs={"mask": ADDITIVE, "scale": 0.3},
           shapes=[((2, 3, 2), (2, 4, 2), (2, 4, 3))], covers=[], zero_d=False),
]
