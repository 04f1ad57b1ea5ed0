"""The explorer in a real browser: headless Chromium (Debian's package) driven by Playwright
loads the page, clicks through every step and back, and checks each gradient it shows
against zerograd's own backward; then takes a screenshot.

Skips, saying why, where Playwright or Chromium is not installed (.ci/run installs both).
Set ZEROGRAD_SCREENSHOTS to a folder to keep the screenshots there.
"""

from __future__ import annotations

import json
import os
import re
import shutil

import numpy as np
import pytest

import zerograd.functions as F
from zerograd import Variable
from zerograd.utils import explore

playwright_api = pytest.importorskip(
    "playwright.sync_api", reason="Playwright is not installed (pip install playwright)")
CHROMIUM = os.environ.get("ZEROGRAD_CHROMIUM") or next(
    (p for p in map(shutil.which, ("chromium", "chromium-browser")) if p), None)
if CHROMIUM is None:
    pytest.skip("no system Chromium (Debian: apt-get install chromium)", allow_module_level=True)


@pytest.fixture(scope="module")
def browser():
    with playwright_api.sync_playwright() as p:
        # The system's Chromium: Playwright must never download a browser of its own.
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield b
        b.close()


def _diamond():
    x = Variable(np.array(2.0))
    a = F.square(x)
    b = F.exp(a)
    c = F.exp(a)
    y = b + c
    return [x], y


def _x_plus_x():
    x = Variable(np.array([1.0, -2.0, 0.5]))
    y = x + x
    return [x], y


def _broadcast_and_matmul():
    x = Variable(np.array([[1.0, 2.0]]))
    W = Variable(np.array([[1.0, -1.0, 0.5], [2.0, 0.0, 1.0]]), name="W")
    b = Variable(np.array([0.1, 0.2, 0.3]), name="b")
    h = F.tanh(F.matmul(x, W) + b)
    y = F.sum(h * h + x.T)
    return [x, W, b], y


def _expected_states(explorer) -> list[dict[str, np.ndarray]]:
    """The .grad of every variable after each step, from the engine's recorded steps."""
    key = explorer.graph.key
    output = key(explorer.graph.variables[0])
    state = {output: explorer.trace.seed}
    states = [dict(state)]
    for step in explorer.trace:
        for x, g in zip(step.function.inputs, step.sent):
            if g.total is not None:
                state[key(x)] = g.total
        states.append(dict(state))
    return states


def _numbers(text: str) -> list[float]:
    return [float(v) for v in re.findall(r"-?\d+(?:\.\d+)?(?:e[-+]?\d+)?", text)]


@pytest.mark.parametrize("build", [_diamond, _x_plus_x, _broadcast_and_matmul],
                         ids=["diamond", "x+x", "broadcast-matmul"])
def test_clicking_through_every_step_shows_the_engines_gradients(browser, build, tmp_path):
    leaves, y = build()
    explorer = explore(y, path=tmp_path / "graph.html")
    # An independent plain backward, the answer the last step must show.
    leaves2, y2 = build()
    y2.backward()
    expected_final = [v.grad.data for v in leaves2]

    page = browser.new_page(viewport={"width": 1280, "height": 800})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto((tmp_path / "graph.html").as_uri())
    states = _expected_states(explorer)
    key = explorer.graph.key

    def check(position: int) -> None:
        want = states[position]
        assert page.inner_text("#counter").startswith(
            "Before backward" if position == 0 else f"Step {position} of {len(explorer.trace)}")
        for v in explorer.graph.variables:
            node = page.locator(f'#graph [data-key="{key(v)}"]')
            shown = node.get_attribute("data-grad")
            text = node.locator("tspan.zg-grad").text_content()
            if key(v) not in want:
                assert shown == "null" and text == "grad None"
                continue
            values = np.array(json.loads(shown), dtype=float)
            np.testing.assert_allclose(values, want[key(v)].ravel(), rtol=1e-12)
            np.testing.assert_allclose(_numbers(text.removeprefix("grad ")),
                                       want[key(v)].ravel(), rtol=1e-3, atol=1e-12)
        if position:
            step = explorer.trace[position - 1]
            assert page.locator(".zg-current").get_attribute("data-key") == \
                key(step.function)
            rows = page.locator("table.received tr")
            assert rows.count() == len(step.received)
            for i, g in enumerate(step.received):  # what the engine passed to backward
                np.testing.assert_allclose(json.loads(rows.nth(i).get_attribute("data-values")),
                                           g.data.ravel(), rtol=1e-12)
            rows = page.locator("table.sent tr")
            for i, g in enumerate(step.sent):
                np.testing.assert_allclose(json.loads(rows.nth(i).get_attribute("data-values")),
                                           g.data.ravel(), rtol=1e-12)

    check(0)
    for position in range(1, len(explorer.trace) + 1):
        page.click("#next")
        check(position)
    assert page.is_disabled("#next")
    for v, want in zip(leaves, expected_final):
        shown = page.locator(f'#graph [data-key="{key(v)}"]').get_attribute("data-grad")
        np.testing.assert_allclose(np.array(json.loads(shown)), want.ravel(), rtol=1e-12)
    for position in range(len(explorer.trace) - 1, -1, -1):  # and all the way back
        page.click("#prev")
        check(position)
    page.keyboard.press("ArrowRight")
    check(1)
    if not page.is_disabled("#last"):
        page.click("#last")
        check(len(explorer.trace))
    shot = tmp_path / f"explorer-{build.__name__.strip('_')}.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    keep = os.environ.get("ZEROGRAD_SCREENSHOTS")
    if keep:
        os.makedirs(keep, exist_ok=True)
        shutil.copy(shot, keep)
    assert errors == []
    page.close()


def test_inline_svg_graph_renders_in_the_browser(browser, tmp_path, monkeypatch):
    """graph(y) without Graphviz, as a notebook shows it: the SVG inline in an HTML page."""
    from zerograd.utils import graph

    monkeypatch.setattr(shutil, "which", lambda name: None)
    x = Variable(np.array([1.0, 2.0]), name="x")
    W = Variable(np.ones((2, 3)), name="W")
    y = F.sum(F.sigmoid(F.matmul(x.reshape(1, 2), W)) + x.reshape(2, 1))
    html = f"<!DOCTYPE html><html><body>{graph(y, verbose=True)._repr_svg_()}</body></html>"
    (tmp_path / "graph.html").write_text(html)
    page = browser.new_page(viewport={"width": 700, "height": 900})
    page.goto((tmp_path / "graph.html").as_uri())
    boxes = [page.locator(f'[data-key="{k}"]').bounding_box() for k in
             page.eval_on_selector_all("[data-key]", "els => els.map(e => e.dataset.key)")]
    assert len(boxes) == 14 and all(b["width"] > 10 for b in boxes)
    for i, p in enumerate(boxes):  # as rendered: no two nodes overlap
        for q in boxes[i + 1:]:
            assert not (p["x"] < q["x"] + q["width"] and q["x"] < p["x"] + p["width"]
                        and p["y"] < q["y"] + q["height"] and q["y"] < p["y"] + p["height"])
    shot = tmp_path / "graph-inline-svg.png"
    page.locator("svg").screenshot(path=str(shot))
    keep = os.environ.get("ZEROGRAD_SCREENSHOTS")
    if keep:
        shutil.copy(shot, keep)
    page.close()
