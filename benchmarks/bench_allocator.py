"""Freed memory kept for the next step (zerograd.memory): each workload with glibc's own
malloc thresholds (``ZEROGRAD_MALLOC=system``) and with zerograd's, in fresh processes.

The allocator is process-wide and its state depends on everything the process did before,
so each configuration runs in a process of its own, the two alternating round by round:
5 untimed calls, then the median of 15 timed ones (wall time), the minor page faults a call
meanwhile, and the peak resident size. Workloads: ``lstm-inference`` (LSTMSeq(128) forward
under no_grad on a (32, 64, 32) float32 batch), ``lstm`` (the same forward + backward),
``cnn`` (bench_cnn's step, 10 batches a call) and ``mlp`` (bench_mlp's step, 10 batches a
call).

    python benchmarks/bench_allocator.py [--rounds 3] [workload ...]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

TREE = str(Path(__file__).resolve().parent.parent)
WORKLOADS = ("lstm-inference", "lstm", "cnn", "mlp")

_CHILD = """
import json, resource, sys, time
sys.path.insert(0, sys.argv[1])
import numpy as np
import zerograd

workload = sys.argv[2]
if workload == "cnn":
    from benchmarks.bench_cnn import zerograd_step
    run = zerograd_step()
elif workload == "mlp":
    from benchmarks.bench_mlp import make_batches, zerograd_steps
    steps = zerograd_steps(make_batches(10))
    run = lambda: steps()
else:
    from zerograd.nn.rnn import LSTMSeq
    x = np.random.default_rng(0).standard_normal((32, 64, 32)).astype(np.float32)
    model = LSTMSeq(128, in_size=32)

    def run():
        if workload == "lstm-inference":
            with zerograd.no_grad():
                model(x)
        else:
            model.cleargrads()
            model(x).sum().backward()
for _ in range(5):
    run()
faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
seconds = []
for _ in range(15):
    start = time.perf_counter()
    run()
    seconds.append(time.perf_counter() - start)
faults = (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults) / 15
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # ru_maxrss: KiB (Linux)
print(json.dumps([sorted(seconds)[7], faults, peak, zerograd.memory.settings()["applied"]]))
"""


def measure(workload: str, mode: str) -> tuple[float, float, float]:
    """(median seconds a call, page faults a call, peak resident MiB) of ``workload`` in a
    fresh process with ZEROGRAD_MALLOC=``mode``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    env["ZEROGRAD_MALLOC"] = mode
    out = subprocess.run([sys.executable, "-c", _CHILD, TREE, workload], cwd=TREE, env=env,
                         capture_output=True, text=True, check=True)
    seconds, faults, peak, applied = json.loads(out.stdout)
    if applied != (mode == "keep"):
        raise RuntimeError(f"ZEROGRAD_MALLOC={mode} but zerograd.memory applied={applied}")
    return seconds, faults, peak


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("workloads", nargs="*", metavar="workload",
                        help=f"any of {', '.join(WORKLOADS)} (default: all of them)")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    unknown = sorted(set(args.workloads) - set(WORKLOADS))
    if unknown:
        parser.error(f"unknown workload {', '.join(unknown)}; choose from {', '.join(WORKLOADS)}")
    sys.path.insert(0, TREE)
    from benchmarks._common import CpuLoad

    load = CpuLoad()
    for workload in args.workloads or WORKLOADS:
        runs: dict[str, list[tuple[float, float, float]]] = {"system": [], "keep": []}
        for _ in range(args.rounds):
            for mode in runs:
                runs[mode].append(measure(workload, mode))
        cells = []
        for mode, samples in runs.items():
            ms = sorted(s[0] * 1e3 for s in samples)
            faults = [s[1] for s in samples]
            peak = [s[2] for s in samples]
            cells.append(f"{mode} {ms[len(ms) // 2]:8.2f} ms [{ms[0]:.2f}-{ms[-1]:.2f}], "
                         f"{min(faults):.0f}-{max(faults):.0f} faults a call, peak "
                         f"{min(peak):.0f}-{max(peak):.0f} MiB")
        ratios = sorted(k[0] / s[0] for k, s in zip(runs["keep"], runs["system"]))
        print(f"{workload:<15} " + "  ".join(cells) + f"  keep/system "
              f"{ratios[len(ratios) // 2]:.2f} [{ratios[0]:.2f}-{ratios[-1]:.2f}]")
    other = load.other()
    print(f"{args.rounds} rounds, fresh process each; other load "
          f"{'unknown' if other is None else f'{other:.0%}'}")


if __name__ == "__main__":
    main()
