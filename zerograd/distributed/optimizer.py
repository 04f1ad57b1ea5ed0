"""``DistributedOptimizer``: average the gradients over all ranks, then take the usual step.

Data parallelism in one line: every rank computes the gradient of the mean loss over its
own B examples; the mean of those p gradients is the gradient of the mean loss over all pB
examples. So p processes with batch B take the same step as one process with batch pB on
the same examples, and every rank, starting from the same weights, stays in step with the
others.

How the mean is taken (the design PyTorch DDP and Horovod call gradient bucketing): the
gradients of one dtype are copied into one contiguous buffer in the model's definition
order, and the buffer is summed over ranks by one ``Allreduce`` (several only when it is
larger than ``bucket_bytes``), instead of one call per parameter. A collective costs a
fixed latency per call plus its bytes over the bandwidth, so for a model of many small
parameters one call instead of dozens is the whole difference. The gradients then are
views into the reduced buffer, scaled by 1/p; no array a rank computed is written to
(the engine may hand one gradient array to two parameters).

Parameters without a gradient: a rank may not have used a parameter this step (a branch
its batch did not take). It still sends zeros, so every rank reduces the same buffer; a
count in the same buffer, one per parameter, says how many ranks had a gradient, and a
parameter no rank touched keeps ``grad = None`` and is not updated. The average over ranks
counts the missing gradient as zero, which is exactly the one-process gradient over pB
examples.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from zerograd.backend import as_numpy, get_array_module
from zerograd.core.variable import Parameter, Variable
from zerograd.distributed.comm import DistributedError, _check_root, communicator, init
from zerograd.distributed.params import check_same_structure, signature
from zerograd.errors import ShapeError

if TYPE_CHECKING:
    from zerograd.optim.optimizer import Optimizer, Target

__all__ = ["CommStats", "DistributedOptimizer", "broadcast_optimizer_state",
           "create_multi_node_optimizer"]

# Gradient bytes per Allreduce at most. Beyond a few MiB a message runs at the link's
# bandwidth (MPI splits it into segments of its own), so a larger bucket saves only the
# latency of the extra calls; the cap bounds the message size an MPI build must handle.
DEFAULT_BUCKET_BYTES = 64 * 2**20


@dataclass
class CommStats:
    """What the gradient averaging cost, summed over the updates since the last ``reset``.

    ``seconds`` is the wall time spent inside ``Allreduce``: transfer and reduction, plus
    any time this rank waited for a slower one (load imbalance shows up here).
    """

    steps: int = 0
    allreduce_calls: int = 0
    bytes_reduced: int = 0
    seconds: float = 0.0
    pack_seconds: float = 0.0
    step_bytes: int = field(default=0)  # the payload of one update

    def reset(self) -> None:
        self.steps = self.allreduce_calls = self.bytes_reduced = 0
        self.seconds = self.pack_seconds = 0.0


@dataclass
class _DtypeBucket:
    """The gradients of one dtype: where each lies in the buffer, and the chunks to reduce.

    Buffer layout: the flattened gradients one after another (``offsets``), then one count
    per parameter (how many ranks had a gradient for it).
    """

    dtype: np.dtype
    members: list[int]          # indices into the parameter list
    offsets: list[int]          # len(members) + 1 boundaries of the gradients
    chunks: list[tuple[int, int]]

    @property
    def grad_size(self) -> int:
        return self.offsets[-1]

    @property
    def length(self) -> int:
        return self.offsets[-1] + len(self.members)


def _plan(layout: list[tuple[str, tuple]], bucket_bytes: int) -> list[_DtypeBucket]:
    """One buffer per dtype (in the order of dtype names, the same on every rank)."""
    members: dict[str, list[int]] = {}
    for i, (dtype, _) in enumerate(layout):
        members.setdefault(dtype, []).append(i)
    buckets = []
    for dtype in sorted(members):
        indices = members[dtype]
        offsets = [0]
        for i in indices:
            offsets.append(offsets[-1] + math.prod(layout[i][1]))
        dt = np.dtype(dtype)
        length = offsets[-1] + len(indices)
        step = max(1, bucket_bytes // dt.itemsize)
        chunks = [(start, min(start + step, length)) for start in range(0, length, step)]
        buckets.append(_DtypeBucket(dt, indices, offsets, chunks))
    return buckets


class DistributedOptimizer:
    """Wraps an optimizer so that ``update()`` first averages every gradient over the ranks.

    ``DistributedOptimizer(optimizers.Adam().setup(model))``; everything else (``lr``,
    ``add_hook``, ``state_dict``, schedulers) is the wrapped optimizer's, so hooks such as
    gradient clipping see the averaged gradients, as in one process. ``bucket_bytes`` caps
    the bytes of one ``Allreduce``. ``stats`` (a :class:`CommStats`) counts the calls, bytes
    and seconds of the averaging.

    At the first update the ranks compare their parameters (names, shapes, dtypes and the
    bytes of the weights) and all raise ``DistributedError`` if they differ: start every
    rank from the same weights with ``broadcast_parameters(model)``.
    With one process ``update()`` is the wrapped optimizer's, at no cost.
    """

    _OWN = ("optimizer", "bucket_bytes", "stats", "_layout", "_buckets", "_names")
    # The wrapper's own attributes (the others are the wrapped optimizer's), written with
    # object.__setattr__ past the forwarding __setattr__.
    optimizer: Optimizer
    bucket_bytes: int
    stats: CommStats
    # (dtype, shape) per parameter, fixed at the first update (None before it), with the
    # buckets planned from it and the parameters' names (empty before it).
    _layout: list[tuple[str, tuple]] | None
    _buckets: list[_DtypeBucket]
    _names: list[str]

    def __init__(self, optimizer: Optimizer, bucket_bytes: int = DEFAULT_BUCKET_BYTES) -> None:
        if not hasattr(optimizer, "update") or not hasattr(optimizer, "target_params"):
            raise TypeError(f"DistributedOptimizer: expected a zerograd Optimizer, got "
                            f"{type(optimizer).__name__}")
        if not isinstance(bucket_bytes, int) or bucket_bytes < 1:
            raise ValueError(f"DistributedOptimizer: bucket_bytes must be a positive int, got "
                             f"{bucket_bytes!r}")
        object.__setattr__(self, "optimizer", optimizer)
        object.__setattr__(self, "bucket_bytes", bucket_bytes)
        object.__setattr__(self, "stats", CommStats())
        self._forget_layout()

    # The wrapped optimizer's attributes read and written through the wrapper (whatever
    # its class has: lr, alpha, ... hence Any).
    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name in DistributedOptimizer._OWN:
            raise AttributeError(name)
        return getattr(self.optimizer, name)

    def __setattr__(self, name: str, value: Any) -> None:
        if name in DistributedOptimizer._OWN:
            object.__setattr__(self, name, value)
        else:
            setattr(self.optimizer, name, value)

    def _forget_layout(self) -> None:
        object.__setattr__(self, "_layout", None)
        object.__setattr__(self, "_buckets", [])
        object.__setattr__(self, "_names", [])

    def setup(self, target: Target) -> DistributedOptimizer:
        self.optimizer.setup(target)
        self._forget_layout()
        return self

    def average_gradients(self) -> None:
        """Replace every gradient by its mean over the ranks (nothing to do on one rank)."""
        if communicator().size > 1:
            self.allreduce_grads()

    def update(self, average: bool = True) -> None:
        """Average the gradients over the ranks, then the wrapped optimizer's update.

        ``average=False`` skips the averaging, for a caller that already averaged (to clip
        the averaged gradients first, as one process with the whole batch would).
        """
        if average:
            self.average_gradients()
        self.optimizer.update()

    # -- the averaging -----------------------------------------------------------------------
    def _param_names(self, params: list[Parameter]) -> list[str]:
        named_params = getattr(self.optimizer.target, "named_params", None)
        if named_params is not None:  # a Layer
            return [name for name, _ in named_params()]
        return [f"param {i}" for i in range(len(params))]

    def _current_layout(self, params: list[Parameter]) -> list[tuple[str, tuple]]:
        layout = []
        for i, p in enumerate(params):
            if p.data is None:
                name = self._param_names(params)[i]
                raise DistributedError(
                    f"DistributedOptimizer: parameter {name!r} has no data yet (a lazily "
                    f"sized layer that was never called). Every rank needs the same "
                    f"parameters: call the model once on every rank, then "
                    f"broadcast_parameters(model), before the first update")
            layout.append((np.dtype(p.data.dtype).str, tuple(p.data.shape)))
        return layout

    def _verify(self, params: list[Parameter]) -> None:
        """Once: every rank has the same parameters with the same values (a collective)."""
        names = self._param_names(params)
        rows = signature([(name, "param", p) for name, p in zip(names, params)],
                         with_digest=True)
        check_same_structure(
            communicator().allgather(rows), 0, "DistributedOptimizer (first update)",
            compare_digests=True,
            hint="Every rank must start from the same weights: call "
                 "zerograd.distributed.broadcast_parameters(model) after the first forward "
                 "pass and before the first update")
        self._names = names

    def allreduce_grads(self) -> None:
        """Replace every gradient by its mean over the ranks (a collective)."""
        group = communicator()
        params = list(self.optimizer.target_params())
        layout = self._current_layout(params)
        if self._layout is None:
            self._verify(params)
            self._layout = layout
            self._buckets = _plan(layout, self.bucket_bytes)
            self.stats.step_bytes = sum(b.length * b.dtype.itemsize for b in self._buckets)
        elif layout != self._layout:
            changed = next(i for i, (a, b) in enumerate(zip(layout, self._layout)) if a != b) \
                if len(layout) == len(self._layout) else None
            what = (f"parameter {self._names[changed]!r} changed from "
                    f"{self._layout[changed]} to {layout[changed]}" if changed is not None
                    else f"the number of parameters changed from {len(self._layout)} to "
                         f"{len(layout)}")
            raise DistributedError(
                f"DistributedOptimizer: the model's parameters changed after the first update "
                f"({what}); the ranks may no longer agree on the buffer to reduce. Create "
                f"all parameters before training (or call setup(model) again on every rank)")
        scale = 1.0 / group.size
        for bucket in self._buckets:
            start_time = time.perf_counter()
            buffer = np.empty(bucket.length, dtype=bucket.dtype)
            counts = buffer[bucket.grad_size:]
            for k, i in enumerate(bucket.members):
                grad = params[i].grad
                part = buffer[bucket.offsets[k]:bucket.offsets[k + 1]]
                if grad is None:
                    part.fill(0)
                    counts[k] = 0
                    continue
                if tuple(grad.shape) != layout[i][1]:
                    raise ShapeError(
                        f"DistributedOptimizer: the gradient of {self._names[i]!r} has shape "
                        f"{tuple(grad.shape)}, the parameter {layout[i][1]}")
                part[...] = as_numpy(grad.data).reshape(-1)
                counts[k] = 1
            reduce_start = time.perf_counter()
            for start, stop in bucket.chunks:
                group.Allreduce_sum(buffer[start:stop])
            reduce_stop = time.perf_counter()
            grads = buffer[:bucket.grad_size]
            np.multiply(grads, scale, out=grads)
            for k, i in enumerate(bucket.members):
                param = params[i]
                if counts[k] == 0:  # no rank had a gradient: no update, as in one process
                    param.grad = None
                    continue
                mean = grads[bucket.offsets[k]:bucket.offsets[k + 1]].reshape(layout[i][1])
                xp = get_array_module(param.data)
                param.grad = Variable(mean if xp is np else xp.asarray(mean),
                                      requires_grad=False)
            self.stats.allreduce_calls += len(bucket.chunks)
            self.stats.bytes_reduced += bucket.length * bucket.dtype.itemsize
            self.stats.seconds += reduce_stop - reduce_start
            self.stats.pack_seconds += (reduce_start - start_time
                                        + time.perf_counter() - reduce_stop)
        self.stats.steps += 1

    def __repr__(self) -> str:
        return f"DistributedOptimizer({self.optimizer!r}, world_size={communicator().size})"


def create_multi_node_optimizer(actual_optimizer: Optimizer,
                                communicator: Any = None) -> DistributedOptimizer:
    """ChainerMN's name for ``DistributedOptimizer(actual_optimizer)``. ``communicator``, if
    given, is an ``mpi4py`` communicator to train on (it becomes the process group; mpi4py
    has no type information)."""
    if communicator is not None:
        init(communicator)
    return DistributedOptimizer(actual_optimizer)


def broadcast_optimizer_state(optimizer: Optimizer | DistributedOptimizer, root: int = 0) -> None:
    """Copies rank ``root``'s optimizer state (momentum buffers, Adam's moments and step
    count, the hyperparameters) to every rank. A collective: every rank calls it.

    For a resume where only rank 0 reads the checkpoint: load it on rank 0, then
    ``broadcast_parameters(model)`` and ``broadcast_optimizer_state(optimizer)``.
    ``optimizer``: an Optimizer or a ``DistributedOptimizer``.
    """
    group = communicator()
    root = _check_root(root, group.size)
    inner = optimizer.optimizer if isinstance(optimizer, DistributedOptimizer) else optimizer
    state = inner.state_dict() if group.rank == root else None
    state = group.bcast(state, root)
    if group.rank != root:
        inner.load_state_dict(state)
