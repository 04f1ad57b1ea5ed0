"""Every ```python block of README.md and docs/*.md runs as written.

The blocks of one file run in order in one namespace, as the cells of a notebook do, in a
scratch directory (examples may write files). A block written as a doctest (``>>>``) must
print what it shows. A block may opt out with an HTML comment on the line above it that
gives the reason, e.g. ``<!-- not run: needs the MNIST files -->``; it is reported as
skipped with that reason.

In README.md, book.md and learning-tools.md a ``print(...)  # text`` line also promises
what it prints: the block's output must start with those texts, in order.

``KNOWN_FAILURES`` lists the blocks of docs that other people own which do not run yet,
each with why; they are strict xfails, so a block that starts to run must leave the list.
"""

from __future__ import annotations

import contextlib
import doctest
import functools
import io
import os
import re
import tempfile
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
FILES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
PRINTS_CHECKED = {"README.md", "book.md", "learning-tools.md"}
PROMISE = re.compile(r"print\([^\n]*?\)[ \t]+# ([^\n]*)")
SKIP_MARK = re.compile(r"<!--\s*not run:\s*(.*?)\s*-->\s*$")

# (file, the block's first line): why it does not run. Owned by the docs' authors.
KNOWN_FAILURES = {
}


@functools.cache
def blocks(path: Path) -> list[tuple[int, str, str | None]]:
    """(line number, code, reason to skip or None) for each python block of ``path``."""
    text = path.read_text()
    found = []
    for m in re.finditer(r"^([ \t]*)```python[ \t]*\n(.*?)^[ \t]*```", text,
                         flags=re.S | re.M):
        line = text.count("\n", 0, m.start()) + 1
        code = textwrap.dedent(m.group(2))  # a block inside a list item is indented
        before = text[:m.start()].rstrip().splitlines()
        mark = SKIP_MARK.search(before[-1]) if before else None
        found.append((line, code, mark.group(1) if mark else None))
    return found


def _first_line(code: str) -> str:
    return next((line.strip() for line in code.splitlines() if line.strip()), "")


@functools.cache
def run_file(path: Path) -> dict[int, str | None]:
    """{line: None if the block ran, else the error} for the blocks of ``path``."""
    results: dict[int, str | None] = {}
    namespace: dict = {"__name__": "__docs__"}
    cwd = os.getcwd()
    scratch = tempfile.mkdtemp(prefix="zerograd-docs-")
    os.environ.setdefault("MPLBACKEND", "Agg")
    try:
        os.chdir(scratch)
        for line, code, skip in blocks(path):
            if skip is not None:
                continue
            results[line] = _run(code, namespace, f"{path.name}:{line}",
                                 check_prints=path.name in PRINTS_CHECKED)
    finally:
        os.chdir(cwd)
    return results


def _run(code: str, namespace: dict, where: str, check_prints: bool) -> str | None:
    if code.lstrip().startswith(">>>"):
        test = doctest.DocTestParser().get_doctest(code, namespace, where, where, 0)
        out = io.StringIO()
        runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS
                                       | doctest.NORMALIZE_WHITESPACE)
        runner.run(test, out=out.write, clear_globs=False)
        return out.getvalue() or None if runner.failures else None
    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out):
            exec(compile(code, where, "exec"), namespace)
    except Exception as e:  # the test reports it, with the block's place
        return f"{type(e).__name__}: {e}"
    promised = [m.group(1).strip() for m in PROMISE.finditer(code)] if check_prints else []
    printed = out.getvalue().splitlines()[:len(promised)]
    if printed != promised:
        return f"printed {printed}, the comments promise {promised}"
    return None


def _cases():
    for path in FILES:
        for line, code, skip in blocks(path):
            marks = []
            reason = KNOWN_FAILURES.get((path.name, _first_line(code)))
            if reason:
                marks.append(pytest.mark.xfail(reason=reason, strict=True))
            yield pytest.param(path, line, skip, id=f"{path.name}:{line}", marks=marks)


@pytest.mark.parametrize("path, line, skip", _cases())
def test_block_runs(path, line, skip):
    if skip is not None:
        pytest.skip(f"marked not run: {skip}")
    error = run_file(path)[line]
    assert error is None, f"{path.name}, the block at line {line}: {error}"


def test_every_known_failure_is_still_in_the_docs():
    present = {(p.name, _first_line(code)) for p in FILES for _, code, _ in blocks(p)}
    stale = [k for k in KNOWN_FAILURES if k not in present]
    assert not stale, f"KNOWN_FAILURES names blocks that are gone: {stale}"


def test_skip_marks_give_a_reason():
    text = "<!-- not run: needs MNIST -->"
    assert SKIP_MARK.search(text).group(1) == "needs MNIST"
    assert SKIP_MARK.search("<!-- not run: -->") is None or \
        SKIP_MARK.search("<!-- not run: -->").group(1) == ""
