"""``zerograd.utils``: DeZero's utilities (gradient checks, graph drawing, array helpers) and
the learner's tools: ``graph`` (a drawing that needs no Graphviz), ``trace_backward`` and
``explore`` (backward step by step), ``check_function`` (is my Function right?).

The tools are loaded on first use (``__getattr__`` below): the checker, the explorer and the
Graphviz bridge bring ``dataclasses``, ``json``, ``subprocess`` ... that a program which only
computes never needs, and ``zerograd.functions`` imports this package (DeZero's functions
module has ``utils`` too).
"""

import importlib

from zerograd import cuda  # noqa: F401 - DeZero's utils module has these names too
from zerograd.backend.array_utils import (
    get_conv_outsize,
    get_deconv_outsize,
    logsumexp,
    max_backward_shape,
    pair,
    reshape_sum_backward,
    sum_to,
)
from zerograd.core import Variable, as_variable  # noqa: F401 - as in DeZero's utils

# Not loaded on first use: the function ``graph`` has the name of its module, and importing a
# submodule sets the package's attribute of that name to the module. Imported here, the
# function is bound after the module, so ``utils.graph`` stays the function whoever
# imports ``zerograd.utils.graph`` later (check, trace and the explorer do).
from zerograd.utils.graph import Graph, graph

# name -> the module that defines it, imported when the name is first used.
_LAZY = {
    **dict.fromkeys(["FunctionCheckError", "FunctionReport", "check_function"],
                    "zerograd.utils.check"),
    **dict.fromkeys(["Explorer", "explore"], "zerograd.utils.explorer"),
    **dict.fromkeys(["array_allclose", "array_equal", "gradient_check", "numerical_diff",
                     "numerical_grad"], "zerograd.utils.gradcheck"),
    **dict.fromkeys(["GraphvizNotFoundWarning", "get_dot_graph", "plot_dot_graph"],
                    "zerograd.utils.graphviz"),
    **dict.fromkeys(["BackwardTrace", "trace_backward"], "zerograd.utils.trace"),
}


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    # DeZero's download helpers, loaded on first use: ``utils.cache_dir`` (a path string,
    # $ZEROGRAD_DATA or ~/.zerograd) and ``utils.get_file(url, file_name=None)``.
    if name == "cache_dir":
        from zerograd.data.download import cache_dir

        return cache_dir()
    if name in ("get_file", "show_progress"):
        from zerograd.data import download

        return getattr(download, name)
    raise AttributeError(f"module 'zerograd.utils' has no attribute {name!r}")


__all__ = [
    "BackwardTrace", "Explorer", "FunctionCheckError", "FunctionReport", "Graph",
    "check_function", "explore", "graph", "trace_backward",
    "GraphvizNotFoundWarning", "array_allclose", "array_equal", "get_conv_outsize",
    "get_deconv_outsize", "get_dot_graph",
    "gradient_check", "logsumexp", "max_backward_shape", "numerical_diff", "numerical_grad",
    "pair", "plot_dot_graph", "reshape_sum_backward", "sum_to",
]
