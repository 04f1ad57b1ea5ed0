"""``Optimizer``: the base class that applies an update rule to a model's parameters.

Protocol (DeZero's): ``optimizer.setup(model)`` returns the optimizer; after
``loss.backward()``, ``optimizer.update()`` collects the parameters that have a gradient, runs
every hook on that list (weight decay, gradient clipping, freezing), then calls
``update_one(param)`` for each parameter that still has a gradient.

Per-parameter state (momentum buffers, Adam's moments) lives in ``self.state``, a
:class:`ParameterMap` keyed by the Parameter object itself (by identity, weakly): a
parameter's state dies with it, and a new model never inherits a dead model's state (DeZero
keyed it by ``id()``, which a new object may reuse).

Rules every update rule follows: it changes ``param.data`` in place (so float32 stays float32)
and never writes into ``param.grad.data`` (the engine may hand one gradient array to two
parameters, as for ``y = W + b`` with equal shapes).

Every setting named in ``hyperparams`` is validated whenever it is set (by the constructor,
by hand, by a scheduler or by ``load_state_dict``), with PyTorch's ranges where they are
sensible. Optimizers pickle and deep-copy; copied together with their model, the copy's
state belongs to the copied parameters.
"""

from __future__ import annotations

import os
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, Generic, Protocol, TypeVar

import numpy as np

from zerograd import _fast as fast
from zerograd.backend import as_numpy, get_array_module
from zerograd.core.variable import Parameter, Variable
from zerograd.errors import DTypeError, ShapeError, ZerogradError
from zerograd.optim._checks import Integer, Rule
from zerograd.serialization import load_state

__all__ = ["HasParams", "Optimizer", "OptimizerStateError", "ParameterMap", "Target",
           "add_scaled"]


class HasParams(Protocol):
    """Anything with ``params()``: a Layer or a Model (DeZero's optimizers look for the
    method, not the class)."""

    def params(self) -> Iterator[Parameter]: ...


# What ``setup`` (and gradient clipping) accepts.
Target = HasParams | Parameter | Iterable[Parameter]
# A gradient hook (WeightDecay, ClipGrad, FreezeParam): called with the parameters that
# have gradients, before the update.
Hook = Callable[[list[Parameter]], object]

# Bytes per block in add_scaled's NumPy path: the temporary stays in cache, and a block is
# large enough that the two ufunc calls per block cost little (2^15 float32 elements per
# block took 0.96 ms a step of the MLP benchmark's update, 1 MiB blocks 0.63 ms:
# docs/performance.md).
_BLOCK_BYTES = 1 << 20


