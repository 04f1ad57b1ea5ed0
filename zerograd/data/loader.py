"""Mini-batch loaders: ``DataLoader`` (DeZero's protocol, batched fetching) and ``SeqDataLoader``.

Random numbers follow DeZero: ``np.random.permutation(len(dataset))`` from NumPy's global
random state at construction and at the end of every epoch, so a script seeded with
``np.random.seed`` sees the same batches as on DeZero. ``rng=`` gives the loader its own
generator instead.

Iteration. ``next(loader)`` / ``loader.next()`` advance the loader's own cursor exactly as in
DeZero. ``iter(loader)`` (a ``for`` loop) returns a *fresh epoch iterator* with its own cursor
over the loader's current order; when it is exhausted the loader reshuffles, as DeZero does at
the end of an epoch. Run one loop after another and the batches are DeZero's; nest two loops
over the same loader and each walks its own epoch instead of silently sharing one cursor.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from zerograd.backend import as_cupy
from zerograd.core.variable import Variable
from zerograd.data._batch import stack_batch
from zerograd.data.dataset import DatasetLike
from zerograd.errors import DTypeError, ShapeError, describe

# One mini-batch ``(x, t)``: NumPy arrays, CuPy arrays with ``gpu=True`` (untyped, hence
# Any); ``t`` is None for a dataset without labels.
Batch = tuple[Any, Any]
# The loader's own random source, or a seed for one (None: NumPy's global state, DeZero's).
RandomLike = np.random.Generator | np.random.RandomState | int | None


def _check_dataset(dataset: object, owner: str) -> None:
    """A clear error for what cannot be a dataset (None, a bare array, a number, ...)."""
    if isinstance(dataset, (np.ndarray, Variable)):
        raise DTypeError(
            f"{owner}: dataset must be a Dataset (dataset[i] -> (x, t)), got a bare array "
            f"({describe([dataset])}); wrap arrays as ArrayDataset(x, t) (or ArrayDataset(x) "
            f"without labels)")
    if not (hasattr(dataset, "__len__") and hasattr(dataset, "__getitem__")):
        raise DTypeError(
            f"{owner}: dataset must be a Dataset, or any object with len(dataset) and "
            f"dataset[i] -> (x, t); got {_what(dataset)}")


def _what(value: object) -> str:
    return "None" if value is None else f"{type(value).__name__} {value!r:.60}"


def _check_batch_size(batch_size: object, owner: str) -> int:
    if (not isinstance(batch_size, (int, np.integer)) or isinstance(batch_size, bool)
            or batch_size < 1):
        raise ValueError(f"{owner}: batch_size must be a positive int (examples per batch), "
                         f"got {batch_size!r} ({type(batch_size).__name__})")
    return int(batch_size)


def _make_rng(rng: RandomLike) -> np.random.Generator | np.random.RandomState | None:
    if rng is None or isinstance(rng, (np.random.Generator, np.random.RandomState)):
        return rng
    if isinstance(rng, (int, np.integer)):
        return np.random.default_rng(int(rng))
    raise TypeError(f"DataLoader: rng must be None, an int seed, a np.random.Generator or a "
                    f"np.random.RandomState, got {type(rng).__name__}")


class DataLoader:
    """Iterates over ``dataset`` in mini-batches of ``batch_size``: yields ``(x, t)`` arrays.

    ``max_iter = ceil(len / batch_size)`` batches per epoch (the last may be short), or
    ``len // batch_size`` with ``drop_last=True``. ``shuffle`` draws a new order every epoch.
    A dataset that exposes its arrays (``supports_batch_index``) is fetched with one fancy
    index per batch and transformed as a batch; any other ``dataset[i]`` sequence is fetched
    example by example and stacked. ``t`` is ``None`` for a dataset without labels. With
    ``gpu=True`` the batches are CuPy arrays.
    """

    def __init__(self, dataset: DatasetLike, batch_size: int, shuffle: bool = True,
                 gpu: bool = False, drop_last: bool = False, rng: RandomLike = None) -> None:
        _check_dataset(dataset, type(self).__name__)
        self.dataset = dataset
        self.batch_size = _check_batch_size(batch_size, type(self).__name__)
        self.shuffle = shuffle
        self.gpu = gpu
        self.drop_last = drop_last
        self.rng = _make_rng(rng)
        self.data_size = len(dataset)
        if drop_last:
            self.max_iter = self.data_size // self.batch_size
        else:
            self.max_iter = math.ceil(self.data_size / self.batch_size)
        self.reset()

    # -- DeZero's protocol ---------------------------------------------------------------------
    def reset(self) -> None:
        """Rewinds to the first batch and, when shuffling, draws a new order."""
        self.iteration = 0
        if self.shuffle:
            permutation = (self.rng or np.random).permutation
            self.index = permutation(self.data_size)
        else:
            self.index = np.arange(self.data_size)

    def __next__(self) -> Batch:
        if self.iteration >= self.max_iter:
            self.reset()
            raise StopIteration
        batch = self._fetch(self._batch_index(self.iteration, self.index))
        self.iteration += 1
        return batch

    def next(self) -> Batch:
        return self.__next__()

    def __iter__(self) -> _EpochIterator:
        return _EpochIterator(self)

    def __len__(self) -> int:
        return self.max_iter

    def to_cpu(self) -> None:
        self.gpu = False

    def to_gpu(self) -> None:
        self.gpu = True

    # -- state, for checkpoints ------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """The current order, cursor and (if the loader has its own) generator state."""
        state: dict[str, Any] = {"index": self.index.copy(), "iteration": self.iteration}
        if isinstance(self.rng, np.random.Generator):
            state["rng"] = self.rng.bit_generator.state
        elif isinstance(self.rng, np.random.RandomState):
            state["rng"] = self.rng.get_state()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        index = np.asarray(state["index"])
        if index.shape != (self.data_size,):
            raise ValueError(f"{type(self).__name__}.load_state_dict: the saved order has "
                             f"shape {index.shape}, expected ({self.data_size},)")
        self.index = index
        self.iteration = int(state["iteration"])
        if "rng" in state and isinstance(self.rng, np.random.Generator):
            self.rng.bit_generator.state = state["rng"]
        elif "rng" in state and isinstance(self.rng, np.random.RandomState):
            self.rng.set_state(state["rng"])

    # -- fetching --------------------------------------------------------------------------------
    def _batch_index(self, iteration: int, index: np.ndarray) -> np.ndarray:
        start = iteration * self.batch_size
        return index[start:start + self.batch_size]

    def _fetch(self, batch_index: np.ndarray) -> Batch:
        if getattr(self.dataset, "supports_batch_index", False):
            x, t = self.dataset[batch_index]
        else:
            x, t = self._fetch_examples(batch_index)
        if self.gpu:
            x = as_cupy(x)
            t = None if t is None else as_cupy(t)
        return x, t

    def _fetch_examples(self, batch_index: np.ndarray) -> Batch:
        """``dataset[i]`` for each index, stacked: DeZero's way, for any dataset."""
        owner = type(self).__name__
        batch = []
        for i in batch_index:
            example = self.dataset[int(i)]
            if not (isinstance(example, (tuple, list)) and len(example) == 2):
                got = (f"a {type(example).__name__} of {len(example)} items"
                       if isinstance(example, (tuple, list)) else describe([example]))
                raise DTypeError(
                    f"{owner}: dataset[{int(i)}] returned {got}; expected a pair (x, t), t "
                    f"None without labels, as Dataset.__getitem__ returns (to batch arrays "
                    f"x and t, use ArrayDataset(x, t))")
            batch.append(example)
        x = stack_batch([example[0] for example in batch], owner, "x", batch_index)
        labels = [example[1] for example in batch]
        has_label = [label is not None for label in labels]
        if not any(has_label):
            return x, None
        if not all(has_label):
            with_label = int(batch_index[has_label.index(True)])
            without = int(batch_index[has_label.index(False)])
            raise ShapeError(f"{owner}: dataset[{without}] has label None but "
                             f"dataset[{with_label}] has a label; either every example has a "
                             f"label or none has")
        return x, stack_batch(labels, owner, "t", batch_index)

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(dataset={self.dataset!r}, batch_size={self.batch_size}, "
                f"shuffle={self.shuffle}, max_iter={self.max_iter})")


