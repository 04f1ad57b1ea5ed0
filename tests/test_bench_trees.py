"""benchmarks/bench_trees.py: warm worker processes, one per tree, timed in turn."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks import bench_trees  # noqa: E402


def test_a_worker_times_each_workload_of_its_own_tree():
    w = bench_trees.Worker("this tree", str(ROOT))
    try:
        timings = [w.time(workload, 20) for workload in ("per-op", "chain", "wide")]
        again = w.time("per-op", 20)  # the workload is built once and run again
    finally:
        w.close()
    assert all(0 < t < 5 for t in timings + [again])
    assert w.process.returncode == 0


def test_a_worker_refuses_a_tree_without_zerograd(tmp_path):
    with pytest.raises(SystemExit, match="worker"):
        bench_trees.Worker("empty", str(tmp_path))


def test_a_directory_is_used_as_it_is():
    made: list[Path] = []
    assert bench_trees._checkout(str(ROOT), made) == str(ROOT)
    assert made == []
