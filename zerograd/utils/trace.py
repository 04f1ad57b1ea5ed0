"""``trace_backward(y)``: watch the engine run backward, one function at a time.

The book's steps 16-18 explain the order of backward: functions are taken from a queue by
generation, newest first, so that a variable used twice has received every gradient
before its creator runs. ``trace_backward`` shows that order on the learner's own graph.
It is ``y.backward()`` plus a record: for the duration of the call, the ``backward``
method of every Function in the graph is wrapped (an instance attribute shadows the
class's method) so that the engine itself, in its own order, reports what each function
receives and returns. The wrappers are removed afterwards, also when backward raises, and
no engine code knows about them.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TextIO

import numpy as np

from zerograd.backend import as_numpy
from zerograd.backend.array_utils import sum_to
from zerograd.core.function import Function
from zerograd.core.variable import Variable, is_array
from zerograd.utils._labels import array_text, caller_names, shape_dtype, variable_name
from zerograd.utils.graph import collect


@dataclass
class Gradient:
    """One gradient in the trace: a NumPy copy of its values, and what it flows along."""

    variable: str           # the label of the variable it belongs to (``a``, ``v3``)
    data: np.ndarray | None
    total: np.ndarray | None = None  # the variable's .grad after adding it (sent ones only)
    added: np.ndarray | None = None  # what was added: data summed to shape, in x's dtype
    note: str = ""  # how the engine turned it into .grad, when that is more than a copy

    def __str__(self) -> str:
        if self.data is None:
            return f"{self.variable}: None"
        text = f"{self.variable}: {shape_dtype(self.data)} {array_text(self.data, one_line=True)}"
        return f"{text}   -> {self.note}" if self.note else text


@dataclass
class TraceStep:
    """One function as the engine visited it.

    ``received``: the gradient of each output (``gy``), as passed to ``backward``.
    ``sent``: what ``backward`` returned for each input (``gx``), before the engine sums a
    broadcast gradient back to its input's shape; ``Gradient.total`` is the input's
    accumulated ``.grad`` after this step (it differs from ``data`` for a variable used
    twice, the ``y = x + x`` of step 14).
    """

    number: int
    function: Function
    generation: int
    received: list[Gradient] = field(default_factory=list)
    sent: list[Gradient] = field(default_factory=list)
    returned: object = None  # what backward returned, untouched (a tuple, a Variable...)

    @property
    def op(self) -> str:
        return self.function.name

    def __str__(self) -> str:
        lines = [f"step {self.number}: {self.op} (generation {self.generation})"]
        for g in self.received:
            lines.append(f"    receives gy  {g}")
        for i, g in enumerate(self.sent):
            label = f"gx{i}" if len(self.sent) > 1 else "gx "
            lines.append(f"    sends    {label} {g}")
        return "\n".join(lines)


class BackwardTrace:
    """The steps of one backward pass, in the engine's order (``trace[i]``, ``len``)."""

    def __init__(self, output_label: str, seed: np.ndarray) -> None:
        self.output = output_label
        self.seed = seed
        self.steps: list[TraceStep] = []

    def __len__(self) -> int:
        return len(self.steps)

    def __getitem__(self, i):
        return self.steps[i]

    def __iter__(self):
        return iter(self.steps)

    @property
    def order(self) -> list[str]:
        """The op names in the order backward ran them."""
        return [s.op for s in self.steps]

    def header(self) -> str:
        return (f"backward from {self.output} ({shape_dtype(self.seed)}), "
                f"seed {self.output}.grad = {array_text(self.seed)}")

    def __str__(self) -> str:
        return "\n".join([self.header()] + [str(s) for s in self.steps])

    def __repr__(self) -> str:
        return f"<BackwardTrace from {self.output}: {len(self.steps)} steps {self.order}>"

    def _repr_html_(self) -> str:
        import html

        return f"<pre>{html.escape(str(self))}</pre>"


