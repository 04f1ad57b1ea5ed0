"""Data-parallel MLP training over MPI (issue 11): 1 process against 2, and what it costs.

    python benchmarks/bench_distributed.py [--batches 60] [--rounds 3]

The MNIST-shaped MLP of bench_mlp.py (784-1000-1000-10 ReLU, SGD) trained by
``zerograd.distributed`` in three set-ups, each in its own processes, round after round:

- 1 process, 2 BLAS threads, batch 100 (and 1 thread: on a loaded machine two threads in one
  process can be slower than one);
- 2 processes (``mpiexec -n 2``), 1 BLAS thread each, batch 50 each: the same 100 examples
  per step, the same number of steps per epoch (strong scaling);
- 2 processes, 1 BLAS thread each, batch 100 each: 200 examples per step, half the steps
  (the command line's rule, where ``--batch-size`` is per process).

For each: the epoch time (60,000 examples), the time per step spent inside ``Allreduce`` (on
rank 0; it includes waiting for the slower rank) and in packing the gradients, and the bytes
reduced per step. Then the collective alone (``Allreduce`` of 8 bytes and of one step's
gradients, on this machine's shared memory), and the ring-allreduce cost model projected to
8 and 64 ranks on a cluster network: t = 2(p-1)/p * bytes / bandwidth + 2(p-1) * latency per
call, for the bucketed design (one call per step) and for one call per parameter, for the
MLP and for a ResNet-50-sized gradient (161 tensors), where the number of calls matters.

Without mpi4py or mpiexec only the one-process set-up runs (pip install -e ".[mpi]").
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import zerograd.distributed as dist
import zerograd.functions as F
from benchmarks._common import CpuLoad
from benchmarks.bench_mlp import EPOCH, SIZES, make_batches
from zerograd import optimizers
from zerograd.models import MLP

# Assumed cluster networks for the projection: (name, bandwidth in bytes/s, latency in s).
# EDR InfiniBand carries 100 Gb/s with about 1-2 us MPI latency; 10 Gb Ethernet with TCP
# about 30 us.
NETWORKS = (("InfiniBand EDR (100 Gb/s, 2 us)", 12.5e9, 2e-6),
            ("10 Gb Ethernet (1.25 GB/s, 30 us)", 1.25e9, 30e-6))
WARMUP_STEPS = 3


# ---------------------------------------------------------------------------------------------
# The worker: one set-up, in the processes the driver started
# ---------------------------------------------------------------------------------------------
def worker(batch: int, steps: int) -> None:
    dist.init()
    p, r = dist.world_size(), dist.rank()
    # Each step's global batch is p * batch examples; rank r takes every p-th of them.
    per_step = p * batch
    pool = make_batches((WARMUP_STEPS + steps) * per_step // 100 + 1)
    x_all = np.concatenate([x for x, _ in pool])
    t_all = np.concatenate([t for _, t in pool])
    batches = []
    for k in range(WARMUP_STEPS + steps):
        rows = slice(k * per_step + r, (k + 1) * per_step, p)
        batches.append((x_all[rows], t_all[rows]))

    np.random.seed(0)
    model = MLP(SIZES, activation=F.relu)
    model(batches[0][0])  # lazily sized layers get their weights
    dist.broadcast_parameters(model)
    optimizer = dist.DistributedOptimizer(optimizers.SGD(lr=0.1).setup(model))

    def train(part):
        for x, t in part:
            loss = F.softmax_cross_entropy(model(x), t)
            model.cleargrads()
            loss.backward()
            optimizer.update()

    train(batches[:WARMUP_STEPS])
    optimizer.stats.reset()
    dist.barrier()
    start = time.perf_counter()
    train(batches[WARMUP_STEPS:])
    dist.barrier()
    seconds = time.perf_counter() - start
    stats = optimizer.stats
    record = {"step": seconds / steps, "comm": stats.seconds / steps,
              "pack": stats.pack_seconds / steps, "bytes": stats.step_bytes,
              "calls": stats.allreduce_calls / steps if p > 1 else 0.0,
              "params": sum(1 for _ in model.params()), "per_step": per_step}
    if p > 1:
        # The collective alone: every rank enters together, so no waiting is measured.
        record["allreduce"] = {str(n): _time_allreduce(n)
                               for n in (8, stats.step_bytes)}
    if dist.is_main():
        print("RESULT " + json.dumps(record), flush=True)


def _time_allreduce(n_bytes: int, repeats: int = 30) -> float:
    buffer = np.ones(max(1, n_bytes // 4), dtype=np.float32)
    group = dist.communicator()
    times = []
    for _ in range(repeats):
        group.barrier()
        start = time.perf_counter()
        group.Allreduce_sum(buffer)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


# ---------------------------------------------------------------------------------------------
# The driver
# ---------------------------------------------------------------------------------------------
def _mpiexec() -> tuple[str | None, str]:
    if importlib.util.find_spec("mpi4py") is None:
        return None, "mpi4py is not installed (pip install -e '.[mpi]')"
    mpiexec = dist.find_mpiexec()
    return mpiexec, "" if mpiexec else "no mpiexec found (pip install -e '.[mpi]')"


def _launch(processes: int, threads: int, batch: int, steps: int, mpiexec: str | None) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PMI_", "OMPI_"))}
    env.update(OPENBLAS_NUM_THREADS=str(threads), OMP_NUM_THREADS=str(threads),
               MKL_NUM_THREADS=str(threads))
    command = [sys.executable, __file__, "--worker", "--batch", str(batch), "--steps",
               str(steps)]
    if processes > 1:
        command = [mpiexec, "-n", str(processes), *command]
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600,
                            stdin=subprocess.DEVNULL)
    for line in result.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT "):])
    raise RuntimeError(f"{' '.join(command)} failed ({result.returncode}):\n{result.stdout}"
                       f"\n{result.stderr}")


def ring_allreduce_seconds(p: int, n_bytes: float, bandwidth: float, latency: float,
                           calls: int = 1) -> float:
    """The ring allreduce's cost: each of ``calls`` messages (``n_bytes`` in all) takes
    2(p-1) steps, each sending 1/p of it: 2(p-1)/p * bytes / bandwidth + 2(p-1) * latency."""
    return 2 * (p - 1) / p * n_bytes / bandwidth + calls * 2 * (p - 1) * latency


def epoch_of(m: dict) -> float:
    """Seconds per epoch of 60,000 examples from a set-up's step time and step size."""
    return m["step"] * EPOCH / m["per_step"]


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:8.2f} ms"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=60, help="timed steps per run")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--batch", type=int, default=100, help=argparse.SUPPRESS)
    parser.add_argument("--steps", type=int, default=60, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker(args.batch, args.steps)
        return

    mpiexec, why_not = _mpiexec()
    setups = {"1 process x 2 threads, batch 100": (1, 2, 100),
              "1 process x 1 thread, batch 100": (1, 1, 100)}
    if mpiexec:
        setups["2 processes x 1 thread, batch 50 each"] = (2, 1, 50)
        setups["2 processes x 1 thread, batch 100 each"] = (2, 1, 100)
    else:
        print(f"2-process set-ups skipped: {why_not}")
    samples: dict[str, list[dict]] = {name: [] for name in setups}
    load = CpuLoad()
    for _ in range(args.rounds):
        for name, (processes, threads, batch) in setups.items():
            samples[name].append(_launch(processes, threads, batch, args.batches, mpiexec))
    other = load.other()

    print(f"MLP 784-1000-1000-10 (ReLU, SGD), {args.batches} timed steps per run, medians of "
          f"{args.rounds} rounds, epoch = {EPOCH:,} examples"
          + (f"; other load {other:.0%}" + (" NOISY" if other > 0.10 else "")
             if other is not None else ""))
    header = (f"{'set-up':<42} {'epoch':>10} {'step':>11} {'allreduce':>11} {'pack':>11} "
              f"{'bytes/step':>12}")
    print(header)
    print("-" * len(header))
    medians = {}
    for name, runs in samples.items():
        m = {key: statistics.median(run[key] for run in runs)
             for key in ("step", "comm", "pack", "bytes", "calls", "per_step")}
        medians[name] = m
        print(f"{name:<42} {epoch_of(m):9.2f}s {_ms(m['step'])} {_ms(m['comm'])} {_ms(m['pack'])} "
              f"{int(m['bytes']):>12,}")
    singles = {name: epoch_of(m) for name, m in medians.items() if name.startswith("1 ")}
    for name, m in medians.items():
        if name.startswith("2 processes"):
            speedups = ", ".join(f"{t / epoch_of(m):.2f}x {single.split(',')[0]}"
                                 for single, t in singles.items())
            print(f"  {name}: epoch speed {speedups}; {m['calls']:.0f} Allreduce call(s) "
                  f"per step")

    if not mpiexec:
        return
    runs = samples["2 processes x 1 thread, batch 50 each"]
    step_bytes = int(runs[0]["bytes"])
    n_params = runs[0]["params"]
    alone = {key: statistics.median(run["allreduce"][key] for run in runs)
             for key in runs[0]["allreduce"]}
    small, large = alone["8"], alone[str(step_bytes)]
    print(f"\nAllreduce alone, 2 processes on this machine (shared memory): 8 bytes "
          f"{small * 1e6:.1f} us; one step's {step_bytes:,} bytes {large * 1e3:.2f} ms "
          f"({step_bytes / large / 1e9:.2f} GB/s of payload)")

    # One rank's compute per step of batch 100 on one core, from the 2 x 100 set-up.
    weak = medians["2 processes x 1 thread, batch 100 each"]
    compute = weak["step"] - weak["comm"] - weak["pack"]
    print(f"\nProjection (ring allreduce model; compute per step of batch 100 per rank "
          f"{compute * 1e3:.1f} ms, measured above on one core; the packing is left out):")
    for network, bandwidth, latency in NETWORKS:
        print(f"  {network}:")
        for p in (2, 8, 64):
            bucketed = ring_allreduce_seconds(p, step_bytes, bandwidth, latency, calls=1)
            per_param = ring_allreduce_seconds(p, step_bytes, bandwidth, latency,
                                               calls=n_params)
            efficiency = compute / (compute + bucketed)
            print(f"    p={p:<3} bucketed (1 call) {_ms(bucketed)}   per parameter "
                  f"({n_params} calls) {_ms(per_param)}   compute share {efficiency:.0%}")
    # Where bucketing matters: many small tensors. ResNet-50's gradient, 25.6 M float32 in
    # 161 tensors, is 2 buckets of at most 64 MiB.
    resnet_bytes, resnet_tensors = 25_557_032 * 4, 161
    buckets = -(-resnet_bytes // dist.DEFAULT_BUCKET_BYTES)
    print(f"  A ResNet-50-sized gradient ({resnet_bytes / 1e6:.0f} MB in {resnet_tensors} "
          f"tensors), bucketed ({buckets} calls) vs per tensor:")
    for network, bandwidth, latency in NETWORKS:
        cells = []
        for p in (8, 64):
            bucketed = ring_allreduce_seconds(p, resnet_bytes, bandwidth, latency, buckets)
            per_tensor = ring_allreduce_seconds(p, resnet_bytes, bandwidth, latency,
                                                resnet_tensors)
            cells.append(f"p={p}: {_ms(bucketed)} vs {_ms(per_tensor)}")
        print(f"    {network:<36} " + "   ".join(cells))


if __name__ == "__main__":
    main()