class _EpochIterator:
    """One pass over a loader's current order, with its own cursor (see the module doc)."""

    def __init__(self, loader: DataLoader) -> None:
        self.loader = loader
        self.index = loader.index
        self.iteration = 0
        self.max_iter = loader.max_iter
        self._finished = False

    def __iter__(self) -> _EpochIterator:
        return self

    def __next__(self) -> Batch:
        if self.iteration >= self.max_iter:
            if not self._finished:
                self._finished = True
                self.loader.reset()
            raise StopIteration
        batch = self.loader._fetch(self.loader._batch_index(self.iteration, self.index))
        self.iteration += 1
        # Mirrors the cursor for code that reads loader.iteration inside a for loop.
        self.loader.iteration = self.iteration
        return batch

    def __len__(self) -> int:
        return self.max_iter - self.iteration


class SeqDataLoader(DataLoader):
    """Batches of ``batch_size`` parallel streams over a sequence, for truncated BPTT.

    No shuffling. With ``jump = len // batch_size``, row ``i`` of batch ``k`` is example
    ``(i * jump + k) % len``, so each row walks its own stretch of the sequence (DeZero's rule).
    """

    def __init__(self, dataset: DatasetLike, batch_size: int, gpu: bool = False) -> None:
        super().__init__(dataset=dataset, batch_size=batch_size, shuffle=False, gpu=gpu)
        if self.batch_size > self.data_size:
            # jump = len // batch_size would be 0: every row would read the same examples.
            raise ValueError(f"SeqDataLoader: batch_size {self.batch_size} is larger than the "
                             f"dataset ({self.data_size} examples); each of the "
                             f"{self.batch_size} parallel streams needs at least one example")

    def _batch_index(self, iteration: int, index: np.ndarray) -> np.ndarray:
        jump = self.data_size // self.batch_size
        return (np.arange(self.batch_size) * jump + iteration) % self.data_size


__all__ = ["DataLoader", "SeqDataLoader"]
