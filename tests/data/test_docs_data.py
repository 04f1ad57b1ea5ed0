"""docs/data.md's Python examples run as written, one after another like a notebook."""

import os
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent.parent
DOC = REPO / "docs" / "data.md"
SHARED_MNIST = REPO.parent / "shared" / "data" / "mnist"


def test_data_doc_examples_run(monkeypatch):
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)
    assert len(blocks) >= 3
    monkeypatch.chdir(REPO)  # the MNIST example names ../shared/data/mnist from the repo root
    namespace: dict = {}
    ran = 0
    for code in blocks:
        if "shared/data/mnist" in code and not os.path.isdir(SHARED_MNIST):
            continue
        exec(compile(code, str(DOC), "exec"), namespace)
        ran += 1
    if ran < len(blocks):
        pytest.skip("the shared MNIST test split is absent; its example did not run")
