"""ONNX lowerings of the ops that live in ``zerograd.core``: ``sum_to``, ``broadcast_to``,
``cast`` (which the engine itself uses) and ``checkpoint``'s segment node.

The lowering of every other op is a ``to_onnx`` method beside its own code; these three
are kept here, in a table read by the export walk, because ``core`` is the engine and must
not grow export code. Each entry has the signature of a ``to_onnx`` method:
``lower(node, g, *input_names)``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from zerograd._config import using_config
from zerograd.core.autograd import _Checkpoint
from zerograd.core.broadcast import BroadcastTo, Cast, SumTo


def _sum_to(node: SumTo, g: Any, x: str) -> str:
    """Sum the leading axes broadcasting added, then the size-1 axes of the target."""
    (v,) = node.inputs
    shape, target = tuple(v.shape), node.shape
    lead = len(shape) - len(target)
    axes = list(range(lead))
    axes += [lead + i for i, n in enumerate(target) if n == 1 and shape[lead + i] != 1]
    y = g.reduce("ReduceSum", x, axes, keepdims=True) if axes else x
    if lead:
        y = g.squeeze(y, list(range(lead)))
    return y


def _broadcast_to(node: BroadcastTo, g: Any, x: str) -> str:
    (v,) = node.inputs
    return g.op("Expand", x, g.shape_constant(node.shape, like=v))


def _cast(node: Cast, g: Any, x: str) -> str:
    return g.op("Cast", x, to=g.tensor_type(node.dtype))


def _checkpoint(node: _Checkpoint, g: Any, *boundary: str) -> Any:
    """A checkpointed segment is one node whose inside the trace dropped: run the segment
    again (graph recording on, as its backward would) and lower what it records, down to
    the segment's inputs, which the graph already has."""
    with using_config("enable_backprop", True):
        out = node.fn(*node.args)
    outs = list(out) if isinstance(out, (tuple, list)) else [out]
    names = g.inline(outs, inside=node.name)
    return tuple(names) if len(names) > 1 else names[0]


CORE_LOWERINGS: dict[type, Callable[..., Any]] = {
    _Checkpoint: _checkpoint,
    SumTo: _sum_to,
    BroadcastTo: _broadcast_to,
    Cast: _cast,
}
