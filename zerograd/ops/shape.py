"""Shape ops: they move, copy or pad data, never change its values.

reshape, transpose, broadcast_to, sum_to, expand_dims/unsqueeze, squeeze, flatten,
concat/concatenate, stack, split, swapaxes, moveaxis, repeat, tile, pad, flip, roll.
Ops that only rearrange axes are built on reshape and transpose; the others are Functions
whose backward is their adjoint (split <-> concat, repeat <-> segment sum, pad <-> slice).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from zerograd.backend import get_array_module
from zerograd.core.broadcast import BroadcastTo, SumTo, broadcast_to, sum_to
from zerograd.core.function import Function, as_variable
from zerograd.core.variable import Variable
from zerograd.errors import ShapeError, describe

__all__ = ["reshape", "transpose", "broadcast_to", "sum_to", "expand_dims", "unsqueeze",
           "squeeze", "flatten", "concat", "concatenate", "stack", "split", "swapaxes",
           "moveaxis", "repeat", "tile", "flip", "roll",
           "Reshape", "Transpose", "BroadcastTo", "SumTo", "Concat", "Stack", "Split", "Repeat",
           "RepeatSum", "Tile", "Flip", "Roll"]


def _normalize_axis(op: str, axis, ndim: int, shape: tuple) -> int:
    """One axis in [-ndim, ndim) as a non-negative int, or a ShapeError naming ``op``."""
    axis = int(axis)
    if not -ndim <= axis < ndim:
        raise ShapeError(f"{op}: axis {axis} is out of range for an input of shape {shape} "
                         f"(valid: {-ndim} to {ndim - 1})")
    return axis % ndim


def _axes_tuple(axis) -> tuple:
    return tuple(axis) if isinstance(axis, (tuple, list)) else (axis,)


class Reshape(Function):
    """y = x.reshape(shape); the gradient is reshaped back."""

    retain_inputs = ()  # linear: only shapes
    retain_outputs = ()

    def __init__(self, shape: tuple) -> None:
        self.shape = shape

    def forward(self, x):
        self.x_shape = x.shape
        return x.reshape(self.shape)

    def backward(self, gy):
        return reshape(gy, self.x_shape)

    def backward_arrays(self, gy):
        return gy.reshape(self.x_shape)

    def to_onnx(self, g, x):
        (v,) = self.inputs
        target = _resolved_shape(self.shape, v.shape)
        return g.op("Reshape", x, g.shape_constant(target, like=v))


def reshape(x, shape) -> Variable:
    """x with a new shape (one entry may be -1). Returns x itself if the shape is unchanged."""
    if isinstance(shape, (int, np.integer)):
        shape = (int(shape),)
    shape = tuple(shape)
    if getattr(x, "shape", None) == shape:  # a non-array x gets Reshape's DTypeError
        return as_variable(x)
    return Reshape(shape)(x)


class Transpose(Function):
    """y = x.transpose(axes) (axes None reverses them); the gradient uses the inverse order."""

    retain_inputs = ()
    retain_outputs = ()

    def __init__(self, axes=None) -> None:
        self.axes = axes

    def forward(self, x):
        return x.transpose(self.axes)

    def backward(self, gy):
        return transpose(gy, self._inverse_axes())

    def backward_arrays(self, gy):
        return gy.transpose(self._inverse_axes())

    def _inverse_axes(self) -> tuple | None:
        """The axes that undo this transpose (None, reversing, undoes itself)."""
        if self.axes is None:
            return None
        ndim = len(self.axes)
        return tuple(int(i) for i in np.argsort([a % ndim for a in self.axes]))

    def to_onnx(self, g, x):
        ndim = self.inputs[0].ndim
        axes = range(ndim)[::-1] if self.axes is None else [a % ndim for a in self.axes]
        return g.op("Transpose", x, perm=list(axes))


def transpose(x, axes=None) -> Variable:
    """Permute the axes of x (None: reverse them), like ``ndarray.transpose``."""
    if axes is not None:
        axes = tuple(int(a) for a in axes)
    return Transpose(axes)(x)


class Concat(Function):
    """y = concatenate(xs, axis); the gradient is split back into the inputs' pieces."""

    retain_inputs = ()
    retain_outputs = ()

    def __init__(self, axis: int) -> None:
        self.axis = axis

    def forward(self, *xs):
        _check_same_shapes_except("concat", xs, self.axis)
        self.sizes = [x.shape[self.axis] for x in xs]
        return get_array_module(xs[0]).concatenate(xs, axis=self.axis)

    def backward(self, gy):
        if len(self.sizes) == 1:
            return gy
        return tuple(Split(_offsets(self.sizes), self.axis)(gy))

    def to_onnx(self, g, *xs):
        if len(xs) == 1:
            return g.op("Identity", xs[0])
        return g.op("Concat", *xs, axis=self.axis)


