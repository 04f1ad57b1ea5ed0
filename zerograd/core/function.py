"""``Function``: the base class of every differentiable op.

``forward`` works on raw arrays; ``backward`` works on Variables, so that running it with
graph recording on (``create_graph=True``) yields higher-order derivatives for free.
"""

from __future__ import annotations

import weakref
from typing import Any

import numpy as np

from zerograd._config import _anomaly_threads, _state
from zerograd.core import anomaly
from zerograd.core.variable import Variable, _write_clock, is_array
from zerograd.errors import DTypeError, ShapeError, ZerogradError, describe


def as_array(x, array_module=np):
    """``x`` as an array: scalars become 0-d arrays, arrays pass through unchanged."""
    if np.isscalar(x):
        return array_module.array(x)
    return x


def as_variable(obj) -> Variable:
    """``obj`` itself if it is a Variable, else a new Variable wrapping it."""
    if isinstance(obj, Variable):
        return obj
    return Variable(obj)


_ndarray, _generic, _asarray = np.ndarray, np.generic, np.asarray
_weakref = weakref.ref
_variable_new = Variable.__new__


def _new_variable(data, creator, generation: int, requires_grad: bool) -> Variable:
    """A Variable for an op's output, skipping the constructor's validation (3x faster)."""
    v = _variable_new(Variable)
    v._data = data
    v.name = None
    v.grad = None
    v.creator = creator
    v.generation = generation
    v.requires_grad = requires_grad
    return v


def _to_array(y, op: Function):
    """An op's output as an array: NumPy scalars (from 0-d reductions) become 0-d arrays.

    Python scalars are accepted too, as DeZero's ``as_array`` accepts them (they become
    0-d arrays of NumPy's default dtype). Anything else is a mistake in ``op.forward``.
    """
    if isinstance(y, np.generic):  # first: every op on 0-d arrays returns one
        return np.asarray(y)
    if is_array(y):
        return y
    if isinstance(y, (int, float, complex, bool)):
        return np.asarray(y)
    if isinstance(y, Variable):
        hint = ("forward works on raw arrays (x.data): compute it with NumPy, and keep "
                "Variables for backward")
    elif isinstance(y, list):
        hint = "return a tuple of arrays for several outputs"
    else:
        hint = "forward must return an ndarray, or a tuple of ndarrays for several outputs"
    raise DTypeError(f"{op.name}.forward returned a {type(y).__name__} ({y!r:.60}); {hint}")


def _as_output_arrays(ys, op: Function):
    """What ``op.forward`` returned (other than one ndarray) as one array, or a tuple of
    several: a 1-tuple is a single output, as in DeZero."""
    if type(ys) is tuple:
        if len(ys) == 1:
            return _to_array(ys[0], op)
        for y in ys:  # usually every output is already an ndarray: nothing to convert
            if type(y) is not np.ndarray:
                return tuple([_to_array(y, op) for y in ys])
        return ys
    return _to_array(ys, op)


def _constant(x, op: Function, position: int) -> Variable:
    """Wrap a non-Variable input of an op as a Variable that needs no gradient."""
    if is_array(x):
        return _new_variable(x, None, 0, False)
    if isinstance(x, (int, float, complex, np.generic)) and not isinstance(x, bool):
        return _new_variable(np.asarray(x), None, 0, False)
    raise DTypeError(
        f"{op.name}: input {position} is a {type(x).__name__}; expected a Variable, an ndarray "
        f"or a scalar"
    )


def _as_inputs(inputs: tuple, op: Function) -> list:
    """An op's inputs as Variables: arrays and scalars become constants (no gradient)."""
    return [x if isinstance(x, Variable) else _constant(x, op, i) for i, x in enumerate(inputs)]


def _describe_inputs(inputs) -> str:
    """The inputs' arrays described for an error message (dtypes and shapes)."""
    return describe([x._data for x in inputs])


