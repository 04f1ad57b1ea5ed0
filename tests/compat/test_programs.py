"""Programs written for DeZero run on zerograd with only the import changed.

Each program in ``programs/`` is written the way the book and DeZero users write code, and run
in a subprocess with ``import dezero`` resolving to zerograd (see ``run_program.py``). Where
genuine DeZero 0.0.13 is installed, the same program runs on it too and the two outputs must
have the same text and the same numbers: within ``rtol`` where zerograd's float32 policy
(float32 weights and gradients, weak Python scalars) rounds differently from DeZero's float64,
tighter elsewhere.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).parent
PROGRAMS = sorted((HERE / "programs").glob("*.py"))

# Relative tolerance per program; the default is for float64 computations that both frameworks
# do the same way. Float32 policy differences must stay within 1e-3 (issue 8).
RTOL = {
    "lazy_layers_loaded_weights": 1e-5,
    "sin_rnn_seeded": 1e-3,
    "spiral_seeded": 1e-3,
    "book_idioms": 1e-3,
    "rnn_dezero_names": 1e-5,
}
DEFAULT_RTOL = 1e-7

_NUMBER = re.compile(r"[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?")


def run(framework: str, program: Path, workdir: Path) -> str:
    """The program's stdout under ``framework``; fails the test with its stderr if it fails."""
    env = dict(os.environ, HOME=str(workdir), MPLBACKEND="Agg", PYTHONHASHSEED="0",
               OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    root = str(HERE.parent.parent)
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.run(
        [sys.executable, str(HERE / "run_program.py"), framework, str(program)],
        cwd=workdir, env=env, capture_output=True, text=True, timeout=300,
    )
    if proc.returncode != 0:
        pytest.fail(f"{program.name} failed on {framework} (exit {proc.returncode}):\n"
                    f"{proc.stderr[-3000:]}")
    return proc.stdout


def assert_same_output(ours: str, theirs: str, rtol: float) -> None:
    """Same text once numbers are masked; every number equal within ``rtol``."""
    assert _NUMBER.sub("#", ours) == _NUMBER.sub("#", theirs), (
        f"text differs:\n--- zerograd\n{ours}\n--- dezero\n{theirs}")
    for line_ours, line_theirs in zip(ours.splitlines(), theirs.splitlines()):
        for a, b in zip(_NUMBER.findall(line_ours), _NUMBER.findall(line_theirs)):
            x, y = float(a), float(b)
            assert abs(x - y) <= rtol * abs(y) + 1e-12, (
                f"number {a} (zerograd) vs {b} (dezero) beyond rtol {rtol} in:\n"
                f"  {line_ours}\n  {line_theirs}")


def genuine_dezero_available() -> bool:
    return importlib.util.find_spec("dezero") is not None


@pytest.mark.parametrize("program", PROGRAMS, ids=lambda p: p.stem)
def test_program_runs_on_zerograd_as_on_dezero(program, tmp_path):
    ours_dir, theirs_dir = tmp_path / "zerograd", tmp_path / "dezero"
    ours_dir.mkdir()
    theirs_dir.mkdir()
    ours = run("zerograd", program, ours_dir)
    assert ours.strip(), f"{program.name} printed nothing"
    if not genuine_dezero_available():
        pytest.skip("genuine dezero is not installed: ran on zerograd only")
    theirs = run("dezero", program, theirs_dir)
    assert_same_output(ours, theirs, RTOL.get(program.stem, DEFAULT_RTOL))