def concat(xs, axis: int = 0) -> Variable:
    """Join Variables/arrays along an existing ``axis``.

    xs: shapes equal except on ``axis`` -> that axis is the sum of their lengths. The gradient
    is split back into one piece per input.
    """
    xs = _sequence_of_inputs("concat", xs)
    if xs[0].ndim == 0:
        raise ShapeError(f"concat: zero-dimensional inputs cannot be concatenated "
                         f"({describe(xs)}); use stack")
    axis = _normalize_axis("concat", axis, xs[0].ndim, xs[0].shape)
    return Concat(axis)(*xs)


class Split(Function):
    """ys = split(x, indices, axis) (views); the gradient concatenates, zeros for unused ys."""

    retain_inputs = ()
    retain_outputs = ()

    def __init__(self, indices: list, axis: int) -> None:
        self.indices = indices
        self.axis = axis

    def forward(self, x):
        xp = get_array_module(x)
        return tuple(xp.split(x, self.indices, axis=self.axis))

    def backward(self, *gys):
        (x,) = self.inputs
        xp = get_array_module(x.data)
        dtype = next(gy.dtype for gy in gys if gy is not None)
        bounds = [0, *self.indices, x.shape[self.axis]]
        pieces = []
        for k, gy in enumerate(gys):
            if gy is None:  # an output nobody used: its gradient is zero
                shape = list(x.shape)
                shape[self.axis] = bounds[k + 1] - bounds[k]
                gy = xp.zeros(shape, dtype=dtype)
            pieces.append(gy)
        return Concat(self.axis)(*pieces)

    def to_onnx(self, g, x):
        length = self.inputs[0].shape[self.axis]
        bounds = [0, *self.indices, length]
        n = len(bounds) - 1
        if all(0 <= a <= b <= length for a, b in zip(bounds, bounds[1:])):
            if n == 1:
                return g.op("Identity", x)
            sizes = g.constant([b - a for a, b in zip(bounds, bounds[1:])])
            return g.op("Split", x, sizes, axis=self.axis, outputs=n)
        # Cut points out of order or out of range: each piece is NumPy's x[a:b] slice.
        return tuple(g.slice(x, [a], [b], [self.axis]) for a, b in zip(bounds, bounds[1:]))


def split(x, indices_or_sections, axis: int = 0) -> list[Variable]:
    """Split x along ``axis`` into a list of Variables (NumPy's ``split``).

    An int n cuts x into n equal pieces (the axis length must divide by n); a sequence of
    indices gives the cut points. Unused pieces contribute zero gradient.
    """
    axis = _normalize_axis("split", axis, x.ndim, x.shape)
    length = x.shape[axis]
    if isinstance(indices_or_sections, (int, np.integer)):
        sections = int(indices_or_sections)
        if sections <= 0 or length % sections:
            raise ShapeError(f"split: axis {axis} of x {x.shape} has length {length}, which "
                             f"cannot be split into {sections} equal pieces")
        step = length // sections
        indices = [step * k for k in range(1, sections)]
    else:
        indices = [int(i) for i in indices_or_sections]
    pieces = Split(indices, axis)(x)
    return pieces if isinstance(pieces, list) else [pieces]


