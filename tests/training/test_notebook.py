"""examples/notebooks/training.ipynb, executed with nbclient as CI does: it trains with the
loop and shows a progress display (tqdm's widget, or its text bar without ipywidgets), the
epoch lines and the learning curves inline."""

import os
from pathlib import Path

import pytest

NOTEBOOK = Path(__file__).resolve().parents[2] / "examples" / "notebooks" / "training.ipynb"
REPO = str(NOTEBOOK.parents[2])


def test_notebook_trains_and_shows_progress_and_curves(tmp_path, monkeypatch):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    pytest.importorskip("matplotlib")
    # The kernel imports this checkout's zerograd, and draws without a display.
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([REPO, os.environ.get("PYTHONPATH", "")]))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(notebook, timeout=300, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.execute()
    outputs = [o for cell in notebook.cells if cell.cell_type == "code"
               for o in cell.get("outputs", [])]
    assert not [o for o in outputs if o.output_type == "error"]
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    widgets = [o for o in outputs
               if "application/vnd.jupyter.widget-view+json" in o.get("data", {})]
    assert widgets or "batch/s" in text or "batch]" in text, text  # tqdm's widget or bar
    assert "epoch  1/15  loss" in text and "val acc" in text
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(images) == 1  # one image, updated in place
    assert "best validation accuracy" in text
    assert "'curves.png'" in str([o.get("data", {}) for o in outputs])
