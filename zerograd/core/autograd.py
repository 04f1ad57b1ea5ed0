"""Functional autodiff: gradients as return values, and the derivatives built on them.

``grad`` is the engine's second entry point (the first is ``Variable.backward``): it runs the
same loop over the recorded graph with a gradient table of its own, so it returns the
gradients it was asked for and never reads or writes any ``.grad``. On it stand PyTorch's
``torch.autograd.functional`` derivatives, with PyTorch's argument conventions:

    vjp(f, x, v)   -> (f(x), v^T J)           jvp(f, x, v)  -> (f(x), J v)
    jacobian(f, x) -> J                       hessian(f, x) -> H
    hvp(f, x, v)   -> (f(x), H v)             vhp(f, x, v)  -> (f(x), v^T H)

``f`` is a Python function of Variables (zerograd functions and operators inside); ``x`` a
Variable, an ndarray or a tuple of them. ``jvp`` uses the double-vjp trick: u -> J^T u is
linear in u, so differentiating <J^T u, v> with respect to u gives J v exactly, with two
reverse passes. ``checkpoint(fn, *args)`` trades compute for memory: it keeps only the
segment's inputs and recomputes its inside during backward.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from zerograd._config import _state, using_config
from zerograd.backend import get_array_module
from zerograd.core.engine import propagate
from zerograd.core.function import Function, _new_variable
from zerograd.core.variable import Variable, _write_clock, is_array
from zerograd.errors import GraphError, ShapeError

__all__ = ["grad", "vjp", "jvp", "jacobian", "hessian", "hvp", "vhp", "checkpoint"]


# -- grad ---------------------------------------------------------------------------------------
def grad(outputs, inputs, grad_outputs=None, create_graph: bool = False,
         retain_graph: bool | None = None, allow_unused: bool = False,
         materialize_grads: bool = False) -> tuple:
    """The gradients of ``outputs`` with respect to ``inputs``, as a tuple (one per input).

    d(sum_i <grad_outputs[i], outputs[i]>) / d(inputs[j]) for each j, as
    ``torch.autograd.grad``. No ``.grad`` attribute is read or written, of the inputs or of
    anything in between.

    - ``outputs``, ``inputs``: a Variable or a sequence of Variables. An input may be any
      Variable in the graph, a leaf or an intermediate; it must require a gradient.
    - ``grad_outputs``: the seed of each output (a Variable, an ndarray, or None); None
      stands for ones and is allowed only for a one-element output, as in PyTorch.
    - ``create_graph=True`` records the computation, so the gradients can be differentiated
      again. ``retain_graph`` (default: ``create_graph``) keeps the graph for another pass;
      without it the inputs of each function are released as the pass goes.
    - An input that the outputs do not depend on raises, unless ``allow_unused=True`` (its
      gradient is then None) or ``materialize_grads=True`` (zeros of its shape).
    """
    outputs = _as_variables(outputs, "outputs")
    inputs = _as_variables(inputs, "inputs")
    if retain_graph is None:
        retain_graph = create_graph
    for i, x in enumerate(inputs):
        if not x.requires_grad:
            raise ValueError(
                f"grad: inputs[{i}] ({_describe(x)}) does not require a gradient (a constant, "
                "or a result computed under no_grad()), so nothing can be differentiated "
                "with respect to it"
            )
    seeds = _seeds(outputs, grad_outputs)

    grads: dict = {}
    for y, gy in zip(outputs, seeds):
        if gy is None:
            continue
        previous = grads.get(y)
        grads[y] = gy if previous is None else previous + gy
    wanted = set(inputs)
    heads = [y.creator for y in grads if y.creator is not None]
    found: dict = {}

    def deliver(x: Variable, gx: Variable) -> None:
        if x in wanted:
            found[x] = gx

    propagate(grads, heads, deliver, True, create_graph=create_graph,
              retain_graph=retain_graph, skip=_functions_leading_nowhere(heads, wanted))

    results = []
    for i, x in enumerate(inputs):
        gx = found.get(x)
        if gx is None:
            if materialize_grads:
                gx = _zeros_like(x)
            elif not allow_unused:
                raise GraphError(
                    f"grad: inputs[{i}] ({_describe(x)}) is not reached from the outputs: they "
                    "do not depend on it (or only through a constant), so its gradient is "
                    "zero. Pass allow_unused=True to get None for it, or "
                    "materialize_grads=True to get zeros"
                )
        results.append(gx)
    return tuple(results)


def _as_variables(values, what: str) -> tuple:
    if isinstance(values, Variable):
        return (values,)
    if isinstance(values, (tuple, list)):
        for i, v in enumerate(values):
            if not isinstance(v, Variable):
                raise TypeError(f"grad: {what}[{i}] is a {type(v).__name__}; expected a "
                                "Variable")
        if not values:
            raise ValueError(f"grad: {what} is empty")
        return tuple(values)
    raise TypeError(f"grad: {what} must be a Variable or a sequence of Variables, got "
                    f"{type(values).__name__}")


def _seeds(outputs: tuple, grad_outputs) -> list:
    if grad_outputs is None or isinstance(grad_outputs, Variable) or is_array(grad_outputs):
        grad_outputs = [grad_outputs] * len(outputs) if grad_outputs is None else [grad_outputs]
    grad_outputs = list(grad_outputs)
    if len(grad_outputs) != len(outputs):
        raise ValueError(f"grad: {len(grad_outputs)} grad_outputs for {len(outputs)} outputs; "
                         "give one per output (None for ones)")
    seeds: list[Variable | None] = []
    for i, (y, gy) in enumerate(zip(outputs, grad_outputs)):
        if not y.requires_grad:
            # A constant output (the derivative of a linear function is one): it depends on
            # no input, so it contributes nothing, and an input it alone reaches is unused.
            seeds.append(None)
            continue
        if gy is None:
            if y.size != 1:
                raise ShapeError(
                    f"grad: outputs[{i}] has shape {tuple(y.shape)}; grad_outputs can be left "
                    "out only for one-element outputs (pass the seed, e.g. ones of that shape)"
                )
            gy = _new_variable(get_array_module(y._data).ones_like(y._data), None, 0, False)
        elif not isinstance(gy, Variable):
            gy = _new_variable(gy, None, 0, False)
        if gy.shape != y.shape:
            raise ShapeError(f"grad: grad_outputs[{i}] has shape {tuple(gy.shape)} but "
                             f"outputs[{i}] has shape {tuple(y.shape)}; they must be equal")
        seeds.append(gy)
    return seeds


def _functions_leading_nowhere(heads, wanted: set) -> set:
    """The functions reachable from ``heads`` that have no path down to a Variable in
    ``wanted``: ``grad`` need not run them (PyTorch prunes the graph the same way).

    A function whose generation is below every wanted Variable's cannot lead to one
    (generations grow along every edge), so the walk does not go below that.
    """
    lowest = min(x.generation for x in wanted)
    leads: dict = {}  # function -> whether it leads to a wanted Variable
    stack = [(f, False) for f in heads]
    while stack:
        f, children_done = stack.pop()
        if children_done:
            inputs = f.inputs
            leads[f] = inputs is None or any(
                x in wanted or (x.creator is not None and leads.get(x.creator, False))
                for x in inputs)
            continue
        if f in leads:
            continue
        leads[f] = False
        stack.append((f, True))
        for x in f.inputs or ():  # a freed graph: the main loop raises when it gets there
            c = x.creator
            if c is not None and x.requires_grad and c not in leads and c.generation >= lowest:
                stack.append((c, False))
    return {f for f, useful in leads.items() if not useful}


def _zeros_like(x: Variable) -> Variable:
    return _new_variable(get_array_module(x._data).zeros_like(x._data), None, 0, False)


def _describe(x: Variable) -> str:
    name = f'"{x.name}" ' if x.name else ""
    return f"{name}{x._data.dtype} {tuple(x._data.shape)}" if x._data is not None else name


# -- the functional API on top of grad ------------------------------------------------------------
class _Identity(Function):
    """y = x, sharing the array: a view that ties the functional API's input to the caller's
    Variable, so that with create_graph=True the results stay differentiable in it."""

    retain_inputs = ()
    retain_outputs = ()

    def forward(self, x):
        return x

    def backward(self, gy):
        return gy


def _prepare(inputs, create_graph: bool, caller: str) -> tuple[tuple, bool]:
    """(Variables to call ``func`` on, whether ``inputs`` was a tuple)."""
    is_tuple = isinstance(inputs, (tuple, list))
    values = tuple(inputs) if is_tuple else (inputs,)
    prepared = []
    for i, v in enumerate(values):
        if isinstance(v, Variable):
            if create_graph and v.requires_grad:
                with using_config("enable_backprop", True):
                    prepared.append(_Identity()(v))  # stays linked to the caller's graph
            else:
                prepared.append(Variable(v._data))  # a new leaf on the same array
        elif is_array(v) or isinstance(v, (int, float, np.generic)):
            data = v if is_array(v) else np.asarray(v)
            if data.dtype.kind not in "fc":
                raise TypeError(f"{caller}: inputs[{i}] has dtype {data.dtype}; "
                                "differentiation needs floating-point inputs")
            prepared.append(Variable(data))
        else:
            raise TypeError(f"{caller}: inputs[{i}] is a {type(v).__name__}; expected a "
                            "Variable or an ndarray (or a tuple of them)")
    return tuple(prepared), is_tuple


def _call(func: Callable, xs: tuple, caller: str) -> tuple[tuple, bool]:
    """(func's outputs as a tuple of Variables, whether func returned a tuple)."""
    with using_config("enable_backprop", True):
        out = func(*xs)
    return _as_outputs(out, caller, "func", " (use zerograd functions inside)")


def _as_outputs(out, caller: str, who: str, hint: str = "") -> tuple[tuple, bool]:
    """(``out`` as a tuple of Variables, whether it was a tuple); ``who`` returned it."""
    is_tuple = isinstance(out, (tuple, list))
    outs = tuple(out) if is_tuple else (out,)
    for i, y in enumerate(outs):
        if not isinstance(y, Variable):
            raise TypeError(f"{caller}: {who} returned a {type(y).__name__}"
                            f"{f' at position {i}' if is_tuple else ''}; it must return a "
                            f"Variable or a tuple of Variables{hint}")
    return outs, is_tuple


def _scalar_output(func: Callable, xs: tuple, caller: str) -> Variable:
    """func(*xs), which must be a single one-element Variable (hessian, hvp, vhp)."""
    outs, _ = _call(func, xs, caller)
    if len(outs) != 1 or outs[0].size != 1:
        raise ShapeError(f"{caller}: func must return a single one-element Variable, got "
                         f"shape(s) {_shapes(outs)}")
    return outs[0]


def _shapes(values: tuple) -> str:
    return ", ".join(str(tuple(a.shape)) for a in values)


def _vector(v, like: tuple, caller: str, of: str) -> tuple:
    """``v`` (a Variable, array or tuple of them) as constant Variables shaped like ``like``,
    the function's ``of`` ("inputs" or "outputs"). Left out (None), it stands for ones, which
    is unambiguous only where ``like`` is a single one-element Variable, as in PyTorch."""
    if v is None:
        if len(like) != 1 or like[0].size != 1:
            raise ShapeError(f"{caller}: v can be left out only when the {of} are a single "
                             f"one-element Variable; they have shape(s) {_shapes(like)}")
        ones = get_array_module(like[0]._data).ones_like(like[0]._data)
        return (Variable(ones, requires_grad=False),)
    values = tuple(v) if isinstance(v, (tuple, list)) else (v,)
    if len(values) != len(like):
        raise ValueError(f"{caller}: v has {len(values)} part(s), expected {len(like)} "
                         f"(one per {of[:-1]})")
    out = []
    for i, (a, ref) in enumerate(zip(values, like)):
        a = a if isinstance(a, Variable) else Variable(np.asarray(a) if not is_array(a) else a,
                                                       requires_grad=False)
        if a.shape != ref.shape:
            raise ShapeError(f"{caller}: v[{i}] has shape {tuple(a.shape)}, expected "
                             f"{tuple(ref.shape)}")
        out.append(a)
    return tuple(out)


def _gradient(y: Variable, xs: tuple) -> tuple:
    """dy/dxs recorded, so that it can be differentiated again; None where y does not
    depend on an input (hessian, hvp, vhp: the first of their two reverse passes)."""
    if not y.requires_grad:
        return (None,) * len(xs)
    return grad(y, xs, create_graph=True, retain_graph=True, allow_unused=True)


def _grad_of_inner(gs: tuple, vs: tuple, wrt: tuple, create_graph: bool) -> tuple:
    """d(sum_i <gs[i], vs[i]>)/d(wrt): the second reverse pass of jvp and vhp.

    A g that is None or a constant does not depend on ``wrt`` and adds nothing; when none
    depends on it the result is all None (the derivative is zero).
    """
    total = None
    for g, w in zip(gs, vs):
        if g is not None and g.creator is not None:
            term = (g * w).sum()
            total = term if total is None else total + term
    if total is None:
        return (None,) * len(wrt)
    return grad(total, wrt, create_graph=create_graph, retain_graph=create_graph,
                allow_unused=True)


def _finish(values: tuple, like: tuple, create_graph: bool, strict: bool,
            unused: str) -> tuple:
    """``values`` with zeros shaped like ``like`` for each None (that derivative is zero),
    detached unless create_graph. With ``strict=True`` a None raises instead: ``unused``
    says what does not depend on what, ``{i}`` standing for the position."""
    out = []
    for i, (g, x) in enumerate(zip(values, like)):
        if g is None:
            if strict:
                raise GraphError(f"{unused.format(i=i)} (strict=True), so that derivative "
                                 "is zero")
            g = _zeros_like(x)
        elif not create_graph:
            g = _new_variable(g._data, None, 0, False)
        out.append(g)
    return tuple(out)


def _detach_all(ys: tuple, create_graph: bool) -> tuple:
    return ys if create_graph else tuple(_new_variable(y._data, None, 0, False) for y in ys)


def _as_given(values: tuple, is_tuple: bool):
    """A tuple where the caller gave (or func returned) a tuple, else its one element."""
    return values if is_tuple else values[0]


def vjp(func: Callable, inputs, v=None, create_graph: bool = False, strict: bool = False):
    """(func(inputs), v^T J): the vector-Jacobian product, ``torch.autograd.functional.vjp``.

    ``v`` has the shape of func's output (a tuple for a tuple of outputs); it may be left out
    when the output has one element. The product has the shape of ``inputs`` (a tuple for a
    tuple). An input the output does not depend on gets zeros (``strict=True`` raises).
    """
    xs, inputs_tuple = _prepare(inputs, create_graph, "vjp")
    outs, outputs_tuple = _call(func, xs, "vjp")
    vs = _vector(v, outs, "vjp", "outputs")
    gs = grad(outs, xs, vs, create_graph=create_graph, retain_graph=create_graph,
              allow_unused=True)
    result = _finish(gs, xs, create_graph, strict,
                     "vjp: the outputs do not depend on inputs[{i}]")
    return (_as_given(_detach_all(outs, create_graph), outputs_tuple),
            _as_given(result, inputs_tuple))


def jvp(func: Callable, inputs, v=None, create_graph: bool = False, strict: bool = False):
    """(func(inputs), J v): the Jacobian-vector product, ``torch.autograd.functional.jvp``.

    ``v`` has the shape of ``inputs``; it may be left out for a single one-element input.
    Computed by the double-vjp trick: g(u) = J^T u is linear in u, so the gradient of
    <g(u), v> with respect to u is J v, exactly (two reverse passes, no finite differences).
    """
    xs, _ = _prepare(inputs, create_graph, "jvp")
    vs = _vector(v, xs, "jvp", "inputs")
    outs, outputs_tuple = _call(func, xs, "jvp")
    # u: a dummy cotangent per output, as a leaf the second pass differentiates against.
    us = tuple(Variable(get_array_module(y._data).zeros_like(y._data)) for y in outs)
    gs = grad(outs, xs, us, create_graph=True, retain_graph=True, allow_unused=True)
    jv = _grad_of_inner(gs, vs, us, create_graph)
    result = _finish(jv, outs, create_graph, strict, "jvp: outputs[{i}] depends on no input")
    return (_as_given(_detach_all(outs, create_graph), outputs_tuple),
            _as_given(result, outputs_tuple))


def jacobian(func: Callable, inputs, create_graph: bool = False, strict: bool = False,
             vectorize: bool = False, strategy: str = "reverse-mode"):
    """The Jacobian of ``func`` at ``inputs``, ``torch.autograd.functional.jacobian``.

    For one output y and one input x the result has shape y.shape + x.shape (entry
    [i..., j...] = dy[i...]/dx[j...]). With a tuple of inputs it is a tuple (one per input);
    with a tuple of outputs, a tuple (one per output) of those. ``strategy="reverse-mode"``
    takes one reverse pass per output element, ``"forward-mode"`` one jvp per input
    element (fewer passes when the inputs are smaller than the outputs). ``vectorize`` is
    accepted for PyTorch's signature; zerograd computes row by row either way.
    """
    if strategy not in ("reverse-mode", "forward-mode"):
        raise ValueError(f"jacobian: strategy must be 'reverse-mode' or 'forward-mode', got "
                         f"{strategy!r}")
    xs, inputs_tuple = _prepare(inputs, create_graph, "jacobian")
    outs, outputs_tuple = _call(func, xs, "jacobian")
    if strategy == "forward-mode":
        blocks = _jacobian_forward(func, xs, outs, create_graph, strict)
    else:
        blocks = _jacobian_reverse(xs, outs, create_graph, strict)
    return _as_given(tuple(_as_given(tuple(row), inputs_tuple) for row in blocks),
                     outputs_tuple)


class _Stack(Function):
    """y = the inputs stacked along a new first axis (for Jacobians with create_graph)."""

    retain_inputs = ()
    retain_outputs = ()

    def forward(self, *xs):
        return get_array_module(xs[0]).stack(xs)

    def backward(self, gy):
        return tuple(gy[i] for i in range(len(self.inputs)))


def _stack(parts: list, shape: tuple, like: Variable, create_graph: bool) -> Variable:
    """Variables of one shape stacked and reshaped to ``shape`` (differentiably if asked)."""
    if not parts:
        return _new_variable(get_array_module(like._data).zeros(shape, like._data.dtype),
                             None, 0, False)
    if create_graph:
        return _Stack()(*parts).reshape(shape)
    xp = get_array_module(parts[0]._data)
    return _new_variable(xp.stack([p._data for p in parts]).reshape(shape), None, 0, False)


def _jacobian_reverse(xs, outs, create_graph, strict) -> list:
    blocks = []
    for k, y in enumerate(outs):
        xp = get_array_module(y._data)
        rows: list[list] = [[] for _ in xs]
        for i in range(y.size):
            seed = xp.zeros(y.size, dtype=y._data.dtype)
            seed[i] = 1
            if y.requires_grad:
                gs = grad(y, xs, Variable(seed.reshape(y.shape), requires_grad=False),
                          create_graph=create_graph, retain_graph=True, allow_unused=True)
            else:
                gs = (None,) * len(xs)
            gs = _finish(gs, xs, create_graph, strict,
                         f"jacobian: outputs[{k}] does not depend on inputs[{{i}}]")
            for j, g in enumerate(gs):
                rows[j].append(g)
        blocks.append([_stack(rows[j], tuple(y.shape) + tuple(x.shape), x, create_graph)
                       for j, x in enumerate(xs)])
    return blocks


def _jacobian_forward(func, xs, outs, create_graph, strict) -> list:
    columns: list[list[list]] = [[[] for _ in xs] for _ in outs]
    for j, x in enumerate(xs):
        xp = get_array_module(x._data)
        for i in range(x.size):
            tangent = []
            for m, other in enumerate(xs):
                t = xp.zeros(other.size, dtype=other._data.dtype)
                if m == j:
                    t[i] = 1
                tangent.append(t.reshape(other.shape))
            _, jv = jvp(func, xs, tuple(tangent), create_graph=create_graph, strict=strict)
            jv = jv if isinstance(jv, tuple) else (jv,)
            for k, col in enumerate(jv):
                columns[k][j].append(col)
    blocks = []
    for k, y in enumerate(outs):
        row = []
        for j, x in enumerate(xs):
            # Columns are stacked first: (x.size, *y.shape); move the input axes last.
            stacked = _stack(columns[k][j], (x.size,) + tuple(y.shape), y, create_graph)
            axes = tuple(range(1, y.ndim + 1)) + (0,)
            if create_graph:
                block = stacked.transpose(*axes).reshape(tuple(y.shape) + tuple(x.shape))
            else:
                block = _new_variable(stacked._data.transpose(axes).reshape(
                    tuple(y.shape) + tuple(x.shape)), None, 0, False)
            row.append(block)
        blocks.append(row)
    return blocks


def hessian(func: Callable, inputs, create_graph: bool = False, strict: bool = False,
            vectorize: bool = False, outer_jacobian_strategy: str = "reverse-mode"):
    """The Hessian of a scalar ``func`` at ``inputs``, ``torch.autograd.functional.hessian``.

    ``func`` must return a single one-element Variable. For one input x the result has shape
    x.shape + x.shape; for a tuple of inputs, a tuple of tuples (block [i][j] =
    d2f / dx_i dx_j). A function linear in an input has zeros there, never an error.
    """
    xs, inputs_tuple = _prepare(inputs, create_graph, "hessian")

    def gradient(*args):
        gs = _gradient(_scalar_output(func, args, "hessian"), args)
        return tuple(_zeros_like(a) if g is None else g for g, a in zip(gs, args))

    result = jacobian(gradient, xs, create_graph=create_graph, strict=strict,
                      strategy=outer_jacobian_strategy)
    # jacobian of a tuple-valued gradient with tuple inputs: a tuple of tuples.
    return result if inputs_tuple else result[0][0]


def vhp(func: Callable, inputs, v=None, create_graph: bool = False, strict: bool = False):
    """(func(inputs), v^T H), ``torch.autograd.functional.vhp``: the gradient of <grad f, v>
    (reverse over reverse, exact). ``v`` has the shape of ``inputs``."""
    return _vhp(func, inputs, v, create_graph, strict, "vhp")


def hvp(func: Callable, inputs, v=None, create_graph: bool = False, strict: bool = False):
    """(func(inputs), H v), ``torch.autograd.functional.hvp``. The Hessian of a function
    whose second derivatives are continuous is symmetric, so H v = (v^T H)^T: computed as
    :func:`vhp` (reverse over reverse, exact), which is what PyTorch's hvp returns too."""
    return _vhp(func, inputs, v, create_graph, strict, "hvp")


def _vhp(func, inputs, v, create_graph: bool, strict: bool, caller: str):
    """vhp and hvp, their errors naming ``caller``."""
    xs, inputs_tuple = _prepare(inputs, create_graph, caller)
    y = _scalar_output(func, xs, caller)
    vs = _vector(v, xs, caller, "inputs")
    hv = _grad_of_inner(_gradient(y, xs), vs, xs, create_graph)
    result = _finish(hv, xs, create_graph, strict,
                     f"{caller}: the gradient does not depend on inputs[{{i}}]")
    (out,) = _detach_all((y,), create_graph)
    return out, _as_given(result, inputs_tuple)


# -- checkpoint ------------------------------------------------------------------------------------
def checkpoint(fn: Callable, *args, preserve_rng_state: bool = True):
    """``fn(*args)``, keeping for backward only the segment's inputs, not its activations.

    The forward pass runs ``fn`` as usual and then drops the graph inside it; the result is
    one node whose backward runs ``fn`` again on the same inputs (with NumPy's random state
    and ``Config.train`` as they were, so dropout draws the same masks) and backpropagates
    through that fresh graph. Memory: the activations inside the segment are alive only
    while it is recomputed, one segment at a time; the cost is a second forward pass of the
    segment. Gradients reach ``args``, the parameters ``fn`` uses, and any other Variable
    it reads from outside (a closure); higher-order gradients work (``create_graph=True``).
    ``fn`` must return a Variable or a tuple of Variables and compute the same thing when
    run again.
    """
    if not _state.enable_backprop:
        return fn(*args)
    rng_state = np.random.get_state() if preserve_rng_state else None
    train = _state.train
    # Bump the write clock: every function this segment records gets a stamp at least
    # `start`, every function recorded before has a smaller one, which is how the walk
    # below tells the segment's own nodes from the graph it hangs from.
    _write_clock[0] += 1
    start = _write_clock[0]
    out = fn(*args)
    outs, is_tuple = _as_outputs(out, "checkpoint", "fn")
    boundary = _segment_inputs(outs, start)
    if not boundary:
        return out  # nothing in the segment needs a gradient: nothing to recompute
    node = _Checkpoint(fn, args, boundary, len(outs), rng_state, train)
    node.values = tuple(y._data for y in outs)
    results = node(*boundary)
    results = results if isinstance(results, list) else [results]
    return type(out)(results) if is_tuple else results[0]


def _segment_inputs(outs: tuple, start: int) -> list:
    """The Variables requiring a gradient that the segment's functions (those stamped since
    ``start``) read but did not create: args, parameters, captured activations."""
    boundary: dict = {}
    seen: set = set()
    stack = [y.creator for y in outs if y.creator is not None and y.creator._stamp >= start]
    for y in outs:
        if y.requires_grad and (y.creator is None or y.creator._stamp < start):
            boundary[y] = None  # fn returned one of its inputs (or an outside Variable)
    while stack:
        f = stack.pop()
        if f in seen:
            continue
        seen.add(f)
        for x in f.inputs:
            if not x.requires_grad:
                continue
            c = x.creator
            if c is not None and c._stamp >= start:
                stack.append(c)
            else:
                boundary[x] = None
    return list(boundary)


class _Checkpoint(Function):
    """The node a checkpointed segment becomes: inputs are the segment's boundary Variables,
    outputs its results; backward recomputes the segment and differentiates through it."""

    # retain_inputs: every boundary Variable (the recomputation reads them all), however
    # many there are; set in forward.
    retain_outputs = ()
    saved = ("args",)  # the recomputation's arguments

    def __init__(self, fn, args, boundary, n_outputs, rng_state, train) -> None:
        self.fn = fn
        self.args = args
        self.boundary_count = len(boundary)
        self.n_outputs = n_outputs
        self.rng_state = rng_state
        self.train = train

    @property
    def name(self) -> str:
        return f"checkpoint({getattr(self.fn, '__qualname__', type(self.fn).__name__)})"

    def forward(self, *xs):
        self.retain_inputs = tuple(range(len(xs)))
        values, self.values = self.values, None  # computed by checkpoint(); not kept
        return values

    def backward(self, *gys):
        create_graph = _state.enable_backprop
        boundary = self.inputs
        saved_rng = np.random.get_state() if self.rng_state is not None else None
        if self.rng_state is not None:
            np.random.set_state(self.rng_state)
        try:
            with using_config("train", self.train), using_config("enable_backprop", True):
                out = self.fn(*self.args)
        finally:
            if saved_rng is not None:
                np.random.set_state(saved_rng)
        outs = tuple(out) if isinstance(out, (tuple, list)) else (out,)
        if len(outs) != self.n_outputs:
            raise GraphError(f"{self.name}: the recomputation returned {len(outs)} outputs, "
                             f"the forward pass {self.n_outputs}; fn must compute the same")
        grads: dict = {}
        for y, gy in zip(outs, gys):
            if gy is None or not y.requires_grad:
                continue
            previous = grads.get(y)
            grads[y] = gy if previous is None else previous + gy
        wanted = set(boundary)
        # Stop at the boundary: below it lies the outer graph, which the outer pass walks.
        skip = {x.creator for x in boundary if x.creator is not None}
        heads = [y.creator for y in grads if y.creator is not None and y not in wanted]
        found: dict = {}

        def deliver(x, gx):
            if x in wanted:
                found[x] = gx

        propagate(grads, heads, deliver, True, create_graph=create_graph,
                  retain_graph=False, skip=skip)
        return tuple(found.get(x) for x in boundary)

    def to_onnx(self, g, *boundary):
        # The trace dropped the segment's inside: run it again, recording as its backward
        # would, and lower what it records down to the boundary, which the graph has.
        with using_config("enable_backprop", True):
            out = self.fn(*self.args)
        outs = list(out) if isinstance(out, (tuple, list)) else [out]
        names = g.inline(outs, inside=self.name)
        return tuple(names) if len(names) > 1 else names[0]