class Stack(Function):
    """y = stack(xs, axis): a new axis at ``axis``; the gradient is unstacked."""

    retain_inputs = ()
    retain_outputs = ()

    def __init__(self, axis: int) -> None:
        self.axis = axis

    def forward(self, *xs):
        shapes = {x.shape for x in xs}
        if len(shapes) > 1:
            raise ShapeError(f"stack: every input must have the same shape, got {describe(xs)}")
        return get_array_module(xs[0]).stack(xs, axis=self.axis)

    def backward(self, gy):
        x_shape = self.inputs[0].shape
        if len(self.inputs) == 1:
            return reshape(gy, x_shape)
        pieces = Split(list(range(1, len(self.inputs))), self.axis)(gy)
        return tuple(reshape(p, x_shape) for p in pieces)

    def to_onnx(self, g, *xs):
        pieces = [g.unsqueeze(x, [self.axis]) for x in xs]
        return pieces[0] if len(pieces) == 1 else g.op("Concat", *pieces, axis=self.axis)


def stack(xs, axis: int = 0) -> Variable:
    """Join same-shaped Variables/arrays along a new ``axis``: n x (d...) -> (..., n, ...)."""
    xs = _sequence_of_inputs("stack", xs)
    axis = _normalize_axis("stack", axis, xs[0].ndim + 1, xs[0].shape)
    return Stack(axis)(*xs)


class Repeat(Function):
    """y = repeat(x, repeats, axis): each slice along ``axis`` repeated ``repeats`` times."""

    retain_inputs = ()
    retain_outputs = ()

    def __init__(self, repeats, axis: int) -> None:
        self.repeats = repeats
        self.axis = axis

    def forward(self, x):
        self.x_shape = x.shape
        return get_array_module(x).repeat(x, self.repeats, axis=self.axis)

    def backward(self, gy):
        return RepeatSum(self.repeats, self.axis, self.x_shape[self.axis])(gy)

    def to_onnx(self, g, x):
        (v,) = self.inputs
        axis = self.axis
        if not isinstance(self.repeats, int):  # a count per slice: gather the slices
            picks = np.repeat(np.arange(v.shape[axis]), self.repeats)
            return g.op("Gather", x, g.constant(picks), axis=axis)
        # (.., n, ..) -> (.., n, 1, ..) -> expanded to (.., n, r, ..) -> (.., n * r, ..).
        grown = list(v.shape[:axis + 1]) + [self.repeats] + list(v.shape[axis + 1:])
        y = g.op("Expand", g.unsqueeze(x, [axis + 1]), g.shape_constant(grown, like=v))
        out = grown[:axis] + [grown[axis] * self.repeats] + grown[axis + 2:]
        if axis == 0:  # the first axis grew: -1 lets Reshape infer it (batch * r)
            return g.op("Reshape", y, g.constant([-1, *out[1:]]))
        return g.op("Reshape", y, g.shape_constant(out, like=v))


def repeat(x, repeats, axis: int | None = None) -> Variable:
    """Repeat each element (axis None: of the flattened x) or each slice along ``axis``.

    repeats: an int, or one non-negative int per slice. x: (.., n, ..) -> (.., sum(repeats), ..).
    The gradient sums each run of copies.
    """
    if axis is None:
        x = reshape(x, (-1,))
        axis = 0
    axis = _normalize_axis("repeat", axis, x.ndim, x.shape)
    counts = np.asarray(repeats)
    if counts.dtype.kind not in "iu" or counts.ndim > 1 or (counts < 0).any():
        raise ShapeError(f"repeat: repeats must be a non-negative int or a 1-D sequence of them, "
                         f"got {repeats!r}")
    if counts.size == 1:
        repeats = int(counts.reshape(()))
    elif counts.size != x.shape[axis]:
        raise ShapeError(f"repeat: {counts.size} repeat counts for axis {axis} of length "
                         f"{x.shape[axis]} (x: {x.shape})")
    else:
        repeats = counts
    return Repeat(repeats, axis)(x)


