"""Shared benchmark plumbing: optional frameworks, interleaved timing, a comparable table.

The machine's speed drifts (up to 1.7x within seconds), so every workload is timed for each
framework in turn, round after round. A ratio to PyTorch is taken within each round (both
timings saw the same machine) and the median of those per-round ratios is reported with its
spread (lowest and highest round). While the rounds run, ``/proc/stat`` tells how busy the CPUs
were with work other than this process; a row measured while other work took more than
``NOISY_LOAD`` of the machine is marked ``NOISY``. Each timed call comes after ``SETTLE``
seconds of untimed calls of the same workload, so no framework is timed while the previous
one's BLAS threads still spin (see ``SETTLE``).

zerograd runs twice per round where it matters: as installed ("zerograd": with the
compiled kernels of ``zerograd._fast`` when numba is installed) and on its pure-NumPy path
("numpy-path", inside ``zerograd._fast.numpy_only()``), so the kernels' gain is measured in
the same rounds as everything else.

Set ``BENCH_JSON=path`` to also append one JSON record per printed row to ``path``
(``run_all.py`` reads them to build the README's table).
"""

from __future__ import annotations

import json
import os
import statistics
import time
from collections.abc import Callable

# Fraction of the machine's CPU time used by other processes above which a row is noisy.
NOISY_LOAD = 0.10
FRAMEWORKS = ("zerograd", "numpy-path", "torch", "dezero")


def numpy_path(fn: Callable[[], float]) -> Callable[[], float] | None:
    """``fn`` run on zerograd's pure-NumPy path (no compiled kernels), or None when the
    kernels are off anyway (numba missing, ZEROGRAD_FAST=0): then it would time the same."""
    import zerograd._fast as fast

    if not fast.available():
        return None

    def run() -> float:
        with fast.numpy_only():
            return fn()

    return run


def load_torch():
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(2)
    return torch


def load_dezero():
    """PyPI's dezero 0.0.13, if installed (it needs ``numpy.int`` and matplotlib)."""
    import numpy

    if not hasattr(numpy, "int"):
        numpy.int = int  # dezero.transforms still uses the alias removed in NumPy 1.24
    try:
        import dezero
        import dezero.functions
    except Exception:
        return None
    return dezero


class CpuLoad:
    """Measures the share of the machine's CPU time spent outside this process.

    ``/proc/stat``'s first line counts every CPU's busy and idle time since boot; this
    process's own CPU time (all its threads: BLAS and PyTorch pools included, and the child
    processes it has waited for: a benchmark that runs each configuration in a fresh process)
    comes from ``os.times``. Their difference over an interval is what other processes used.
    On a system without ``/proc/stat`` the load is unknown (None).
    """

    def __init__(self) -> None:
        self._start = self._sample()

    @staticmethod
    def _sample():
        try:
            with open("/proc/stat") as f:
                fields = [int(v) for v in f.readline().split()[1:]]
        except (OSError, ValueError):
            return None
        idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
        busy = sum(fields[:8]) - idle  # user nice system idle iowait irq softirq steal
        mine = os.times()
        own = mine.user + mine.system + mine.children_user + mine.children_system
        return time.perf_counter(), busy / os.sysconf("SC_CLK_TCK"), own

    def other(self) -> float | None:
        """Other processes' CPU share since construction (0 = idle machine, 1 = all cores)."""
        end = self._sample()
        if self._start is None or end is None:
            return None
        wall = end[0] - self._start[0]
        others = (end[1] - self._start[1]) - (end[2] - self._start[2])
        cpus = os.cpu_count() or 1
        return max(0.0, others / (wall * cpus)) if wall > 0 else None


