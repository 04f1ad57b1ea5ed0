"""The engine benchmarks of two zerograd trees (and PyTorch) in one interleaved run.

    python benchmarks/bench_trees.py 45fb9e0 HEAD           # a commit before, this one after
    python benchmarks/bench_trees.py /tmp/old-checkout .    # or two checkouts
    python benchmarks/bench_trees.py 45fb9e0 HEAD --quick   # fewer rounds, smaller sizes

"Is the new engine slower than the old one?" cannot be answered by two runs of
``bench_engine.py`` minutes apart: this machine's speed drifts by up to 1.7x within seconds.
Two trees cannot be imported into one process either (both are the package ``zerograd``).
So each tree gets a worker process of its own, and one more runs PyTorch; the workers stay
alive and warm, and this script asks each in turn for one timing of the same workload, round
after round. Ratios are taken within a round and reported as the median with the lowest and
highest round, with the machine's other load (``/proc/stat``), as everywhere in benchmarks/.

A ref that is not a directory is checked out with ``git worktree add --detach`` into a
temporary directory, which is removed at the end. The workloads are bench_engine.py's, from
this tree, run against each tree's package.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks._common import NOISY_LOAD, SETTLE, CpuLoad  # noqa: E402


def _load_bench_engine():
    """This tree's bench_engine module, imported after the worker chose its zerograd."""
    spec = importlib.util.spec_from_file_location("bench_engine", ROOT / "benchmarks" /
                                                  "bench_engine.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def worker(tree: str | None) -> None:
    """Answer "workload size" lines with one timing each (seconds), until stdin closes.

    ``tree`` None: time PyTorch. Otherwise time the zerograd package found in ``tree``.
    """
    torch = None
    if tree is None:
        import torch

        torch.set_num_threads(2)
        name = "torch"
    else:
        sys.path.insert(0, tree)
        import zerograd

        if Path(zerograd.__file__).resolve().parent.parent != Path(tree).resolve():
            raise SystemExit(f"worker for {tree} imported zerograd from {zerograd.__file__}")
        name = "zerograd"
    bench = _load_bench_engine()
    makers = {"per-op": lambda n: bench.per_op_overhead(name, torch, None, n),
              "chain": lambda n: bench.chain_backward(name, torch, None, n),
              "wide": lambda n: bench.wide_backward(name, torch, None, n)}
    runs = {}
    print("ready", flush=True)
    for line in sys.stdin:
        workload, size = line.split()
        key = (workload, int(size))
        if key not in runs:
            runs[key] = makers[workload](int(size))
        run, end = runs[key], time.perf_counter() + SETTLE
        run()  # untimed first: the previous worker's BLAS threads park (_common.SETTLE)
        while time.perf_counter() < end:
            run()
        print(repr(run()), flush=True)


class Worker:
    def __init__(self, label: str, tree: str | None) -> None:
        self.label = label
        args = [sys.executable, __file__, "--worker"] + ([] if tree is None else ["--tree", tree])
        self.process = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        text=True)
        if self._read() != "ready":
            raise SystemExit(f"the {label} worker did not start")

    def _read(self) -> str:
        line = self.process.stdout.readline()
        if not line:
            raise SystemExit(f"the {self.label} worker died (see its error above)")
        return line.strip()

    def time(self, workload: str, size: int) -> float:
        self.process.stdin.write(f"{workload} {size}\n")
        self.process.stdin.flush()
        return float(self._read())

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait(timeout=60)


def _checkout(ref: str, temporary: list[Path]) -> str:
    """A directory holding ``ref``: itself if it is one, else a fresh git worktree."""
    if Path(ref).is_dir():
        return str(Path(ref).resolve())
    path = Path(tempfile.mkdtemp(prefix="zerograd-tree-")) / "tree"
    subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "--quiet",
                    str(path), ref], check=True)
    temporary.append(path)
    return str(path)


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of process ``pid`` so far (Linux /proc), 0 if unknown."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class WorkersLoad(CpuLoad):
    """CpuLoad that counts the workers as this benchmark's own work, not other load."""

    def __init__(self, pids: list[int]) -> None:
        self._pids = pids
        self._workers_start = sum(_cpu_seconds(p) for p in pids)
        super().__init__()

    def other(self) -> float | None:
        start = self._start
        share = super().other()
        if share is None or start is None:
            return share
        wall = time.perf_counter() - start[0]
        workers = sum(_cpu_seconds(p) for p in self._pids) - self._workers_start
        cpus = os.cpu_count() or 1
        return max(0.0, share - workers / (wall * cpus)) if wall > 0 else None


def _spread(values: list[float]) -> str:
    return f"{statistics.median(values):.2f} [{min(values):.2f}-{max(values):.2f}]"


def compare(before: str, after: str, quick: bool = False) -> None:
    temporary: list[Path] = []
    try:
        trees = {"before": _checkout(before, temporary), "after": _checkout(after, temporary)}
        workers = [Worker(label, tree) for label, tree in trees.items()]
        workers.append(Worker("torch", None))
        print(f"before: {before} ({trees['before']})\nafter:  {after} ({trees['after']})")
        rounds = 5 if quick else 9
        cases = [("per-op", 1000, 1e6, "us per op"), ("chain", 1000, 1e3, "ms"),
                 ("chain", 10_000, 1e3, "ms"), ("wide", 1000, 1e3, "ms"),
                 ("wide", 10_000, 1e3, "ms")]
        print(f"{rounds} interleaved rounds; medians, ratios as median [lowest-highest round]")
        for workload, size, scale, unit in cases:
            samples: dict[str, list[float]] = {w.label: [] for w in workers}
            load = WorkersLoad([w.process.pid for w in workers])
            for _ in range(rounds):
                for w in workers:
                    samples[w.label].append(w.time(workload, size))
            other = load.other()
            medians = "  ".join(f"{label} {statistics.median(v) * scale:8.2f}"
                                for label, v in samples.items())
            ratios = {pair: [x / y for x, y in zip(samples[pair[0]], samples[pair[1]])]
                      for pair in (("after", "before"), ("before", "torch"), ("after", "torch"))}

            note = "" if other is None else f"  load {other:.0%}" + (
                " NOISY" if other > NOISY_LOAD else "")
            print(f"{workload} {size:>6,} ({unit}): {medians}   after/before "
                  f"{_spread(ratios['after', 'before'])}  before/torch "
                  f"{_spread(ratios['before', 'torch'])}  after/torch "
                  f"{_spread(ratios['after', 'torch'])}{note}")
        for w in workers:
            w.close()
    finally:
        for path in temporary:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force",
                            str(path)], check=False)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("before", nargs="?", help="commit or directory of the older tree")
    parser.add_argument("after", nargs="?", default="HEAD",
                        help="commit or directory of the newer tree (default HEAD)")
    parser.add_argument("--quick", action="store_true", help="5 rounds instead of 9")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--tree", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker(args.tree)
    elif args.before is None:
        parser.error("give the older tree (a commit or a directory)")
    else:
        compare(args.before, args.after, args.quick)


if __name__ == "__main__":
    main()
