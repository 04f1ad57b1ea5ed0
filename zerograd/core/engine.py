"""Reverse-mode automatic differentiation over the recorded graph.

Functions are visited in descending generation order from a heap (O(n log n), iterative,
so a chain of any length works), ties broken by discovery order so that every run visits
the graph identically.

One loop, :func:`propagate`, does the work for both entry points. It keeps the gradients of
the pass in a table local to the call (a dict from Variable to gradient), not in ``.grad``:
``backward`` adds what is left in the table to ``.grad`` at the end (DeZero's API), while
``zerograd.autograd.grad`` reads the gradients it was asked for out of the table and leaves
every ``.grad`` alone, so two threads may differentiate the same graph at once.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable

import numpy as np

from zerograd._config import _anomaly_threads, _state
from zerograd.backend import get_array_module
from zerograd.core import anomaly
from zerograd.core.broadcast import cast, sum_to
from zerograd.core.function import _new_variable, as_array
from zerograd.core.hooks import gradient_hooks, run_gradient_hooks
from zerograd.core.variable import Variable, _write_clock, is_array
from zerograd.errors import GraphError, InPlaceError, ShapeError

_generic, _asarray, _ndarray = np.generic, np.asarray, np.ndarray
_variable_new = Variable.__new__
# The heap's keys put generations this far apart: up to 2**40 functions found in one pass.
_SPAN = 1 << 40


def backward(output: Variable, retain_grad: bool = False, create_graph: bool = False,
             retain_graph: bool = True) -> None:
    """Accumulate d(output)/d(x) into ``x.grad`` for every Variable x behind ``output``.

    - The seed gradient is ``output.grad`` if set, else ones (a non-scalar output is
      therefore implicitly summed, as in DeZero).
    - ``retain_grad=False`` leaves ``.grad`` of intermediate Variables (every function
      output, including ``output`` itself) None; ``retain_grad=True`` adds each one's
      gradient from this pass to its ``.grad``.
    - ``create_graph=True`` records the backward computation, so gradients are Variables
      with creators and can be differentiated again.
    - ``retain_graph=False`` releases each function's inputs once its gradient is computed,
      so activations are freed during backward; the graph cannot be walked again.
    - On a Variable without a creator (a leaf) only its own gradient is set: to ones, unless
      it already has one.
    """
    seed = output.grad
    if seed is None:
        xp = get_array_module(output._data)
        seed = _new_variable(xp.ones_like(output._data), None, 0, False)
    elif output._data is not None and seed.shape != output._data.shape:
        # Caught here, not as a shape error of whichever op's backward first meets it (as
        # zerograd.autograd.grad checks its grad_outputs).
        name = f' named "{output.name}"' if output.name else ""
        raise ShapeError(f"backward: the output{name} has shape {tuple(output._data.shape)} "
                         f"but its gradient (output.grad) has shape {tuple(seed.shape)}; "
                         "they must be equal")
    if output.creator is None:
        # A leaf, or a constant such as the gradient of a linear function (y = 3 * x gives
        # x.grad = 3, recorded without a creator): nothing lies behind it, so its own
        # gradient (the seed) is the whole answer, as PyTorch does for a leaf. A zero
        # higher derivative thus comes out as None in x.grad instead of an exception.
        if gradient_hooks and id(output) in gradient_hooks:
            seed = run_gradient_hooks(gradient_hooks[id(output)], output, seed)
        output.grad = seed
        return
    output.grad = None  # the seed now lives in the table; retain_grad gives it back

    def add_to_grad(x: Variable, gx: Variable) -> None:
        grad = x.grad
        if grad is None:
            x.grad = gx
        elif create_graph:
            x.grad = grad + gx
        else:
            x.grad = _add_arrays(grad, gx)

    propagate({output: seed}, (output.creator,), add_to_grad, retain_grad,
              create_graph=create_graph, retain_graph=retain_graph)


def _add_arrays(a: Variable, b: Variable) -> Variable:
    # A new array, never in place: a gradient may be shared with another input's gradient.
    total = a._data + b._data
    if total.ndim == 0:
        total = as_array(total)  # NumPy returns a scalar for 0-d + 0-d
    return _new_variable(total, None, 0, False)


def propagate(grads: dict, heads: Iterable, deliver: Callable[[Variable, Variable], None],
              deliver_intermediates: bool, *, create_graph: bool, retain_graph: bool,
              skip: Iterable = ()) -> None:
    """Run backward from the Functions ``heads`` over the recorded graph.

    ``grads`` maps each output Variable to its seed gradient; it is the pass's gradient
    table and receives every gradient computed. Each Variable's gradient, once complete
    (all its consumers have run) and passed through its hooks, goes to
    ``deliver(variable, gradient)``: an intermediate's when its creator is about to run (only
    if ``deliver_intermediates``), and at the end every gradient still in the table, i.e.
    those of leaves and of Variables whose creator did not run. Functions in ``skip`` are
    never run (``grad`` skips those that lead to no input it was asked about).
    """
    # The heap holds one int per waiting function, its key: the deepest generation first,
    # then the order of discovery, which breaks ties deterministically (-generation * _SPAN
    # + count, count < _SPAN). `waiting` maps keys to functions. Plain ints compare several
    # times faster than (-generation, count, function) tuples, and a heap pop compares about
    # log2(n) pairs.
    heap: list = []
    waiting: dict = {}
    seen = set(skip)
    counter = 0
    heappush, heappop = heapq.heappush, heapq.heappop
    for f in heads:
        if f not in seen:
            seen.add(f)
            counter += 1
            key = counter - f.generation * _SPAN
            heappush(heap, key)
            waiting[key] = f
    hooks = gradient_hooks if gradient_hooks else None  # one test per pass when none exist
    check_anomaly = bool(_anomaly_threads[0] and _state.detect_anomaly)
    clock = _write_clock
    pop, get = grads.pop, grads.get
    # Hooks and intermediate gradients asked for: one test per function when neither is.
    watch = hooks is not None or deliver_intermediates
    # A newly discovered creator that is deeper than every function in the heap is
    # necessarily the next to run: it waits in `following` instead of going through the
    # heap. That saves a push and a pop per node of a chain (the common shape of a network's
    # graph) and per node of the spine of a wide graph (a sum of many terms), where the
    # shallow branches pile up in the heap. The order is exactly the heap's order: the
    # function in `following` always comes before every one in the heap.
    following = None
    following_count = 0

    # A first-order pass (nothing recorded) runs an op's ``backward_arrays`` where it has one:
    # the same gradient computed on the arrays, without the Function objects and Variables
    # that ``backward`` builds so that it can be differentiated again.
    on_arrays = not create_graph
    previous_mode = _state.enable_backprop
    _state.enable_backprop = create_graph
    try:
        while True:
            if following is not None:
                f = following
                following = None
            elif heap:
                f = waiting.pop(heappop(heap))
            else:
                break
            inputs = f.inputs
            if inputs is None:
                raise GraphError(_freed_graph_message(f))
            if create_graph and f.first_order_only:
                raise GraphError(_first_order_message(f))
            if f._stamp != clock[0]:  # some array was written in place since f ran
                _check_versions(f)
            if check_anomaly:
                anomaly.before_backward(f)
            refs = f.outputs
            if len(refs) == 1:
                y = refs[0]()  # alive: the table holds every Variable that has a gradient
                gy = pop(y)
                if watch:
                    gy = _watch(y, gy, hooks, deliver, deliver_intermediates)
                backward_arrays = f.backward_arrays if on_arrays else None
                if backward_arrays is not None:
                    gxs = backward_arrays(gy._data)
                else:
                    gxs = f.backward(gy)
            else:
                gys = []
                for ref in refs:
                    y = ref()
                    gy = None if y is None else pop(y, None)
                    if watch and gy is not None:
                        gy = _watch(y, gy, hooks, deliver, deliver_intermediates)
                    gys.append(gy)
                gxs = f.backward(*gys)
            if type(gxs) is not tuple:
                gxs = (gxs,)
            n_inputs = len(inputs)
            if len(gxs) != n_inputs:
                raise GraphError(
                    f"{f.name}.backward returned {len(gxs)} gradient(s) for {n_inputs} "
                    "input(s); return one per input (None where there is none)"
                )
            if check_anomaly:
                anomaly.after_backward(f, gxs)

            # Each input with its gradient. An index loop, not `zip(inputs, gxs)`: a zip
            # object and its tuples cost more than the rest of a chain node's bookkeeping.
            i = 0
            while i < n_inputs:
                x = inputs[i]
                gx = gxs[i]
                i += 1
                if gx is None or not x.requires_grad:
                    continue
                if type(gx) is not Variable:
                    if (type(gx) is not _ndarray and isinstance(gx, _generic)
                            and type(x._data) is _ndarray):
                        gx = _asarray(gx)  # NumPy returns scalars for 0-d arithmetic
                    if type(gx) is _ndarray:  # from backward_arrays: wrapped as a constant
                        # (_new_variable(gx, None, 0, False) written out: the call costs as
                        # much as the six stores, as in Function.__call__)
                        wrapped = _variable_new(Variable)
                        wrapped._data = gx
                        wrapped.name = None
                        wrapped.grad = None
                        wrapped.creator = None
                        wrapped.generation = 0
                        wrapped.requires_grad = False
                        gx = wrapped
                    else:
                        gx = _as_gradient(gx, f, x)
                x_data = x._data
                # Broadcasting in forward: reduce the gradient back, for every op, here.
                # (data may be None where a user freed an intermediate, as DeZero's
                # linear_simple does; the op's gradient is then taken as it is.)
                if x_data is not None:
                    g_data = gx._data
                    if g_data.shape != x_data.shape:
                        gx = _sum_to_input(gx, f, x)
                    # (Built-in dtypes are singletons: the identity test settles most cases.)
                    if (g_data.dtype is not x_data.dtype and g_data.dtype != x_data.dtype
                            and x_data.dtype.kind == "f"):
                        # A float32 input gets a float32 gradient even if a float64 constant
                        # (a target, a mask) promoted the computation: otherwise every weight
                        # gradient of a model silently becomes float64.
                        gx = cast(gx, x_data.dtype)
                grad = get(x)
                if grad is None:
                    grads[x] = gx
                    creator = x.creator  # first gradient of x: its creator has work now
                    if creator is not None and creator not in seen:
                        seen.add(creator)
                        counter += 1
                        if following is None and not heap:  # a chain: nothing else waits
                            following, following_count = creator, counter
                            continue
                        generation = creator.generation
                        if following is None:
                            # Next in line if it is deeper than everything in the heap (a tie
                            # goes to the heap: its functions were discovered earlier; the
                            # keys say both).
                            key = counter - generation * _SPAN
                            if key < heap[0]:
                                following, following_count = creator, counter
                            else:
                                heappush(heap, key)
                                waiting[key] = creator
                        elif generation > following.generation:
                            # Deeper than the one waiting: it runs first, the other one waits
                            # in the heap (still ahead of everything there).
                            key = following_count - following.generation * _SPAN
                            heappush(heap, key)
                            waiting[key] = following
                            following, following_count = creator, counter
                        else:
                            key = counter - generation * _SPAN
                            heappush(heap, key)
                            waiting[key] = creator
                elif create_graph:
                    grads[x] = grad + gx
                else:
                    # A new array, never in place: gx may be shared with another input's.
                    total = grad._data + gx._data
                    if isinstance(total, _generic):  # NumPy returns a scalar for 0-d + 0-d
                        total = _asarray(total)
                    grads[x] = _new_variable(total, None, 0, False)

            if not retain_graph:
                f.release()  # its inputs and what its forward saved for backward
    finally:
        _state.enable_backprop = previous_mode

    # What is left: the gradients of leaves, and of Variables whose creator did not run.
    for x, gx in grads.items():
        if hooks is not None and id(x) in hooks:
            gx = run_gradient_hooks(hooks[id(x)], x, gx)
        deliver(x, gx)


def _watch(y: Variable, gy: Variable, hooks, deliver, deliver_intermediates) -> Variable:
    """``y``'s complete gradient through its hooks, then delivered if intermediates are."""
    if hooks is not None and id(y) in hooks:
        gy = run_gradient_hooks(hooks[id(y)], y, gy)
    if deliver_intermediates:
        deliver(y, gy)
    return gy


