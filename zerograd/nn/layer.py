"""``Layer``: the base class of everything that owns parameters.

A Layer keeps two ordered registries, filled by attribute assignment:

- ``_params``: names of attributes holding a :class:`Parameter` or a sub-``Layer`` (DeZero's
  name; an insertion-ordered dict used as an ordered set, so ``params()`` yields parameters in
  definition order in every process, whatever ``PYTHONHASHSEED`` is);
- ``_buffers``: names of attributes holding arrays that are state but not trained (batch
  norm's running statistics): saved and loaded with the weights, never given to an optimizer.

Rebinding a registered name to something else (``self.b = None``) unregisters it.

Training mode: ``layer.training`` (set recursively by ``train()`` / ``eval()``) is the layer's
own flag; ``Config.train`` (``test_mode()``) is the global one. Layers that behave differently
in training (Dropout, BatchNorm) do their training behaviour only when *both* are true, so
``model.eval()`` and ``with test_mode():`` each switch a model to inference.

Lazy sizes: a layer built without its input size (``Linear(10)``, ``Conv2d(16, 3)``) learns
it from the first input. Its weights may arrive before that call (set by hand or loaded from
a file), so the size is a :class:`LazySize`: read from the weights whenever they exist, and
the first call only fills in what is still missing. A weight that contradicts the input
raises ``ShapeError`` (:meth:`Layer._check_shape`).

Input dtype: a layer with float weights casts integer and bool inputs to its dtype
(:func:`float_input`), so a float32 layer gives float32 whatever integer array it is fed.
"""

from __future__ import annotations

import os
import threading
import weakref
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import numpy as np
from numpy.typing import DTypeLike

from zerograd._config import no_grad, test_mode
from zerograd.backend import as_cupy, as_numpy, get_array_module
from zerograd.core.hooks import HookDict, RemovableHandle
from zerograd.core.variable import Parameter, Variable, is_array
from zerograd.errors import DTypeError, ShapeError, ZerogradError
from zerograd.serialization import NpzReader, save_npz

__all__ = ["Layer", "LazySize", "StateDictError", "float_input"]


class StateDictError(ZerogradError, KeyError):
    """Saved weights and a model disagree on their keys (missing or unexpected entries)."""

    def __str__(self) -> str:  # KeyError would print the message inside quotes
        return str(self.args[0]) if self.args else ""


class _StrongRef:
    """Stands in for a weakref to an object that cannot be weakly referenced (an int)."""

    __slots__ = ("obj",)

    def __init__(self, obj: object) -> None:
        self.obj = obj

    def __call__(self) -> object:
        return self.obj


def _hook_name(fn: object) -> str:
    return getattr(fn, "__qualname__", None) or type(fn).__name__


def _ref(obj: object) -> Callable[[], object]:
    try:
        return weakref.ref(obj)
    except TypeError:
        return _StrongRef(obj)


def _array_of(value: Any) -> Any:
    """The array a Parameter (or a buffer) holds, or None."""
    return value.data if isinstance(value, Variable) else value


class LazySize:
    """A layer's size that is read from its weights: ``in_size = LazySize("W", read=...)``.

    A lazily sized layer (``Linear(10)``) learns a size such as ``in_size`` from its first
    input. Its weights may arrive before that call, though: set by hand
    (``layer.W.data = ...``) or loaded (``load_weights``). A size stored on its own would
    still be None then, and the first call would compare the input against None (or draw
    new weights over the loaded ones). So the weights are the one record of the size: once
    one of ``sources`` (names of the layer's Parameters or buffers) holds an array, the size
    is ``read(layer, that_array.shape)``. Before that it is the value last assigned (the
    constructor's argument, or the input's size just before the weights are drawn).
    """

    def __init__(self, *sources: str, read: Callable[[Any, tuple], Any]) -> None:
        self.sources = sources
        self.read = read

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name
        self.slot = f"_{name}_given"  # an assigned value, used while no weight exists

    # The size is whatever ``read`` makes of a shape (an int, or a tuple for a kernel), so
    # it is typed as Any: each layer's annotation of the attribute says what it holds.
    def __get__(self, layer: Layer | None, owner: type | None = None) -> Any:
        if layer is None:
            return self
        for source in self.sources:
            data = _array_of(layer.__dict__.get(source))
            if data is not None:
                return self.read(layer, tuple(data.shape))
        return layer.__dict__.get(self.slot)

    def __set__(self, layer: Layer, value: Any) -> None:
        layer.__dict__[self.slot] = value


