"""docs/cli.md runs as written: its shell blocks (in order, in one directory), its Python
block, and the refusal it quotes for an --out that holds a run."""

from __future__ import annotations

import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from zerograd import cli

DOC = Path(__file__).resolve().parent.parent / "docs" / "cli.md"
REPO = str(DOC.parent.parent)


def blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", DOC.read_text(), flags=re.S)


@pytest.fixture
def shell(tmp_path):
    """Runs a shell block in tmp_path/work with `zerograd` meaning this checkout's."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "zerograd"
    script.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m zerograd "$@"\n')
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    work = tmp_path / "work"
    work.mkdir()
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
           "PYTHONPATH": REPO, "MPLBACKEND": "Agg"}

    def run(code: str) -> subprocess.CompletedProcess:
        return subprocess.run(["bash", "-e", "-c", code], cwd=work, env=env,
                              capture_output=True, text=True, timeout=300)

    return run


@pytest.mark.slow
def test_shell_blocks_run_in_order(shell):
    pytest.importorskip("sklearn")  # the first block trains on the default dataset, digits
    pytest.importorskip("onnxruntime")  # the last one runs the exported model
    found = blocks("bash")
    assert len(found) == 5
    for code in found:
        result = shell(code)
        assert result.returncode == 0, (code, result.stdout, result.stderr)
    # What the doc says the first block ends with, and what the resume block does.
    result = shell("zerograd train --out runs/spiral --resume --no-progress")
    assert "nothing to do: the run is finished, with 20 of 20 epochs" in result.stdout
    # The refusal quoted in the doc is the program's.
    quoted = re.search(r"```text\n(zerograd: error: --out runs/b .*?)\n```", DOC.read_text(),
                       flags=re.S).group(1)
    result = shell("zerograd train --dataset spiral --epochs 3 --out runs/b")
    assert result.returncode == 2 and result.stderr.strip() == quoted


def test_python_block_registers_a_model_and_a_dataset(tmp_path, monkeypatch):
    monkeypatch.setattr(cli, "DATASETS", dict(cli.DATASETS))
    monkeypatch.setattr(cli, "MODELS", dict(cli.MODELS))
    (code,) = blocks("python")
    namespace: dict = {}
    exec(compile(code, str(DOC), "exec"), namespace)
    run = cli.train(cli.TrainConfig(dataset="xor", model="wide", epochs=2, batch_size=4),
                    str(tmp_path / "xor"), progress=False, log=lambda _: None)
    assert run.model.l0.W.shape == (2, 1000) and len(run.history) == 2