def _check_versions(f) -> None:
    """Raise InPlaceError if an input or output whose value ``f.backward`` reads was
    written in place after ``f`` ran (its version is newer than ``f``'s stamp)."""
    stamp = f._stamp
    inputs, refs = f.inputs, f.outputs
    reads_inputs, reads_outputs = _what_backward_reads(f)
    for i in range(len(inputs)) if reads_inputs is True else reads_inputs:
        x = inputs[i]
        # A freed array (data None, DeZero's linear_simple) is not a change of values.
        if getattr(x, "_version", 0) > stamp and x._data is not None:
            raise InPlaceError(_changed_message(f, anomaly.input_label(f, x, i), x))
    for i in range(len(refs)) if reads_outputs is True else reads_outputs:
        y = refs[i]()
        if y is not None and getattr(y, "_version", 0) > stamp and y._data is not None:
            name = f' named "{y.name}"' if y.name else ""
            label = f"its output {i}{name} ({y._data.dtype} {tuple(y._data.shape)})"
            raise InPlaceError(_changed_message(f, label, y))


# Function class -> (inputs read, outputs read), for classes that declare nothing.
_inferred_reads: dict = {}


def _what_backward_reads(f) -> tuple:
    """The inputs and outputs whose values ``f.backward`` reads: positions, or True for all.

    ``retain_inputs`` / ``retain_outputs`` say it when the op declares them, and every op of
    zerograd's own declares both (as a class attribute, or in ``forward`` for the ops with
    any number of inputs: Einsum, ProductOfOthers, checkpoint's node), so the inference below
    never decides for them; tests/core/test_retain_declarations.py enforces it.

    The inference is for user-defined Functions, which DeZero programs write without
    declarations: such an op is taken to read what its backward method names, all inputs if
    it mentions ``self.inputs``, all outputs if ``self.output(s)``. A backward that needs no
    value thus never raises when its inputs change, and a helper method that reads
    ``self.inputs`` for backward goes unchecked (docs/engine.md lists it among what is not
    detected).
    """
    reads_inputs, reads_outputs = f.retain_inputs, f.retain_outputs
    if reads_inputs is not None and reads_outputs is not None:  # every op of zerograd's own
        return reads_inputs, reads_outputs
    cls = type(f)
    inferred = _inferred_reads.get(cls)
    if inferred is None:
        code = getattr(cls.backward, "__code__", None)
        names = set(code.co_names) if code is not None else {"inputs", "outputs"}
        inferred = _inferred_reads[cls] = (
            "inputs" in names, "output" in names or "outputs" in names)
    if reads_inputs is None:
        reads_inputs = inferred[0]
    if reads_outputs is None:
        reads_outputs = inferred[1]
    return (reads_inputs or ()), (reads_outputs or ())


