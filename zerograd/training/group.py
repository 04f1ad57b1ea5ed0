"""The processes ``fit`` runs on: one, or a data-parallel group (``fit(distributed=...)``).

``fit`` talks to the group through :class:`ProcessGroup` alone, so the loop reads the same
with one process or many. What ``distributed=`` may be:

- ``None`` (or False): this process alone;
- ``True``: ``zerograd.distributed``, whose process group is joined here (world size 1
  outside ``mpiexec``);
- any object with ``is_main()`` and ``allreduce_sum(array) -> array``: the minimal seam.
  Only the main process writes, and the epoch's sums are added over the processes. Every
  process reads the checkpoint itself on resume (a file system they all see) and takes the
  main process's random state from it.

An object that also has ``rank()``, ``world_size()``, ``broadcast_object(obj)`` and
``allgather_object(obj)`` (``zerograd.distributed`` has them all) gets the full protocol:
only the main process reads the run directory and broadcasts what it read (no shared file
system needed), and the checkpoint keeps every process's own random state and running
sums, so that a resumed run continues on every process exactly where it stopped.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

import zerograd.distributed

_FULL_PROTOCOL = ("rank", "world_size", "broadcast_object", "allgather_object")


class ProcessGroup:
    """``distributed=`` as the loop uses it (see the module doc)."""

    def __init__(self, distributed=None) -> None:
        if distributed is True:
            zerograd.distributed.init()
            distributed = zerograd.distributed
        elif distributed is False:
            distributed = None
        if distributed is not None:
            missing = [name for name in ("is_main", "allreduce_sum")
                       if not callable(getattr(distributed, name, None))]
            if missing:
                raise TypeError(f"fit: distributed= must be True, None, or an object with "
                                f"is_main() and allreduce_sum(array) (zerograd.distributed "
                                f"is one); {type(distributed).__name__} has no {missing}")
        self.distributed = distributed
        self.full = distributed is not None and all(
            callable(getattr(distributed, name, None)) for name in _FULL_PROTOCOL)
        self.is_main = distributed is None or bool(distributed.is_main())
        self.rank = int(distributed.rank()) if self.full else (0 if self.is_main else None)
        self.size = int(distributed.world_size()) if self.full else None

    @property
    def alone(self) -> bool:
        return self.distributed is None or self.size == 1

    def allreduce_sum(self, array: np.ndarray) -> np.ndarray:
        if self.distributed is None:
            return array
        return np.asarray(self.distributed.allreduce_sum(array))

    def from_main(self, read: Callable[[], object]):
        """``read()`` on the main process, its result on every process. With the minimal
        seam every process calls ``read()`` itself (they share a file system)."""
        if not self.full:
            return read()
        return self.distributed.broadcast_object(read() if self.is_main else None)

    def gather(self, obj) -> list | None:
        """``[obj of rank 0, obj of rank 1, ...]`` on every process (a collective), or None
        for one process or the minimal seam."""
        if not self.full or self.size == 1:
            return None
        return list(self.distributed.allgather_object(obj))


__all__ = ["ProcessGroup"]
