"""Reverse-mode automatic differentiation over the recorded graph.

Functions are visited in descending generation order from a heap (O(n log n), iterative,
so a chain of any length works), ties broken by discovery order so that every run visits
the graph identically.
"""

from __future__ import annotations

import heapq

import numpy as np

from zerograd._config import _state
from zerograd.backend import get_array_module
from zerograd.core.broadcast import cast, sum_to
from zerograd.core.function import _new_variable, as_array
from zerograd.core.variable import Variable, is_array
from zerograd.errors import GraphError, ShapeError


def backward(output: Variable, retain_grad: bool = False, create_graph: bool = False,
             retain_graph: bool = True) -> None:
    """Accumulate d(output)/d(x) into ``x.grad`` for every Variable x behind ``output``.

    - The seed gradient is ``output.grad`` if set, else ones (a non-scalar output is
      therefore implicitly summed, as in DeZero).
    - ``retain_grad=False`` frees the gradients of intermediate Variables (every function
      output, including ``output`` itself) once they have been used.
    - ``create_graph=True`` records the backward computation, so gradients are Variables
      with creators and can be differentiated again.
    - ``retain_graph=False`` releases each function's inputs once its gradient is computed,
      so activations are freed during backward; the graph cannot be walked again.
    - On a Variable without a creator (a leaf) only its own gradient is set: to ones, unless
      it already has one.
    """
    if output.grad is None:
        xp = get_array_module(output.data)
        output.grad = Variable(xp.ones_like(output.data), requires_grad=False)
    if output.creator is None:
        # A leaf, or a constant such as the gradient of a linear function (y = 3 * x gives
        # x.grad = 3, recorded without a creator): nothing lies behind it, so its own
        # gradient (the seed) is the whole answer, as PyTorch does for a leaf. A zero
        # higher derivative thus comes out as None in x.grad instead of an exception.
        return

    heap: list = []
    seen: set = set()
    counter = 0  # discovery order breaks ties between equal generations deterministically
    heappush, heappop = heapq.heappush, heapq.heappop

    first = output.creator
    seen.add(first)
    heappush(heap, (-first.generation, counter, first))
    waiting: dict = {}  # retain_graph=False: creator -> its outputs that have a gradient
    previous_mode = _state.enable_backprop
    _state.enable_backprop = create_graph
    try:
        while heap:
            f = heappop(heap)[2]
            inputs = f.inputs
            if inputs is None:
                raise GraphError(_freed_graph_message(f))
            if create_graph and f.first_order_only:
                raise GraphError(_first_order_message(f))
            refs = f.outputs
            if len(refs) == 1:
                y = refs[0]()
                gxs = f.backward(y.grad)
                if not retain_grad:
                    y.grad = None  # used up (gx may be the same object; it lives on)
            else:
                outputs = [ref() for ref in refs]
                gxs = f.backward(*[None if y is None else y.grad for y in outputs])
                if not retain_grad:
                    for y in outputs:
                        if y is not None:
                            y.grad = None
            if type(gxs) is not tuple:
                gxs = (gxs,)
            if len(gxs) != len(inputs):
                raise GraphError(
                    f"{f.name}.backward returned {len(gxs)} gradient(s) for {len(inputs)} "
                    "input(s); return one per input (None where there is none)"
                )

            for x, gx in zip(inputs, gxs):  # noqa: B905 - lengths checked just above
                if gx is None or not x.requires_grad:
                    continue
                if type(gx) is not Variable:
                    gx = _as_gradient(gx, f, x)
                x_data = x.data
                # Broadcasting in forward: reduce the gradient back, for every op, here.
                # (data may be None where a user freed an intermediate, as DeZero's
                # linear_simple does; the op's gradient is then taken as it is.)
                if x_data is not None:
                    g_data = gx.data
                    if g_data.shape != x_data.shape:
                        gx = _sum_to_input(gx, f, x)
                    # (Built-in dtypes are singletons: the identity test settles most cases.)
                    if (g_data.dtype is not x_data.dtype and g_data.dtype != x_data.dtype
                            and x_data.dtype.kind == "f"):
                        # A float32 input gets a float32 gradient even if a float64 constant
                        # (a target, a mask) promoted the computation: otherwise every weight
                        # gradient of a model silently becomes float64.
                        gx = cast(gx, x_data.dtype)
                grad = x.grad
                if grad is None:
                    x.grad = gx
                elif create_graph:
                    x.grad = grad + gx
                else:
                    # A new array, never in place: gx may be shared with another input's grad.
                    total = grad.data + gx.data
                    if total.ndim == 0:
                        total = as_array(total)  # NumPy returns a scalar for 0-d + 0-d
                    x.grad = _new_variable(total, None, 0, False)
                creator = x.creator
                if creator is not None and creator not in seen:
                    seen.add(creator)
                    counter += 1
                    heappush(heap, (-creator.generation, counter, creator))

            if not retain_graph:
                f.release()  # its inputs and what its forward saved for backward
                # The creator of an input holds it weakly, and f no longer does: keep each
                # input that carries a gradient alive until its creator has run.
                for x in inputs:
                    if x.creator is not None and x.grad is not None:
                        waiting.setdefault(x.creator, []).append(x)
                waiting.pop(f, None)
    finally:
        _state.enable_backprop = previous_mode


