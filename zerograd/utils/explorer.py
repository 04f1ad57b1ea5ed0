"""``explore(y)``: one HTML file in which a learner steps through backward.

The page shows the graph (zerograd's own drawing, no Graphviz) and, step by step, the
function the engine runs, its inputs' values, the gradients arriving and leaving, and the
``.grad`` of every variable so far, with the gradients of a variable used twice adding up
as the engine adds them (``y = x + x``, the diamond of steps 14-16). The file needs no
network and loads no script but its own, so it works offline and can be mailed around.

The steps are recorded by ``trace_backward`` on a real backward pass, run with every
``.grad`` in the graph cleared first and put back afterwards: exploring changes nothing.
"""

from __future__ import annotations

import html
import json
import os
from typing import Any

import numpy as np

from zerograd.core.function import Function
from zerograd.core.variable import Variable
from zerograd.utils._explorer_page import PAGE, SCRIPT, STYLE
from zerograd.utils._labels import SMALL, array_text, caller_names, flat_values, variable_name
from zerograd.utils.graph import Graph
from zerograd.utils.trace import BackwardTrace, trace_backward

# Arrays larger than this travel as text only (the page stays small for a real model).
MAX_VALUES = 4096


class Explorer:
    """The explorer page: ``html`` (the file's text), ``path`` (where it was written, or
    None), ``trace`` (the recorded steps), ``graph`` (the drawing, whose ``key(v)`` names
    each node in the page). Shows itself inline in Jupyter."""

    def __init__(self, page: str, trace: BackwardTrace, drawing: Graph, path: str | None,
                 height: int) -> None:
        self.html = page
        self.trace = trace
        self.graph = drawing
        self.path = path
        self.height = height

    def save(self, path: str | os.PathLike) -> str:
        path = os.fspath(path)
        with open(path, "w", encoding="utf-8") as f:
            f.write(self.html)
        self.path = path
        return path

    def _repr_html_(self) -> str:
        # An iframe keeps the page's script and style apart from the notebook's.
        return (f'<iframe srcdoc="{html.escape(self.html, quote=True)}" '
                f'style="width: 100%; height: {self.height}px; border: 1px solid #ddd">'
                f"</iframe>")

    def __repr__(self) -> str:
        where = f" in {self.path!r}" if self.path else ""
        return f"<zerograd explorer of backward{where}: {len(self.trace)} steps>"


def explore(y: Variable, path: str | None = "graph.html",
            names: dict[int, str] | None = None) -> Explorer:
    """Write (to ``path``; None: write nothing) and return the step-by-step explorer of
    ``y.backward()``. Unnamed variables take the caller's Python names for them."""
    if not isinstance(y, Variable):
        raise TypeError(f"explore: y is a {type(y).__name__}; expected a Variable (the "
                        f"result of a computation, e.g. y = F.sin(x))")
    if names is None:
        names = caller_names(1)
    drawing = Graph(y, names=names, layout="zerograd")
    saved = {id(v): v.grad for v in drawing.variables}
    try:
        for v in drawing.variables:
            v.grad = None
        trace = trace_backward(y, retain_grad=True, show=False, names=names)
    finally:
        for v in drawing.variables:
            v.grad = saved[id(v)]

    key = drawing.key
    labels = {id(v): variable_name(v, names) or key(v) for v in drawing.variables}
    steps, longest = [], {key(v): "grad None" for v in drawing.variables}
    for step in trace:
        f = step.function
        outputs = [ref() for ref in f.outputs]
        entry = {
            "func": key(f), "op": step.op, "generation": step.generation,
            "inputs": [key(x) for x in f.inputs],
            "outputs": [None if o is None else key(o) for o in outputs],
            "received": [_array(g.data) for g in step.received],
            "sent": [_array(g.data) for g in step.sent],
            "added": [],
        }
        for x, g in zip(f.inputs, step.sent):
            part = _array(g.added, total=g.total)
            entry["added"].append(part)
            if g.total is not None:
                text = "grad " + array_text(g.total, one_line=True)
                if len(text) > len(longest[key(x)]):
                    longest[key(x)] = text
        steps.append(entry)
    seed_text = "grad " + array_text(trace.seed, one_line=True)
    if len(seed_text) > len(longest[key(y)]):
        longest[key(y)] = seed_text

    # Data lines and a gradient line under every variable; the gradient line starts as the
    # longest text it will show, so that the layout leaves room for it.
    extra = {}
    for v in drawing.variables:
        lines = []
        if v.data is not None:
            lines.append(("data " + array_text(v.data, one_line=True), "zg-data"))
        lines.append((longest[key(v)], "zg-grad"))
        extra[key(v)] = lines
    svg = drawing.to_svg(extra_lines=extra, css_class="zerograd-graph zerograd-explorer")

    data = {
        "small": SMALL,
        "output": key(y),
        "seed": _array(trace.seed),
        "variables": {key(v): {"label": labels[id(v)], "leaf": v.creator is None,
                               "data": None if v.data is None else _array(v.data),
                               "initial_grad": None}
                      for v in drawing.variables},
        "functions": {key(f): {"op": f.name, "generation": f.generation}
                      for f in drawing.functions},
        "steps": steps,
        "queue": _queues(trace, key, y),
    }
    payload = json.dumps(data, allow_nan=False, default=str).replace("</", "<\\/")
    title = html.escape(labels[id(y)] or "the output")
    page = PAGE.format(title=title, style=STYLE, svg=svg, data=payload, script=SCRIPT)
    height = min(900, max(420, int(svg.split('height="', 1)[1].split('"', 1)[0]) + 120))
    explorer = Explorer(page, trace, drawing, None, height)
    if path is not None:
        explorer.save(path)
    return explorer


def _array(a, total=None) -> dict | None:
    """{shape, dtype, values} for JSON; a large array keeps only its text ("summary")."""
    if a is None:
        return None
    a = np.asarray(a)
    entry: dict[str, Any] = {"shape": list(a.shape), "dtype": str(a.dtype)}
    if a.size <= MAX_VALUES and np.all(np.isfinite(a)):
        entry["values"] = flat_values(a)
    else:  # too large for the page, or inf/nan (which JSON cannot carry): text only
        entry["values"] = None
        entry["summary"] = array_text(a, one_line=True)
    if total is not None:
        entry["total_summary"] = array_text(total, one_line=True)
    return entry


def _queues(trace: BackwardTrace, key, y: Variable) -> list[list[str]]:
    """The functions waiting in the engine's queue before the first step and after each,
    in the order the engine will take them (highest generation first, then by arrival)."""
    arrival: dict[int, int] = {id(y.creator): 0} if y.creator is not None else {}
    waiting: list[Function] = [y.creator] if y.creator is not None else []
    queues = [[key(f) for f in waiting]]
    for step in trace:
        f = step.function
        waiting = [w for w in waiting if w is not f]
        for x, g in zip(f.inputs, step.sent):
            creator = x.creator
            if (g.data is not None and x.requires_grad and creator is not None
                    and id(creator) not in arrival):
                arrival[id(creator)] = len(arrival)
                waiting.append(creator)
        waiting.sort(key=lambda w: (-w.generation, arrival[id(w)]))
        queues.append([key(w) for w in waiting])
    return queues


__all__ = ["Explorer", "explore"]
