"""Engine benchmarks (issue 2): per-op overhead and backward scaling, vs PyTorch and DeZero.

    python benchmarks/bench_engine.py            # full run (about a minute)
    python benchmarks/bench_engine.py --quick    # smaller sizes
    python benchmarks/bench_engine.py --cpu-time # the main thread's CPU time, not wall time

Workloads
- per-op overhead: forward+backward of a chain of 1,000 small elementwise ops (10 float64
  elements), alternating sin(y) and y * 1.0001; microseconds per op.
- chain backward: backward only of chains of 1,000 / 10,000 / 100,000 ops (y = y * 1.0001);
  the cost must grow linearly.
- wide backward: backward only of y = x**2 + x**2 + ... (N branches of one variable); DeZero
  re-sorts its pending list on every insertion and is quadratic here.

``--cpu-time`` times with ``time.thread_time`` (the calling thread's CPU time), which other
processes on a shared machine move much less than the wall clock. It is a fair clock here:
every workload runs on the calling thread in each framework (PyTorch runs a CPU backward on
the thread that called it, and tensors of 10 elements use no intra-op threads).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.setrecursionlimit(1_000_000)  # torch/DeZero graph teardown recurses on long chains

import zerograd  # noqa: E402
import zerograd.functions as ZF  # noqa: E402
from benchmarks._common import interleaved, load_dezero, load_torch, print_row  # noqa: E402

_clock = time.perf_counter  # time.thread_time under --cpu-time


def timed(fn) -> float:
    start = _clock()
    fn()
    return _clock() - start


def _framework_ops(name: str, torch, dezero):
    """(make_leaf, sin, seed_and_backward, clear) for one framework."""
    if name == "zerograd":
        return (lambda a: zerograd.Variable(a), ZF.sin,
                lambda y: y.backward(), lambda x: x.cleargrad())
    if name == "dezero":
        import dezero.functions as DF

        return (lambda a: dezero.Variable(a), DF.sin,
                lambda y: y.backward(), lambda x: x.cleargrad())

    def leaf(a):
        return torch.tensor(a, requires_grad=True)

    def clear(x):
        x.grad = None

    return leaf, torch.sin, lambda y: y.sum().backward(), clear


def per_op_overhead(name, torch, dezero, n_ops=1000):
    leaf, sin, backward, clear = _framework_ops(name, torch, dezero)
    x = leaf(np.random.rand(10))

    def run():
        y = x
        for i in range(n_ops):
            y = sin(y) if i % 2 else y * 1.0001
        backward(y)
        clear(x)

    run()  # warm up
    return lambda: timed(run) / n_ops


def chain_backward(name, torch, dezero, n_ops):
    leaf, _, backward, clear = _framework_ops(name, torch, dezero)
    x = leaf(np.random.rand(10))

    def run():
        y = x
        for _ in range(n_ops):
            y = y * 1.0001
        seconds = timed(lambda: backward(y))
        clear(x)
        return seconds

    return run


def wide_backward(name, torch, dezero, n_branches):
    leaf, _, backward, clear = _framework_ops(name, torch, dezero)
    x = leaf(np.array(1.5))

    def run():
        y = x ** 2
        for _ in range(n_branches - 1):
            y = y + x ** 2
        seconds = timed(lambda: backward(y))
        clear(x)
        return seconds

    return run


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes, fewer rounds")
    parser.add_argument("--cpu-time", action="store_true",
                        help="time the calling thread's CPU time (time.thread_time)")
    args = parser.parse_args(argv)
    global _clock
    _clock = time.thread_time if args.cpu_time else time.perf_counter
    torch, dezero = load_torch(), load_dezero()
    names = ["zerograd"] + (["torch"] if torch else []) + (["dezero"] if dezero else [])
    rounds = 3 if args.quick else 5
    clock = "thread CPU time" if args.cpu_time else "wall time"
    print(f"frameworks: {', '.join(names)}; medians of {rounds} interleaved rounds ({clock})")

    # The per-op figure is a few ms a round: more rounds cost little and steady its median
    # against this machine's drift (a lone round ran 18x its neighbours).
    results = interleaved({n: per_op_overhead(n, torch, dezero) for n in names}, rounds * 4)
    print_row("per-op overhead fwd+bwd (1,000-op chain)", results, "us", 1e6)

    sizes = (1_000, 10_000) if args.quick else (1_000, 10_000, 100_000)
    for n in sizes:
        work = {name: chain_backward(name, torch, dezero, n) for name in names}
        results = interleaved(work, rounds if n < 100_000 else 3)
        print_row(f"backward of a {n:,}-op chain", results, "s")

    wide_sizes = (1_000, 10_000) if args.quick else (1_000, 10_000, 100_000)
    for n in wide_sizes:
        # DeZero is quadratic here: 10,000 branches take it seconds, 100,000 would take minutes.
        skip_dezero = n > 10_000 or (args.quick and n > 1_000)
        work = {name: wide_backward(name, torch, dezero, n) for name in names
                if not (name == "dezero" and skip_dezero)}
        results = interleaved(work, rounds if n < 100_000 else 3)
        print_row(f"backward of {n:,} branches (sum of x**2)", results, "s")


if __name__ == "__main__":
    main()
