"""The ops the engine itself relies on to fit a gradient to its input: ``sum_to`` (and its
gradient ``broadcast_to``) for shapes, ``cast`` for dtypes.

They live in ``core`` because the engine reduces broadcast gradients with ``sum_to`` and
casts promoted gradients back with ``cast`` in one place, for every op.
"""

from __future__ import annotations

from zerograd.backend import get_array_module
from zerograd.backend.array_utils import sum_to as sum_to_array
from zerograd.core.function import Function, as_variable
from zerograd.core.variable import Variable
from zerograd.errors import ShapeError


def can_sum_to(shape: tuple, target: tuple) -> bool:
    """Whether an array of ``shape`` sums down to ``target``, i.e. whether ``target``
    broadcasts to ``shape`` (NumPy rules: align on the right; each axis of ``target`` is 1
    or equal; ``shape`` may have extra leading axes)."""
    lead = len(shape) - len(target)
    if lead < 0:
        return False
    return all(t == s or t == 1 for s, t in zip(shape[lead:], target))


class SumTo(Function):
    """y = x summed down to ``shape`` (the inverse of broadcasting)."""

    retain_inputs = ()  # backward reads only shapes and dtypes
    retain_outputs = ()

    def __init__(self, shape: tuple) -> None:
        self.shape = tuple(shape)

    def forward(self, x):
        # Checked here, where a sum actually happens: equal shapes never get this far. The
        # common case, only leading axes added (a bias under a batch), needs no other check.
        shape = self.shape
        if x.shape[x.ndim - len(shape):] == shape and x.ndim > len(shape):
            self.x_shape = x.shape
            return x.sum(tuple(range(x.ndim - len(shape))))
        if not can_sum_to(x.shape, shape):
            raise ShapeError(
                f"sum_to: cannot sum shape {x.shape} to {self.shape}; {self.shape} must "
                f"broadcast to {x.shape} (NumPy rules)"
            )
        self.x_shape = x.shape
        return sum_to_array(x, self.shape)

    def backward(self, gy):
        return broadcast_to(gy, self.x_shape)

    def to_onnx(self, g, x):
        # Sum the leading axes broadcasting added, then the size-1 axes of the target.
        shape, target = tuple(self.inputs[0].shape), self.shape
        lead = len(shape) - len(target)
        axes = list(range(lead))
        axes += [lead + i for i, n in enumerate(target) if n == 1 and shape[lead + i] != 1]
        y = g.reduce("ReduceSum", x, axes, keepdims=True) if axes else x
        return g.squeeze(y, list(range(lead))) if lead else y


class BroadcastTo(Function):
    """y = x broadcast to ``shape`` (NumPy rules)."""

    retain_inputs = ()  # backward reads only shapes and dtypes
    retain_outputs = ()

    def __init__(self, shape: tuple) -> None:
        self.shape = tuple(shape)

    def forward(self, x):
        self.x_shape = x.shape
        xp = get_array_module(x)
        return xp.broadcast_to(x, self.shape)

    def backward(self, gy):
        return sum_to(gy, self.x_shape)

    def to_onnx(self, g, x):
        return g.op("Expand", x, g.shape_constant(self.shape, like=self.inputs[0]))


def sum_to(x, shape) -> Variable:
    """Sum ``x`` to ``shape``. x: a broadcast of ``shape`` -> shape. Identity if equal."""
    shape = tuple(shape)
    if x.shape == shape:
        return as_variable(x)
    return SumTo(shape)(x)


def broadcast_to(x, shape) -> Variable:
    """Broadcast ``x`` to ``shape``. Identity (no new node) if the shape is already equal."""
    shape = tuple(shape)
    if x.shape == shape:
        return as_variable(x)
    return BroadcastTo(shape)(x)


class Cast(Function):
    """y = x.astype(dtype); the gradient is cast back to x's dtype."""

    retain_inputs = ()  # backward reads only shapes and dtypes
    retain_outputs = ()

    def __init__(self, dtype) -> None:
        self.dtype = dtype

    def forward(self, x):
        self.x_dtype = x.dtype
        return x.astype(self.dtype)

    def backward(self, gy):
        return cast(gy, self.x_dtype)

    def to_onnx(self, g, x):
        return g.op("Cast", x, to=g.tensor_type(self.dtype))


def cast(x, dtype) -> Variable:
    """``x`` converted to ``dtype`` (differentiable). Identity if it already has it."""
    if x.dtype == dtype:
        return as_variable(x)
    return Cast(dtype)(x)
