"""``zerograd.utils``: DeZero's utilities (gradient checks, graph drawing, array helpers)."""

from zerograd.backend.array_utils import (
    get_conv_outsize,
    get_deconv_outsize,
    logsumexp,
    max_backward_shape,
    pair,
    reshape_sum_backward,
    sum_to,
)
from zerograd.utils.gradcheck import (
    array_allclose,
    array_equal,
    gradient_check,
    numerical_diff,
    numerical_grad,
)
from zerograd.utils.graphviz import get_dot_graph, plot_dot_graph

__all__ = [
    "array_allclose", "array_equal", "get_conv_outsize", "get_deconv_outsize", "get_dot_graph",
    "gradient_check", "logsumexp", "max_backward_shape", "numerical_diff", "numerical_grad",
    "pair", "plot_dot_graph", "reshape_sum_backward", "sum_to",
]
