"""docs/serialization.md and docs/optim.md: every Python example runs as written, in order."""

import re
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parent.parent / "docs"


@pytest.mark.parametrize("name, minimum", [("serialization.md", 5), ("optim.md", 6)])
def test_doc_examples_run(tmp_path, monkeypatch, name, minimum):
    doc = DOCS / name
    blocks = re.findall(r"```python\n(.*?)```", doc.read_text(encoding="utf-8"), flags=re.S)
    assert len(blocks) >= minimum
    monkeypatch.chdir(tmp_path)  # the examples write files in the working directory
    namespace: dict = {}
    for code in blocks:
        exec(compile(code, str(doc), "exec"), namespace)
