"""Drawing the graph: Graphviz DOT text, and a PNG/SVG/PDF through the ``dot`` program."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile

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


def plot_dot_graph(output: Variable, verbose: bool = True, to_file: str = "graph.png"):
    """Render the graph behind ``output`` to ``to_file`` (format from its extension).

    Needs the Graphviz ``dot`` program. Returns an ``IPython.display.Image`` when IPython
    is installed (so notebooks show the picture), else None.
    """
    dot = shutil.which("dot")
    if dot is None:
        raise RuntimeError(
            "plot_dot_graph: the Graphviz program 'dot' was not found on PATH; install "
            "Graphviz (apt-get install graphviz, brew install graphviz, or conda install "
            "graphviz) or use get_dot_graph() to get the DOT text"
        )
    dot_text = get_dot_graph(output, verbose)
    extension = os.path.splitext(to_file)[1][1:] or "png"
    with tempfile.NamedTemporaryFile("w", suffix=".dot", delete=False) as tmp:
        tmp.write(dot_text)
        dot_path = tmp.name
    try:
        subprocess.run([dot, dot_path, "-T", extension, "-o", to_file], check=True,
                       capture_output=True)
    except subprocess.CalledProcessError as e:
        raise RuntimeError(
            f"plot_dot_graph: dot failed to render {to_file!r}: {e.stderr.decode().strip()}"
        ) from e
    finally:
        os.unlink(dot_path)
    try:
        from IPython import display
    except ImportError:
        return None
    return display.Image(filename=to_file)
