"""Shared benchmark plumbing: optional frameworks, interleaved timing, a comparable table.

The machine's speed drifts (up to 1.7x within seconds), so every workload is timed for each
framework in turn, round after round, and the median of the rounds is reported together
with the ratio to PyTorch measured in the same run.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable


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


def interleaved(workloads: dict[str, Callable[[], float] | None], rounds: int = 5) -> dict:
    """Run each workload (a callable returning seconds) once per round, in turn.

    Returns {name: median seconds} for the workloads that are not None.
    """
    samples: dict[str, list[float]] = {name: [] for name, fn in workloads.items() if fn}
    for _ in range(rounds):
        for name in samples:
            samples[name].append(workloads[name]())
    return {name: statistics.median(values) for name, values in samples.items()}


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def print_row(label: str, results: dict, unit: str = "s", scale: float = 1.0) -> None:
    """One table row: each framework's figure, then ratios to torch."""
    cells = []
    for name in ("zerograd", "torch", "dezero"):
        if name in results:
            cells.append(f"{name} {results[name] * scale:9.3f} {unit}")
        else:
            cells.append(f"{name} {'-':>9} {unit}")
    ratios = []
    if "torch" in results:
        for name in ("zerograd", "dezero"):
            if name in results:
                ratios.append(f"{name}/torch {results[name] / results['torch']:.2f}")
    print(f"{label:<44} " + "  ".join(cells) + ("   " + "  ".join(ratios) if ratios else ""))