def add_scaled(w: Any, scale: float, x: Any) -> None:
    """``w += scale * x`` in place, for arrays of one shape (NumPy or CuPy).

    Large contiguous NumPy arrays take one pass with the compiled kernel
    (``zerograd._fast.optim``, when the kernels are on and ``scale`` is a Python number, whose
    product NumPy rounds in the array's dtype) or are processed in blocks, so the product
    never materialises at full size. Either way the values are those of the plain
    expression, bitwise. ``x`` is only read.
    """
    if (type(w) is not np.ndarray or w.shape != x.shape
            or not (w.flags.c_contiguous and x.flags.c_contiguous)
            or (x is not w and np.may_share_memory(w, x))):
        # The plain expression; also for x overlapping w, which the plain expression reads
        # whole before the first write (a pass or a block would read updated elements).
        w += scale * x
        return
    if (type(scale) is float or type(scale) is int) and fast.use("add_scaled", w, x):
        from zerograd._fast import optim as fast_optim  # imports numba (see fast.use)

        fast_optim.add_scaled(w, scale, x)
        return
    dtype = np.result_type(scale, x)  # the plain expression's product (NEP 50's rules)
    block_size = max(1, _BLOCK_BYTES // dtype.itemsize)
    if w.size <= block_size:
        w += scale * x
        return
    w_flat = w.reshape(-1)
    x_flat = x.reshape(-1)
    block = np.empty(block_size, dtype=dtype)
    for start in range(0, w_flat.size, block_size):
        stop = min(start + block_size, w_flat.size)
        product = block[: stop - start]
        np.multiply(x_flat[start:stop], scale, out=product)
        w_part = w_flat[start:stop]
        np.add(w_part, product, out=w_part)


class OptimizerStateError(ZerogradError, ValueError):
    """A saved optimizer state (a dict or a file's content) that does not fit the optimizer."""


class _IdentityRef(weakref.ref):
    """A weak reference that compares by the identity of its referent.

    ``weakref.ref`` compares live referents with ``==``, which for a Variable is the
    elementwise comparison; so ``WeakKeyDictionary`` cannot hold Parameters.
    """

    __slots__ = ("_hash",)

    def __init__(self, obj: object, callback: Callable[[Any], object] | None = None) -> None:
        # weakref.ref's own __init__ takes (obj, callback), as its documented subclassing
        # pattern relies on; typeshed declares those arguments on __new__ only.
        super().__init__(obj, callback)  # type: ignore[call-arg]
        self._hash = object.__hash__(obj)

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other: object) -> bool:
        if self is other:
            return True
        if not isinstance(other, _IdentityRef):
            return NotImplemented
        obj = self()
        return obj is not None and obj is other()


V = TypeVar("V")


class ParameterMap(Generic[V]):
    """A dict from Parameters (by identity) to values that drops a parameter's entry as soon
    as the parameter is garbage collected (so it neither leaks nor is inherited)."""

    def __init__(self) -> None:
        self._data: dict[_IdentityRef, V] = {}
        self_ref = weakref.ref(self)

        def remove(key: _IdentityRef, self_ref: weakref.ref[ParameterMap[V]] = self_ref) -> None:
            owner = self_ref()
            if owner is not None:
                owner._data.pop(key, None)

        self._remove = remove

    def __getitem__(self, param: Parameter) -> V:
        return self._data[_IdentityRef(param)]

    def get(self, param: Parameter, default: V | None = None) -> V | None:
        return self._data.get(_IdentityRef(param), default)

    def __setitem__(self, param: Parameter, value: V) -> None:
        self._data[_IdentityRef(param, self._remove)] = value

    def __delitem__(self, param: Parameter) -> None:
        del self._data[_IdentityRef(param)]

    def __contains__(self, param: object) -> bool:
        return _IdentityRef(param) in self._data

    def __len__(self) -> int:
        return len(self._data)

    def items(self) -> Iterator[tuple[Parameter, V]]:
        for key, value in list(self._data.items()):
            param = key()
            if param is not None:
                yield param, value

    def clear(self) -> None:
        self._data.clear()

    def __reduce__(self) -> tuple[Callable[..., ParameterMap[V]], tuple[list[tuple[Parameter, V]]]]:
        # Weak references cannot be pickled or copied; the (parameter, value) pairs can. In
        # one pickle or deepcopy with the model, each parameter becomes the model's copy.
        return _parameter_map_from_items, (list(self.items()),)


def _parameter_map_from_items(items: Iterable[tuple[Parameter, V]]) -> ParameterMap[V]:
    mapping: ParameterMap[V] = ParameterMap()
    for param, value in items:
        mapping[param] = value
    return mapping


