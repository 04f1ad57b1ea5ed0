"""Each rank its own share of the data: ``DistributedSampler``, ``scatter_dataset``.

Every rank holds (or loads) the whole dataset and reads only its shard. For epoch ``e``
all ranks draw the same permutation of the N examples from ``(seed, e)``, independent of
NumPy's global random state, so they agree without talking to each other; rank r takes
every p-th example of it, starting at r. Interleaving (rather than cutting the permutation
into p blocks) makes batch k of the p ranks together exactly batch k of one process with
batch size pB over the same permutation: the basis of the one-process equivalence.

Equal shards: every rank must run the same number of steps, or one would wait forever in
an ``Allreduce`` the others never make. So the permutation is padded with its own first
examples up to a multiple of p (a few examples seen twice per epoch, as in PyTorch's
``DistributedSampler``), or with ``drop_last=True`` cut down to one. For evaluation, where
each rank only sums its own loss and there is no collective per batch, ``pad=False`` gives
every example exactly once (the shards then differ in size by at most one).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import numpy as np

from zerograd.data.dataset import DatasetLike, Subset
from zerograd.distributed.comm import communicator

__all__ = ["DatasetShard", "DistributedSampler", "scatter_dataset"]


def _check_int(value: object, name: str, low: int, owner: str) -> int:
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < low:
        raise ValueError(f"{owner}: {name} must be an int >= {low}, got {value!r}")
    return int(value)


class DistributedSampler:
    """The example indices of one rank's shard of ``dataset`` (or of ``range(n)``).

    ``num_replicas`` and ``rank`` default to the process group's. ``shuffle``: a new
    permutation each epoch, from ``seed`` and the epoch set by :meth:`set_epoch` (call it
    before every epoch; the same epoch always gives the same order, so a resumed run
    continues as it would have). ``iter(sampler)`` yields the indices; ``len(sampler)`` is
    the shard's size, equal on every rank unless ``pad=False`` (see the module doc).
    """

    def __init__(self, dataset: DatasetLike | int, num_replicas: int | None = None,
                 rank: int | None = None,
                 shuffle: bool = True, seed: int = 0, drop_last: bool = False,
                 pad: bool = True) -> None:
        owner = type(self).__name__
        n = dataset if isinstance(dataset, (int, np.integer)) else len(dataset)
        self.data_size = _check_int(n, "the dataset size", 1, owner)
        if num_replicas is None or rank is None:  # the process group's
            group = communicator()
            num_replicas = group.size if num_replicas is None else num_replicas
            rank = group.rank if rank is None else rank
        self.num_replicas = _check_int(num_replicas, "num_replicas", 1, owner)
        self.rank = _check_int(rank, "rank", 0, owner)
        if self.rank >= self.num_replicas:
            raise ValueError(f"{owner}: rank {self.rank} is not below num_replicas "
                             f"{self.num_replicas}")
        self.shuffle = bool(shuffle)
        self.seed = _check_int(seed, "seed", 0, owner)
        self.drop_last = bool(drop_last)
        self.pad = bool(pad)
        p = self.num_replicas
        if drop_last:
            if self.data_size < p:
                raise ValueError(f"{owner}: drop_last=True leaves no example per rank: "
                                 f"{self.data_size} examples for {p} ranks")
            self.total_size = self.data_size // p * p
        elif pad:
            self.total_size = math.ceil(self.data_size / p) * p
        else:  # every example once; rank r gets those at r, r + p, ...
            self.total_size = self.data_size
        self.num_samples = len(range(self.rank, self.total_size, p))
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Selects the permutation of epoch ``epoch`` (the same on every rank)."""
        self.epoch = _check_int(epoch, "epoch", 0, type(self).__name__)

    def order(self) -> np.ndarray:
        """This epoch's order of all examples, padded or cut to ``total_size``."""
        if self.shuffle:
            order = np.random.default_rng([self.seed, self.epoch]).permutation(self.data_size)
        else:
            order = np.arange(self.data_size)
        if self.total_size <= self.data_size:  # cut (drop_last), or neither cut nor padded
            return order[:self.total_size]
        # np.resize repeats the order cyclically, which also covers more ranks than examples.
        return np.concatenate([order, np.resize(order, self.total_size - self.data_size)])

    def indices(self) -> np.ndarray:
        """The dataset indices of this rank's shard for the current epoch."""
        return self.order()[self.rank:self.total_size:self.num_replicas]

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices().tolist())

    def __len__(self) -> int:
        return self.num_samples

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({self.data_size} examples, rank {self.rank} of "
                f"{self.num_replicas}, {self.num_samples} here, shuffle={self.shuffle}, "
                f"seed={self.seed}, epoch={self.epoch})")


class DatasetShard:
    """A rank's shard of ``dataset`` for the current epoch, usable as a dataset.

    ``DataLoader(shard, batch_size, shuffle=False)`` reads it in the sampler's order (it is
    already this epoch's permutation; the loader's own shuffle would only reorder the shard
    from NumPy's global state and break the equivalence with one process).
    ``shard.set_epoch(e)`` before each epoch selects that epoch's shard. Batch indexing
    passes through to the dataset, as for ``Subset``.
    """

    def __init__(self, dataset: DatasetLike, sampler: DistributedSampler) -> None:
        if len(dataset) != sampler.data_size:
            raise ValueError(f"DatasetShard: the sampler is for {sampler.data_size} examples, "
                             f"the dataset has {len(dataset)}")
        self.dataset = dataset
        self.sampler = sampler
        self._subset = Subset(dataset, sampler.indices())

    def set_epoch(self, epoch: int) -> None:
        self.sampler.set_epoch(epoch)
        self._subset = Subset(self.dataset, self.sampler.indices())

    @property
    def epoch(self) -> int:
        return self.sampler.epoch

    @property
    def indices(self) -> np.ndarray:
        """The dataset indices of this epoch's shard, in order."""
        return self._subset.indices

    @property
    def supports_batch_index(self) -> bool:
        return getattr(self.dataset, "supports_batch_index", False)

    def __getitem__(self, index: Any) -> Any:
        return self._subset[index]

    def __len__(self) -> int:
        return len(self.sampler)

    def __repr__(self) -> str:
        return f"DatasetShard({self.dataset!r}, {self.sampler!r})"


def scatter_dataset(dataset: DatasetLike, shuffle: bool = True, seed: int = 0,
                    drop_last: bool = False, pad: bool = True) -> DatasetShard:
    """This rank's :class:`DatasetShard` of ``dataset`` (ChainerMN's name).

    Every rank passes the whole dataset (each loads it itself); unlike ChainerMN's, nothing
    is sent from rank 0. ``shuffle``/``seed``: a new shard every epoch (``set_epoch``),
    identical on all ranks for the same seed. ``drop_last``/``pad``: see the module doc
    (``scatter_dataset(test_set, shuffle=False, pad=False)`` for evaluation).
    """
    return DatasetShard(dataset, DistributedSampler(dataset, shuffle=shuffle, seed=seed,
                                                    drop_last=drop_last, pad=pad))