# -- the slow paths of the loop above: a backward that broke the rules ----------------------
def _input_label(f, x) -> str:
    """'input 1 (named "W", float32 (3, 4))' for input ``x`` of function ``f``."""
    position = next((i for i, v in enumerate(f.inputs) if v is x), "?")
    name = f' named "{x.name}"' if x.name else ""
    data = "no data" if x.data is None else f"{x.dtype} {tuple(x.shape)}"
    return f"input {position}{name} ({data})"


def _as_gradient(gx, f, x) -> Variable:
    """A gradient that ``f.backward`` returned as something other than a Variable.

    A NumPy/CuPy array (or NumPy scalar) is accepted and wrapped as a constant: DeZero's
    early steps write backward on raw arrays, and DeZero itself accepts it. A constant has
    no creator, so under ``create_graph=True`` it is not differentiated again.
    """
    if isinstance(gx, Variable):  # a Variable subclass (e.g. a Parameter) is fine as it is
        return gx
    if isinstance(gx, np.generic):  # a 0-d array on the input's device
        gx = get_array_module(x.data).asarray(gx) if x.data is not None else np.asarray(gx)
    if is_array(gx):
        return _new_variable(gx, None, 0, False)
    hint = "; several gradients go in a tuple" if isinstance(gx, list) else ""
    raise GraphError(
        f"{f.name}.backward returned a {type(gx).__name__} ({gx!r:.60}) as the gradient of "
        f"{_input_label(f, x)}; return a Variable (or an ndarray) of that input's shape, or "
        f"None for no gradient{hint}"
    )


def _sum_to_input(gx: Variable, f, x) -> Variable:
    """``gx`` summed to the shape of input ``x``, or ShapeError if it cannot be."""
    try:
        return sum_to(gx, x.data.shape)
    except ShapeError as e:
        raise ShapeError(
            f"{f.name}.backward returned a gradient of shape {tuple(gx.shape)} for "
            f"{_input_label(f, x)}; a gradient must have its input's shape, or a shape that "
            "broadcasting produced from it (the engine sums it back)"
        ) from e


def _first_order_message(f) -> str:
    return (
        f"{f.name} has first-order gradients only (it declares first_order_only), and this "
        f"backward is being recorded (create_graph=True), which needs its backward to be "
        f"differentiable. {f.higher_order_hint or 'Use ops without that limit on this path'}"
    )


def _freed_graph_message(f) -> str:
    return (
        f"backward reached {f.name}, whose inputs an earlier backward(retain_graph=False) "
        "freed: the graph can be walked once that way. Pass retain_graph=True (the default) "
        "to backpropagate through it again, or run the forward pass again"
    )
