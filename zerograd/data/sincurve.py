"""The sine-wave sequence of the book's RNN steps (59-60), as DeZero builds it."""

from __future__ import annotations

import numpy as np

from zerograd.data.dataset import Dataset
from zerograd.data.transforms import TransformLike


class SinCurve(Dataset):
    """Next-value prediction on a sine wave: 999 pairs ``(y_t, y_{t+1})``, each ``(1,)`` float64.

    ``y`` samples ``sin`` (train, plus noise ``uniform(-0.05, 0.05)``) or ``cos`` (test, no
    noise) at ``linspace(0, 2 pi, 1000)``. As in DeZero the noise is drawn from NumPy's global
    random state, for both splits (the test split discards it), so book scripts seeded with
    ``np.random.seed`` see the same numbers.
    """

    num_points = 1000

    def __init__(self, train: bool = True, transform: TransformLike | None = None,
                 target_transform: TransformLike | None = None) -> None:
        super().__init__(train, transform, target_transform)

    def prepare(self) -> None:
        x = np.linspace(0, 2 * np.pi, self.num_points)
        noise = np.random.uniform(-0.05, 0.05, size=x.shape)
        y = np.sin(x) + noise if self.train else np.cos(x)
        y = y.astype(np.float64)
        self.data = y[:-1][:, np.newaxis]
        self.label = y[1:][:, np.newaxis]


__all__ = ["SinCurve"]
