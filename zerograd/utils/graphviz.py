"""Drawing the graph: Graphviz DOT text, and a PNG/SVG/PDF through the ``dot`` program.

``plot_dot_graph`` keeps DeZero's contract: it writes the picture and returns something a
notebook displays (``IPython.display.Image`` for png/jpeg/gif, ``IPython.display.SVG`` for
svg), or None. Where Graphviz is not installed it writes the DOT source, warns once and
returns None, as DeZero's carries on (its shell command fails quietly), so scripts that draw
a graph on the way keep running. ``zerograd.utils.graph`` draws without Graphviz.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import warnings

from zerograd.core.variable import Variable


def _dot_var(v: Variable, verbose: bool = False) -> str:
    name = "" if v.name is None else v.name
    if verbose and v.data is not None:
        if v.name is not None:
            name += ": "
        name += f"{v.shape} {v.dtype}"
    name = name.replace('"', '\\"')
    return f'{id(v)} [label="{name}", color=orange, style=filled]\n'


def _dot_func(f) -> str:
    text = f"{id(f)} [label=\"{type(f).__name__}\", color=lightblue, style=filled, shape=box]\n"
    for x in f.inputs or ():
        text += f"{id(x)} -> {id(f)}\n"
    for ref in f.outputs or ():
        y = ref()
        if y is not None:
            text += f"{id(f)} -> {id(y)}\n"
    return text


def get_dot_graph(output: Variable, verbose: bool = True) -> str:
    """The graph behind ``output`` as Graphviz DOT text.

    Variables are orange ellipses labelled with their name (and, when ``verbose``, shape and
    dtype); functions are light-blue boxes labelled with their class name.
    """
    text = ""
    funcs: list = []
    seen: set = set()

    def add_func(f) -> None:
        if id(f) not in seen:
            seen.add(id(f))
            funcs.append(f)

    text += _dot_var(output, verbose)
    if output.creator is not None:
        add_func(output.creator)
    while funcs:
        f = funcs.pop()
        text += _dot_func(f)
        for x in f.inputs or ():
            text += _dot_var(x, verbose)
            if x.creator is not None:
                add_func(x.creator)
    return "digraph g {\n" + text + "}"


class GraphvizNotFoundWarning(UserWarning):
    """Graphviz's ``dot`` program is not installed, so a graph was saved as DOT text only."""


# Formats IPython can show inline, by the class that shows them. IPython's ``Image`` embeds
# only raster formats (it raises "Cannot embed the 'svg' image format"); ``SVG`` shows svg.
# Anything else (pdf, ps, dot) is only written to the file.
_DISPLAY_CLASS = {"png": "Image", "jpg": "Image", "jpeg": "Image", "gif": "Image",
                  "svg": "SVG"}

# One warning per process: a notebook redrawing in a loop should not fill the page.
_warned_missing_dot = False


def plot_dot_graph(output: Variable, verbose: bool = True, to_file: str = "graph.png"):
    """Render the graph behind ``output`` to ``to_file`` (format from its extension).

    Returns what a notebook displays when IPython is installed: ``IPython.display.Image`` for
    png/jpg/jpeg/gif, ``IPython.display.SVG`` for svg; None for other formats (pdf, ...) and
    when IPython is absent.

    Needs the Graphviz ``dot`` program. Without it the DOT source is written next to
    ``to_file`` (``graph.png`` -> ``graph.dot``), a ``GraphvizNotFoundWarning`` says what to
    install (once per process) and None is returned; nothing raises, as in DeZero.
    """
    global _warned_missing_dot
    to_file = os.fspath(to_file)
    dot_text = get_dot_graph(output, verbose)
    extension = os.path.splitext(to_file)[1][1:].lower() or "png"
    dot = shutil.which("dot")
    if dot is None:
        source = os.path.splitext(to_file)[0] + ".dot"
        with open(source, "w") as f:
            f.write(dot_text)
        if not _warned_missing_dot:
            _warned_missing_dot = True
            warnings.warn(
                f"plot_dot_graph: the Graphviz program 'dot' is not on PATH, so {to_file!r} "
                f"was not drawn; its DOT source is in {source!r}. Install Graphviz (Debian/"
                f"Ubuntu: apt-get install graphviz; conda: conda install graphviz; macOS: brew "
                f"install graphviz; 'pip install graphviz' alone does not provide 'dot'), then "
                f"run: dot {source} -T {extension} -o {to_file}. Or draw it without "
                f"Graphviz: zerograd.utils.graph(y, verbose=True).save('graph.svg') (a "
                f"notebook shows graph(y) inline)",
                GraphvizNotFoundWarning, stacklevel=2)
        return None
    result = subprocess.run([dot, "-T", extension, "-o", to_file], input=dot_text.encode(),
                            capture_output=True)
    if result.returncode != 0:
        raise RuntimeError(f"plot_dot_graph: dot failed to render {to_file!r} as "
                           f"{extension!r}: {result.stderr.decode().strip()}")
    display_class = _DISPLAY_CLASS.get(extension)
    if display_class is None:
        return None
    try:
        from IPython import display
    except ImportError:
        return None
    return getattr(display, display_class)(filename=to_file)


__all__ = ["GraphvizNotFoundWarning", "get_dot_graph", "plot_dot_graph"]
