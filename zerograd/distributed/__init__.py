"""``zerograd.distributed``: data-parallel training on many processes and hosts, over MPI.

One model per process; each process trains on its own shard of every epoch; the gradients
are averaged over the processes before every update, so all copies stay equal and p
processes with batch B step as one process with batch pB. The engine is MPI through
``mpi4py`` (``pip install 'zerograd[mpi]'``), imported on first use; without it a script
runs as one process. Launch with ``mpiexec -n 4 python train.py``; see docs/distributed.md.

::

    import zerograd.distributed as dist
    dist.init()
    shard = dist.scatter_dataset(train_set, shuffle=True, seed=0)
    loader = DataLoader(shard, batch_size, shuffle=False)
    model(x0)                                   # lazily sized layers get their weights
    dist.broadcast_parameters(model)            # every rank starts from rank 0's
    optimizer = dist.DistributedOptimizer(optimizers.Adam().setup(model))
    for epoch in range(epochs):
        shard.set_epoch(epoch)
        for x, t in loader:
            ...; loss.backward(); optimizer.update()
        loss = dist.allreduce_mean(epoch_loss)   # a global metric
        if dist.is_main(): print(loss)

Names (ChainerMN's, DeZero's ancestor, with PyTorch's in brackets): ``init``
(``init_process_group``, ChainerMN ``create_communicator``), ``rank``, ``world_size``,
``is_main``, ``barrier``, ``broadcast_parameters`` (what DDP does at construction),
``DistributedOptimizer`` / ``create_multi_node_optimizer`` (DDP's gradient averaging),
``DistributedSampler``, ``scatter_dataset``, ``allreduce_mean`` / ``allreduce_sum``
(``all_reduce``).
"""

from zerograd.distributed.comm import (
    MPI_INSTALL_HINT,
    DistributedError,
    abort,
    allgather_object,
    allreduce_mean,
    allreduce_sum,
    barrier,
    broadcast_object,
    communicator,
    find_mpiexec,
    init,
    is_main,
    rank,
    world_size,
)
from zerograd.distributed.optimizer import (
    DEFAULT_BUCKET_BYTES,
    CommStats,
    DistributedOptimizer,
    broadcast_optimizer_state,
    create_multi_node_optimizer,
)
from zerograd.distributed.params import broadcast_parameters
from zerograd.distributed.sampler import DatasetShard, DistributedSampler, scatter_dataset

__all__ = [
    "DEFAULT_BUCKET_BYTES", "CommStats", "DatasetShard", "DistributedError", "DistributedOptimizer",
    "DistributedSampler", "MPI_INSTALL_HINT", "abort", "allgather_object", "allreduce_mean",
    "allreduce_sum", "barrier", "broadcast_object", "broadcast_optimizer_state",
    "broadcast_parameters", "communicator", "create_multi_node_optimizer", "find_mpiexec",
    "init", "is_main", "rank", "scatter_dataset", "world_size",
]
