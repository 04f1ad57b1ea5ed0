"""scikit-learn's bundled 8x8 handwritten digits (1,797 images; no network needed)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from zerograd.data.dataset import Dataset
from zerograd.data.transforms import Flatten

SPLIT_SEED = 0
TEST_FRACTION = 0.2
# Stateless, so one instance can serve as the default of every Digits.
DEFAULT_TRANSFORM = Flatten()


class Digits(Dataset):
    """8x8 digits: ``data`` float32 ``(N, 1, 8, 8)`` in [0, 1], ``label`` int64 ``(N,)``.

    The split is fixed: a permutation from ``RandomState(0)`` (the global random state is not
    touched), the last 20% (359 images) for test and the rest (1,438) for train. The default
    transform flattens an image to ``(64,)``; pass ``transform=None`` to keep ``(1, 8, 8)``.
    Needs scikit-learn (``pip install scikit-learn``), imported only here.
    """

    def __init__(self, train: bool = True, transform: Callable | None = DEFAULT_TRANSFORM,
                 target_transform: Callable | None = None):
        super().__init__(train, transform, target_transform)

    def prepare(self) -> None:
        try:
            from sklearn.datasets import load_digits
        except ImportError as error:
            raise ImportError("Digits needs scikit-learn: pip install scikit-learn "
                              "(or pip install 'zerograd[extras]')") from error
        bunch = load_digits()
        images = (bunch.images / 16.0).astype(np.float32)[:, np.newaxis]
        labels = bunch.target.astype(np.int64)
        order = np.random.RandomState(SPLIT_SEED).permutation(len(images))
        n_train = len(images) - int(round(TEST_FRACTION * len(images)))
        chosen = order[:n_train] if self.train else order[n_train:]
        self.data = images[chosen]
        self.label = labels[chosen]


__all__ = ["Digits"]
