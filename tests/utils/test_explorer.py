"""explore(y): a self-contained page (no network, no third-party script) whose data are the
engine's steps; exploring leaves every .grad as it was. The browser test is apart."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

import zerograd.functions as F
from zerograd import Variable
from zerograd.utils import explore


def _page_data(page: str) -> dict:
    text = re.search(r'<script id="zg-data" type="application/json">(.*?)</script>', page,
                     flags=re.S).group(1)
    return json.loads(text.replace("<\\/", "</"))


def _diamond():
    x = Variable(np.array(2.0))
    a = F.square(x)
    return x, F.exp(a) + F.exp(a)


def test_page_is_self_contained(tmp_path):
    x, y = _diamond()
    explorer = explore(y, path=tmp_path / "graph.html")
    page = (tmp_path / "graph.html").read_text()
    assert page == explorer.html and explorer.path == str(tmp_path / "graph.html")
    assert page.startswith("<!DOCTYPE html>")
    assert "<script src" not in page and "<link" not in page and "@import" not in page
    # The only URL is the SVG namespace, which is a name, not a download.
    assert re.findall(r"https?://[^\s\"']+", page) == ["http://www.w3.org/2000/svg"]
    assert page.count("<script") == 2  # the data and zerograd's own script


def test_page_data_are_the_engines_steps():
    x, y = _diamond()
    explorer = explore(y, path=None)
    data = _page_data(explorer.html)
    key = explorer.graph.key
    assert [s["op"] for s in data["steps"]] == ["Add", "Exp", "Exp", "Square"]
    assert data["output"] == key(y) and data["seed"]["values"] == [1.0]
    square = data["steps"][3]
    assert square["inputs"] == [key(x)]
    assert square["received"][0]["values"] == pytest.approx([2 * np.exp(4.0)])
    assert square["added"][0]["values"] == pytest.approx([8 * np.exp(4.0)])
    assert data["variables"][key(x)] == {"label": "x", "leaf": True, "initial_grad": None,
                                         "data": {"shape": [], "dtype": "float64",
                                                  "values": [2.0]}}
    # The queue: before the first step, Add; after Add, both Exp; after the first Exp,
    # Square waits behind the second Exp (higher generation first: steps 16-18).
    ops = data["functions"]
    assert [[ops[k]["op"] for k in q] for q in data["queue"]] == [
        ["Add"], ["Exp", "Exp"], ["Exp", "Square"], ["Square"], []]


def test_exploring_changes_no_gradient():
    x = Variable(np.array([1.0, 2.0]))
    y = F.sum(x * x)
    y.backward()
    before = x.grad
    explore(y, path=None)
    assert x.grad is before
    np.testing.assert_array_equal(x.grad.data, [2.0, 4.0])
    z = F.sum(x + x)
    explore(z, path=None)
    assert z.grad is None and x.grad is before


def test_large_arrays_travel_as_text():
    W = Variable(np.arange(5000.0).reshape(50, 100) / 5000, name="W")
    y = F.sum(W * W)
    data = _page_data(explore(y, path=None).html)
    entry = data["variables"]["v1" if data["variables"]["v1"]["label"] == "W" else "v2"]
    assert entry["label"] == "W"
    assert entry["data"]["values"] is None
    assert entry["data"]["summary"] == "5000 values in [0, 0.9998], mean 0.4999"


def test_shows_inline_in_a_notebook():
    x, y = _diamond()
    explorer = explore(y, path=None)
    html = explorer._repr_html_()
    assert html.startswith('<iframe srcdoc="&lt;!DOCTYPE html&gt;')
    assert repr(explorer) == "<zerograd explorer of backward: 4 steps>"


def test_refuses_a_non_variable():
    with pytest.raises(TypeError, match="explore: y is a list; expected a Variable"):
        explore([1.0])
