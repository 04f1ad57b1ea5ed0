"""The three-armed spiral of the book (step 48), generated exactly as DeZero generates it.

DeZero seeds NumPy's *global* random state (1984 for train, 2020 for test) and draws one
``randn()`` per point, then a ``permutation``. A private ``RandomState`` seeded the same way
yields the identical stream, so the data match DeZero's to the bit while the caller's global
random state is left alone.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from zerograd.data.dataset import Dataset

TRAIN_SEED, TEST_SEED = 1984, 2020


def get_spiral(train: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """``(x, t)``: x float32 ``(300, 2)`` points, t int64 ``(300,)`` class ids 0..2, shuffled.

    Point ``i`` of arm ``j`` (``rate = i / 100``) sits at radius ``rate`` and angle
    ``theta = 4 j + 4 rate + 0.2 n`` with ``n ~ N(0, 1)``: ``x = (r sin theta, r cos theta)``.
    """
    rng = np.random.RandomState(TRAIN_SEED if train else TEST_SEED)
    num_data, num_class = 100, 3
    # The stream is consumed arm by arm, point by point: one normal draw per point, in order.
    noise = rng.randn(num_class, num_data)
    rate = np.arange(num_data) / num_data
    arm = np.arange(num_class, dtype=np.float64)[:, np.newaxis]
    theta = arm * 4.0 + 4.0 * rate + noise * 0.2
    radius = 1.0 * rate
    x = np.stack([radius * np.sin(theta), radius * np.cos(theta)], axis=-1)
    x = x.reshape(num_class * num_data, 2).astype(np.float32)
    t = np.repeat(np.arange(num_class, dtype=np.int64), num_data)
    order = rng.permutation(num_class * num_data)
    return x[order], t[order]


class Spiral(Dataset):
    """``get_spiral`` as a Dataset (train: seed 1984, test: seed 2020)."""

    def __init__(self, train: bool = True, transform: Callable | None = None,
                 target_transform: Callable | None = None):
        super().__init__(train, transform, target_transform)

    def prepare(self) -> None:
        self.data, self.label = get_spiral(self.train)


__all__ = ["Spiral", "get_spiral"]