class Function:
    """Base class of ops. Subclasses define ``forward(*arrays)`` and ``backward(*gys)``.

    After a call that recorded the graph, ``inputs`` holds the input Variables (strongly),
    ``outputs`` a tuple of weak references to the outputs (a list in DeZero; nothing
    changes it), and ``generation`` the op's depth.

    ``retain_inputs`` / ``retain_outputs`` (Chainer's names) declare which inputs and outputs
    (a tuple of positions) ``backward`` reads the values of. Backward raises
    :class:`~zerograd.errors.InPlaceError` when one of those was changed in place after the
    op ran. None, the default, means "what ``backward`` names": all inputs if its code
    mentions ``self.inputs``, all outputs if ``self.output``/``self.outputs``.

    ``forward_needs_input_grad`` (False by default): an op whose forward would keep
    something only for backward sets it, and its calls then set ``needs_input_grad``
    before ``forward`` runs: one bool per input, True where this call records the graph and
    that input wants a gradient (PyTorch's ``ctx.needs_input_grad``). The op asks the call,
    never the global recording flag.

    ``backward_arrays(gy)`` (optional, single-output ops): the same first-order gradients as
    ``backward``, computed on raw arrays (``gy`` an array, each input's array its
    ``self.inputs[i]._data``) and returned as arrays (Variables are accepted too; None
    where ``backward`` returns None). A backward pass that records nothing
    (``create_graph=False``, the usual one) calls it instead of ``backward``: it builds no
    Function objects and no Variables, which takes about a quarter of the instructions off a
    backward through small arrays. ``backward`` stays the definition (it is what
    ``create_graph=True`` differentiates), and the op harness checks that both give the
    same values. A subclass that overrides ``backward`` without
    ``backward_arrays`` does not inherit its parent's.
    """

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        if "backward" in cls.__dict__ and "backward_arrays" not in cls.__dict__:
            # A new backward (a user's op derived from one of ours) is the definition: the
            # inherited shortcut would compute the parent's gradient instead.
            cls.backward_arrays = None
        if cls.__dict__.get("forward_needs_input_grad") and "__call__" not in cls.__dict__:
            # Only such ops pay for telling forward (a check in every op's __call__ would
            # cost each call an unspecialised attribute lookup: 4% of the per-op cost).
            cls.__call__ = _call_telling_forward  # type: ignore[method-assign]

    generation = 0
    inputs: list[Variable] | Any = None  # None until recorded (and after a release)
    outputs: Any = None  # weak references to the outputs, once recorded
    retain_inputs: tuple | None = None
    retain_outputs: tuple | None = None
    # Names of the attributes forward stores for backward (activations); ``release`` drops
    # them, so backward(retain_graph=False) frees them as soon as the op's backward ran.
    saved: tuple = ()
    # An op whose backward is not itself differentiable says so: the engine then raises
    # under create_graph=True, naming the op, with ``higher_order_hint`` as the way out.
    first_order_only = False
    higher_order_hint = ""
    forward_needs_input_grad = False
    needs_input_grad: tuple = ()
    # Optional first-order backward on raw arrays (see the class docstring); None: none.
    backward_arrays: Any = None
    # The write clock's value when this op recorded its graph (see core/variable.py).
    _stamp = 0

    def __call__(self, *inputs):
        # This is the hottest path of the framework, run once per op forward and once per op
        # that a backward pass calls: keep it lean. In CPython a call with *args, a list
        # comprehension and a loop each cost as much as several plain statements, so the
        # one- and two-input cases (nearly every op) are written out, each asking its inputs
        # once, and no tuple is built around a single output.
        n_inputs = len(inputs)
        try:
            if n_inputs == 1:
                x0 = inputs[0]
                if not isinstance(x0, Variable):
                    inputs = _as_inputs(inputs, self)
                    x0 = inputs[0]
                ys = self.forward(x0._data)
                wants_grad = x0.requires_grad
            elif n_inputs == 2:
                x0, x1 = inputs
                if not (isinstance(x0, Variable) and isinstance(x1, Variable)):
                    inputs = _as_inputs(inputs, self)
                    x0, x1 = inputs
                ys = self.forward(x0._data, x1._data)
                wants_grad = x0.requires_grad or x1.requires_grad
            elif n_inputs == 3:  # Grad nodes of two-input ops (x, W, gy): LinearGrad, ...
                x0, x1, x2 = inputs
                if not (isinstance(x0, Variable) and isinstance(x1, Variable)
                        and isinstance(x2, Variable)):
                    inputs = _as_inputs(inputs, self)
                    x0, x1, x2 = inputs
                ys = self.forward(x0._data, x1._data, x2._data)
                wants_grad = x0.requires_grad or x1.requires_grad or x2.requires_grad
            else:
                inputs = _as_inputs(inputs, self)
                ys = self.forward(*[x._data for x in inputs])
                wants_grad = any([x.requires_grad for x in inputs])
        except ZerogradError:  # already names the op (forward's own, or _constant's)
            raise
        except ValueError as e:
            raise ShapeError(f"{self.name}: {e} (inputs: {_describe_inputs(inputs)})") from e
        except TypeError as e:
            raise DTypeError(f"{self.name}: {e} (inputs: {_describe_inputs(inputs)})") from e
        if type(ys) is not _ndarray:  # the usual result is one NumPy array
            if isinstance(ys, _generic):  # an op on 0-d arrays returns a NumPy scalar
                ys = _asarray(ys)
            else:
                ys = _as_output_arrays(ys, self)
        if _anomaly_threads[0] and _state.detect_anomaly:  # off: one list read per call
            anomaly.after_forward(self, [x._data for x in inputs],
                                  ys if type(ys) is tuple else (ys,))

        # Record the graph if an input wants a gradient and recording is on. The inputs are
        # asked first: the flag is thread-local, which costs several list reads, and in a
        # backward pass most calls take only gradients, which want none.
        if not (wants_grad and _state.enable_backprop):
            if type(ys) is not tuple:
                # _new_variable(y, None, 0, False) written out (here and below for a recorded
                # output): nearly every Variable is made on these two lines, and a call
                # costs as much as the six stores.
                out = _variable_new(Variable)
                out._data = ys
                out.name = None
                out.grad = None
                out.creator = None
                out.generation = 0
                out.requires_grad = False
                return out
            return [_new_variable(y, None, 0, False) for y in ys]

        # Record the graph: this node's inputs, its depth (one more than its deepest
        # input's) and the write clock, which backward compares to detect in-place writes.
        if n_inputs == 1:
            generation = x0.generation
        elif n_inputs == 2:
            generation = x0.generation
            if x1.generation > generation:
                generation = x1.generation
        else:
            generation = max([x.generation for x in inputs])
        self.generation = generation
        self.inputs = inputs
        self._stamp = _write_clock[0]
        generation += 1
        if type(ys) is not tuple:
            out = _variable_new(Variable)
            out._data = ys
            out.name = None
            out.grad = None
            out.creator = self
            out.generation = generation
            out.requires_grad = True
            self.outputs = (_weakref(out),)
            return out
        outputs = [_new_variable(y, self, generation, True) for y in ys]
        self.outputs = tuple([_weakref(out) for out in outputs])
        return outputs

    @property
    def name(self) -> str:
        return type(self).__name__

    def forward(self, *xs):
        raise NotImplementedError(f"{self.name}.forward is not implemented")

    def backward(self, *gys):
        raise NotImplementedError(f"{self.name}.backward is not implemented")

    def release(self) -> None:
        """Drop what this node keeps for backward: its inputs and its ``saved`` attributes.

        The engine calls it right after the node's backward under ``retain_graph=False``.
        """
        self.inputs = None
        for name in self.saved:
            setattr(self, name, None)

    # Helpers for backward implementations -------------------------------------------
    def needs_grad(self, index: int) -> bool:
        """Whether input ``index`` wants a gradient (lets ops skip costly, unused work)."""
        return self.inputs[index].requires_grad

    @property
    def output(self) -> Variable:
        """The (single) output, for ops whose backward is written in terms of it."""
        return self.outputs[0]()


def will_get_gradient(inputs) -> tuple[bool, ...]:
    """Per input: whether a call on ``inputs`` records the graph and that input wants a
    gradient (what ``Function.__call__`` will decide; constants want none)."""
    record = _state.enable_backprop
    return tuple([record and isinstance(x, Variable) and x.requires_grad for x in inputs])


def _call_telling_forward(self: Function, *inputs):
    """``Function.__call__`` for an op with ``forward_needs_input_grad``: it sets
    ``needs_input_grad`` first, so that forward knows what backward will need."""
    self.needs_input_grad = will_get_gradient(inputs)
    return Function.__call__(self, *inputs)
