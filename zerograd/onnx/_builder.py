"""``GraphBuilder``: what an op's ``to_onnx(g, *inputs)`` lowering writes its nodes through.

A lowering sees ONNX *value names* (strings), never arrays: ``g.op("MatMul", x, W)`` appends
one node and returns the name of its output. Constants (shapes, axes, scalars) become
initializers through ``g.constant``. The builder also carries the export's options
(``g.opset``, ``g.dynamic_batch``) and the helpers that keep the batch dimension symbolic
(``g.shape_constant``, ``g.shape_of``), so that no lowering bakes the example batch in.

This module imports ``onnx``: it is imported only inside :func:`zerograd.onnx.export`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import onnx
from onnx import helper, numpy_helper

from zerograd.backend import as_numpy
from zerograd.core.variable import Variable, is_array

# The ops whose reduction axes moved from an attribute to an input, and the opset where
# that happened (ReduceSum at 13, the others at 18; Squeeze/Unsqueeze/Split at 13, the
# oldest opset export supports, so they always take an input).
_AXES_INPUT_SINCE = {"ReduceSum": 13, "ReduceMean": 18, "ReduceMax": 18, "ReduceMin": 18,
                     "ReduceProd": 18, "ReduceL1": 18, "ReduceL2": 18,
                     "ReduceLogSumExp": 18, "ReduceSumSquare": 18}


def tensor_dtype(dtype: Any) -> int:
    """The ONNX element type (``onnx.TensorProto.FLOAT`` ...) of a NumPy dtype."""
    return int(helper.np_dtype_to_tensor_dtype(np.dtype(dtype)))


class GraphBuilder:
    """Collects the nodes and initializers of one ONNX graph.

    ``opset``: the ONNX opset the graph targets (a lowering may use a newer op only when
    ``g.opset`` allows it). ``dynamic_batch``: whether the first dimension of the inputs is
    symbolic; ``batch_size`` is the example inputs' first dimension then (else None).
    """

    def __init__(self, opset: int, dynamic_batch: bool, batch_size: int | None) -> None:
        self.opset = opset
        self.dynamic_batch = dynamic_batch
        self.batch_size = batch_size if dynamic_batch else None
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self._used: set[str] = set()
        self._counter = 0
        # id(Variable) -> the name of its value; the walk fills it (graph inputs,
        # initializers, node outputs) and holds the Variables alive while it runs.
        self._names: dict[int, str] = {}
        self._batched: set[int] = set()  # ids of Variables whose first axis is the batch
        self._alive: list[Variable] = []
        self._batch_dim: str | None = None  # the 1-D runtime batch size, once asked for
        self._batch_source: str | None = None  # a graph input whose first axis is the batch
        # The export walk's inline (see ``inline``), set by export.
        self._inline: Any = None

    # -- names ----------------------------------------------------------------------------
    def fresh_name(self, hint: str) -> str:
        """A value or node name not used yet in this graph, built from ``hint``."""
        while True:
            name = f"{hint}_{self._counter}"
            self._counter += 1
            if name not in self._used:
                self._used.add(name)
                return name

    def reserve(self, name: str) -> str:
        """Claim a name given by the caller (graph inputs, outputs, parameter names)."""
        if name in self._used:
            raise ValueError(f"onnx export: the name {name!r} is used twice in the graph")
        self._used.add(name)
        return name

    def bind(self, variable: Variable, name: str, batched: bool = False) -> None:
        """Record that ``variable`` is the ONNX value ``name`` (and whether its first axis
        is the batch, which ``shape_constant`` reads)."""
        self._names[id(variable)] = name
        self._alive.append(variable)
        if batched:
            self._batched.add(id(variable))

    def name_of(self, variable: Variable) -> str:
        """The ONNX value name of a Variable the walk has already met."""
        return self._names[id(variable)]

    def is_batched(self, variable: Variable) -> bool:
        """Whether ``variable``'s first axis is the (symbolic) batch axis of the export."""
        return id(variable) in self._batched

    # -- nodes and constants -----------------------------------------------------------------
    def op(self, op_type: str, *inputs: str | None, outputs: int = 1, domain: str = "",
           **attributes: Any) -> Any:
        """Append one ``op_type`` node; returns its output name (a tuple of names when
        ``outputs`` > 1). ``None`` in ``inputs`` is an omitted optional input; attributes
        are ints, floats, strings, lists of them, or NumPy arrays (tensor attributes)."""
        names = tuple(self.fresh_name(op_type) for _ in range(outputs))
        attrs = {key: (numpy_helper.from_array(value) if isinstance(value, np.ndarray)
                       else value)
                 for key, value in attributes.items() if value is not None}
        node = helper.make_node(op_type, ["" if x is None else x for x in inputs], list(names),
                                name=self.fresh_name(f"node_{op_type}"), domain=domain or None,
                                **attrs)
        self.nodes.append(node)
        return names[0] if outputs == 1 else names

    def initializer(self, array: np.ndarray, name: str | None = None) -> str:
        """Add ``array`` as an initializer under the exact ``name`` (parameters, buffers),
        or a fresh ``const_N`` name."""
        name = self.fresh_name("const") if name is None else self.reserve(name)
        self.initializers.append(numpy_helper.from_array(np.asarray(array), name))
        return name

    def constant(self, value: Any, dtype: Any = None) -> str:
        """An initializer holding ``value`` (a scalar, list or array), for shapes, axes and
        scalar operands. Integers default to int64 and floats to float32; give ``dtype``
        (the node's input dtype) so that a float32 graph stays float32 and a float64 one
        float64."""
        # A CuPy array (a model on the GPU) comes to the host: initializers live in the file.
        array = as_numpy(value) if is_array(value) else np.asarray(value)
        if dtype is not None:
            array = array.astype(dtype)
        elif array.dtype.kind in "iu":
            array = array.astype(np.int64)
        elif array.dtype.kind == "f":
            array = array.astype(np.float32)
        name = self.fresh_name("const")
        self.initializers.append(numpy_helper.from_array(array, name))
        return name

    def tensor_type(self, dtype: Any) -> int:
        """The ONNX element type of a NumPy dtype (for Cast's ``to``, ConstantOfShape...)."""
        return tensor_dtype(dtype)

    def scalar(self, value: Any, like: Variable) -> str:
        """A 0-d constant of ``like``'s dtype: the typed operand of ``x + 2.0``."""
        return self.constant(value, dtype=like.dtype)

    def inline(self, outputs: Sequence[Variable], inside: str) -> list[str]:
        """Lower the graph that computed ``outputs`` (Variables recorded after the trace,
        such as a checkpointed segment run again by its lowering) down to the values the
        graph already has; returns the names of ``outputs``. ``inside`` names the segment
        in error messages."""
        return self._inline(outputs, inside)

    # -- shapes that keep the batch symbolic --------------------------------------------------
    def shape_of(self, name: str) -> str:
        """The runtime ``Shape`` of the value ``name`` (an int64 vector)."""
        return self.op("Shape", name)

    def batch_dim(self, like: Variable | None = None) -> str:
        """The runtime batch size as a 1-element int64 vector: the first axis of ``like``
        when it carries the batch, else of the first graph input that does."""
        if like is not None and self.is_batched(like):
            return self._first_dim(self.name_of(like))
        if self._batch_dim is None:
            if self._batch_source is None:
                raise ValueError("onnx export: no graph input carries the batch axis")
            self._batch_dim = self._first_dim(self._batch_source)
        return self._batch_dim

    def _first_dim(self, name: str) -> str:
        if self.opset >= 15:  # Shape takes start and end from opset 15 on
            return self.op("Shape", name, start=0, end=1)
        return self.slice(self.op("Shape", name), [0], [1], [0])

    def shape_constant(self, target_shape: Sequence[int], like: Variable) -> str:
        """An int64 shape for Reshape or Expand that keeps the batch symbolic.

        Without a dynamic batch, or when ``like``'s first axis is not the batch, it is the
        constant ``target_shape``. Otherwise a leading target dimension that is the batch
        (equal to the example batch size N) or absorbed it (k * N, with every other
        dimension of ``like`` accounted for by the rest of the target) is computed at run
        time from ``like``'s shape: batch * k. A vector built this way is valid for both
        Reshape and Expand, which a 0 ("copy") or -1 ("infer") entry is not.
        """
        target = [int(n) for n in target_shape]
        n = self.batch_size
        if n is None or not target or not self.is_batched(like) or target[0] % n:
            return self.constant(np.array(target, dtype=np.int64))
        if target[0] != n:
            # k * batch (k > 1) only when the rest of the target is made of ``like``'s
            # non-batch dimensions alone, as in a Reshape that merges the batch into the
            # first axis; a coincidence of sizes otherwise.
            rest = math.prod(target[1:])
            others = math.prod(like.shape[1:])
            if rest == 0 or (others * n) % rest or (others * n) // rest != target[0]:
                return self.constant(np.array(target, dtype=np.int64))
        lead = self.batch_dim(like)
        factor = target[0] // n
        if factor != 1:
            lead = self.op("Mul", lead, self.constant(np.array([factor], dtype=np.int64)))
        if len(target) == 1:
            return lead
        return self.op("Concat", lead, self.constant(np.array(target[1:], dtype=np.int64)),
                       axis=0)

    # -- ops whose form changed between opsets -----------------------------------------------
    def reduce(self, op_type: str, x: str, axes: Sequence[int] | None,
               keepdims: bool) -> str:
        """``ReduceSum``/``ReduceMean``/``ReduceMax``... over ``axes`` (None: all of them),
        with the axes as an input or an attribute as the opset wants."""
        keep = int(bool(keepdims))
        if axes is None:
            return self.op(op_type, x, keepdims=keep)
        axes = [int(a) for a in axes]
        if self.opset >= _AXES_INPUT_SINCE.get(op_type, 13):
            return self.op(op_type, x, self.constant(np.array(axes, dtype=np.int64)),
                           keepdims=keep)
        return self.op(op_type, x, axes=axes, keepdims=keep)

    def slice(self, x: str, starts: Sequence[int], ends: Sequence[int], axes: Sequence[int],
              steps: Sequence[int] | None = None) -> str:
        """``Slice`` with constant bounds (out-of-range bounds clamp, as in Python)."""
        inputs = [x] + [self.constant(np.array(list(v), dtype=np.int64))
                        for v in (starts, ends, axes)]
        if steps is not None:
            inputs.append(self.constant(np.array(list(steps), dtype=np.int64)))
        return self.op("Slice", *inputs)

    def unsqueeze(self, x: str, axes: Sequence[int]) -> str:
        return self.op("Unsqueeze", x, self.constant(np.array(list(axes), dtype=np.int64)))

    def squeeze(self, x: str, axes: Sequence[int]) -> str:
        return self.op("Squeeze", x, self.constant(np.array(list(axes), dtype=np.int64)))
