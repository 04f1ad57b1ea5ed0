"""Small-CNN training step benchmark (issue 5): zerograd vs PyTorch vs DeZero, one run.

    python benchmarks/bench_cnn.py             # about 20 seconds
    python benchmarks/bench_cnn.py --quick     # fewer rounds
    python benchmarks/bench_cnn.py --profile   # also: where zerograd's step spends its time
    python benchmarks/bench_cnn.py --against /tmp/wt-OLD   # this tree vs another, CPU time
    python benchmarks/bench_cnn.py --patches   # compact conv patches off / on, fresh processes

Workload: the CNN conv 3x3x16 (pad 1) - relu - max pool 2 - conv 3x3x32 (pad 1) - relu -
max pool 2 - linear 10, float32, on batches of 100 images 1x28x28 (fixed random data: the
speed does not depend on the values); one sample is 10 SGD steps (forward, softmax
cross-entropy, backward, update). Every round times each framework in turn, so the
machine's drift cancels in the ratios; medians of the rounds are reported.

DeZero is PyPI's 0.0.13 as it is: under NumPy 2 its layer weights are float64 (its bug 1),
which is part of why it is slow.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import subprocess
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._common import (  # noqa: E402
    interleaved,
    load_dezero,
    load_torch,
    numpy_path,
    print_row,
    timed,
)

BATCH, STEPS = 100, 10


def _data(n_batches: int = STEPS):
    rng = np.random.default_rng(0)
    x = rng.random((n_batches, BATCH, 1, 28, 28), dtype=np.float32)
    t = rng.integers(0, 10, size=(n_batches, BATCH))
    return x, t


def dezero_style_step(Model, F, L, SGD):
    """The small CNN's training steps for a framework with DeZero's API (zerograd or DeZero)."""

    class SmallCNN(Model):
        def __init__(self):
            super().__init__()
            self.conv1 = L.Conv2d(16, 3, 1, 1, in_channels=1)
            self.conv2 = L.Conv2d(32, 3, 1, 1, in_channels=16)
            self.fc = L.Linear(10, in_size=32 * 7 * 7)

        def forward(self, x):
            x = F.pooling(F.relu(self.conv1(x)), 2, 2)
            x = F.pooling(F.relu(self.conv2(x)), 2, 2)
            return self.fc(F.reshape(x, (x.shape[0], -1)))

    model = SmallCNN()
    optimizer = SGD(lr=0.01).setup(model)
    xs, ts = _data()

    def run():
        for x, t in zip(xs, ts):
            loss = F.softmax_cross_entropy(model(x), t)
            model.cleargrads()
            loss.backward()
            optimizer.update()

    run()  # warm up
    return run


def zerograd_step():
    import zerograd.functions as F
    import zerograd.layers as L
    from zerograd.models import Model
    from zerograd.optim import SGD

    return dezero_style_step(Model, F, L, SGD)


def dezero_step(dezero):
    import dezero.functions as DF
    import dezero.layers as DL
    from dezero.optimizers import SGD

    return dezero_style_step(dezero.Model, DF, DL, SGD)


def torch_step(torch):
    nn = torch.nn
    model = nn.Sequential(nn.Conv2d(1, 16, 3, 1, 1), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Conv2d(16, 32, 3, 1, 1), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Flatten(), nn.Linear(32 * 7 * 7, 10))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    xs, ts = _data()
    xs, ts = torch.from_numpy(xs), torch.from_numpy(ts)

    def run():
        for x, t in zip(xs, ts):
            loss = nn.functional.cross_entropy(model(x), t)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()

    run()
    return run


def profile_zerograd(top: int = 18) -> None:
    """cProfile of 10 zerograd steps: the functions where the time goes (tottime)."""
    run = zerograd_step()
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(3):
        run()
    profiler.disable()
    print(f"\nzerograd, 3 x {STEPS} steps, top {top} functions by own time:")
    pstats.Stats(profiler).sort_stats("tottime").print_stats(top)


_CPU_CHILD = """
import json, sys, time
sys.path.insert(0, sys.argv[1])
from benchmarks.bench_cnn import zerograd_step
run = zerograd_step()
run()
best = float("inf")
for _ in range(5):
    start = time.thread_time()
    run()
    best = min(best, time.thread_time() - start)
print(json.dumps(best))
"""


# One configuration of the compact conv patches in a process of its own: 40 warm-up steps,
# then the best of 5 x 10 (wall time), and the minor page faults a step meanwhile.
_PATCHES_CHILD = """
import json, resource, sys, time
sys.path.insert(0, sys.argv[1])
import zerograd._fast as fast
fast.THRESHOLDS["conv_patches"] = (4096, None) if sys.argv[2] == "on" else (fast.NEVER, None)
from benchmarks.bench_cnn import zerograd_step
run = zerograd_step()
for _ in range(3):
    run()
faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
best = float("inf")
for _ in range(5):
    start = time.perf_counter()
    run()
    best = min(best, time.perf_counter() - start)
faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults
print(json.dumps([best, faults]))
"""


def compare_patches(rounds: int) -> None:
    """The small CNN step with the compact conv patches off and on, each run in a fresh
    process (so that neither inherits the other's allocator state), alternating, wall
    time with the environment's thread counts."""
    from benchmarks._common import CpuLoad

    tree = str(Path(__file__).resolve().parent.parent)
    load = CpuLoad()
    results: dict[str, list[tuple[float, float]]] = {"off": [], "on": []}
    for _ in range(rounds):
        for mode in results:
            out = subprocess.run([sys.executable, "-c", _PATCHES_CHILD, tree, mode], cwd=tree,
                                 capture_output=True, text=True, check=True)
            seconds, faults = json.loads(out.stdout)
            results[mode].append((seconds / STEPS * 1e3, faults / (5 * STEPS)))
    other_load = load.other()
    print(f"small CNN step with the compact conv patches off / on, fresh process each, best "
          f"of 5 x {STEPS} steps (wall time), {rounds} rounds; other load "
          f"{'unknown' if other_load is None else f'{other_load:.0%}'}")
    for mode, runs in results.items():
        ms = sorted(r[0] for r in runs)
        faults = sorted(r[1] for r in runs)
        print(f"  {mode:<4} {ms[len(ms) // 2]:7.2f} ms [{ms[0]:.2f}-{ms[-1]:.2f}]  page faults a "
              f"step {faults[0]:.0f}-{faults[-1]:.0f}")
    ratios = sorted(a[0] / b[0] for a, b in zip(results["on"], results["off"]))
    print(f"  on / off per round: median {ratios[len(ratios) // 2]:.2f} "
          f"[{ratios[0]:.2f}-{ratios[-1]:.2f}]")


def compare_trees(other: str, rounds: int) -> None:
    """This tree's step against another checkout's (``git worktree add``), in CPU time of
    the main thread with one OpenBLAS and one numba thread: each round runs both in fresh
    processes, one after the other (the best of 5 x 10 steps each), so that neither
    inherits the other's allocator state; the load cannot move CPU time much."""
    from benchmarks._common import CpuLoad

    trees = {"this tree": str(Path(__file__).resolve().parent.parent),
             "other": str(Path(other).resolve())}
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "NUMBA_NUM_THREADS": "1"}
    load = CpuLoad()
    best: dict[str, list[float]] = {name: [] for name in trees}
    for _ in range(rounds):
        for name, tree in trees.items():
            out = subprocess.run([sys.executable, "-c", _CPU_CHILD, tree], cwd=tree, env=env,
                                 capture_output=True, text=True, check=True)
            best[name].append(json.loads(out.stdout) / STEPS * 1e3)
    ratios = sorted(a / b for a, b in zip(best["this tree"], best["other"]))
    other_load = load.other()
    print(f"small CNN step, CPU time of the main thread (ms), best of 5 x {STEPS} steps per "
          f"process, {rounds} rounds; other load "
          f"{'unknown' if other_load is None else f'{other_load:.0%}'}")
    for name, tree in trees.items():
        print(f"  {name:<10} {min(best[name]):7.2f}  ({tree})")
    print(f"  this / other: best {min(best['this tree']) / min(best['other']):.2f}, per round "
          f"median {ratios[len(ratios) // 2]:.2f} [{ratios[0]:.2f}-{ratios[-1]:.2f}]")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds")
    parser.add_argument("--profile", action="store_true", help="profile zerograd's step")
    parser.add_argument("--against", metavar="TREE",
                        help="compare this tree's step with another checkout's (CPU time)")
    parser.add_argument("--patches", action="store_true",
                        help="the step with the compact conv patches off and on, fresh "
                             "processes")
    parser.add_argument("--rounds", type=int, default=8, help="rounds of --against/--patches")
    args = parser.parse_args(argv)
    if args.patches:
        compare_patches(args.rounds)
        return
    if args.against:
        compare_trees(args.against, args.rounds)
        return
    torch, dezero = load_torch(), load_dezero()
    rounds = 3 if args.quick else 5
    work = {"zerograd": zerograd_step()}
    if torch is not None:
        work["torch"] = torch_step(torch)
    if dezero is not None:
        work["dezero"] = dezero_step(dezero)
    print(f"frameworks: {', '.join(work)}; medians of {rounds} interleaved rounds, "
          f"{STEPS} steps of batch {BATCH} each")
    timers = {name: (lambda run=run: timed(run)) for name, run in work.items()}
    timers["numpy-path"] = numpy_path(timers["zerograd"])
    results = interleaved(timers, rounds)
    print_row(f"small CNN, {STEPS} SGD steps (batch {BATCH})", results, "s")
    per_step = results.scaled(1 / STEPS)
    print_row("  per step", per_step, "ms", 1e3)
    if args.profile:
        profile_zerograd()


if __name__ == "__main__":
    main()
