"""Reverse-mode automatic differentiation over the recorded graph.

Functions are visited in descending generation order from a heap (O(n log n), iterative,
so a chain of any length works), ties broken by discovery order so that every run visits
the graph identically.
"""

from __future__ import annotations

import heapq

from zerograd._config import _state
from zerograd.backend import get_array_module
from zerograd.core.broadcast import cast, sum_to
from zerograd.core.function import _new_variable, as_array
from zerograd.core.variable import Variable
from zerograd.errors import GraphError


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
    """
    if output.creator is None:
        raise GraphError(
            "backward: this Variable has no creator, so there is no graph to backpropagate "
            f"through (shape {output.shape}, dtype {output.dtype}). It is a leaf, or it was "
            "computed under no_grad() or only from constants."
        )
    if output.grad is None:
        xp = get_array_module(output.data)
        output.grad = Variable(xp.ones_like(output.data), requires_grad=False)

    heap: list = []
    seen: set = set()
    counter = 0  # discovery order breaks ties between equal generations deterministically
    heappush, heappop = heapq.heappush, heapq.heappop

    first = output.creator
    seen.add(first)
    heappush(heap, (-first.generation, counter, first))
    previous_mode = _state.enable_backprop
    _state.enable_backprop = create_graph
    try:
        while heap:
            f = heappop(heap)[2]
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
            inputs = f.inputs
            if len(gxs) != len(inputs):
                raise GraphError(
                    f"{f.name}.backward returned {len(gxs)} gradient(s) for {len(inputs)} "
                    "input(s); return one per input (None where there is none)"
                )

            for x, gx in zip(inputs, gxs):  # noqa: B905 - lengths checked just above
                if gx is None or not x.requires_grad:
                    continue
                x_data = x.data
                # Broadcasting in forward: reduce the gradient back, for every op, here.
                # (data may be None where a user freed an intermediate, as DeZero's
                # linear_simple does; the op's gradient is then taken as it is.)
                if x_data is not None:
                    g_data = gx.data
                    if g_data.shape != x_data.shape:
                        gx = sum_to(gx, x_data.shape)
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
                f.inputs = None
    finally:
        _state.enable_backprop = previous_mode
