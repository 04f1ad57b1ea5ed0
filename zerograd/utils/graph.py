"""``graph(y)``: the computational graph as an object that draws itself, Graphviz or not.

>>> g = graph(y)            # in a notebook, the cell shows the picture (inline SVG)
>>> g.save("graph.svg")     # also .png, .dot (and .pdf with Graphviz)

Variables are orange ellipses and functions light-blue boxes, labelled as DeZero's
``plot_dot_graph`` labels them (``name: shape dtype`` and the class name); ``verbose=True``
adds the values and gradients of small arrays. Where Graphviz's ``dot`` is installed it
lays the picture out; where it is not, zerograd lays it out itself: rows from the
generations the engine computes for backward (an input above the function that reads it,
the function above its output), so the picture reads top-down as the forward pass ran.
"""

from __future__ import annotations

import html
import io
import itertools
import os
import shutil
import subprocess

from zerograd.core.function import Function
from zerograd.core.variable import Variable
from zerograd.utils import _layout
from zerograd.utils._labels import array_text, caller_names, shape_dtype, variable_name

FONT = "DejaVu Sans Mono, Menlo, Consolas, monospace"
FONT_SIZE = 12
CHAR_WIDTH = 0.6 * FONT_SIZE  # a monospace font's advance, so labels can be measured
LINE_HEIGHT = 15
VARIABLE_COLOR = "orange"     # DeZero's colours
FUNCTION_COLOR = "lightblue"
_svg_ids = itertools.count()  # each drawing gets its own id prefix (several per notebook)


def collect(outputs: Variable | list[Variable] | tuple[Variable, ...]
            ) -> tuple[list[Variable], list[Function]]:
    """The Variables and Functions behind ``outputs`` (a Variable or a sequence of them),
    in the order a walk back from the outputs discovers them."""
    if isinstance(outputs, Variable):
        outputs = [outputs]
    elif not isinstance(outputs, (list, tuple)):
        outputs = [outputs]  # reported below, by its type
    outputs = list(outputs)
    for i, y in enumerate(outputs):
        if not isinstance(y, Variable):
            raise TypeError(f"graph: output {i} is a {type(y).__name__}; expected a Variable "
                            f"(the result of a computation, e.g. y = F.sin(x))")
    variables: dict[int, Variable] = {}
    functions: dict[int, Function] = {}
    todo: list[Function] = []

    def add_variable(v: Variable) -> None:
        if id(v) not in variables:
            variables[id(v)] = v
            f = v.creator
            if f is not None and id(f) not in functions:
                functions[id(f)] = f
                todo.append(f)

    for y in outputs:
        add_variable(y)
    while todo:
        f = todo.pop(0)
        for ref in f.outputs or ():
            y = ref()
            if y is not None:
                add_variable(y)
        for x in f.inputs or ():
            add_variable(x)
    return list(variables.values()), list(functions.values())


def ranks(variables: list[Variable], functions: list[Function]) -> dict[int, int]:
    """{id(node): row} from the engine's generations: a function of generation g sits in
    row 2g + 1, between its inputs (row <= 2g) and its outputs (row 2g + 2). A leaf (no
    creator) sits just above the first function that reads it, as a parameter is drawn
    next to the layer that uses it rather than at the top of the picture."""
    rank: dict[int, int] = {}
    for f in functions:
        rank[id(f)] = 2 * f.generation + 1
    readers: dict[int, list[int]] = {}
    for f in functions:
        for x in f.inputs or ():
            readers.setdefault(id(x), []).append(rank[id(f)])
    for v in variables:
        if v.creator is not None and id(v.creator) in rank:
            rank[id(v)] = 2 * v.creator.generation + 2
        else:
            rank[id(v)] = min(readers.get(id(v), [1])) - 1
    return rank