class Optimizer:
    """Base class. Subclasses define ``update_one(param)`` and list their settings.

    Class attributes a subclass sets:

    - ``hyperparams``: the scalar settings saved by ``state_dict``, each with the rule that
      validates it (``{"lr": NON_NEGATIVE}``; see ``optim._checks``);
    - ``counters``: names of integer step counters saved with them (Adam's ``t``);
    - ``state_names``: the per-parameter state arrays of the rule (``("m", "v")``);
    - ``lr_attribute``: the setting a learning-rate scheduler scales (``"lr"``; ``"alpha"``
      for Adam; None when the rule has no learning rate, as AdaDelta).
    """

    hyperparams: Mapping[str, Rule] = {}
    counters: tuple[str, ...] = ()
    state_names: tuple[str, ...] = ()
    lr_attribute: str | None = "lr"

    def __init__(self) -> None:
        self.target: Target | None = None
        self.hooks: list[Hook] = []
        # Each parameter's state arrays by name (``state_names``), NumPy or CuPy.
        self.state: ParameterMap[dict[str, Any]] = ParameterMap()

    def __setattr__(self, name: str, value: Any) -> None:
        # The one place settings are checked: the constructor, a scheduler's set_lr,
        # load_state_dict and `optimizer.lr = ...` by hand all assign through here.
        rule = type(self).hyperparams.get(name)
        if rule is not None:
            value = rule.check(type(self).__name__, name, value)
        object.__setattr__(self, name, value)

    def setup(self, target: Target) -> Optimizer:
        """Optimise ``target``: a Layer/Model, a Parameter, or an iterable of Parameters."""
        if isinstance(target, Variable) and not isinstance(target, Parameter):
            raise TypeError(f"{type(self).__name__}.setup: got a Variable; wrap trainable data "
                            "in a Parameter (or a Layer) so the optimizer can own it")
        if not (isinstance(target, Parameter) or hasattr(target, "params")):
            if isinstance(target, (str, bytes, Mapping)) or not isinstance(target, Iterable):
                raise TypeError(f"{type(self).__name__}.setup: expected a Layer, a Parameter "
                                "or an iterable of Parameters, got "
                                f"{type(target).__name__} {target!r:.60}")
            params: list[Parameter] = list(target)
            for p in params:
                if not isinstance(p, Parameter):
                    raise TypeError(f"{type(self).__name__}.setup: expected a Layer, a Parameter "
                                    f"or Parameters, got an iterable holding {type(p).__name__}")
            target = params
        self.target = target
        return self

    def target_params(self) -> Iterator[Parameter]:
        """The parameters of the target, in its definition order."""
        target = self.target
        if target is None:
            raise RuntimeError(f"{type(self).__name__}: call setup(model) before update()")
        if isinstance(target, Parameter):
            yield target
        elif hasattr(target, "params"):
            yield from target.params()
        else:
            yield from target

    def add_hook(self, f: Hook) -> None:
        """Call ``f(params)`` on the list of parameters with gradients before each update."""
        self.hooks.append(f)

    def update(self) -> None:
        """One optimisation step for every parameter that has a gradient."""
        params = [p for p in self.target_params() if p.grad is not None]
        for hook in self.hooks:
            hook(params)
        # Hooks may drop gradients (FreezeParam): look again after running them. Every
        # gradient is checked before any parameter moves, so a bad one updates nothing.
        params = [p for p in params if p.grad is not None]
        for param in params:
            self._grad_of(param)
        self.begin_step()
        for param in params:
            self.update_one(param)

    def begin_step(self) -> None:
        """Called by ``update()`` once its gradients passed the checks, before the first
        ``update_one``: where an optimizer counts its steps (Adam's t), so that a refused
        step is not counted."""

    def update_one(self, param: Parameter) -> None:
        raise NotImplementedError(f"{type(self).__name__}.update_one is not implemented")

    def _grad_of(self, param: Parameter) -> Any:
        """The gradient array of ``param``, for ``update_one``: ``update()`` calls it only
        for parameters that have one; a direct call on one without is refused here, and so
        is a gradient whose shape is not the parameter's."""
        grad = param.grad
        if grad is None:
            raise ValueError(f"{type(self).__name__}.update_one: parameter {param.name!r} has "
                             "no gradient (grad is None); run backward() first")
        data = grad.data
        if data.shape != param.data.shape:  # backward never makes one; a hand-set grad can
            raise ShapeError(f"{type(self).__name__}.update_one: parameter {param.name!r} has "
                             f"shape {param.data.shape} but its gradient {data.dtype} "
                             f"{data.shape}; a gradient must have its parameter's shape")
        return data

    def cleargrads(self) -> None:
        """Set every target parameter's gradient to None (``model.cleargrads()``)."""
        for p in self.target_params():
            p.cleargrad()

    zero_grad = cleargrads

    # -- per-parameter state -----------------------------------------------------------------
    def _state_for(self, param: Parameter) -> dict[str, Any]:
        """The state arrays of ``param``, named by ``state_names`` (zeros at first use)."""
        state = self.state.get(param)
        if state is None:
            xp = get_array_module(param.data)
            state = {name: xp.zeros_like(param.data) for name in self.state_names}
            self.state[param] = state
        return state

    # -- learning rate -----------------------------------------------------------------------
    def get_lr(self) -> float:
        """The base learning rate a scheduler controls (``lr``, or ``alpha`` for Adam)."""
        if self.lr_attribute is None:
            raise TypeError(f"{type(self).__name__} has no learning rate to schedule")
        return float(getattr(self, self.lr_attribute))

    def set_lr(self, value: float) -> None:
        if self.lr_attribute is None:
            raise TypeError(f"{type(self).__name__} has no learning rate to schedule")
        setattr(self, self.lr_attribute, value)  # validated by __setattr__

    # -- saving and loading ------------------------------------------------------------------
    def _scalar_state(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.hyperparams}

    def state_dict(self) -> dict[str, Any]:
        """The optimizer's state as arrays and JSON-able scalars.

        ``{"type": "Adam", "hyperparams": {...}, "params": [{"name": "l0/W", "shape": [...],
        "state": {"m": array, "v": array}}, ...]}`` with one entry per target parameter, in
        the target's order (``state`` empty for parameters never updated). Arrays are NumPy
        copies. Save it with ``zerograd.serialization.save_state``.
        """
        names = self._param_names()
        entries = []
        for name, param in zip(names, self.target_params()):
            state = self.state.get(param) or {}
            entries.append({
                "name": name,
                "shape": None if param.data is None else list(param.data.shape),
                "state": {k: np.array(as_numpy(v), copy=True) for k, v in state.items()},
            })
        return {"type": type(self).__name__, "hyperparams": self._scalar_state(),
                "counters": {name: int(getattr(self, name)) for name in self.counters},
                "params": entries}

    def expected_state(self) -> dict[str, Any]:
        """What ``state_dict()`` holds, as far as its arrays go: ``{"params": [{"state":
        {"m": W.data, ...}}, ...]}``, each state array standing for its shape and dtype (a
        parameter's state has the parameter's), None for parameters not sized yet.

        For ``load_state(path, expected=...)``, which then checks every state array of a file
        against it from the ``.npy`` headers, before reading any data. Nothing is copied.
        """
        return {"params": [{"state": dict.fromkeys(self.state_names, param.data)}
                           for param in self.target_params()]}

    def load_state_dict(self, state: Mapping[str, Any] | str | os.PathLike,
                        source: str = "the state") -> None:
        """Restore what ``state_dict`` returned, mapping entries to parameters by order.

        ``state`` is that dict, or the path of a file ``save_state`` wrote it to: then each
        state array's shape and dtype is checked against the target's parameters from the
        file's headers before any data is read (see ``expected_state``), so a file that
        declares a huge array fails at once, and ``source`` defaults to the path.

        Checked before anything changes: the structure (dicts and lists as ``state_dict``
        writes them), the optimizer type, the number of parameters, their names (when both
        sides have them), each parameter's state names, and each state array's shape and
        dtype; every setting and counter passes the same checks as in the constructor.
        ``source`` names where the state came from in errors, e.g.
        ``opt.load_state_dict(load_state(path), source=repr(path))``.
        """
        owner = f"{type(self).__name__}.load_state_dict"
        if isinstance(state, (str, os.PathLike)):
            if source == "the state":
                source = repr(os.fspath(state))
            state = load_state(state, expected=self.expected_state(), caller=owner)

        def fail(what: str) -> OptimizerStateError:
            return OptimizerStateError(f"{owner}: {source} {what}")

        if not isinstance(state, Mapping):
            raise fail(f"is a {type(state).__name__}, not the dict that state_dict() returns")
        kind = state.get("type")
        if kind != type(self).__name__:
            raise fail(f"was saved by {kind}, not {type(self).__name__}")
        entries = state.get("params")
        if not isinstance(entries, list):
            raise fail(f"has {type(entries).__name__} under 'params', expected a list with one "
                       "entry per parameter")
        params = list(self.target_params())
        if len(entries) != len(params):
            raise fail(f"has {len(entries)} parameters, the target has {len(params)}")
        names = self._param_names()
        new_state = []
        for i, (entry, param, name) in enumerate(zip(entries, params, names)):
            label = repr(name or i)
            if not isinstance(entry, Mapping) or not isinstance(entry.get("state"), Mapping):
                raise fail(f"has {type(entry).__name__} {entry!r:.60} for parameter {label}, "
                           "expected {'name': ..., 'state': {name: array}}")
            saved_name = entry.get("name")
            if saved_name and name and saved_name != name:
                raise fail(f"has parameter {i} as {saved_name!r}; the target calls it {name!r}")
            saved = entry["state"]
            if saved and set(saved) != set(self.state_names):
                raise fail(f"has state {sorted(saved)} for parameter {label}; "
                           f"{type(self).__name__} keeps {sorted(self.state_names)}")
            shape = None if param.data is None else tuple(param.data.shape)
            arrays = {}
            for key, value in saved.items():
                if not (hasattr(value, "shape") and hasattr(value, "dtype")):
                    raise fail(f"has {type(value).__name__} {value!r:.40} as state {key!r} of "
                               f"parameter {label}, expected an array of shape {shape}")
                if shape is None or tuple(value.shape) != shape:
                    raise ShapeError(f"{owner}: state {key!r} of parameter {label} has shape "
                                     f"{tuple(value.shape)} in {source}, the parameter {shape}")
                dtype = np.dtype(value.dtype)
                if dtype.kind not in "biuf" or not np.can_cast(dtype, param.data.dtype,
                                                              "same_kind"):
                    raise DTypeError(f"{owner}: state {key!r} of parameter {label} is a {dtype} "
                                     f"array in {source}; expected numbers convertible to the "
                                     f"parameter's {param.data.dtype}")
                xp = get_array_module(param.data)
                arrays[key] = xp.array(value, dtype=param.data.dtype)
            new_state.append((param, arrays))
        settings = {}
        for group, rules in (("hyperparams", self.hyperparams),
                             ("counters", dict.fromkeys(self.counters, Integer(0)))):
            saved = state.get(group, {})
            if not isinstance(saved, Mapping):
                raise fail(f"has {type(saved).__name__} under {group!r}, expected a dict")
            for name, value in saved.items():
                if name in rules:  # settings of other versions are ignored
                    try:
                        settings[name] = rules[name].check(type(self).__name__, name, value)
                    except (TypeError, ValueError) as e:
                        raise fail(f"holds an invalid setting: {e}") from e
        for name, value in settings.items():
            setattr(self, name, value)
        self.state = ParameterMap()
        for param, arrays in new_state:
            if arrays:
                self.state[param] = arrays

    def _param_names(self) -> list[str]:
        target = self.target
        if target is not None and hasattr(target, "named_params"):
            return [name for name, _ in target.named_params()]
        return ["" for _ in self.target_params()]

    def __repr__(self) -> str:
        settings = ", ".join(f"{k}={v}" for k, v in self._scalar_state().items())
        return f"{type(self).__name__}({settings})"