class RepeatSum(Function):
    """The adjoint of repeat: sums each run of repeated slices back into one slice."""

    retain_inputs = ()
    retain_outputs = ()

    def __init__(self, repeats, axis: int, length: int) -> None:
        self.repeats = repeats
        self.axis = axis
        self.length = length

    def forward(self, gy):
        xp = get_array_module(gy)
        axis = self.axis
        if isinstance(self.repeats, int):
            runs = gy.shape[:axis] + (self.length, self.repeats) + gy.shape[axis + 1:]
            return gy.reshape(runs).sum(axis=axis + 1)
        repeats = xp.asarray(self.repeats)
        starts = xp.concatenate([xp.zeros(1, dtype=repeats.dtype), xp.cumsum(repeats)[:-1]])
        # reduceat needs start indices inside the array and sums one element for an empty
        # run: pad one zero slice at the end and zero the empty runs afterwards.
        pad_shape = list(gy.shape)
        pad_shape[axis] = 1
        padded = xp.concatenate([gy, xp.zeros(pad_shape, dtype=gy.dtype)], axis=axis)
        sums = xp.add.reduceat(padded, starts, axis=axis)
        if (repeats == 0).any():
            index = [slice(None)] * gy.ndim
            index[axis] = repeats == 0
            sums[tuple(index)] = 0
        return sums

    def backward(self, ggx):
        return Repeat(self.repeats, self.axis)(ggx)


class Tile(Function):
    """y = tile(x, reps); the gradient sums the tiles back onto x."""

    retain_inputs = ()
    retain_outputs = ()

    def __init__(self, reps: tuple) -> None:
        self.reps = reps

    def forward(self, x):
        self.x_shape = x.shape
        return get_array_module(x).tile(x, self.reps)

    def backward(self, gy):
        ndim = max(len(self.reps), len(self.x_shape))
        reps = (1,) * (ndim - len(self.reps)) + self.reps
        shape = (1,) * (ndim - len(self.x_shape)) + self.x_shape
        # y viewed as (r0, s0, r1, s1, ...): summing the r axes adds the tiles up.
        interleaved = tuple(n for pair in zip(reps, shape) for n in pair)
        kept = tuple(n for size in shape for n in (1, size))
        return reshape(sum_to(reshape(gy, interleaved), kept), self.x_shape)

    def to_onnx(self, g, x):
        ndim = self.inputs[0].ndim
        reps = list(self.reps)
        if len(reps) > ndim:  # NumPy puts new leading axes on x first
            x = g.unsqueeze(x, list(range(len(reps) - ndim)))
        reps = [1] * (ndim - len(reps)) + reps
        return g.op("Tile", x, g.constant(reps))


def tile(x, reps) -> Variable:
    """x repeated as a whole ``reps`` times along each axis (NumPy's ``tile``).

    reps: an int or a tuple; shapes are aligned on the right, as in NumPy.
    """
    reps = tuple(int(r) for r in _axes_tuple(reps))
    if any(r < 0 for r in reps):
        raise ShapeError(f"tile: reps must be non-negative, got {reps} (x: {x.shape})")
    return Tile(reps)(x)


class Flip(Function):
    """y = flip(x, axis) (None: every axis); its own adjoint."""

    retain_inputs = ()
    retain_outputs = ()

    def __init__(self, axis) -> None:
        self.axis = axis

    def forward(self, x):
        return get_array_module(x).flip(x, self.axis)

    def backward(self, gy):
        return Flip(self.axis)(gy)

    def to_onnx(self, g, x):
        ndim = self.inputs[0].ndim
        if ndim == 0:
            return g.op("Identity", x)
        axes = range(ndim) if self.axis is None else [a % ndim for a in _axes_tuple(self.axis)]
        axes = list(axes)
        # A reversed Slice: from the last element (the start clamps to n - 1) to before the
        # first (the end clamps to -1).
        return g.slice(x, [-1] * len(axes), [_INT64_MIN] * len(axes), axes, [-1] * len(axes))


