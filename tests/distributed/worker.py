"""The programs the distributed tests launch: ``mpiexec -n 2 python worker.py CASE OUT ...``.

Each case writes what the test checks into the directory OUT (``rank<r>.npz`` or
``rank<r>.json``); the test compares the ranks with each other and with a one-process
reference computed by the functions below (importing this module starts no MPI).
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np

import zerograd
import zerograd.distributed as dist
import zerograd.functions as F
import zerograd.layers as L
from zerograd import Model, optimizers
from zerograd.data import ArrayDataset, DataLoader, Subset

N_EXAMPLES = 48
N_FEATURES = 5
N_CLASSES = 3
SHARD_SEED = 3
LR = {"sgd": 0.5, "adam": 0.01, "momentum": 0.1}


def dataset(dtype=np.float32) -> ArrayDataset:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((N_EXAMPLES, N_FEATURES)).astype(dtype)
    t = rng.integers(0, N_CLASSES, size=N_EXAMPLES)
    return ArrayDataset(x, t)


class Net(Model):
    """Two lazily sized Linear layers, with an optional BatchNorm between them."""

    def __init__(self, batchnorm: bool = False, dtype=np.float32) -> None:
        super().__init__()
        self.l0 = L.Linear(7, dtype=dtype)
        self.bn = L.BatchNorm() if batchnorm else None
        self.l1 = L.Linear(N_CLASSES, dtype=dtype)

    def forward(self, x):
        h = self.l0(x)
        if self.bn is not None:
            h = self.bn(h)
        return self.l1(F.tanh(h))


def make_model(seed: int, batchnorm: bool = False, dtype=np.float32) -> Net:
    """The model with its lazy weights drawn from ``np.random.seed(seed)``."""
    np.random.seed(seed)
    model = Net(batchnorm, dtype)
    # Lazily sized layers get their weights; in test mode BatchNorm's running statistics
    # are created but not moved.
    with zerograd.no_grad(), zerograd.test_mode():
        model(np.zeros((2, N_FEATURES), dtype=dtype))
    return model


def make_optimizer(name: str):
    if name == "sgd":
        return optimizers.SGD(lr=LR["sgd"])
    if name == "momentum":
        return optimizers.MomentumSGD(lr=LR["momentum"])
    return optimizers.Adam(alpha=LR["adam"])


def step(model, optimizer, x, t) -> float:
    loss = F.softmax_cross_entropy(model(x), t)
    model.cleargrads()
    loss.backward()
    optimizer.update()
    return float(loss.data)


def shard_order(epoch: int) -> np.ndarray:
    """The permutation of all examples that the shards of ``epoch`` interleave."""
    sampler = dist.DistributedSampler(N_EXAMPLES, num_replicas=1, rank=0, seed=SHARD_SEED)
    sampler.set_epoch(epoch)
    return sampler.order()


def reference(optimizer_name: str, batch: int, steps: int, dtype=np.float32,
              ghost_batch: int | None = None) -> dict:
    """One process, plain zerograd: batches of ``batch`` over each epoch's permutation.

    ``ghost_batch``: each batch runs as separate passes over the pieces ``x[r::pieces]``
    (every piece-th example, as the ranks' shards interleave), so that BatchNorm takes its
    statistics per piece as it does per rank; the gradients are averaged: what data
    parallelism with per-rank statistics computes.
    """
    data = dataset(dtype)
    model = make_model(100, batchnorm=ghost_batch is not None, dtype=dtype)
    optimizer = make_optimizer(optimizer_name).setup(model)
    done, epoch = 0, 0
    while done < steps:
        loader = DataLoader(Subset(data, shard_order(epoch)), batch, shuffle=False)
        for x, t in loader:
            if ghost_batch is None:
                step(model, optimizer, x, t)
            else:
                n_pieces = len(x) // ghost_batch
                pieces = [(x[r::n_pieces], t[r::n_pieces]) for r in range(n_pieces)]
                model.cleargrads()
                for xs, ts in pieces:
                    loss = F.softmax_cross_entropy(model(xs), ts) * (1.0 / len(pieces))
                    loss.backward()
                optimizer.update()
            done += 1
            if done == steps:
                break
        epoch += 1
    return model.state_dict()


# ---------------------------------------------------------------------------------------------
# Cases, run under mpiexec (or alone, for the one-process fallback)
# ---------------------------------------------------------------------------------------------
def case_train(out: str, args) -> None:
    """Data-parallel training: every rank starts from other weights (seed 100 + rank), so
    broadcast_parameters must make them rank 0's; then ``steps`` updates over shards."""
    dist.init()
    dtype = np.dtype(args.dtype)
    model = make_model(100 + dist.rank(), batchnorm=args.batchnorm, dtype=dtype)
    dist.broadcast_parameters(model)
    optimizer = dist.DistributedOptimizer(make_optimizer(args.optimizer).setup(model),
                                          bucket_bytes=args.bucket_bytes)
    shard = dist.scatter_dataset(dataset(dtype), shuffle=True, seed=SHARD_SEED)
    loader = DataLoader(shard, args.batch, shuffle=False)
    losses, done, epoch = [], 0, 0
    while done < args.steps:
        shard.set_epoch(epoch)
        for x, t in loader:
            losses.append(dist.allreduce_mean(step(model, optimizer, x, t)))
            done += 1
            if done == args.steps:
                break
        epoch += 1
    stats = optimizer.stats
    arrays = model.state_dict()
    arrays["losses"] = np.array(losses)
    arrays["stats"] = np.array([stats.steps, stats.allreduce_calls, stats.step_bytes])
    arrays["world"] = np.array([dist.world_size(), dist.communicator().backend == "mpi"])
    np.savez(os.path.join(out, f"rank{dist.rank()}.npz"), **arrays)


class Branches(Model):
    """``a`` used by every rank; ``b`` only by rank 0; ``c`` by no rank."""

    def __init__(self) -> None:
        super().__init__()
        self.a = L.Linear(N_CLASSES, in_size=N_FEATURES)
        self.b = L.Linear(N_CLASSES, in_size=N_FEATURES)
        self.c = L.Linear(N_CLASSES, in_size=N_FEATURES)

    def forward(self, x, use_b: bool):
        y = self.a(x)
        return y + self.b(x) if use_b else y


def case_unused(out: str, args) -> None:
    """Rank 1 never computes a gradient for ``b``; no rank for ``c``. Must not hang."""
    dist.init()
    np.random.seed(7)
    model = Branches()
    dist.broadcast_parameters(model)
    optimizer = dist.DistributedOptimizer(optimizers.SGD(lr=1.0).setup(model))
    data = dataset()
    before = model.state_dict()
    local_grads = []
    for k in range(args.steps):
        x = data.data[8 * k + 4 * dist.rank():8 * k + 4 * dist.rank() + 4]
        t = data.label[8 * k + 4 * dist.rank():8 * k + 4 * dist.rank() + 4]
        loss = F.softmax_cross_entropy(model(x, use_b=dist.rank() == 0), t)
        model.cleargrads()
        loss.backward()
        local_grads.append({name: None if p.grad is None else p.grad.data.copy()
                            for name, p in model.named_params()})
        optimizer.update()
        if k == 0:
            grad_c_none = model.c.W.grad is None
    arrays = {f"after/{k}": v for k, v in model.state_dict().items()}
    arrays.update({f"before/{k}": v for k, v in before.items()})
    if dist.rank() == 0:
        arrays["grad_b_W"] = np.stack([g["b/W"] for g in local_grads])
    arrays["grad_c_none"] = np.array(grad_c_none)
    np.savez(os.path.join(out, f"rank{dist.rank()}.npz"), **arrays)


def case_mismatch(out: str, args) -> None:
    """Rank r builds a hidden layer of 4 + r units; broadcast_parameters must refuse, on
    every rank, with the same message (caught here so that each rank can report it)."""
    dist.init()
    np.random.seed(0)
    model = Model()
    model.l0 = L.Linear(4 + dist.rank(), in_size=N_FEATURES)
    model.l1 = L.Linear(2, in_size=4 + dist.rank())
    if args.no_broadcast:
        # Same structure, different weights, no broadcast: the first update must refuse.
        model = Model()
        np.random.seed(dist.rank())
        model.l0 = L.Linear(4, in_size=N_FEATURES)
    try:
        if args.no_broadcast:
            optimizer = dist.DistributedOptimizer(optimizers.SGD().setup(model))
            y = model.l0(np.ones((1, N_FEATURES), np.float32))
            F.sum(y).backward()
            optimizer.update()
        else:
            dist.broadcast_parameters(model)
        message = None
    except dist.DistributedError as error:
        message = str(error)
    with open(os.path.join(out, f"rank{dist.rank()}.json"), "w") as f:
        json.dump({"error": message}, f)


def case_abort(out: str, args) -> None:
    """Rank 1 raises (or, ``--handled``, reports an error and calls ``dist.abort(4)``);
    rank 0 waits in an allreduce that rank 1 never joins."""
    dist.init()
    if dist.rank() == 1:
        if args.handled:
            print("error: rank 1 gives up", file=sys.stderr)
            dist.abort(4)
        raise ValueError("deliberate failure on rank 1")
    dist.allreduce_mean(1.0)
    print("rank 0 finished", flush=True)


def case_shards(out: str, args) -> None:
    """Each rank's shard for epochs 0..2, and what a DataLoader over it yields."""
    dist.init()
    data = dataset()
    shard = dist.scatter_dataset(data, shuffle=True, seed=SHARD_SEED)
    report = {"rank": dist.rank(), "world_size": dist.world_size(),
              "backend": dist.communicator().backend, "epochs": [], "loader_ok": []}
    for epoch in range(3):
        shard.set_epoch(epoch)
        report["epochs"].append(shard.indices.tolist())
        xs = np.concatenate([x for x, _ in DataLoader(shard, 5, shuffle=False)])
        report["loader_ok"].append(bool(np.array_equal(xs, data.data[shard.indices])))
    with open(os.path.join(out, f"rank{dist.rank()}.json"), "w") as f:
        json.dump(report, f)


CASES = {"train": case_train, "unused": case_unused, "mismatch": case_mismatch,
         "abort": case_abort, "shards": case_shards}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("case", choices=sorted(CASES))
    parser.add_argument("out")
    parser.add_argument("--optimizer", default="sgd", choices=sorted(LR))
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--batchnorm", action="store_true")
    parser.add_argument("--no-broadcast", action="store_true")
    parser.add_argument("--handled", action="store_true")
    parser.add_argument("--bucket-bytes", type=int, default=dist.DEFAULT_BUCKET_BYTES)
    args = parser.parse_args(argv)
    CASES[args.case](args.out, args)


if __name__ == "__main__":
    sys.exit(main())