def trace_backward(y: Variable, retain_grad: bool = False, create_graph: bool = False,
                   retain_graph: bool = True, show: bool = True, file: TextIO | None = None,
                   names: dict[int, str] | None = None) -> BackwardTrace:
    """Run ``y.backward(...)`` and record (and, with ``show``, print) every step.

    Each step names the function, its generation, the gradients it receives (one per
    output) and the gradients it sends (one per input) with their shapes, and how a
    gradient adds up on a variable that several functions read. Returns the record.
    Unnamed variables are called by the caller's Python names for them, else ``v0``,
    ``v1``... (the keys ``graph(y)`` uses). If backward raises, the exception carries the
    steps up to the failure as ``error.zerograd_trace``.
    """
    if not isinstance(y, Variable):
        raise TypeError(f"trace_backward: y is a {type(y).__name__}; expected a Variable "
                        f"(the result of a computation)")
    if names is None:
        names = caller_names(1)
    out = file if file is not None else sys.stdout
    variables, functions = collect(y)
    labels = {id(v): variable_name(v, names) or f"v{i}" for i, v in enumerate(variables)}
    totals = {id(v): None if v.grad is None else _copy(v.grad) for v in variables}
    seed = _copy(y.grad) if y.grad is not None else np.ones_like(as_numpy(y.data))
    totals[id(y)] = seed
    trace = BackwardTrace(labels[id(y)], seed)
    if show:
        print(trace.header(), file=out)

    def wrap(f: Function) -> Callable[..., Any]:
        original = f.backward  # the bound method the engine would have called

        def backward(*gys):
            step = TraceStep(len(trace.steps) + 1, f, f.generation)
            for ref, gy in zip(f.outputs, gys):
                out_var = ref()
                label = labels.get(id(out_var), "(freed output)") if out_var is not None \
                    else "(freed output)"
                step.received.append(Gradient(label, None if gy is None else _copy(gy)))
            trace.steps.append(step)
            gxs = original(*gys)
            step.returned = gxs
            returned = gxs if type(gxs) is tuple else (gxs,)
            for x, gx in zip(f.inputs, returned):
                data = _copy(gx) if (isinstance(gx, Variable) or is_array(gx)
                                     or isinstance(gx, np.generic)) else None
                g = Gradient(labels.get(id(x), "?"), data)
                if data is not None and x.requires_grad and x.data is not None:
                    # What the engine adds to x.grad: the gradient summed back to x's
                    # shape (broadcasting) in x's dtype, added to what x already has.
                    part = sum_to(data, x.data.shape) if data.shape != x.data.shape else data
                    if part.dtype != x.data.dtype and x.data.dtype.kind == "f":
                        part = part.astype(x.data.dtype)
                    previous = totals.get(id(x))
                    totals[id(x)] = part if previous is None else np.asarray(previous + part)
                    g.total, g.added = totals[id(x)], part
                    notes = []
                    if part.shape != data.shape:
                        notes.append(f"summed to {x.data.shape}")
                    if previous is not None:
                        notes.append(f"added to {array_text(previous, one_line=True)}")
                    if notes:
                        g.note = (", ".join(notes) + f": {g.variable}.grad = "
                                  f"{array_text(g.total, one_line=True)}")
                step.sent.append(g)
            if show:
                print(step, file=out)
            return gxs

        return backward

    had_own = {id(f): f.__dict__["backward"] for f in functions if "backward" in f.__dict__}
    try:
        # Each node's backward is wrapped on the instance (its own __dict__, where the
        # restore below looks), not on the class.
        for f in functions:
            f.__dict__["backward"] = wrap(f)
            # The engine would otherwise take the op's backward_arrays, not the wrapper.
            f.__dict__["backward_arrays"] = None
        y.backward(retain_grad=retain_grad, create_graph=create_graph,
                   retain_graph=retain_graph)
    except Exception as error:
        # The steps up to the failure, for whoever catches it (an attribute added to the
        # exception, which its type does not declare).
        error.zerograd_trace = trace  # type: ignore[attr-defined]
        raise
    finally:
        for f in functions:
            if id(f) in had_own:
                f.__dict__["backward"] = had_own[id(f)]
            else:
                f.__dict__.pop("backward", None)
            f.__dict__.pop("backward_arrays", None)
    return trace


def _copy(g) -> np.ndarray:
    """A NumPy copy of a gradient (a Variable, an array or a NumPy scalar)."""
    data = g.data if isinstance(g, Variable) else g
    return np.array(as_numpy(data), copy=True)


__all__ = ["BackwardTrace", "Gradient", "TraceStep", "trace_backward"]
