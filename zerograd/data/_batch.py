"""Stacking per-example values into one batch array, with an error that names the odd one out.

``np.array`` of examples with different shapes fails with NumPy's "inhomogeneous shape"
message, which names neither the dataset nor the examples. Every place in ``zerograd.data``
that stacks examples goes through ``stack_batch`` so a ragged dataset gets one clear error.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from zerograd.errors import ShapeError


def _shape(value: Any) -> tuple | None:
    """The shape NumPy sees in one example; None when the example is itself ragged."""
    try:
        return tuple(np.shape(value))
    except ValueError:  # e.g. [[1], [1, 2]]
        return None


def _describe(value: object) -> str:
    """'float32 (2, 3)' for an example, or 'a ragged list' when it has no single shape."""
    if hasattr(value, "shape") and hasattr(value, "dtype"):
        return f"{value.dtype} {tuple(value.shape)}"
    if _shape(value) is None:
        return f"a ragged {type(value).__name__}"
    return f"{np.asarray(value).dtype} {_shape(value)}"


def stack_batch(values: Sequence[Any], owner: str, part: str = "x",
                positions: Sequence[int] | np.ndarray | None = None) -> np.ndarray:
    """``np.array(values)``; a ShapeError naming ``owner`` and two examples whose shapes differ.

    ``part`` says what is stacked ("x", "t", "transformed x"); ``positions``, the examples'
    indices in the dataset, name them in the message (else their places in the batch do).
    """
    try:
        return np.array(values)
    except ValueError as error:
        shapes = [_shape(v) for v in values]
        if shapes[0] is None:
            first, odd = 1 % len(values), 0
        else:
            first = 0
            differing = next((k for k, shape in enumerate(shapes) if shape != shapes[0]), None)
            if differing is None:  # every shape agrees: the failure is another; NumPy's stands
                raise
            odd = differing
        if positions is None:
            names = [f"batch item {k}" for k in range(len(values))]
        else:
            names = [f"dataset[{int(p)}]" for p in positions]
        raise ShapeError(
            f"{owner}: cannot stack a batch of {part}: {names[first]} is "
            f"{_describe(values[first])} but {names[odd]} is {_describe(values[odd])}; "
            f"every example's {part} must have the same shape to form a batch (pad, crop or "
            f"resize them in a transform)") from error