class Measurement(dict):
    """{framework: median seconds}, plus each round's samples and the machine's load.

    A dict, so ``results["zerograd"]`` is the median; ``ratio(name)`` gives the median of the
    per-round ratios to ``torch`` with the lowest and highest round.
    """

    def __init__(self, samples: dict[str, list[float]], load: float | None) -> None:
        super().__init__({name: statistics.median(values) for name, values in samples.items()})
        self.samples = samples
        self.load = load

    def ratio(self, name: str, base: str = "torch") -> tuple[float, float, float] | None:
        """(median, lowest, highest) of ``name``'s time over ``base``'s, round by round."""
        if name not in self.samples or base not in self.samples:
            return None
        ratios = [a / b for a, b in zip(self.samples[name], self.samples[base]) if b > 0]
        if not ratios:
            return None
        return statistics.median(ratios), min(ratios), max(ratios)

    def scaled(self, factor: float) -> Measurement:
        """The same measurement with every sample multiplied by ``factor`` (per-step times)."""
        samples = {name: [v * factor for v in values] for name, values in self.samples.items()}
        return Measurement(samples, self.load)

    @property
    def noisy(self) -> bool:
        return self.load is not None and self.load > NOISY_LOAD


# Untimed work each turn does first (seconds). OpenBLAS's worker threads spin for about
# 0.1 s after a product before they park (PyTorch's stop within 0.01 s), so a turn that
# starts right after a NumPy framework's turn has one of the two cores taken: measured on
# the MLP, PyTorch's epoch took 5.8-8.9 s right after zerograd's turn against 4.3-4.7 s on
# its own. Running the workload untimed for SETTLE seconds first lets the previous turn's
# threads park and its own get busy: each timing is of the steady state of a long run, as a
# training loop sees it. BENCH_SETTLE=0 turns it off (quicker, but biased).
SETTLE = float(os.environ.get("BENCH_SETTLE", "0.15"))


def interleaved(workloads: dict[str, Callable[[], float] | None], rounds: int = 5,
                settle: float | None = None) -> Measurement:
    """Run each workload (a callable returning seconds) once per round, in turn, each timed
    call after ``settle`` seconds (default ``SETTLE``) of untimed calls of its own.

    Workloads that are None (a framework that is not installed) are left out. A workload
    that settles itself (bench_mlp's turns) passes ``settle=0``.
    """
    settle = SETTLE if settle is None else settle
    samples: dict[str, list[float]] = {name: [] for name, fn in workloads.items() if fn}
    load = CpuLoad()
    for _ in range(rounds):
        for name in samples:
            fn = workloads[name]
            if settle > 0:
                end = time.perf_counter() + settle
                fn()
                while time.perf_counter() < end:
                    fn()
            samples[name].append(fn())
    return Measurement(samples, load.other())


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def print_row(label: str, results: dict, unit: str = "s", scale: float = 1.0) -> None:
    """One table row: each framework's median, then ratios to torch with their spread."""
    cells = []
    for name in FRAMEWORKS:
        if name in results:
            cells.append(f"{name} {results[name] * scale:9.3f} {unit}")
        else:
            cells.append(f"{name} {'-':>9} {unit}")
    ratios = {}
    if "torch" in results:
        for name in ("zerograd", "numpy-path", "dezero"):
            if name not in results:
                continue
            if isinstance(results, Measurement):
                ratios[name] = results.ratio(name)
            elif results["torch"] > 0:
                r = results[name] / results["torch"]
                ratios[name] = (r, r, r)
    texts = [f"{name}/torch {m:.2f} [{lo:.2f}-{hi:.2f}]" for name, (m, lo, hi) in ratios.items()]
    load = results.load if isinstance(results, Measurement) else None
    note = ""
    if load is not None:
        note = f"  load {load:.0%}" + (" NOISY" if load > NOISY_LOAD else "")
    print(f"{label:<44} " + "  ".join(cells) + ("   " + "  ".join(texts) if texts else "") + note)

    path = os.environ.get("BENCH_JSON")
    if path:
        record = {
            "label": label.strip(), "unit": unit,
            "medians": {name: results[name] * scale for name in FRAMEWORKS if name in results},
            "ratios": {name: list(r) for name, r in ratios.items()},
            "load": load,
            "openblas_pinned": bool(os.environ.get("OPENBLAS_CORETYPE")),
        }
        with open(path, "a") as f:
            f.write(json.dumps(record) + "\n")