def _changed_message(f, label: str, v: Variable) -> str:
    name = v.name or "x"
    return (
        f"{f.name}'s backward needs {label}, which was changed in place after {f.name} ran "
        f"(a write such as `{name}.data -= ...`, e.g. an optimizer step between the forward "
        f"and the backward pass); the gradient would be computed from the new values and be "
        f"wrong. Call backward before changing it, or run the forward pass again"
        f"{anomaly.created_at(f)}"
    )


# -- the slow paths of the loop above: a backward that broke the rules ----------------------
def _input_label(f, x) -> str:
    """'input 1 named "W" (float32 (3, 4))' for input ``x`` of function ``f``."""
    position = next((i for i, v in enumerate(f.inputs) if v is x), "?")
    return anomaly.input_label(f, x, position)


def _as_gradient(gx, f, x) -> Variable:
    """A gradient that ``f.backward`` returned as something other than a Variable.

    A NumPy/CuPy array (or NumPy scalar) is accepted and wrapped as a constant: DeZero's
    early steps write backward on raw arrays, and DeZero itself accepts it. A constant has
    no creator, so under ``create_graph=True`` it is not differentiated again.
    """
    if isinstance(gx, Variable):  # a Variable subclass (e.g. a Parameter) is fine as it is
        return gx
    if isinstance(gx, np.generic):  # a 0-d array on the input's device
        gx = get_array_module(x._data).asarray(gx) if x._data is not None else np.asarray(gx)
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
        return sum_to(gx, x._data.shape)
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
        f"backward reached {f.name}, whose inputs an earlier pass freed: backward("
        "retain_graph=False), or zerograd.autograd.grad, which frees the graph unless "
        "retain_graph=True or create_graph=True (PyTorch's default). The graph can be walked "
        "once that way: pass retain_graph=True the first time to walk it again, or run the "
        "forward pass again"
    )
