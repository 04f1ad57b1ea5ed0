"""``zerograd.transforms``: DeZero's transforms module (re-exports from ``zerograd.data``).

Importing it needs NumPy only; the image transforms import Pillow when they run.
"""

from zerograd.backend.array_utils import pair
from zerograd.data.transforms import (
    AsType,
    CenterCrop,
    Compose,
    Convert,
    Flatten,
    Identity,
    Normalize,
    RandomHorizontalFlip,
    Resize,
    ToArray,
    ToFloat,
    ToInt,
    ToPIL,
    Transform,
    apply_batch,
)

__all__ = [
    "AsType", "CenterCrop", "Compose", "Convert", "Flatten", "Identity", "Normalize",
    "RandomHorizontalFlip", "Resize", "ToArray", "ToFloat", "ToInt", "ToPIL", "Transform",
    "apply_batch", "pair",
]