def flip(x, axis=None) -> Variable:
    """x reversed along ``axis`` (None: every axis; an int or a tuple)."""
    if isinstance(axis, list):
        axis = tuple(axis)
    return Flip(axis)(x)


class Roll(Function):
    """y = roll(x, shift, axis); the gradient rolls back by -shift."""

    retain_inputs = ()
    retain_outputs = ()

    def __init__(self, shift, axis) -> None:
        self.shift = shift
        self.axis = axis

    def forward(self, x):
        return get_array_module(x).roll(x, self.shift, axis=self.axis)

    def backward(self, gy):
        if isinstance(self.shift, tuple):
            back = tuple(-s for s in self.shift)
        else:
            back = -self.shift
        return Roll(back, self.axis)(gy)

    def to_onnx(self, g, x):
        (v,) = self.inputs
        if self.axis is None:  # NumPy rolls the flattened x and restores its shape
            flat = g.op("Reshape", x, g.constant([-1]))
            rolled = _rolled(g, flat, [self.shift], [0], (v.size,))
            return g.op("Reshape", rolled, g.shape_constant(v.shape, like=v))
        shifts = self.shift if isinstance(self.shift, tuple) else (self.shift,)
        axes = _axes_tuple(self.axis)
        if len(shifts) == 1 and len(axes) > 1:
            shifts = shifts * len(axes)
        return _rolled(g, x, shifts, [a % v.ndim for a in axes], v.shape)


def roll(x, shift, axis=None) -> Variable:
    """Elements shifted by ``shift`` along ``axis``, wrapping around (NumPy's ``roll``).

    axis None rolls the flattened x and restores its shape.
    """
    if isinstance(shift, (tuple, list)):
        shift = tuple(int(s) for s in shift)
    else:
        shift = int(shift)
    if isinstance(axis, list):
        axis = tuple(axis)
    return Roll(shift, axis)(x)


# -- helpers ---------------------------------------------------------------------------------
_INT64_MIN = -(2 ** 63)  # a Slice end before the first element, whatever the length


def _resolved_shape(shape: tuple, x_shape: tuple) -> list[int]:
    """A reshape target with its -1 (if any) replaced by the length it stands for."""
    target = [int(n) for n in shape]
    if -1 in target:
        known = math.prod(n for n in target if n != -1)
        target[target.index(-1)] = math.prod(x_shape) // known if known else 0
    return target


def _rolled(g, x: str, shifts, axes, shape: tuple) -> str:
    """ONNX nodes for np.roll of value ``x`` (of ``shape``): per axis, the last s elements
    moved to the front, as Concat(x[n - s:], x[:n - s])."""
    for shift, axis in zip(shifts, axes):
        n = shape[axis]
        s = shift % n if n else 0
        if s == 0:
            continue
        tail = g.slice(x, [n - s], [n], [axis])
        head = g.slice(x, [0], [n - s], [axis])
        x = g.op("Concat", tail, head, axis=axis)
    return x


def _offsets(sizes: Sequence[int]) -> list[int]:
    """Split points of pieces of the given sizes: [s0, s0 + s1, ...] (without the total)."""
    points, total = [], 0
    for n in sizes[:-1]:
        total += n
        points.append(total)
    return points


def _check_same_shapes_except(op: str, xs, axis: int) -> None:
    ndims = {x.ndim for x in xs}
    if len(ndims) > 1:
        raise ShapeError(f"{op}: every input must have the same number of dimensions, got "
                         f"{describe(xs)}")
    for x in xs[1:]:
        for a in range(x.ndim):
            if a != axis and x.shape[a] != xs[0].shape[a]:
                raise ShapeError(
                    f"{op}: inputs must match on every axis except axis {axis}, got "
                    f"{describe(xs)} (axis {a} differs)")


