"""The three-armed spiral of the book (step 48), generated exactly as DeZero generates it.

DeZero's ``get_spiral`` calls ``np.random.seed(1984)`` (train) or ``np.random.seed(2020)``
(test) on NumPy's *global* random state, draws one ``randn()`` per point and then a
``permutation``. Everything drawn afterwards (the MLP's initial weights, the loader's
shuffles) therefore depends on those seeds, and the losses the book prints in steps 48-50
are the numbers that follow from them. To print the book's numbers zerograd does the same
by default: the global state is reseeded and left exactly where DeZero leaves it.

``seed_global=False`` opts out: the same points come from a private ``RandomState`` seeded
the same way (the stream, hence the data, is identical) and the global state is not touched.
"""

from __future__ import annotations

import types

import numpy as np

from zerograd.data.dataset import Dataset
from zerograd.data.transforms import TransformLike

TRAIN_SEED, TEST_SEED = 1984, 2020
NUM_DATA, NUM_CLASS = 100, 3


def get_spiral(train: bool = True, *, seed_global: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """``(x, t)``: x float32 ``(300, 2)`` points, t int64 ``(300,)`` class ids 0..2, shuffled.

    Point ``i`` of arm ``j`` (``rate = i / 100``) sits at radius ``rate`` and angle
    ``theta = 4 j + 4 rate + 0.2 n`` with ``n ~ N(0, 1)``: ``x = (r sin theta, r cos theta)``.

    Random state: by default, as in DeZero, NumPy's global random state is seeded with 1984
    (train) or 2020 (test) and left after the 300 normal draws and the permutation, so what a
    script draws next is what it draws on DeZero. ``seed_global=False`` draws the same numbers
    from a private generator and leaves the global state alone.
    """
    seed = TRAIN_SEED if train else TEST_SEED
    rng: types.ModuleType | np.random.RandomState
    if seed_global:
        np.random.seed(seed)
        rng = np.random
    else:
        rng = np.random.RandomState(seed)
    # DeZero consumes the stream arm by arm, point by point, one normal draw per point; one
    # (3, 100) draw reads the same numbers in the same order and leaves the same state.
    noise = rng.randn(NUM_CLASS, NUM_DATA)
    rate = np.arange(NUM_DATA) / NUM_DATA
    arm = np.arange(NUM_CLASS, dtype=np.float64)[:, np.newaxis]
    theta = arm * 4.0 + 4.0 * rate + noise * 0.2
    radius = 1.0 * rate
    x = np.stack([radius * np.sin(theta), radius * np.cos(theta)], axis=-1)
    x = x.reshape(NUM_CLASS * NUM_DATA, 2).astype(np.float32)
    t = np.repeat(np.arange(NUM_CLASS, dtype=np.int64), NUM_DATA)
    order = rng.permutation(NUM_CLASS * NUM_DATA)
    return x[order], t[order]


class Spiral(Dataset):
    """``get_spiral`` as a Dataset (train: seed 1984, test: seed 2020).

    Like DeZero's, building one reseeds NumPy's global random state (see ``get_spiral``);
    pass ``seed_global=False`` to leave it alone. The data are the same either way.
    """

    def __init__(self, train: bool = True, transform: TransformLike | None = None,
                 target_transform: TransformLike | None = None, *,
                 seed_global: bool = True) -> None:
        self.seed_global = seed_global
        super().__init__(train, transform, target_transform)

    def prepare(self) -> None:
        self.data, self.label = get_spiral(self.train, seed_global=self.seed_global)


__all__ = ["Spiral", "get_spiral"]
