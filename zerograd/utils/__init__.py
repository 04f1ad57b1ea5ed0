"""``zerograd.utils``: DeZero's utilities (gradient checks, graph drawing, array helpers) and
the learner's tools: ``graph`` (a drawing that needs no Graphviz), ``trace_backward`` and
``explore`` (backward step by step), ``check_function`` (is my Function right?)."""

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
from zerograd.utils.check import FunctionCheckError, FunctionReport, check_function
from zerograd.utils.explorer import Explorer, explore
from zerograd.utils.gradcheck import (
    array_allclose,
    array_equal,
    gradient_check,
    numerical_diff,
    numerical_grad,
)
from zerograd.utils.graph import Graph, graph
from zerograd.utils.graphviz import GraphvizNotFoundWarning, get_dot_graph, plot_dot_graph
from zerograd.utils.trace import BackwardTrace, trace_backward


def __getattr__(name: str):
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
