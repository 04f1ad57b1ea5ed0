"""The README's Python examples run and print what they say they print."""

import contextlib
import io
import re
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_readme_examples_print_their_comments(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the examples may write files (saved weights)
    blocks = python_blocks()
    assert blocks, "README has no python example"
    for code in blocks:
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            exec(compile(code, str(README), "exec"), {})
        printed = out.getvalue().splitlines()
        pattern = r"print\([^\n]*?\)[ \t]+# ([^\n]*)"
        promised = [m.group(1).strip() for m in re.finditer(pattern, code)]
        assert printed[: len(promised)] == promised
