"""Where a training step's time goes, op by op, in CPU time of the calling thread.

    OPENBLAS_NUM_THREADS=1 python benchmarks/profile_ops.py cnn     # the small CNN's step
    OPENBLAS_NUM_THREADS=2 python benchmarks/profile_ops.py cnn --steps 30

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


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("workload", choices=["cnn"])
    parser.add_argument("--steps", type=int, default=3, help="runs of 10 steps each")
    args = parser.parse_args(argv)
    import os

    run = cnn_run()  # warmed up before the timers go in
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
    steps = 10 * args.steps
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