def float_input(x: Any, dtype: DTypeLike) -> Any:
    """``x`` as a layer with ``dtype`` weights computes on it: an integer or bool array (or
    Variable) is cast to ``dtype``; anything else passes through unchanged.

    NumPy would promote ``int64 @ float32`` to float64 (and DeZero does), so a float32
    layer fed ``np.arange`` would hand float64 to everything after it; PyTorch refuses
    integer input instead. Integers carry no gradient, so casting them loses nothing.
    Float inputs keep their own dtype (a float64 array still promotes, as in NumPy).
    """
    data = _array_of(x)
    if data is None or getattr(data, "dtype", None) is None or data.dtype.kind not in "biu":
        return x
    return data.astype(dtype)


# Callbacks told about every Layer call while summary() runs (empty otherwise: one check).
_call_observers: list[Callable[[Layer, tuple], None]] = []


class Layer:
    """Base class of layers and models. Subclasses define ``forward(*inputs)``.

    Assign Parameters, sub-layers and buffers as attributes in ``__init__`` (after
    ``super().__init__()``); calling the layer runs ``forward`` and keeps weak references to
    the inputs and outputs in ``self.inputs`` / ``self.outputs``, as DeZero does.
    """

    # Declared for the type checker only (no class attributes): __init__ and __call__ write
    # them straight into the instance dict, past __setattr__'s registries.
    _params: dict[str, None]
    _buffers: dict[str, None]
    training: bool
    inputs: list[Callable[[], Any]]
    outputs: list[Callable[[], Any]]

    def __init__(self) -> None:
        set_attribute = object.__setattr__
        set_attribute(self, "_params", {})
        set_attribute(self, "_buffers", {})
        set_attribute(self, "training", True)

    # -- registries ------------------------------------------------------------------------
    def __setattr__(self, name: str, value: Any) -> None:
        try:
            params = self.__dict__["_params"]
            buffers = self.__dict__["_buffers"]
        except KeyError:
            raise AttributeError(
                f"{type(self).__name__}: Layer.__init__() has not run; call "
                f"super().__init__() at the start of {type(self).__name__}.__init__ before "
                f"assigning attributes (here {name!r})"
            ) from None
        if isinstance(value, (Parameter, Layer)):
            buffers.pop(name, None)
            params[name] = None
        elif name in buffers:
            if value is not None and not is_array(value):
                raise TypeError(
                    f"{type(self).__name__}: buffer {name!r} must hold an ndarray or None, got "
                    f"{type(value).__name__}; `del self.{name}` first to reuse the name"
                )
        elif name in params:
            del params[name]
        object.__setattr__(self, name, value)

    def __delattr__(self, name: str) -> None:
        self.__dict__["_params"].pop(name, None)
        self.__dict__["_buffers"].pop(name, None)
        object.__delattr__(self, name)

    def register_buffer(self, name: str, value: Any = None) -> None:
        """Register attribute ``name`` as a buffer holding ``value`` (an ndarray or None).

        Buffers are saved/loaded by ``save_weights``/``state_dict`` and moved by
        ``to_gpu``/``to_cpu``, but ``params()`` never yields them. Assign a new array to the
        attribute later to update it (``self.avg_mean = xp.zeros(C)``).
        """
        if value is not None and not is_array(value):
            raise TypeError(f"{type(self).__name__}.register_buffer({name!r}): value must be an "
                            f"ndarray or None, got {type(value).__name__}")
        self.__dict__["_params"].pop(name, None)
        self.__dict__["_buffers"][name] = None
        object.__setattr__(self, name, value)

    # -- calling -----------------------------------------------------------------------------
    # (forward pre-hooks, forward hooks) once one is registered on this layer: None costs
    # a layer call one attribute test.
    _hooks: tuple[HookDict, HookDict] | None = None

    # What a layer returns is what its ``forward`` returns (a Variable for most layers, a
    # tuple for some), which subclasses define: the base class can only say Any.
    def __call__(self, *inputs: Any, **kwargs: Any) -> Any:
        # Keyword options (``mask=``, ``state=``) go to forward; only positional inputs are
        # recorded in ``self.inputs``, as in DeZero.
        hooks = self._hooks
        if hooks is not None and hooks[0]:
            inputs, kwargs = self._run_pre_hooks(hooks[0], inputs, kwargs)
        outputs = self.forward(*inputs, **kwargs)
        if hooks is not None and hooks[1]:
            outputs = self._run_hooks(hooks[1], inputs, kwargs, outputs)
        if not isinstance(outputs, tuple):
            outputs = (outputs,)
        # Plain dict writes: these are not registered members and this is the hot path.
        self.__dict__["inputs"] = [_ref(x) for x in inputs]
        self.__dict__["outputs"] = [_ref(y) for y in outputs]
        if _call_observers:
            for observer in _call_observers:
                observer(self, outputs)
        return outputs if len(outputs) > 1 else outputs[0]

    def forward(self, *inputs: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__}.forward is not implemented")

    # -- forward hooks (PyTorch's Module hooks) ------------------------------------------------
    def register_forward_pre_hook(self, hook: Callable, *, prepend: bool = False,
                                  with_kwargs: bool = False) -> RemovableHandle:
        """Call ``hook(layer, args)`` before every ``forward``; a non-None return replaces
        the positional inputs (a non-tuple becomes a one-element tuple). With
        ``with_kwargs=True`` it is ``hook(layer, args, kwargs)`` returning None or
        ``(args, kwargs)``. ``prepend=True`` runs it before the hooks already registered.
        Returns a handle; ``handle.remove()`` unregisters it."""
        return self._register(0, hook, prepend, with_kwargs, "register_forward_pre_hook")

    def register_forward_hook(self, hook: Callable, *, prepend: bool = False,
                              with_kwargs: bool = False) -> RemovableHandle:
        """Call ``hook(layer, args, output)`` after every ``forward``; a non-None return
        replaces the output. With ``with_kwargs=True`` it is ``hook(layer, args, kwargs,
        output)``. Returns a handle; ``handle.remove()`` unregisters it."""
        return self._register(1, hook, prepend, with_kwargs, "register_forward_hook")

    def _register(self, kind: int, hook: Callable, prepend: bool, with_kwargs: bool,
                  caller: str) -> RemovableHandle:
        if not callable(hook):
            raise TypeError(f"{type(self).__name__}.{caller}: hook must be callable, got "
                            f"{type(hook).__name__}")
        both = self._hooks
        if both is None:
            both = (HookDict(), HookDict())
            self.__dict__["_hooks"] = both
        hooks = both[kind]
        handle = RemovableHandle(hooks)
        hooks[handle.id] = (hook, with_kwargs)
        if prepend:  # dicts keep insertion order: rebuild with the new one first
            entries = list(hooks.items())
            hooks.clear()
            hooks.update([entries[-1], *entries[:-1]])
        return handle

    def _run_pre_hooks(self, hooks: HookDict, inputs: tuple,
                       kwargs: dict[str, Any]) -> tuple[tuple, dict[str, Any]]:
        for hook, with_kwargs in list(hooks.values()):
            if with_kwargs:
                result = hook(self, inputs, kwargs)
                if result is not None:
                    if not (isinstance(result, tuple) and len(result) == 2):
                        raise TypeError(
                            f"{type(self).__name__}: forward pre-hook {_hook_name(hook)} "
                            f"(with_kwargs=True) returned a {type(result).__name__}; return "
                            f"None or a tuple (args, kwargs)")
                    inputs, kwargs = result
                    inputs = inputs if isinstance(inputs, tuple) else (inputs,)
            else:
                result = hook(self, inputs)
                if result is not None:
                    inputs = result if isinstance(result, tuple) else (result,)
        return inputs, kwargs

    def _run_hooks(self, hooks: HookDict, inputs: tuple, kwargs: dict[str, Any],
                   outputs: Any) -> Any:
        for hook, with_kwargs in list(hooks.values()):
            result = (hook(self, inputs, kwargs, outputs) if with_kwargs
                      else hook(self, inputs, outputs))
            if result is not None:
                outputs = result
        return outputs

    def __getstate__(self) -> dict[str, Any]:
        # The weak references to the last call's inputs/outputs cannot be pickled, and a
        # copy of the layer has no business holding them.
        state = self.__dict__.copy()
        state.pop("inputs", None)
        state.pop("outputs", None)
        return state

    # -- lazy sizing (see LazySize) ----------------------------------------------------------
    def _missing(self, *names: str) -> list[str]:
        """Those of ``names`` (Parameters or buffers) that hold no array yet."""
        return [name for name in names if _array_of(self.__dict__[name]) is None]

    def _check_shape(self, name: str, expected: tuple, x: Any, size: str, axis: int) -> None:
        """Raise ShapeError unless the array in ``name`` has shape ``expected``, the shape
        that input ``x`` needs; ``size`` names the lazy size (a LazySize, e.g. "in_size")
        that the input gives as ``x.shape[axis]``."""
        data = _array_of(self.__dict__[name])
        if data is not None and tuple(data.shape) != tuple(expected):
            raise ShapeError(
                f"{type(self).__name__}: the input {x.dtype} {tuple(x.shape)} has {size} = "
                f"x.shape[{axis}] = {x.shape[axis]}, but {name} has shape "
                f"{tuple(data.shape)} ({data.dtype}), made for {size}={getattr(self, size)}; "
                f"the input needs {name} of shape {tuple(expected)} (weights set by hand or "
                f"loaded must fit the input)"
            )

    # -- traversal ---------------------------------------------------------------------------
    def named_layers(self, prefix: str = "") -> Iterator[tuple[str, Layer]]:
        """(path, layer) for this layer (path ``prefix``) and every sub-layer, depth first."""
        yield prefix, self
        for name in self._params:
            obj = self.__dict__[name]
            if isinstance(obj, Layer):
                yield from obj.named_layers(f"{prefix}/{name}" if prefix else name)

    def layers(self) -> Iterator[Layer]:
        """Every sub-layer, depth first, in definition order (not this layer itself)."""
        for path, layer in self.named_layers():
            if path:
                yield layer

    def _named_params(self, prefix: str,
                      seen: set[Parameter] | None) -> Iterator[tuple[str, Parameter]]:
        """(key, Parameter) in definition order; with a ``seen`` set, each Parameter once."""
        for name in self._params:
            obj = self.__dict__[name]
            key = f"{prefix}/{name}" if prefix else name
            if isinstance(obj, Layer):
                yield from obj._named_params(key, seen)
            elif seen is None or obj not in seen:
                if seen is not None:
                    seen.add(obj)
                yield key, obj

    def named_params(self, prefix: str = "") -> Iterator[tuple[str, Parameter]]:
        """('l0/W', W), ... for every Parameter, in definition order, each Parameter once."""
        return self._named_params(prefix, set())

    def params(self) -> Iterator[Parameter]:
        """Every Parameter of this layer and its sub-layers, in definition order, each once."""
        for _, param in self._named_params("", set()):
            yield param

    def named_buffers(self, prefix: str = "") -> Iterator[tuple[str, Any]]:
        """('bn/avg_mean', array), ... for every buffer (arrays or None), in order."""
        for path, layer in self.named_layers(prefix):
            for name in layer._buffers:
                yield (f"{path}/{name}" if path else name), layer.__dict__[name]

    def buffers(self) -> Iterator[Any]:
        """Every buffer value (arrays or None), in the order of ``named_buffers``."""
        for _, value in self.named_buffers():
            yield value

    def _flatten_params(self, params_dict: dict[str, Parameter], parent_key: str = "") -> None:
        """DeZero's helper: fill ``params_dict`` with {'l0/W': Parameter, ...}."""
        for key, param in self._named_params(parent_key, None):
            params_dict[key] = param

    def cleargrads(self) -> None:
        """Reset the gradient of every parameter to None."""
        for param in self.params():
            param.cleargrad()

    zero_grad = cleargrads

    # -- modes and devices -------------------------------------------------------------------
    def train(self, mode: bool = True) -> Layer:
        """Set ``training`` on this layer and every sub-layer; returns self."""
        for _, layer in self.named_layers():
            object.__setattr__(layer, "training", bool(mode))
        return self

    def eval(self) -> Layer:
        """``train(False)``: Dropout/BatchNorm behave as at inference. Returns self."""
        return self.train(False)

    def _move(self, convert: Callable[[Any], Any]) -> None:
        for _, layer in self.named_layers():
            for name in layer._params:
                obj = layer.__dict__[name]
                if isinstance(obj, Parameter) and obj.data is not None:
                    obj.data = convert(obj.data)
            for name in layer._buffers:
                value = layer.__dict__[name]
                if value is not None:
                    object.__setattr__(layer, name, convert(value))

    def to_cpu(self) -> Layer:
        """Move every parameter and buffer to NumPy; returns self."""
        self._move(as_numpy)
        return self

    def to_gpu(self) -> Layer:
        """Move every parameter and buffer to CuPy (needs CuPy and a GPU); returns self."""
        self._move(as_cupy)
        return self

    # -- state -------------------------------------------------------------------------------
    def _state_entries(self, prefix: str = "") -> list[tuple[str, Layer, str, str]]:
        """(key, owning layer, attribute, 'param' | 'buffer') for every saved entry, in
        definition order (a sub-layer's entries where the sub-layer was defined)."""
        entries: list[tuple[str, Layer, str, str]] = []
        for name in self._params:
            obj = self.__dict__[name]
            key = f"{prefix}/{name}" if prefix else name
            if isinstance(obj, Layer):
                entries.extend(obj._state_entries(key))
            else:
                entries.append((key, self, name, "param"))
        for name in self._buffers:
            entries.append((f"{prefix}/{name}" if prefix else name, self, name, "buffer"))
        return entries

    def state_dict(self) -> dict[str, np.ndarray]:
        """{'l0/W': array, ..., 'bn/avg_mean': array}: NumPy copies of parameters and buffers.

        Raises ValueError naming the entries that are still uninitialised (lazy sizes that
        no forward pass has fixed yet). The model itself is not moved or changed.
        """
        state: dict[str, np.ndarray] = {}
        missing = []
        for key, layer, name, _ in self._state_entries():
            value = layer.__dict__[name]
            data = value.data if isinstance(value, Variable) else value
            if data is None:
                missing.append(key)
                continue
            state[key] = np.array(as_numpy(data), copy=True)
        if missing:
            raise ValueError(
                f"{type(self).__name__}: cannot save, entries not initialised yet: "
                f"{', '.join(missing)} (lazy sizes are inferred at the first call: run one "
                "forward pass, e.g. model(x), or give the input size, e.g. in_size=..., first)"
            )
        return state

    def load_state_dict(self, state: Mapping[str, Any], strict: bool = True,
                        source: str = "state") -> None:
        """Copy arrays from ``state`` (key -> array) into the parameters and buffers.

        ``strict=True`` requires the keys to match exactly; ``strict=False`` loads the keys
        both sides have. A shape mismatch is always an error. Nothing is changed unless every
        check passes. Arrays are converted to each parameter's dtype and device (an
        uninitialised lazy parameter takes the stored array as it is).
        """
        entries = self._state_entries()
        model_keys = [key for key, *_ in entries]
        missing = [key for key in model_keys if key not in state]
        model_key_set = set(model_keys)
        unexpected = [key for key in state if key not in model_key_set]
        if strict and (missing or unexpected):
            parts = []
            if missing:
                parts.append(f"missing keys (in the model, not in {source}): {missing}")
            if unexpected:
                parts.append(f"unexpected keys (in {source}, not in the model): {unexpected}")
            raise StateDictError(
                f"{type(self).__name__}.load: {'; '.join(parts)}. Pass strict=False to load "
                "only the keys both have"
            )
        updates = []
        for key, layer, name, kind in entries:
            if key not in state:
                continue
            new = state[key]
            current = layer.__dict__[name]
            data = current.data if kind == "param" else current
            if data is not None:
                if tuple(new.shape) != tuple(data.shape):
                    raise ShapeError(
                        f"{type(self).__name__}.load: {key!r} has shape {tuple(new.shape)} in "
                        f"{source} but {tuple(data.shape)} in the model ({data.dtype})"
                    )
                xp = get_array_module(data)
                new = xp.array(as_numpy(new) if xp is not np else new, dtype=data.dtype)
            else:
                # A lazy parameter not sized yet: take the layer's dtype (a float64 DeZero
                # file must not turn a float32 layer into a float64 one).
                layer_dtype = getattr(layer, "dtype", None)
                if layer_dtype is not None and np.asarray(new).dtype.kind == "f":
                    new = np.array(new, dtype=layer_dtype)
                else:
                    new = np.array(new, copy=True)
            updates.append((layer, name, kind, new))
        for layer, name, kind, new in updates:
            if kind == "param":
                layer.__dict__[name].data = new
            else:
                object.__setattr__(layer, name, new)

    def save_weights(self, path: str | os.PathLike) -> str:
        """Save parameters and buffers to a compressed .npz with keys like 'l0/W'.

        DeZero's format (``.npz`` is appended if missing). The file is written atomically
        (temporary file + rename). The model stays on its device. Returns the path written.
        """
        return save_npz(path, self.state_dict(), compressed=True)

    def load_weights(self, path: str | os.PathLike, strict: bool = True) -> None:
        """Load weights saved by ``save_weights`` (or by DeZero); see ``load_state_dict``.

        The keys, shapes and dtypes are checked against the model from the arrays' .npy
        headers before any data is read, so a file that does not fit (one claiming a huge
        array, a decompression bomb, text arrays) fails without allocating its arrays.
        """
        owner = f"{type(self).__name__}.load_weights"
        entries = {key: (layer, name) for key, layer, name, _ in self._state_entries()}
        arrays = {key: _array_of(layer.__dict__[name]) for key, (layer, name) in entries.items()}
        # The model's own arrays are what the file must hold: NpzReader checks each header's
        # shape and dtype against them as it opens the file, and they bound what is read. A
        # lazy entry (None, not sized yet) takes the file's shape; only those need
        # serialization's size bound.
        expected = {key: array for key, array in arrays.items() if array is not None}
        max_bytes = float("inf") if len(expected) == len(entries) else None
        with NpzReader(path, max_bytes=max_bytes, caller=owner, expected=expected) as npz:
            source = repr(npz.path)
            missing = [key for key in entries if key not in npz.headers]
            unexpected = [key for key in npz.headers if key not in entries]
            if strict and (missing or unexpected):
                parts = []
                if missing:
                    parts.append(f"missing keys (in the model, not in {source}): {missing}")
                if unexpected:
                    parts.append(f"unexpected keys (in {source}, not in the model): "
                                 f"{unexpected}")
                raise StateDictError(f"{owner}: {'; '.join(parts)}. Pass strict=False to load "
                                     "only the keys both have")
            common = [key for key in npz.headers if key in entries]
            for key in common:
                if arrays[key] is not None:
                    continue  # checked by NpzReader
                # A lazy entry: any shape, but numbers that convert to the layer's dtype.
                dtype, target = npz.headers[key].dtype, getattr(entries[key][0], "dtype", None)
                if dtype.kind not in "biuf" or (
                        target is not None and not np.can_cast(dtype, target, "same_kind")):
                    raise DTypeError(
                        f"{owner}: {key!r} is a {dtype} array in {source}; expected numbers "
                        f"convertible to the model's "
                        f"{'numeric' if target is None else np.dtype(target)} {key!r}")
            loaded = npz.read_all(common)
        self.load_state_dict(loaded, strict=strict, source=source)

    # -- description -------------------------------------------------------------------------
    def extra_repr(self) -> str:
        """The text inside ``Name(...)`` in the repr; layers override it with their settings."""
        return ""

    def _repr_children(self) -> list[tuple[str, object]]:
        return [(name, self.__dict__[name]) for name in self._params
                if isinstance(self.__dict__[name], Layer)]

    def __repr__(self) -> str:
        children = self._repr_children()
        head = f"{type(self).__name__}({self.extra_repr()}"
        if not children:
            return head + ")"
        lines = [head]
        for name, child in children:
            text = repr(child) if isinstance(child, Layer) else _callable_name(child)
            lines.append(f"  ({name}): " + text.replace("\n", "\n  "))
        return "\n".join(lines) + "\n)"

    def num_params(self) -> int:
        """Number of scalar parameters (uninitialised lazy parameters count 0)."""
        return sum(p.data.size for p in self.params() if p.data is not None)

    def summary(self, *inputs: Any, dtype: DTypeLike = np.float32) -> str:
        """A table of every layer's output shape and parameter count, from one forward pass.

        ``inputs`` are the arrays/Variables to run, or one shape tuple (a zero array of that
        shape and ``dtype`` is used). The pass runs under ``no_grad()`` and ``test_mode()``,
        so nothing is recorded and dropout draws no random numbers; lazy parameters get
        initialised by it (drawing from the random state as a first call would).
        """
        if len(inputs) == 1 and isinstance(inputs[0], tuple):
            inputs = (np.zeros(inputs[0], dtype=dtype),)
        calls: list[tuple[Layer, tuple]] = []
        thread = threading.get_ident()

        def record(layer: Layer, outputs: tuple) -> None:
            if threading.get_ident() != thread:  # another thread's model, not this summary
                return
            calls.append((layer, tuple(tuple(y.shape) for y in outputs if hasattr(y, "shape"))))

        paths = {layer: path or type(self).__name__ for path, layer in self.named_layers()}
        _call_observers.append(record)
        try:
            with no_grad(), test_mode():
                self(*inputs)
        finally:
            _call_observers.remove(record)

        rows = [("layer", "type", "output shape", "params")]
        for layer, shapes in calls:
            if layer not in paths:  # a layer held outside the registries (e.g. in a list)
                continue
            own = sum(layer.__dict__[n].data.size for n in layer._params
                      if isinstance(layer.__dict__[n], Parameter)
                      and layer.__dict__[n].data is not None)
            shape_text = ", ".join(str(s) for s in shapes)
            rows.append((paths[layer], type(layer).__name__, shape_text, f"{own:,}"))
        order = {path: i for i, path in enumerate(paths.values())}
        # Inner layers finish first; list the rows in definition (tree) order instead.
        rows = [rows[0]] + sorted(rows[1:], key=lambda r: order.get(r[0], len(order)))
        widths = [max(len(r[i]) for r in rows) for i in range(4)]
        rule = "-" * (sum(widths) + 6)
        lines = []
        for i, row in enumerate(rows):
            lines.append("  ".join(cell.ljust(w) if j < 3 else cell.rjust(w)
                                   for j, (cell, w) in enumerate(zip(row, widths))))
            if i == 0:
                lines.append(rule)
        lines.append(rule)
        lines.append(f"total parameters: {self.num_params():,}")
        return "\n".join(lines)


def _callable_name(obj: object) -> str:
    return getattr(obj, "__name__", None) or type(obj).__name__
