"""``export``: trace a model once, walk the recorded graph, emit one ONNX graph.

The trace runs the forward pass on the example inputs under ``test_mode()`` (dropout is the
identity, batch norm uses its running statistics) with graph recording on. The example
inputs become fresh Variables that require a gradient, so every op records its node even
where no parameter feeds it. The walk then visits the recorded Functions from the outputs
in generation order and asks each for its lowering (``Function.to_onnx``, see
docs/interop.md); Grad nodes never appear, since no backward runs.

``onnx`` is imported inside :func:`export` only: ``import zerograd`` (and
``import zerograd.onnx``) work without it.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from zerograd._config import detect_anomaly, test_mode, using_config
from zerograd.backend import as_numpy
from zerograd.core import anomaly
from zerograd.core.function import Function
from zerograd.core.variable import Parameter, Variable, is_array
from zerograd.nn.layer import Layer
from zerograd.onnx._errors import ExportError

DEFAULT_OPSET = 17  # the first opset with LayerNormalization
MIN_OPSET = 13  # Squeeze/Unsqueeze/Split/ReduceSum take their axes as inputs from here on

_INSTALL_HINT = "pip install 'zerograd[onnx]' (the onnx and onnxruntime packages)"


def _import_onnx() -> Any:
    try:
        import onnx
    except ImportError as e:
        raise ImportError(f"zerograd.onnx.export needs the onnx package: {_INSTALL_HINT}") from e
    return onnx


# -- which ops can be exported -----------------------------------------------------------------
def lowering_of(function_class: type) -> Callable[..., Any] | None:
    """The ONNX lowering of a Function class (its ``to_onnx``), or None when it has none."""
    return getattr(function_class, "to_onnx", None)


def _all_function_classes() -> list[type]:
    found: list[type] = []
    stack = list(Function.__subclasses__())
    while stack:
        cls = stack.pop()
        if cls not in found:
            found.append(cls)
            stack.extend(cls.__subclasses__())
    return found


def exportable_ops() -> list[str]:
    """The names of the Function classes that have an ONNX lowering, sorted."""
    # Every op family, also those the model did not use: ``import zerograd`` loads only the
    # ones behind Variable's operators, and the list is the classes that exist.
    importlib.import_module("zerograd.functions")
    return sorted({cls.__name__ for cls in _all_function_classes()
                   if lowering_of(cls) is not None})


# -- the trace ---------------------------------------------------------------------------------
def _as_input(x: Any, position: int) -> Variable:
    """An example input as a fresh Variable that records the graph (the caller's own
    Variable, and whatever graph it belongs to, is left alone)."""
    data = x.data if isinstance(x, Variable) else x
    if not is_array(data):
        raise TypeError(f"onnx export: example input {position} is a {type(x).__name__}; "
                        f"expected an ndarray or a Variable")
    return Variable(data, requires_grad=True)


def _as_outputs(result: Any) -> list[Variable]:
    outputs = list(result) if isinstance(result, (tuple, list)) else [result]
    for i, y in enumerate(outputs):
        if not isinstance(y, Variable):
            raise ExportError(f"onnx export: output {i} of the forward pass is a "
                              f"{type(y).__name__}; every output must be a Variable")
    return outputs


class _Labels:
    """The layer path of every Function the trace records, from forward hooks on every
    sub-layer. A layer's post-hook walks back from its outputs to its inputs and labels the
    Functions no inner layer has labelled (inner layers' hooks run first: innermost wins).
    It stops at the layer's inputs and at Functions labelled before the call began (state
    carried over from earlier calls, such as an RNN's hidden state)."""

    def __init__(self) -> None:
        self.path: dict[int, str] = {}
        self.stamp: dict[int, int] = {}
        self._clock = 0
        self._starts: list[int] = []
        self._keep: list[Function] = []  # holds labelled Functions alive: ids stay unique

    def pre_hook(self, layer: Layer, args: tuple) -> None:
        self._starts.append(self._clock)

    def post_hook(self, path: str) -> Callable[..., None]:
        def hook(layer: Layer, args: tuple, outputs: Any) -> None:
            start = self._starts.pop() if self._starts else 0
            stop = {id(a) for a in args if isinstance(a, Variable)}
            outs = outputs if isinstance(outputs, (tuple, list)) else (outputs,)
            stack = [y.creator for y in outs
                     if isinstance(y, Variable) and y.creator is not None and id(y) not in stop]
            seen: set[int] = set()
            while stack:
                f = stack.pop()
                if id(f) in seen or self.stamp.get(id(f), start + 1) <= start:
                    continue
                seen.add(id(f))
                if id(f) not in self.path:
                    self._clock += 1
                    self.path[id(f)] = path
                    self.stamp[id(f)] = self._clock
                    self._keep.append(f)
                for x in f.inputs or ():
                    if x.creator is not None and id(x) not in stop:
                        stack.append(x.creator)
        return hook


def _trace(model_or_fn: Any, inputs: list[Variable], root: str,
           labels: _Labels | None) -> list[Variable]:
    handles = []
    if labels is not None and isinstance(model_or_fn, Layer):
        for path, layer in model_or_fn.named_layers():
            full = f"{root}/{path}" if path else root
            handles.append(layer.register_forward_pre_hook(labels.pre_hook))
            handles.append(layer.register_forward_hook(labels.post_hook(full)))
    try:
        with test_mode(), using_config("enable_backprop", True):
            return _as_outputs(model_or_fn(*inputs))
    finally:
        for handle in handles:
            handle.remove()


def _functions(outputs: Sequence[Variable],
               stop: Callable[[Variable], bool] = lambda v: False) -> list[Function]:
    """Every Function the outputs depend on, inputs before users (generation order; ties
    in the order the walk found them, which is deterministic); the walk does not go past
    Variables for which ``stop`` is true."""
    found: list[Function] = []
    seen: set[int] = set()
    # Variable.creator is typed as None (core leaves it untyped): the walk knows better.
    stack: list[Any] = [y.creator for y in outputs if y.creator is not None and not stop(y)]
    while stack:
        f = stack.pop()
        if id(f) in seen:
            continue
        seen.add(id(f))
        found.append(f)
        for x in f.inputs:
            if x.creator is not None and id(x.creator) not in seen and not stop(x):
                stack.append(x.creator)
    found.sort(key=lambda f: f.generation)
    return found


def _created_at(model_or_fn: Any, inputs: list[Variable], position: int,
                function: Function) -> str:
    """Where the user's code called ``function``: the forward pass runs again under
    anomaly mode (which records each op's calling stack) and the op at the same position
    of the walk is asked. Only done for the error message; '' when it cannot be told."""
    try:
        with detect_anomaly():
            again = _functions(_trace(model_or_fn, [Variable(x.data) for x in inputs], "",
                                      None))
    except Exception:  # a forward pass that anomaly mode stops (NaN masks): no location
        return ""
    if len(again) <= position or type(again[position]) is not type(function):
        return ""
    record = getattr(again[position], "_anomaly", None)
    entry = anomaly._user_frame(record.stack) if record is not None else None
    return f", created at {entry[0]}:{entry[1]}" if entry else ""


# -- the walk ---------------------------------------------------------------------------------
def _names(given: Sequence[str] | None, count: int, prefix: str, what: str) -> list[str]:
    if given is None:
        return [f"{prefix}{i}" for i in range(count)]
    given = [given] if isinstance(given, str) else list(given)
    if len(given) != count:
        raise ValueError(f"onnx export: {len(given)} {what} given ({given}) for {count} "
                         f"{'input' if prefix == 'input' else 'output'}s")
    if len(set(given)) != len(given):
        raise ValueError(f"onnx export: {what} must be distinct, got {given}")
    return [str(n) for n in given]


def _value_info(onnx: Any, name: str, v: Variable, batched: bool) -> Any:
    dims: list[Any] = list(v.shape)
    if batched and dims:
        dims[0] = "batch"
    return onnx.helper.make_tensor_value_info(name, onnx.helper.np_dtype_to_tensor_dtype(
        np.dtype(v.dtype)), dims)


def export(model_or_fn: Any, example_inputs: Any, path: str | os.PathLike | None,
           opset: int | None = None, input_names: Sequence[str] | None = None,
           output_names: Sequence[str] | None = None, dynamic_batch: bool = True) -> Any:
    """Export a Layer (or any function of Variables) to an ONNX model; returns the
    ``onnx.ModelProto`` and writes it to ``path`` (atomically) unless ``path`` is None.

    model_or_fn: a Layer/Model or a callable taking the inputs as positional Variables.
    example_inputs: one array (or Variable) or a tuple/list of them; the forward pass runs
    on them once, under ``test_mode()``. opset: the ONNX opset (default 17, at least 13).
    input_names/output_names: the graph's value names (default input0.., output0..).
    dynamic_batch: the first dimension of every input (and output) that has the example
    batch size becomes the symbolic ``batch``, so the model runs on any batch size.

    Parameters become initializers named by their ``/``-joined names (``l0/W``), buffers
    by theirs (``bn/avg_mean``), other constants ``const_N``. An op without a lowering
    raises :class:`ExportError` naming it and the layer it sits in.
    """
    onnx = _import_onnx()
    from zerograd.onnx._builder import GraphBuilder

    opset = DEFAULT_OPSET if opset is None else opset
    newest = int(onnx.defs.onnx_opset_version())
    if not isinstance(opset, int) or isinstance(opset, bool) or not MIN_OPSET <= opset <= newest:
        raise ValueError(f"onnx export: opset must be an int from {MIN_OPSET} to {newest} "
                         f"(the newest this onnx package knows), got {opset!r}")
    given = (list(example_inputs) if isinstance(example_inputs, (tuple, list))
             else [example_inputs])
    if not given:
        raise ValueError("onnx export: example_inputs is empty; give at least one array")
    inputs = [_as_input(x, i) for i, x in enumerate(given)]
    in_names = _names(input_names, len(inputs), "input", "input_names")

    root = type(model_or_fn).__name__ if isinstance(model_or_fn, Layer) else getattr(
        model_or_fn, "__qualname__", type(model_or_fn).__name__)
    labels = _Labels()
    outputs = _trace(model_or_fn, inputs, root, labels)
    out_names = _names(output_names, len(outputs), "output", "output_names")
    functions = _functions(outputs)

    for position, f in enumerate(functions):
        if lowering_of(type(f)) is None:
            where = labels.path.get(id(f), root)
            raise ExportError(
                f"no ONNX lowering for {f.name} (in {where!r}"
                f"{_created_at(model_or_fn, inputs, position, f)}); ops with lowerings: "
                f"{', '.join(exportable_ops())}")

    first = inputs[0]
    batch = int(first.shape[0]) if dynamic_batch and first.ndim >= 1 else None
    g = GraphBuilder(opset, batch is not None, batch)
    graph_inputs = []
    for name, v in zip(in_names, inputs):
        batched = batch is not None and v.ndim >= 1 and v.shape[0] == batch
        g.reserve(name)
        g.bind(v, name, batched)
        if batched and g._batch_source is None:
            g._batch_source = name
        graph_inputs.append(_value_info(onnx, name, v, batched))
    for name in out_names:
        g.reserve(name)

    param_names: dict[int, str] = {}
    buffer_names: dict[int, str] = {}
    if isinstance(model_or_fn, Layer):
        param_names = {id(p): key for key, p in model_or_fn.named_params()}
        buffer_names = {id(a): key for key, a in model_or_fn.named_buffers() if a is not None}
    walk = _Walk(g, labels, root, param_names, buffer_names)
    g._inline = walk.inline
    g._buffer_names = buffer_names
    walk.emit(functions)

    graph_outputs = []
    for name, y in zip(out_names, outputs):
        g.nodes.append(onnx.helper.make_node("Identity", [walk.value(y)], [name],
                                             name=g.fresh_name("node_Identity")))
        if batch is None:
            graph_outputs.append(_value_info(onnx, name, y, False))
        else:  # the shape comes from ONNX's shape inference below: which dims vary is its call
            graph_outputs.append(onnx.helper.make_tensor_value_info(
                name, g.tensor_type(y.dtype), [None] * y.ndim))

    _check_inputs_used(g, in_names, inputs)
    domains = {node.domain for node in g.nodes if node.domain}
    opsets = [onnx.helper.make_opsetid("", opset)]
    opsets += [onnx.helper.make_opsetid(d, 1) for d in sorted(domains)]
    # An initializer no node reads (a cell's constant zero state, which its lowering
    # replaces by zeros of the runtime batch) would only make ONNX Runtime warn: drop it.
    read = {name for node in g.nodes for name in node.input}
    initializers = [t for t in g.initializers if t.name in read]
    graph = onnx.helper.make_graph(g.nodes, root.replace("<", "").replace(">", ""),
                                   graph_inputs, graph_outputs, initializers)
    import zerograd

    model = onnx.helper.make_model(
        graph, opset_imports=opsets, producer_name="zerograd",
        producer_version=zerograd.__version__,
        ir_version=onnx.helper.find_min_ir_version_for(opsets))
    if batch is not None:
        _infer_output_shapes(onnx, model, [g.batch_factor(y) for y in outputs])
    onnx.checker.check_model(model)
    if path is not None:
        from zerograd.serialization import atomic_write

        with atomic_write(os.fspath(path), "wb") as file:
            file.write(model.SerializeToString())
    return model


def _infer_output_shapes(onnx: Any, model: Any, factors: list[int | None]) -> None:
    """Declare the outputs' shapes as ONNX's shape inference derives them from the inputs'
    (``batch`` where it is the batch, a number where fixed): the example's shapes would
    claim fixed sizes for dimensions that follow the batch. Where inference cannot tell
    the first dimension of an output whose first axis is k * batch (``factors``, see
    ``GraphBuilder.bind``), often after a Reshape whose target is computed, it is declared
    ``batch`` (k = 1) or ``batch*k``: a symbol of its own, never the example's size."""
    inferred = None
    # data_prop follows the shape vectors that keep the batch symbolic (Shape, Concat),
    # so a Reshape to a computed target still tells its fixed dimensions.
    for data_prop in (True, False):
        try:
            inferred = onnx.shape_inference.infer_shapes(model, data_prop=data_prop)
            break
        except Exception:  # inference is advisory: the outputs keep their rank and dtype
            continue
    for i, (declared, factor) in enumerate(zip(model.graph.output, factors)):
        found = inferred.graph.output[i] if inferred is not None else None
        if found is not None and found.type.tensor_type.HasField("shape"):
            declared.type.CopyFrom(found.type)
        dims = declared.type.tensor_type.shape.dim
        if factor is None or not dims:
            continue
        first = dims[0]
        # A number or the inputs' own symbol is inference's finding; an unknown or a
        # symbol it made up (unk__0) says less than the factor does.
        if first.HasField("dim_value") or first.dim_param == "batch":
            continue
        first.Clear()
        first.dim_param = "batch" if factor == 1 else f"batch*{factor}"


class _Walk:
    """Emits the nodes of recorded Functions, in order, through the builder ``g``."""

    def __init__(self, g: Any, labels: _Labels, root: str, param_names: dict[int, str],
                 buffer_names: dict[int, str]) -> None:
        self.g = g
        self.labels = labels
        self.root = root
        self.param_names = param_names
        self.buffer_names = buffer_names

    def value(self, x: Variable) -> str:
        """The ONNX name of an input of a node: already met, or a new initializer."""
        g = self.g
        known = g._names.get(id(x))
        if known is not None:
            return known
        if x.creator is not None:  # cannot happen: the walk visits creators first
            raise ExportError(f"onnx export: a {x.creator.name} output was used before it "
                              f"was computed")
        buffer = self.buffer_names.get(id(x.data))
        if isinstance(x, Parameter) and id(x) in self.param_names:
            name = g.initializer(as_numpy(x.data), self.param_names[id(x)])
        elif buffer is not None and buffer not in g._used:
            name = g.initializer(as_numpy(x.data), buffer)
        else:
            name = g.initializer(as_numpy(x.data))
        g.bind(x, name)
        return name

    def emit(self, functions: list[Function], inside: str | None = None) -> None:
        g = self.g
        for f in functions:
            where = inside or self.labels.path.get(id(f), self.root)
            lower = lowering_of(type(f))
            if lower is None:  # only inside an inlined segment: export checked the rest
                raise ExportError(f"no ONNX lowering for {f.name} (in {where!r}); ops with "
                                  f"lowerings: {', '.join(exportable_ops())}")
            names = _promoted(g, f, [self.value(x) for x in f.inputs])
            try:
                result = lower(f, g, *names)
            except ExportError:
                raise
            except Exception as e:
                raise ExportError(f"ONNX lowering of {f.name} (in {where!r}) failed: {e}") from e
            results = result if isinstance(result, tuple) else (result,)
            if len(results) != len(f.outputs):
                raise ExportError(f"ONNX lowering of {f.name} (in {where!r}) returned "
                                  f"{len(results)} values for {len(f.outputs)} outputs")
            depends = any(g.depends_on_batch(x) for x in f.inputs)
            for ref, name in zip(f.outputs, results):
                y = ref()
                if y is not None:
                    g.bind(y, name, depends)

    def inline(self, outputs: Sequence[Variable], inside: str) -> list[str]:
        """Emit the graph that computed ``outputs`` down to Variables the graph already
        has (a checkpointed segment, recomputed by its lowering); their names."""
        known = self.g._names
        self.emit(_functions(outputs, stop=lambda v: id(v) in known), inside)
        return [self.value(y) for y in outputs]


def _promoted(g: Any, f: Function, names: list[str]) -> list[str]:
    """Cast the float inputs of a node to their common dtype, as NumPy promotes them
    (float32 x + float64 y is float64); ONNX ops take one element type."""
    floats = [x.dtype for x in f.inputs if x.dtype.kind == "f"]
    if len(set(floats)) <= 1:
        return names
    common = np.result_type(*floats)
    return [g.op("Cast", name, to=g.tensor_type(common))
            if x.dtype.kind == "f" and x.dtype != common else name
            for x, name in zip(f.inputs, names)]


def _check_inputs_used(g: Any, names: list[str], inputs: list[Variable]) -> None:
    used = {i for node in g.nodes for i in node.input}
    for i, name in enumerate(names):
        if name not in used:
            raise ExportError(
                f"onnx export: input {i} ({name!r}, {inputs[i].dtype} {inputs[i].shape}) does "
                f"not reach any output: the forward pass did not use it through zerograd ops "
                f"(a layer that read x.data, or cast an integer input to float with NumPy, "
                f"cuts the graph); pass a float input, or export a function without it")
