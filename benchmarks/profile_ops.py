"""Where a training step's time goes, op by op, in CPU time of the calling thread; and the
compiled kernels against the NumPy path in CPU time.

    OPENBLAS_NUM_THREADS=1 python benchmarks/profile_ops.py cnn     # the small CNN's step
    OPENBLAS_NUM_THREADS=2 python benchmarks/profile_ops.py cnn --steps 30
    NUMBA_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 python benchmarks/profile_ops.py paths

``paths`` times the workloads of bench_cnn, bench_lstm and bench_ops with the compiled
kernels and inside ``zerograd._fast.numpy_only()``, alternating, and prints the lowest CPU
time of the main thread for each, with the ratio. With one numba and one OpenBLAS thread
(as above) all the work runs on the main thread, so this is the whole CPU cost; with more,
the helper threads' share is not counted (and the process's CPU time would count their
spinning between parallel regions instead, which is worse).

Every ``Function`` subclass's ``forward`` (the raw-array kernel of an op, or of a Grad node
during backward) is wrapped with a timer that adds its *own* time to the class's total
(time spent in a nested op's forward is charged to that op). The rest of a step, "outside
forward", is the engine, the Variables' arithmetic in backward methods, the optimizer and
Python. The page faults (minor faults of the process, per step) are the first touches of
freshly mapped memory: on this project's VMs each costs several microseconds.

The clock is ``time.thread_time`` (CPU time of the main thread only): other processes'
load on the shared machine does not inflate it, which wall time does. Caveat: with two
OpenBLAS threads the helper thread's work is not counted, while the main thread's spinning
while it waits is; compare both settings, and see the wall-time column for the step.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def _subclasses(cls):
    for sub in cls.__subclasses__():
        yield sub
        yield from _subclasses(sub)


def instrument():
    """Wrap every Function subclass's own forward; returns (totals, calls) dicts by name."""
    from zerograd.core.function import Function

    totals: dict[str, float] = collections.defaultdict(float)
    calls: dict[str, int] = collections.defaultdict(int)
    stack: list[float] = []  # time of nested forwards, per open frame

    def wrap(name, forward):
        def timed_forward(self, *xs):
            stack.append(0.0)
            start = time.thread_time()
            try:
                return forward(self, *xs)
            finally:
                spent = time.thread_time() - start
                nested = stack.pop()
                totals[name] += spent - nested
                calls[name] += 1
                if stack:
                    stack[-1] += spent

        return timed_forward

    for cls in set(_subclasses(Function)):
        if "forward" in cls.__dict__:
            cls.forward = wrap(cls.__name__, cls.__dict__["forward"])
    return totals, calls


def cnn_run():
    from benchmarks.bench_cnn import zerograd_step

    return zerograd_step()


def lstm_run():
    """bench_lstm's batch-1 LSTM: 300 steps, BPTT 30, Adam (its timer; the work counts)."""
    from benchmarks import bench_lstm

    xs, ts = bench_lstm.sequence(300)
    return bench_lstm.zerograd_loop(xs, ts)


def gelu_run():
    from benchmarks import bench_ops

    return bench_ops.gelu_workloads(None)["zerograd"]


def embedding_run():
    from benchmarks import bench_ops

    return bench_ops.embedding_workloads(None)["zerograd"]


def mlp_run():
    """bench_mlp's MLP 784-1000-1000-10, SGD: 30 steps of batch 100."""
    from benchmarks import bench_mlp

    return bench_mlp.zerograd_steps(bench_mlp.make_batches(30))


RUNS = {"cnn": (cnn_run, 10), "lstm": (lstm_run, 300), "gelu": (gelu_run, 1),
        "embedding": (embedding_run, 1), "mlp": (mlp_run, 30)}  # (maker, steps per run)


def compare_paths(rounds: int) -> None:
    """Lowest process CPU time of each workload with the kernels and on the NumPy path."""
    import os

    import numpy as np

    import zerograd
    import zerograd._fast as fast
    import zerograd.functions as F
    from benchmarks import bench_lstm, bench_ops

    x = zerograd.Variable(np.random.default_rng(0).standard_normal(10**6).astype(np.float32))

    def gelu():
        x.cleargrad()
        F.sum(F.gelu(x)).backward()

    ids = np.random.default_rng(1).integers(0, bench_ops.VOCAB, size=bench_ops.IDS)
    W = zerograd.Parameter(np.ones((bench_ops.VOCAB, bench_ops.DIM), np.float32))

    def embedding():
        W.cleargrad()
        F.sum(F.embed_id(ids, W)).backward()

    xs, ts = bench_lstm.sequence(300)
    lstm = bench_lstm.zerograd_loop(xs, ts)  # returns a timer; its work is what counts
    workloads = {"small CNN, 10 steps": cnn_run(), "LSTM(100), 300 steps": lstm,
                 "exact gelu, 1e6": gelu, "embedding bwd, 1e5 ids": embedding}
    if not fast.available():
        print("the compiled kernels are off (numba missing or ZEROGRAD_FAST=0)")
        return
    print(f"CPU time of the main thread, lowest of {rounds} alternating rounds (ms); "
          f"NUMBA_NUM_THREADS={os.environ.get('NUMBA_NUM_THREADS', 'unset')}, "
          f"OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS', 'unset')}")
    for label, fn in workloads.items():
        best = {"kernels": float("inf"), "numpy": float("inf")}
        for _ in range(rounds):
            for path in best:
                context = fast.numpy_only() if path == "numpy" else contextlib.nullcontext()
                with context:
                    start = time.thread_time()
                    fn()
                    best[path] = min(best[path], time.thread_time() - start)
        print(f"  {label:<26} kernels {best['kernels'] * 1e3:8.2f}  NumPy path "
              f"{best['numpy'] * 1e3:8.2f}  ratio {best['kernels'] / best['numpy']:.2f}")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("workload", choices=[*RUNS, "paths"])
    parser.add_argument("--steps", type=int, default=3, help="runs of the workload")
    parser.add_argument("--rounds", type=int, default=7, help="rounds of 'paths'")
    args = parser.parse_args(argv)
    import os

    if args.workload == "paths":
        compare_paths(args.rounds)
        return

    make, per_run = RUNS[args.workload]
    run = make()
    run()  # warmed up before the timers go in
    totals, calls = instrument()
    run()
    totals.clear()
    calls.clear()
    faults0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    cpu0, wall0 = time.thread_time(), time.perf_counter()
    for _ in range(args.steps):
        run()
    cpu, wall = time.thread_time() - cpu0, time.perf_counter() - wall0
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults0
    steps = per_run * args.steps
    print(f"{args.workload}: {steps} steps, OPENBLAS_NUM_THREADS="
          f"{os.environ.get('OPENBLAS_NUM_THREADS', 'unset')}, per step: "
          f"{cpu / steps * 1e3:.2f} ms CPU time of the main thread, "
          f"{wall / steps * 1e3:.2f} ms wall, {faults / steps:.0f} page faults")
    inside = sum(totals.values())
    for name, t in sorted(totals.items(), key=lambda item: -item[1]):
        print(f"  {name:<28} {t / steps * 1e3:7.3f} ms  {calls[name] / steps:4.1f} calls  "
              f"{t / cpu:5.1%}")
    print(f"  {'(outside forward)':<28} {(cpu - inside) / steps * 1e3:7.3f} ms"
          f"              {(cpu - inside) / cpu:5.1%}")


if __name__ == "__main__":
    main()