class Graph:
    """A drawing of the graph behind ``outputs``; shows itself in Jupyter as SVG.

    ``layout``: "auto" (Graphviz's ``dot`` when installed, else zerograd's own),
    "dot" or "zerograd". ``names``: {id(variable): name} for unnamed Variables (``graph()``
    fills it from the caller's variables).
    """

    def __init__(self, outputs, verbose: bool = False, layout: str = "auto",
                 names: dict[int, str] | None = None) -> None:
        if layout not in ("auto", "dot", "zerograd"):
            raise ValueError(f"graph: layout must be 'auto', 'dot' or 'zerograd', got "
                             f"{layout!r}")
        self.variables, self.functions = collect(outputs)
        self.verbose = verbose
        self.layout = layout
        self.names = dict(names or {})
        self._keys = {id(v): f"v{i}" for i, v in enumerate(self.variables)}
        self._keys.update({id(f): f"f{i}" for i, f in enumerate(self.functions)})
        self._svg: str | None = None

    # -- what each node says ---------------------------------------------------------------
    def key(self, node: Variable | Function) -> str:
        """'v3' / 'f1': the node's key in the DOT source and the SVG's ``data-key``."""
        return self._keys[id(node)]

    def variable_lines(self, v: Variable) -> list[str]:
        name = variable_name(v, self.names)
        lines = []
        if v.data is None:
            lines.append(name)
        else:
            lines.append(f"{name}: {shape_dtype(v.data)}" if name else shape_dtype(v.data))
            if self.verbose:
                lines += _prefixed("data ", array_text(v.data))
                if v.grad is not None and v.grad.data is not None:
                    lines += _prefixed("grad ", array_text(v.grad.data))
        return lines

    def function_lines(self, f: Function) -> list[str]:
        return [f.name]

    def tooltip(self, node: Variable | Function) -> str:
        if isinstance(node, Function):
            ins = ", ".join(_short(self, x) for x in node.inputs or ())
            outs = ", ".join(_short(self, ref()) for ref in node.outputs or () if ref() is not None)
            return f"{node.name} (generation {node.generation}): {ins} -> {outs}"
        creator = "a leaf" if node.creator is None else f"made by {node.creator.name}"
        return f"{_short(self, node)}, generation {node.generation}, {creator}"

    def edges(self) -> list[tuple[Variable | Function, Variable | Function]]:
        """(source, target) per arrow: input -> function, function -> output."""
        result: list[tuple[Variable | Function, Variable | Function]] = []
        for f in self.functions:
            for x in f.inputs or ():
                result.append((x, f))
            for ref in f.outputs or ():
                y = ref()
                if y is not None:
                    result.append((f, y))
        return result

    # -- DOT and SVG -----------------------------------------------------------------------
    @property
    def dot(self) -> str:
        """The Graphviz DOT source (DeZero's colours and shapes)."""
        lines = ["digraph g {"]
        for v in self.variables:
            label = _dot_escape("\n".join(self.variable_lines(v)))
            lines.append(f'{self.key(v)} [label="{label}", color={VARIABLE_COLOR}, '
                         f'style=filled]')
        for f in self.functions:
            lines.append(f'{self.key(f)} [label="{_dot_escape(f.name)}", '
                         f'color={FUNCTION_COLOR}, style=filled, shape=box]')
        for s, t in self.edges():
            lines.append(f"{self.key(s)} -> {self.key(t)}")
        return "\n".join(lines) + "\n}"

    @property
    def svg(self) -> str:
        """The picture as SVG text (drawn by ``dot`` or by zerograd, see ``layout``)."""
        if self._svg is None:
            if self._use_dot():
                self._svg = _run_dot(self.dot, "svg").decode()
            else:
                self._svg = self.to_svg()
        return self._svg

    def placed(self, extra_lines: dict[str, list[tuple[str, str]]] | None = None
               ) -> tuple[list[tuple[Variable | Function, str, list[tuple[str, str]]]],
                          _layout.Layout]:
        """zerograd's layout: ([(node, key, [(text, css class)])], _layout.Layout)."""
        extra_lines = extra_lines or {}
        nodes = []
        for node in self.variables + self.functions:
            key = self.key(node)
            if isinstance(node, Variable):
                lines = [(t, "") for t in self.variable_lines(node)]
            else:
                lines = [(t, "") for t in self.function_lines(node)]
            lines += extra_lines.get(key, [])
            nodes.append((node, key, lines))
        rank = ranks(self.variables, self.functions)
        boxes = []
        for node, key, lines in nodes:
            text_width = max(len(t) for t, _ in lines) * CHAR_WIDTH
            text_height = len(lines) * LINE_HEIGHT
            if isinstance(node, Variable):  # an ellipse around the text's box
                boxes.append(_layout.Box(key, rank[id(node)], max(text_width * 1.3 + 18, 40),
                                         text_height * 1.3 + 10, "ellipse"))
            else:
                boxes.append(_layout.Box(key, rank[id(node)], text_width + 20,
                                         text_height + 12, "box"))
        edges = [(self.key(s), self.key(t)) for s, t in self.edges()]
        return nodes, _layout.layout(boxes, edges)

    def to_svg(self, extra_lines: dict[str, list[tuple[str, str]]] | None = None,
               css_class: str = "zerograd-graph") -> str:
        """zerograd's own drawing. ``extra_lines``: {key: [(text, css class)]} added under
        a node's label (the explorer's gradient line)."""
        nodes, placed = self.placed(extra_lines)
        prefix = f"zg{next(_svg_ids)}"
        out = [f'<svg xmlns="http://www.w3.org/2000/svg" class="{css_class}" '
               f'width="{placed.width:.0f}" height="{placed.height:.0f}" '
               f'viewBox="0 0 {placed.width:.0f} {placed.height:.0f}" '
               f'font-family="{FONT}" font-size="{FONT_SIZE}">',
               f'<defs><marker id="{prefix}-arrow" viewBox="0 0 10 10" refX="10" refY="5" '
               f'markerWidth="9" markerHeight="9" markerUnits="userSpaceOnUse" '
               f'orient="auto"><path d="M0,1 L10,5 L0,9 z" fill="#333"/></marker></defs>',
               '<rect width="100%" height="100%" fill="white"/>', '<g class="zg-edges">']
        for route in placed.routes:
            out.append(f'<path class="zg-edge" data-source="{route.source}" '
                       f'data-target="{route.target}" d="{_layout.svg_path(route.points)}" '
                       f'fill="none" stroke="#333" stroke-width="1.2" '
                       f'marker-end="url(#{prefix}-arrow)"/>')
        out.append('</g><g class="zg-nodes">')
        for node, key, lines in nodes:
            box = placed.boxes[key]
            kind = "zg-var" if isinstance(node, Variable) else "zg-func"
            out.append(f'<g class="zg-node {kind}" data-key="{key}">'
                       f'<title>{html.escape(self.tooltip(node))}</title>')
            if isinstance(node, Variable):
                out.append(f'<ellipse cx="{box.x:.1f}" cy="{box.y:.1f}" rx="{box.width / 2:.1f}"'
                           f' ry="{box.height / 2:.1f}" fill="{VARIABLE_COLOR}" '
                           f'stroke="#b36b00"/>')
            else:
                out.append(f'<rect x="{box.x - box.width / 2:.1f}" '
                           f'y="{box.y - box.height / 2:.1f}" width="{box.width:.1f}" '
                           f'height="{box.height:.1f}" fill="{FUNCTION_COLOR}" '
                           f'stroke="#3a7ca5"/>')
            out.append('<text text-anchor="middle" fill="black">')
            for i, (text, cls) in enumerate(lines):
                baseline = box.y + (i - (len(lines) - 1) / 2) * LINE_HEIGHT + FONT_SIZE * 0.35
                attribute = f' class="{cls}"' if cls else ""
                out.append(f'<tspan x="{box.x:.1f}" y="{baseline:.1f}"{attribute} '
                           f'xml:space="preserve">{html.escape(text)}</tspan>')
            out.append("</text></g>")
        out.append("</g></svg>")
        return "\n".join(out)

    # -- saving and showing ------------------------------------------------------------------
    def save(self, path: str | os.PathLike) -> str:
        """Write the picture; the format is the extension: .svg, .png, .dot (.gv), and with
        Graphviz anything ``dot -T`` knows (.pdf, ...). Returns the path."""
        path = os.fspath(path)
        extension = os.path.splitext(path)[1][1:].lower()
        if extension in ("dot", "gv"):
            data = self.dot.encode()
        elif extension == "svg":
            data = self.svg.encode()
        elif self._use_dot() or (self.layout == "auto" and shutil.which("dot")):
            data = _run_dot(self.dot, extension)
        elif extension == "png":
            data = _png_from_svg_layout(self)
        else:
            raise RuntimeError(
                f"graph.save: {path!r} needs Graphviz's 'dot' to write the {extension!r} "
                f"format, and it is not installed (Debian/Ubuntu: apt-get install graphviz); "
                f"without it zerograd writes .svg, .dot and (with matplotlib) .png")
        with open(path, "wb") as f:
            f.write(data)
        return path

    def _repr_svg_(self) -> str:
        return self.svg

    def _repr_mimebundle_(self, include=None, exclude=None) -> dict:
        return {"image/svg+xml": self.svg, "text/plain": repr(self)}

    def __repr__(self) -> str:
        return (f"<zerograd graph: {len(self.variables)} variables, "
                f"{len(self.functions)} functions>")

    def _use_dot(self) -> bool:
        if self.layout == "zerograd":
            return False
        found = shutil.which("dot") is not None
        if self.layout == "dot" and not found:
            raise RuntimeError("graph: layout='dot' needs Graphviz's 'dot' program, which is "
                               "not on PATH (Debian/Ubuntu: apt-get install graphviz); "
                               "layout='auto' or 'zerograd' draws without it")
        return found


