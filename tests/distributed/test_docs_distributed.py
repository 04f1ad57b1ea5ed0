"""docs/distributed.md's training script runs as written: alone and under mpiexec -n 2."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.distributed.conftest import TIMEOUT, child_env, mpi_unavailable
from zerograd.distributed import find_mpiexec

DOC = Path(__file__).resolve().parent.parent.parent / "docs" / "distributed.md"
EPOCH_LINE = re.compile(r"^epoch (\d)  loss (\d+\.\d{4})  accuracy (\d\.\d{4})$")


def _script(tmp_path) -> Path:
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)
    assert len(blocks) == 1, "the doc's one Python block is its training script"
    path = tmp_path / "train.py"
    path.write_text(blocks[0])
    return path


def _run(command, cwd) -> list[tuple[int, float, float]]:
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=TIMEOUT,
                            stdin=subprocess.DEVNULL, env=child_env())
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    matches = [EPOCH_LINE.match(line) for line in lines]
    assert all(matches), lines  # nothing else is printed, by any rank
    return [(int(m[1]), float(m[2]), float(m[3])) for m in matches]


def test_the_script_runs_as_one_process(tmp_path):
    records = _run([sys.executable, str(_script(tmp_path))], tmp_path)
    assert [r[0] for r in records] == [1, 2, 3]
    assert records[-1][1] < records[0][1]  # it trains
    assert np.load(tmp_path / "spiral_mlp.npz")["l0/W"].shape == (2, 10)


def test_the_script_runs_under_mpiexec(tmp_path):
    reason = mpi_unavailable()
    if reason:
        pytest.skip(reason)
    records = _run([find_mpiexec(), "-n", "2", sys.executable, str(_script(tmp_path))],
                   tmp_path)
    # One line per epoch: rank 0 alone prints; the numbers are over all 300 examples.
    assert [r[0] for r in records] == [1, 2, 3]
    for _, _, accuracy in records:
        assert round(accuracy * 300) == pytest.approx(accuracy * 300, abs=2e-2)
    assert records[-1][1] < records[0][1]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["spiral_mlp.npz", "train.py"]
