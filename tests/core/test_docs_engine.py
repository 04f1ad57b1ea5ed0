"""docs/engine.md's Python examples run as written, one after another like a notebook."""

import re
from pathlib import Path

DOC = Path(__file__).resolve().parent.parent.parent / "docs" / "engine.md"


def test_engine_doc_examples_run():
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)
    assert len(blocks) >= 2
    namespace: dict = {}
    for code in blocks:
        exec(compile(code, str(DOC), "exec"), namespace)