def _sequence_of_inputs(op: str, xs) -> list:
    if isinstance(xs, (Variable, np.ndarray)) or not isinstance(xs, Sequence):
        raise ShapeError(f"{op}: expected a list or tuple of Variables/arrays, got "
                         f"{type(xs).__name__}")
    if len(xs) == 0:
        raise ShapeError(f"{op}: needs at least one input, got an empty sequence")
    return list(xs)


# -- composed from the ops above, and aliases ------------------------------------------


def expand_dims(x, axis) -> Variable:
    """x with a size-1 axis inserted at ``axis`` (an int or a tuple, positions in the result).

    x: (d0, ..., dn) -> e.g. axis=1: (d0, 1, d1, ..., dn). A reshape, so the gradient is one.
    """
    axes = _axes_tuple(axis)
    ndim = x.ndim + len(axes)
    positions = {_normalize_axis("expand_dims", a, ndim, x.shape) for a in axes}
    if len(positions) != len(axes):
        raise ShapeError(f"expand_dims: repeated axis in {axis!r} (x: {x.shape})")
    rest = iter(x.shape)
    return reshape(x, tuple(1 if a in positions else next(rest) for a in range(ndim)))


unsqueeze = expand_dims


def squeeze(x, axis=None) -> Variable:
    """x without size-1 axes: all of them (axis None) or the given ones (each must be 1)."""
    if axis is None:
        return reshape(x, tuple(n for n in x.shape if n != 1))
    axes = {_normalize_axis("squeeze", a, x.ndim, x.shape) for a in _axes_tuple(axis)}
    for a in axes:
        if x.shape[a] != 1:
            raise ShapeError(f"squeeze: axis {a} of x {x.shape} has size {x.shape[a]}; only "
                             "size-1 axes can be squeezed")
    return reshape(x, tuple(n for a, n in enumerate(x.shape) if a not in axes))


def flatten(x) -> Variable:
    """x as a matrix that keeps the batch axis: (N, d1, ..., dn) -> (N, d1 * ... * dn).

    DeZero's flatten; use ``reshape(x, (-1,))`` for a fully flat vector.
    """
    if x.ndim == 0:
        raise ShapeError(f"flatten: x must have a batch axis (at least 1-D), got shape {x.shape}")
    return reshape(x, (x.shape[0], -1))


concatenate = concat


def swapaxes(x, axis1: int, axis2: int) -> Variable:
    """x with axes ``axis1`` and ``axis2`` exchanged."""
    a = _normalize_axis("swapaxes", axis1, x.ndim, x.shape)
    b = _normalize_axis("swapaxes", axis2, x.ndim, x.shape)
    order = list(range(x.ndim))
    order[a], order[b] = order[b], order[a]
    return transpose(x, order)


def moveaxis(x, source, destination) -> Variable:
    """x with axes moved from ``source`` to ``destination`` (ints or equal-length tuples)."""
    source = [_normalize_axis("moveaxis", a, x.ndim, x.shape) for a in _axes_tuple(source)]
    destination = [_normalize_axis("moveaxis", a, x.ndim, x.shape)
                   for a in _axes_tuple(destination)]
    if len(source) != len(destination) or len(set(source)) != len(source):
        raise ShapeError(f"moveaxis: source {source} and destination {destination} must be "
                         f"distinct axes of equal count (x: {x.shape})")
    order = [a for a in range(x.ndim) if a not in source]
    for dest, src in sorted(zip(destination, source)):
        order.insert(dest, src)
    return transpose(x, order)


# Re-exported so that the shape family is complete in one place.
_ = (BroadcastTo, SumTo, broadcast_to, sum_to)
