"""examples/notebooks/first_steps.ipynb runs from top to bottom in a real Jupyter kernel
(nbclient + ipykernel) and shows what its text says: the values, an inline SVG graph, the
explorer inline, check_function's findings and a falling loss."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat", reason="nbformat is not installed")
nbclient = pytest.importorskip("nbclient", reason="nbclient is not installed")
pytest.importorskip("ipykernel", reason="ipykernel (the Jupyter kernel) is not installed")

NOTEBOOK = Path(__file__).resolve().parents[2] / "examples" / "notebooks" / "first_steps.ipynb"


def _text(cell) -> str:
    parts = []
    for out in cell.get("outputs", []):
        if out.get("output_type") == "stream":
            parts.append(out["text"])
        elif "data" in out and "text/plain" in out["data"]:
            parts.append(out["data"]["text/plain"])
    return "".join(parts)


def _data(cell, mime: str) -> str:
    for out in cell.get("outputs", []):
        if mime in out.get("data", {}):
            return out["data"][mime]
    raise AssertionError(f"no {mime} output in cell:\n{cell.source}")


@pytest.mark.slow
def test_tutorial_notebook_runs_and_shows_what_it_says(tmp_path):
    nb = nbformat.read(NOTEBOOK, as_version=4)
    assert not any(c.get("outputs") for c in nb.cells if c.cell_type == "code"), \
        "the notebook is committed without outputs"
    client = nbclient.NotebookClient(nb, timeout=300, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.execute()
    cells = {c.source.splitlines()[0] if c.source else "": c
             for c in nb.cells if c.cell_type == "code"}

    def cell(first_line: str):
        return next(c for k, c in cells.items() if k.startswith(first_line))

    assert _text(cell("x = Variable(np.array(0.5))")).splitlines() == [
        "variable(1.648721270700128)", "variable(3.297442541400256)"]
    svg = _data(cell("graph(y, verbose=True)"), "image/svg+xml")
    assert "<svg" in svg and "x: () float64" in svg and "Square" in svg
    trace_text = _text(cell("x = Variable(np.array(2.0))"))
    assert trace_text.startswith("backward from y (() float64), seed y.grad = 1\nstep 1: Add")
    assert "a.grad = 109.2" in trace_text
    assert _text(cell("print(trace.order)")).splitlines() == [
        "['Add', 'Exp', 'Exp', 'Square']", "variable(436.7852002651539)"]
    explorer = cell('explore(y, path="graph.html")')
    assert _data(explorer, "text/html").startswith('<iframe srcdoc="&lt;!DOCTYPE html&gt;')
    assert (tmp_path / "graph.html").read_text().startswith("<!DOCTYPE html>")
    broken, fixed = [c for c in nb.cells if c.source.startswith("class Sin(Function):")]
    assert "check_function(Sin): 1 problem." in _text(broken)
    assert "[second derivative]" in _text(broken)
    assert "returned a gradient with no creator" in _data(broken, "text/html")
    assert _text(fixed).startswith("check_function(Sin): no problem found.")
    losses = [float(v) for v in re.findall(r"loss (\d+\.\d+)",
                                           _text(cell("from zerograd import optimizers")))]
    assert len(losses) == 5 and losses[-1] < 0.1 < losses[0]
    assert "<svg" in _data(cell("graph(loss)"), "image/svg+xml")
