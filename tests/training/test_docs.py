"""docs/training.md runs as written: its Python blocks in order in one namespace, its shell
blocks in order in the same directory (with `zerograd` this checkout's), its TOML block as
entry points that load the factories the shell block wrote, its sample line as the loop's."""

from __future__ import annotations

import os
import re
import stat
import subprocess
import sys
from importlib.metadata import EntryPoint
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[2] / "docs" / "training.md"
REPO = str(DOC.parent.parent)


def blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", DOC.read_text(), flags=re.S)


def test_every_block_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    python = blocks("python")
    assert len(python) == 8
    namespace: dict = {}
    for code in python:
        exec(compile(code, str(DOC), "exec"), namespace)
    # The sample summary line has the loop's columns, in its format.
    (sample,) = [b for b in blocks("text") if b.startswith("epoch")]
    pattern = (r"epoch +\d+/\d+  loss \d\.\d{4}  train acc \d\.\d{4}  val loss \d\.\d{4}  "
               r"val acc \d\.\d{4}  \([\d.]+ m?s\)")
    assert re.fullmatch(pattern, sample.strip())
    lines: list[str] = []
    test_set = namespace["test_set"]
    namespace["training"].fit(namespace["model"], [(test_set.data[:4], test_set.label[:4])],
                              namespace["optimizer"], val_loader=[(test_set.data,
                                                                   test_set.label)],
                              verbose=2, log=lines.append)
    assert len(lines) == 1 and re.fullmatch(pattern, lines[0]), lines

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "zerograd"
    script.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m zerograd "$@"\n')
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
           "PYTHONPATH": REPO, "MPLBACKEND": "Agg"}
    shell = blocks("bash")
    assert len(shell) == 3
    outputs = []
    for code in shell:
        result = subprocess.run(["bash", "-e", "-c", code], cwd=tmp_path, env=env,
                                capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, (code, result.stdout, result.stderr)
        outputs.append(result.stdout)
    assert "the same run" in outputs[1]
    assert re.search(r"points\.npy\[0\]: class 0  \(0: (1\.000|0\.9\d\d), 1: 0\.0\d\d\)",
                     outputs[2])

    # The entry points of the TOML block name the factories the shell block wrote.
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    (toml,) = blocks("toml")
    sys.path.insert(0, str(tmp_path))
    try:
        for group, names in tomllib.loads(toml)["project"]["entry-points"].items():
            for name, value in names.items():
                assert callable(EntryPoint(name, value, group).load())
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("mymodels", None)