def graph(outputs: Variable | list[Variable] | tuple[Variable, ...], verbose: bool = False,
          layout: str = "auto") -> Graph:
    """The graph behind ``outputs`` (a Variable or a list of them), ready to show or save.

    Unnamed Variables are labelled with the caller's Python names for them (``x``, ``y``).
    ``verbose=True`` adds the values and gradients of arrays of up to 12 elements (larger
    ones by their range). See :class:`Graph` for ``layout``.
    """
    return Graph(outputs, verbose=verbose, layout=layout, names=caller_names(1))


def _prefixed(prefix: str, text: str) -> list[str]:
    lines = text.splitlines()
    return [prefix + lines[0]] + [" " * len(prefix) + line for line in lines[1:]]


def _short(g: Graph, v: Variable) -> str:
    name = variable_name(v, g.names) or "variable"
    return name if v.data is None else f"{name} {shape_dtype(v.data)}"


def _dot_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _run_dot(source: str, extension: str) -> bytes:
    result = subprocess.run([shutil.which("dot") or "dot", "-T", extension],
                            input=source.encode(), capture_output=True)
    if result.returncode != 0:
        raise RuntimeError(f"graph: dot failed to render the {extension!r} format: "
                           f"{result.stderr.decode().strip()}")
    return result.stdout


