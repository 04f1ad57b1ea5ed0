"""graph(y): labels as DeZero writes them, rows from generations, an SVG that needs no
Graphviz (arrows downward, no overlapping nodes, two curves for y = x + x), saving."""

from __future__ import annotations

import re
import shutil
import xml.etree.ElementTree as ET

import numpy as np
import pytest

import zerograd.functions as F
from zerograd import Variable
from zerograd.utils import Graph, _layout, graph
from zerograd.utils.graph import ranks

SVG = "{http://www.w3.org/2000/svg}"


def _diamond():
    x = Variable(np.array(2.0), name="x")
    a = F.square(x)
    a.name = "a"
    b, c = F.exp(a), F.exp(a)
    b.name, c.name = "b", "c"
    y = b + c
    y.name = "y"
    return x, a, b, c, y


def _parse(svg: str):
    root = ET.fromstring(svg)
    nodes = {}
    for g in root.iter(f"{SVG}g"):
        key = g.get("data-key")
        if key is None:
            continue
        shape = g.find(f"{SVG}ellipse")
        if shape is not None:
            cx, cy = float(shape.get("cx")), float(shape.get("cy"))
            rx, ry = float(shape.get("rx")), float(shape.get("ry"))
            box = (cx - rx, cy - ry, cx + rx, cy + ry)
        else:
            shape = g.find(f"{SVG}rect")
            x, y = float(shape.get("x")), float(shape.get("y"))
            box = (x, y, x + float(shape.get("width")), y + float(shape.get("height")))
        text = [t.text for t in g.iter(f"{SVG}tspan")]
        nodes[key] = (box, text)
    edges = []
    for p in root.iter(f"{SVG}path"):
        if p.get("class") == "zg-edge":
            numbers = [float(v) for v in re.findall(r"-?\d+\.?\d*", p.get("d"))]
            edges.append((p.get("data-source"), p.get("data-target"), numbers[:2],
                          numbers[-2:], p.get("d")))
    return root, nodes, edges


def test_labels_are_dezeros_name_shape_dtype_and_verbose_adds_values_and_grads():
    x, a, b, c, y = _diamond()
    g = Graph(y, layout="zerograd")
    assert g.variable_lines(x) == ["x: () float64"]
    assert [g.function_lines(f) for f in g.functions] == [["Add"], ["Exp"], ["Exp"],
                                                          ["Square"]]
    y.backward()
    v = Graph(y, verbose=True, layout="zerograd")
    assert v.variable_lines(x) == ["x: () float64", "data 2", "grad 436.8"]
    big = Variable(np.arange(20.0).reshape(4, 5), name="W")
    assert Graph(F.sum(big), verbose=True).variable_lines(big) == [
        "W: (4, 5) float64", "data 20 values in [0, 19], mean 9.5"]
    m = Variable(np.array([[1.0, 2.0], [3.0, 4.0]], dtype=np.float32), name="m")
    assert Graph(m * 2, verbose=True).variable_lines(m) == [
        "m: (2, 2) float32", "data [[1, 2],", "      [3, 4]]"]


def test_unnamed_variables_take_the_callers_python_names():
    x = Variable(np.array([1.0, 2.0]))
    hidden = F.sin(x)
    g = graph(hidden * 3)
    assert g.variable_lines(x) == ["x: (2,) float64"]
    assert g.variable_lines(hidden) == ["hidden: (2,) float64"]
    assert x.name is None  # shown, never stored


def test_rows_come_from_generations_and_leaves_sit_above_their_reader():
    x = Variable(np.array(1.0), name="x")
    h = F.sin(F.sin(x))
    w = Variable(np.array(3.0), name="w")
    y = h * w
    g = Graph(y)
    rank = ranks(g.variables, g.functions)
    # x (generation 0) row 0, Sin row 1, its output row 2, ... the Mul (generation 2) row 5
    assert rank[id(x)] == 0
    assert rank[id(y.creator)] == 2 * y.creator.generation + 1 == 5
    assert rank[id(y)] == 6
    assert rank[id(w)] == 4  # a leaf sits right above the function that reads it


