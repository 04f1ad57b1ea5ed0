"""The engine's cost in CPU instructions (cachegrind), which a loaded machine cannot disturb.

    python benchmarks/instr_engine.py                 # this tree, the three workloads
    python benchmarks/instr_engine.py --tree /tmp/wt  # another checkout (git worktree add)
    python benchmarks/instr_engine.py --profile wide  # cProfile call counts of one workload

Wall-clock timings of the engine (bench_engine.py) move by tens of percent when other
processes share the cores. The number of instructions the interpreter executes does not: it
is the same on every run of the same code, so two commits, or a change and its undo, can be
compared to a fraction of a percent. This script runs small versions of bench_engine's three
workloads under ``valgrind --tool=cachegrind --cache-sim=no`` and reports instructions per
op (per branch for the wide graph):

- per-op: forward + backward of a chain alternating ``y * 1.0001`` and ``sin(y)`` on 10
  float64 elements, minus a run that only builds the leaf (import and setup cancel out);
- chain: backward only of ``y = y * 1.0001`` repeated (a run with the backward minus the
  same run without it);
- wide: backward only of ``x**2 + x**2 + ...`` for a 0-d x (as bench_engine), the same way.

Each run first does one full repetition (forward and backward, in every mode, so that it
cancels out), which lets the interpreter specialise the hot bytecode (Python 3.11+) before
the ``--reps`` measured repetitions: the per-op figure is a steady state. ``INSTR_GC=0``
turns the cyclic garbage collector off in the measured part (its share, about 5% of the
per-op workload, is the difference). Instruction counts are not time
(cache misses and branch mispredictions are not in them), but on these workloads, which are
interpreter-bound, the two move together.
"""

from __future__ import annotations

import argparse
import gc
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORKLOADS = ("per-op", "chain", "wide")
# The work each workload does per measured repetition: ops in the chain, branches in the sum.
DEFAULT_SIZES = {"per-op": 1000, "chain": 2000, "wide": 2000}


def _workload(tree: str, workload: str, n: int):
    """(x, build) for one workload, with zerograd imported from ``tree``."""
    sys.path.insert(0, tree)
    import numpy as np

    import zerograd
    import zerograd.functions as F

    if workload == "wide":
        x = zerograd.Variable(np.array(1.5))
    else:
        x = zerograd.Variable(np.random.rand(10))

    def build():
        if workload == "per-op":
            y = x
            for i in range(n):
                y = F.sin(y) if i % 2 else y * 1.0001
        elif workload == "chain":
            y = x
            for _ in range(n):
                y = y * 1.0001
        else:
            y = x ** 2
            for _ in range(n - 1):
                y = y + x ** 2
        return y

    # One small backward now, so that every module the engine loads on first use (the engine
    # itself is imported by the first backward) is loaded in every mode: otherwise the
    # subtraction would count its import as backward work.
    warm = zerograd.Variable(np.random.rand(2))
    (warm * 1.0001 + F.sin(warm) + warm ** 2).backward()
    return x, build


def _child(tree: str, workload: str, mode: str, n: int, reps: int) -> None:
    """Run one workload in this process (under valgrind when the parent asked for it)."""
    x, build = _workload(tree, workload, n)
    if os.environ.get("INSTR_GC") == "0":
        gc.disable()
    # One full repetition in every mode warms the interpreter up (and cancels out).
    build().backward()
    x.cleargrad()
    for _ in range(reps):
        if mode == "setup":
            continue
        y = build()
        if mode == "backward":
            y.backward()
            x.cleargrad()
        del y


def _instructions(tree: str, workload: str, mode: str, n: int, reps: int) -> int:
    """Instructions executed by a child process running ``workload`` in ``mode``."""
    command = [
        "valgrind", "--tool=cachegrind", "--cache-sim=no", "--cachegrind-out-file=/dev/null",
        sys.executable, __file__, "--child", tree, workload, mode, str(n), str(reps),
    ]
    # No compiled kernels, no BLAS threads: the count must not depend on the machine.
    # (An idle BLAS thread spins for a while after each call, a number of instructions that
    # varies from run to run; string hashing is randomised per process unless seeded.)
    env = dict(os.environ, ZEROGRAD_FAST="0", OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1",
               PYTHONHASHSEED="0")
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    match = re.search(r"I\s+refs:\s+([\d,]+)", done.stderr)
    if done.returncode != 0 or match is None:
        raise RuntimeError(
            f"instr_engine: valgrind run {workload}/{mode} in {tree} failed "
            f"(exit {done.returncode}):\n{done.stderr[-2000:]}"
        )
    return int(match.group(1).replace(",", ""))


def measure(tree: str, workload: str, n: int, reps: int) -> float:
    """Instructions per op (per branch for ``wide``) of ``workload`` in ``tree``."""
    if workload == "per-op":
        base, full = "setup", "backward"
    else:
        base, full = "forward", "backward"
    difference = (_instructions(tree, workload, full, n, reps)
                  - _instructions(tree, workload, base, n, reps))
    return difference / (n * reps)


def _profile(tree: str, workload: str, n: int) -> None:
    """Calls per op of one measured repetition (cProfile's counts are deterministic too):
    of the forward and backward for per-op, of the backward alone for chain and wide."""
    import cProfile
    import pstats

    x, build = _workload(tree, workload, n)
    build().backward()  # warm-up
    x.cleargrad()
    profiler = cProfile.Profile()
    if workload == "per-op":
        profiler.runcall(lambda: build().backward())
    else:
        y = build()
        profiler.runcall(y.backward)
    rows = [(calls, f"{Path(filename).name}:{line}({name})")
            for (filename, line, name), (calls, *_) in pstats.Stats(profiler).stats.items()]
    rows.sort(reverse=True)
    print(f"{workload}, n={n}: calls per op")
    for calls, where in rows[:30]:
        print(f"  {calls / n:8.2f}  {where}")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tree", default=str(ROOT), help="checkout whose zerograd to measure")
    parser.add_argument("--workloads", default=",".join(WORKLOADS),
                        help=f"comma-separated subset of {', '.join(WORKLOADS)}")
    parser.add_argument("--n", type=int, default=None, help="ops or branches per repetition")
    parser.add_argument("--reps", type=int, default=2, help="measured repetitions")
    parser.add_argument("--profile", metavar="WORKLOAD", help="print cProfile call counts")
    args = parser.parse_args(argv)
    if args.profile:
        _profile(args.tree, args.profile, args.n or DEFAULT_SIZES[args.profile])
        return
    workloads = args.workloads.split(",")
    for workload in workloads:
        if workload not in WORKLOADS:
            parser.error(f"unknown workload {workload!r}; choose from {', '.join(WORKLOADS)}")
    for workload in workloads:
        n = args.n or DEFAULT_SIZES[workload]
        per_op = measure(args.tree, workload, n, args.reps)
        unit = "branch" if workload == "wide" else "op"
        what = "fwd+bwd" if workload == "per-op" else "backward"
        print(f"{workload:7s} {what:8s} {per_op:10,.0f} instructions per {unit} "
              f"(n={n}, {args.reps} reps) {args.tree}", flush=True)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        _child(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]), int(sys.argv[6]))
    else:
        main()