def _png_from_svg_layout(g: Graph) -> bytes:
    """A PNG of zerograd's own layout, drawn with matplotlib (no Graphviz needed)."""
    try:
        import matplotlib
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as e:
        raise RuntimeError("graph.save: writing .png without Graphviz needs matplotlib "
                           "(pip install matplotlib), or Graphviz's 'dot' "
                           "(apt-get install graphviz); .svg needs neither") from e
    del matplotlib

    from matplotlib.patches import Ellipse, FancyArrowPatch, Rectangle
    from matplotlib.path import Path

    nodes, placed = g.placed()
    dpi = 100
    fig = Figure(figsize=(placed.width / dpi, placed.height / dpi), dpi=dpi)
    FigureCanvasAgg(fig)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, placed.width)
    ax.set_ylim(placed.height, 0)
    ax.axis("off")
    for route in placed.routes:
        vertices, codes = [route.points[0]], [Path.MOVETO]
        for (x0, y0), (x1, y1) in zip(route.points, route.points[1:]):
            mid = (y0 + y1) / 2
            vertices += [(x0, mid), (x1, mid), (x1, y1)]
            codes += [Path.CURVE4] * 3
        ax.add_patch(FancyArrowPatch(path=Path(vertices, codes), arrowstyle="-|>",
                                     mutation_scale=12, color="#333", linewidth=1.2))
    # Points per pixel: the font is sized in pixels in the SVG, in points here.
    size = FONT_SIZE * 72 / dpi
    for node, key, lines in nodes:
        box = placed.boxes[key]
        if isinstance(node, Variable):
            ax.add_patch(Ellipse((box.x, box.y), box.width, box.height,
                                 facecolor=VARIABLE_COLOR, edgecolor="#b36b00"))
        else:
            ax.add_patch(Rectangle((box.x - box.width / 2, box.y - box.height / 2), box.width,
                                   box.height, facecolor=FUNCTION_COLOR, edgecolor="#3a7ca5"))
        ax.text(box.x, box.y, "\n".join(t for t, _ in lines), ha="center", va="center",
                family="monospace", fontsize=size, linespacing=LINE_HEIGHT / FONT_SIZE)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


__all__ = ["Graph", "collect", "graph", "ranks"]
