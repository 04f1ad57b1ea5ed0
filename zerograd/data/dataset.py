"""Dataset base class (DeZero's protocol) and datasets over arrays the user already has.

A dataset holds ``data`` and ``label`` (``label`` may be ``None``), filled by ``prepare()``.
``dataset[i]`` with an integer is one example ``(transform(x), target_transform(t))``, or
``(x, None)`` without labels, as in DeZero. ``dataset[indices]`` with a slice, a list or an
integer array is a whole batch: the arrays are indexed once and the transforms applied to the
batch (see ``zerograd.data.transforms.apply_batch``); this is what the ``DataLoader`` uses.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np

from zerograd.data._batch import stack_batch
from zerograd.data.transforms import Identity, TransformLike, apply_batch
from zerograd.errors import DTypeError, ShapeError, ZerogradError
from zerograd.serialization import CorruptFileError


class DatasetLike(Protocol):
    """What the loaders take as a dataset (DeZero's protocol): ``len(dataset)`` and
    ``dataset[i] -> (x, t)``, ``t`` None without labels. A :class:`Dataset` is one, and so
    is a list of pairs."""

    def __len__(self) -> int: ...

    # An int in DeZero's protocol; datasets with supports_batch_index also take an array.
    def __getitem__(self, index: Any, /) -> Any: ...


class DataFormatError(CorruptFileError):
    """A data file is truncated, corrupt or not the kind of file expected (names the file).

    A ``CorruptFileError`` (hence a ``ValueError``), as the weight and checkpoint readers raise.
    """


class DatasetIndexError(ZerogradError, IndexError):
    """An example index outside the dataset.

    An ``IndexError``, so ``for x, t in dataset`` (Python's sequence protocol) still stops at
    the end.
    """


def check_index(index: int, n: int, owner: str) -> int:
    """``index`` when ``-n <= index < n``; else a DatasetIndexError naming ``owner``."""
    if not -n <= index < n:
        raise DatasetIndexError(f"{owner}: index {index} is out of range for {n} examples "
                                f"(expected -{n} <= index < {n})")
    return index


def check_indices(index: slice | np.ndarray, n: int, owner: str) -> slice | np.ndarray:
    """A batch index (slice, int array, bool mask) checked against ``n`` examples."""
    if isinstance(index, slice):
        return index  # slices clip, as for arrays
    if index.dtype == bool:
        if index.shape != (n,):
            raise DatasetIndexError(f"{owner}: a boolean mask must have shape ({n},), one "
                                    f"entry per example, got {index.shape}")
        return index
    if index.size and (index.min() < -n or index.max() >= n):
        bad = index[(index < -n) | (index >= n)]
        raise DatasetIndexError(f"{owner}: indices {bad[:5].tolist()} are out of range for {n} "
                                f"examples (expected -{n} <= index < {n})")
    return index


def _is_integer_index(index: object) -> bool:
    return isinstance(index, (int, np.integer)) and not isinstance(index, bool)


def _batch_index(index: Any, owner: str) -> slice | np.ndarray:
    """A slice or an integer/boolean index array from what the user passed."""
    if isinstance(index, slice):
        return index
    index = np.asarray(index)
    if index.dtype == bool or np.issubdtype(index.dtype, np.integer):
        return index
    if index.size == 0:
        return index.astype(np.intp)
    raise DTypeError(f"{owner}: an index must be an int, a slice or an array of ints, got "
                     f"{index.dtype} {index.shape}")


class Dataset:
    """Base class: subclasses fill ``self.data`` (and ``self.label``) in ``prepare()``.

    ``transform`` maps one input example, ``target_transform`` one label; ``None`` means the
    identity. Both also receive whole batches when the dataset is indexed with many indices
    (transforms from ``zerograd.transforms`` handle both; any other callable is called once
    per example).
    """

    # What prepare() stores: arrays (examples along axis 0) in the datasets here; a subclass
    # may store any sequence that ``data[i]`` indexes (a list of sentences, of file names),
    # which is why these are not typed as arrays. ``label`` is None without labels.
    data: Any
    label: Any

    def __init__(self, train: bool = True, transform: TransformLike | None = None,
                 target_transform: TransformLike | None = None) -> None:
        self.train = train
        self.transform = transform if transform is not None else Identity()
        self.target_transform = target_transform if target_transform is not None else Identity()
        self.data = None
        self.label = None
        self.prepare()
        self._check_lengths()

    def _check_lengths(self) -> None:
        # A label array shorter than the data would surface later as an out-of-range index
        # in the middle of an epoch; say so where the dataset is built.
        if hasattr(self.data, "__len__") and hasattr(self.label, "__len__"):
            if len(self.data) != len(self.label):
                raise ShapeError(f"{type(self).__name__}: prepare() set {len(self.data)} "
                                 f"examples of data but {len(self.label)} labels; expected "
                                 f"one label per example")

    def prepare(self) -> None:
        """Load or generate ``self.data`` and ``self.label``; the base class has none."""

    @property
    def supports_batch_index(self) -> bool:
        """True when ``self[indices]`` fetches a batch with one fancy index of the arrays."""
        arrays = (self.data,) if self.label is None else (self.data, self.label)
        # An object array (e.g. ragged examples) cannot be fetched as one block.
        return (type(self).__getitem__ is Dataset.__getitem__
                and all(hasattr(a, "shape") and a.dtype != object for a in arrays))

    def __getitem__(self, index: Any) -> tuple[Any, Any]:
        """``(x, t)``: one example for an int, a batch for a slice or an index array."""
        if isinstance(index, np.ndarray) and index.ndim == 0:
            index = index.item()
        name = type(self).__name__
        if _is_integer_index(index):
            index = check_index(int(index), len(self), name)
            x = self.transform(self.data[index])
            if self.label is None:
                return x, None
            return x, self.target_transform(self.label[index])
        if np.isscalar(index):
            raise DTypeError(f"{name}: an index must be an int, a slice or an "
                             f"array of ints, got {type(index).__name__} {index!r}")
        index = check_indices(_batch_index(index, name), len(self), name)
        x = _take(self.data, index, self.transform, name, "x")
        if self.label is None:
            return x, None
        return x, _take(self.label, index, self.target_transform, name, "t")

    def __len__(self) -> int:
        if self.data is None:
            raise TypeError(f"{type(self).__name__} has no data: prepare() did not set it")
        return len(self.data)

    def __repr__(self) -> str:
        data = getattr(self.data, "shape", None)
        label = getattr(self.label, "shape", None)
        return f"{type(self).__name__}(train={self.train}, data={data}, label={label})"


def _take(array: Any, index: slice | np.ndarray, transform: TransformLike, owner: str,
          part: str) -> Any:
    """The batch ``array[index]``, transformed."""
    if hasattr(array, "shape") and array.dtype != object:
        return apply_batch(transform, array[index])
    # A list or an object array (examples of different shapes, say): transform example by
    # example, then stack, so a transform that makes the shapes agree (Resize) still batches.
    positions = np.asarray(range(len(array))[index] if isinstance(index, slice) else index)
    if positions.dtype == np.bool_:
        positions = np.flatnonzero(positions)
    return stack_batch([transform(array[int(i)]) for i in positions], owner, part, positions)


class ArrayDataset(Dataset):
    """A dataset over arrays: ``ArrayDataset(x, t)`` gives ``(x[i], t[i])``.

    ``data``: ``(N, ...)``; ``label``: ``(N, ...)`` or ``None``. Variables are unwrapped to
    their arrays. ``TensorDataset`` is the same class under PyTorch's name.
    """

    def __init__(self, data: Any, label: Any = None, transform: TransformLike | None = None,
                 target_transform: TransformLike | None = None, train: bool = True) -> None:
        self._arrays = (_unwrap(data), None if label is None else _unwrap(label))
        data, label = self._arrays
        if label is not None and len(data) != len(label):
            raise ShapeError(f"{type(self).__name__}: data has {len(data)} examples "
                             f"({data.dtype} {data.shape}) but label has {len(label)} "
                             f"({label.dtype} {label.shape}); expected the same number")
        super().__init__(train=train, transform=transform, target_transform=target_transform)

    def prepare(self) -> None:
        self.data, self.label = self._arrays


TensorDataset = ArrayDataset


def _unwrap(array: Any) -> np.ndarray:
    array = getattr(array, "data", array) if not isinstance(array, np.ndarray) else array
    if not hasattr(array, "shape"):
        try:
            array = np.asarray(array)
        except ValueError:
            # Examples of different shapes (sentences, images of many sizes): keep each one
            # as it is, in an object array. Single examples index fine; batching them names
            # the ragged ones (see stack_batch).
            examples = list(array)
            array = np.empty(len(examples), dtype=object)
            for i, example in enumerate(examples):
                array[i] = example
    if array.ndim == 0:
        raise ShapeError(f"ArrayDataset: expected arrays with examples along axis 0, got a "
                         f"0-d {array.dtype} array")
    return array


class Subset:
    """The examples of ``dataset`` at ``indices``, in that order (e.g. a train/test split).

    Batch indexing passes through to the dataset with one fancy index when it supports it.
    """

    def __init__(self, dataset: DatasetLike, indices: Sequence[int] | np.ndarray) -> None:
        self.dataset = dataset
        self.indices = np.asarray(indices, dtype=np.intp)
        if self.indices.ndim != 1:
            raise ShapeError(f"Subset: indices must be 1-D, got shape {self.indices.shape}")
        n = len(dataset)
        if len(self.indices) and (self.indices.min() < -n or self.indices.max() >= n):
            raise IndexError(f"Subset: indices must lie in [-{n}, {n}) for a dataset of "
                             f"{n} examples")

    @property
    def supports_batch_index(self) -> bool:
        return getattr(self.dataset, "supports_batch_index", False)

    def __getitem__(self, index: Any) -> tuple[Any, Any]:
        if isinstance(index, np.ndarray) and index.ndim == 0:
            index = index.item()
        if _is_integer_index(index):
            index = check_index(int(index), len(self), "Subset")
            return self.dataset[int(self.indices[index])]
        positions = self.indices[check_indices(_batch_index(index, "Subset"), len(self),
                                               "Subset")]
        if self.supports_batch_index:
            return self.dataset[positions]
        batch = [self.dataset[int(i)] for i in positions]
        x = stack_batch([example[0] for example in batch], "Subset", "x", positions)
        labels = [example[1] for example in batch]
        if all(label is None for label in labels):
            return x, None
        return x, stack_batch(labels, "Subset", "t", positions)

    def __len__(self) -> int:
        return len(self.indices)

    def __repr__(self) -> str:
        return f"Subset({self.dataset!r}, {len(self)} examples)"


__all__ = ["ArrayDataset", "DataFormatError", "Dataset", "DatasetIndexError", "DatasetLike",
           "Subset", "TensorDataset", "check_index", "check_indices"]
