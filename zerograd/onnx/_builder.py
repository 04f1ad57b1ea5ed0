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
        # How values depend on the batch (see ``bind``): ids of Variables with a batched
        # ancestor, and for those whose first axis is k * batch (the batch outermost), k.
        self._depends: set[int] = set()
        self._batch_factor: dict[int, int] = {}
        self._alive: list[Variable] = []
        self._batch_dim: str | None = None  # the 1-D runtime batch size, once asked for
        self._batch_source: str | None = None  # a graph input whose first axis is the batch
        # The export walk's inline (see ``inline``) and its buffer names (id(array) ->
        # ``bn/avg_mean``, see ``buffer``), set by export.
        self._inline: Any = None
        self._buffer_names: dict[int, str] = {}

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

    def bind(self, variable: Variable, name: str, depends: bool = False) -> None:
        """Record that ``variable`` is the ONNX value ``name``; ``depends``: whether it has a
        batched ancestor (a graph input whose first axis is the batch, or such an input
        itself).

        Of a value that depends on the batch, the builder also records how its first axis
        does: a first axis of k * N (N the example batch) is taken to be k * batch with the
        batch outermost, as in the input itself (k = 1), a flattened (N * C, H * W) or the
        (N * OH * OW, C * KH * KW) patch matrix of im2col; ``shape_constant`` reads it. A
        coincidence of sizes (a first axis of 2N that is no batch) does no harm there, since
        the target shape is computed from the value's own runtime first axis: where that
        axis does not vary, the result is the constant."""
        self._names[id(variable)] = name
        self._alive.append(variable)
        n = self.batch_size
        if depends and n is not None:
            self._depends.add(id(variable))
            first = int(variable.shape[0]) if variable.ndim >= 1 else 0
            if first > 0 and first % n == 0:
                self._batch_factor[id(variable)] = first // n

    def name_of(self, variable: Variable) -> str:
        """The ONNX value name of a Variable the walk has already met."""
        return self._names[id(variable)]

    def depends_on_batch(self, variable: Variable) -> bool:
        """Whether ``variable`` has a batched ancestor (its values, and maybe its shape, can
        change with the batch)."""
        return id(variable) in self._depends

    def batch_factor(self, variable: Variable) -> int | None:
        """k where ``variable``'s first axis is k * batch (see ``bind``), else None."""
        return self._batch_factor.get(id(variable))

    def is_batched(self, variable: Variable) -> bool:
        """Whether ``variable``'s first axis is the (symbolic) batch axis of the export."""
        return self.batch_factor(variable) == 1

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

    def buffer(self, array: Any, dtype: Any = None) -> str:
        """An initializer holding a buffer of the model that a node keeps as an attribute
        rather than an input (BatchNorm's running statistics), named by its buffer name
        (``bn/avg_mean``) the first time; as ``constant`` where the array is no buffer of
        the model (a function's own array) or its name is taken."""
        name = self._buffer_names.get(id(array))
        if name is None or name in self._used:
            return self.constant(array, dtype)
        array = as_numpy(array)
        return self.initializer(array if dtype is None else array.astype(dtype), name)

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
        """An int64 shape for Reshape or Expand of ``like`` that keeps the batch symbolic.

        Without a dynamic batch, or when ``like``'s first axis is not k * batch (see
        ``bind``), it is the constant ``target_shape``. Otherwise the target's first
        dimension is computed at run time from ``like``'s, the rest staying constant:

        - a first dimension equal to ``like``'s (a Reshape or Expand that keeps the first
          axis) is ``like``'s runtime first dimension;
        - a first dimension of k' * N in a Reshape (the target has ``like``'s size, so the
          batch, outermost in ``like``, stays outermost in the target's first axis: a
          flatten to (N, -1), a merge to (N * C, ...), the (N * OH * OW, OC) product of
          conv2d_simple back to (N, OH, OW, OC)) is ``like``'s runtime first dimension
          times k' / k.

        A vector built this way is valid for both Reshape and Expand, which a 0 ("copy") or
        -1 ("infer") entry is not.
        """
        target = [int(n) for n in target_shape]
        n = self.batch_size
        k = self.batch_factor(like)
        if n is None or not target or k is None:
            return self.constant(np.array(target, dtype=np.int64))
        first = int(like.shape[0])
        if target[0] == first:
            lead = self._first_dim(self.name_of(like))
        elif target[0] > 0 and target[0] % n == 0 and math.prod(target) == math.prod(
                like.shape):
            lead = self._scaled(self._first_dim(self.name_of(like)), target[0] // n, k)
        else:  # a first axis that is not the batch's (an Expand of a broadcast one)
            return self.constant(np.array(target, dtype=np.int64))
        if len(target) == 1:
            return lead
        return self.op("Concat", lead, self.constant(np.array(target[1:], dtype=np.int64)),
                       axis=0)

    def _scaled(self, dim: str, numerator: int, denominator: int) -> str:
        """``dim * numerator / denominator`` in int64, exact: ``dim`` is denominator *
        batch at run time, so the division leaves no remainder."""
        common = math.gcd(numerator, denominator)
        numerator, denominator = numerator // common, denominator // common
        if numerator != 1:
            dim = self.op("Mul", dim, self.constant(np.array([numerator], dtype=np.int64)))
        if denominator != 1:
            dim = self.op("Div", dim, self.constant(np.array([denominator], dtype=np.int64)))
        return dim

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