def test_svg_draws_without_dot(monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    x, a, b, c, y = _diamond()
    g = graph(y)
    root, nodes, edges = _parse(g.svg)
    assert root.tag == f"{SVG}svg"
    assert sorted(nodes) == ["f0", "f1", "f2", "f3", "v0", "v1", "v2", "v3", "v4"]
    labels = sorted(text[0] for _, text in nodes.values())
    assert labels == ["Add", "Exp", "Exp", "Square", "a: () float64", "b: () float64",
                      "c: () float64", "x: () float64", "y: () float64"]
    assert len(edges) == 9  # Square: 2, each Exp: 2, Add: 3
    for source, target, start, end, _ in edges:
        assert end[1] > start[1], "every arrow points down, from input to function to output"
        s_box, t_box = nodes[source][0], nodes[target][0]
        assert s_box[3] - 1 <= start[1] <= s_box[3] + 1e-6 or s_box[1] <= start[1]
        assert t_box[1] - 1e-6 <= end[1] <= t_box[1] + t_box[3]  # ends on the target
    boxes = [box for box, _ in nodes.values()]
    for i, p in enumerate(boxes):
        for q in boxes[i + 1:]:
            overlap = p[0] < q[2] and q[0] < p[2] and p[1] < q[3] and q[1] < p[3]
            assert not overlap, (p, q)
    bundle = g._repr_mimebundle_()
    assert bundle["image/svg+xml"] == g._repr_svg_() == g.svg
    assert bundle["text/plain"] == "<zerograd graph: 5 variables, 4 functions>"


def test_x_plus_x_is_two_arrows():
    x = Variable(np.array(3.0), name="x")
    y = x + x
    _, nodes, edges = _parse(Graph(y, layout="zerograd").svg)
    into_add = [e for e in edges if e[1] == "f0"]
    assert len(into_add) == 2
    assert into_add[0][3] != into_add[1][3], "the two arrows end at different points"
    assert into_add[0][4] != into_add[1][4]


def test_layout_is_deterministic_and_places_rows_without_overlap():
    def build():
        x = Variable(np.ones((3, 2)), name="x")
        W = Variable(np.ones((2, 4)), name="W")
        return F.sum(F.relu(F.matmul(x, W)) + F.tanh(x).sum())
    first, second = (re.sub(r"zg\d+-", "", Graph(build(), layout="zerograd").svg)
                     for _ in range(2))
    assert first == second  # (apart from the id prefix each drawing gets)
    _, nodes, _ = _parse(first)
    assert len(nodes) == 14  # 8 variables, 6 functions


def test_place_in_order_is_the_least_squares_fit_under_gaps():
    # Wanted 0, 0, 0 with gaps 10: the best fit is -10, 0, 10 (sum of squares 200).
    assert _layout._place_in_order([0.0, 0.0, 0.0], [10.0, 10.0]) == [-10.0, 0.0, 10.0]
    # Already far enough apart: unchanged.
    assert _layout._place_in_order([0.0, 50.0], [10.0]) == [0.0, 50.0]
    assert _layout._place_in_order([5.0, 0.0], [10.0]) == [-2.5, 7.5]


def test_layout_refuses_an_edge_that_goes_up():
    boxes = [_layout.Box("a", 1, 10, 10), _layout.Box("b", 0, 10, 10)]
    with pytest.raises(ValueError, match="edge a -> b goes from rank 1 to rank 0"):
        _layout.layout(boxes, [("a", "b")])


def test_save_svg_dot_and_png_without_graphviz(tmp_path, monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    *_, y = _diamond()
    g = graph(y)
    assert g.save(tmp_path / "g.svg") == str(tmp_path / "g.svg")
    assert (tmp_path / "g.svg").read_text() == g.svg
    g.save(tmp_path / "g.dot")
    dot = (tmp_path / "g.dot").read_text()
    assert dot.startswith("digraph g {") and dot.count("->") == 9
    assert 'v0 [label="y: () float64", color=orange, style=filled]' in dot
    assert 'f0 [label="Add", color=lightblue, style=filled, shape=box]' in dot
    pytest.importorskip("matplotlib")
    g.save(tmp_path / "g.png")
    png = (tmp_path / "g.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
    root = ET.fromstring(g.svg)
    assert (width, height) == (int(root.get("width")), int(root.get("height")))
    with pytest.raises(RuntimeError, match=r"needs Graphviz's 'dot' to write the 'pdf'"):
        g.save(tmp_path / "g.pdf")
    with pytest.raises(RuntimeError, match="layout='dot' needs Graphviz"):
        _ = Graph(y, layout="dot").svg


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot is not installed")
def test_with_dot_installed_dot_lays_it_out():
    *_, y = _diamond()
    svg = Graph(y).svg
    assert "<!-- Generated by graphviz" in svg and "zg-edge" not in svg
    assert "Square" in svg and "x: () float64" in svg


def test_bad_arguments_name_what_was_given():
    with pytest.raises(TypeError, match="graph: output 0 is a ndarray; expected a Variable"):
        Graph(np.ones(2))
    with pytest.raises(ValueError, match="layout must be 'auto', 'dot' or 'zerograd'"):
        Graph(Variable(np.ones(2)), layout="neato")
