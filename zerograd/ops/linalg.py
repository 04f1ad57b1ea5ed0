"""Linear algebra: matmul, linear, dot, outer, tensordot, einsum.

matmul follows NumPy (1-D, 2-D and batched N-D with broadcasting). Every backward is written
with these same ops, so second derivatives come for free.
"""

from __future__ import annotations

import math
import string
from collections.abc import Sequence

import numpy as np

from zerograd.backend import get_array_module
from zerograd.core.function import Function
from zerograd.core.variable import Variable
from zerograd.errors import ShapeError, describe
from zerograd.ops._grad_slots import in_slots, plus
from zerograd.ops.shape import broadcast_to, reshape, sum_to, transpose

__all__ = ["matmul", "linear", "linear_simple", "dot", "outer", "tensordot", "einsum",
           "MatMul", "Linear", "LinearGrad", "TensorDot", "Einsum"]


def swap_last_two(x) -> Variable:
    """x with its last two axes exchanged (``x.mT``)."""
    if x.ndim == 2:
        return transpose(x)
    axes = list(range(x.ndim))
    axes[-1], axes[-2] = axes[-2], axes[-1]
    return transpose(x, axes)


def _product(x, W):
    """x @ W; for an N-D x (N > 2) and a matrix W, as one product of x's rows stacked.

    NumPy's matmul runs a stacked x against a matrix as one BLAS call per leading index:
    for a (32, 64, 32) x and a (32, 512) W that took 2.4 against 1.4 ms for the same
    products as one (2048, 32) matrix. The reshape copies x only if x is not contiguous.
    The values are BLAS's either way, but not bitwise each other's (its blocking differs).
    """
    if x.ndim > 2 and W.ndim == 2:
        rows = x.reshape(math.prod(x.shape[:-1]), x.shape[-1])  # (-1 fails if x.shape[-1] is 0)
        return (rows @ W).reshape(*x.shape[:-1], W.shape[1])
    return x @ W


def _inverse_permutation(order: Sequence[int]) -> list[int]:
    inverse = [0] * len(order)
    for position, axis in enumerate(order):
        inverse[axis] = position
    return inverse


def _transposed_back(y, order: Sequence[int]) -> Variable:
    """y (whose axes are x's axes listed in ``order``) with x's axis order restored."""
    if list(order) == list(range(len(order))):
        return y
    return transpose(y, _inverse_permutation(order))


# -- matmul ----------------------------------------------------------------------------------
class MatMul(Function):
    """y = x @ W (``numpy.matmul``).

    x: (..., n, k), W: (..., k, m) -> (..., n, m), batch axes broadcast. A 1-D x is a row
    (k,), a 1-D W a column (k,), and that axis is dropped from y, as in NumPy.
    """

    retain_inputs = (0, 1)
    retain_outputs = ()

    def forward(self, x, W):
        if x.ndim == 0 or W.ndim == 0:
            raise ShapeError(
                f"matmul: operands must be at least 1-D, got x {x.dtype} {x.shape} and "
                f"W {W.dtype} {W.shape}"
            )
        k_axis = -2 if W.ndim > 1 else 0
        if x.shape[-1] != W.shape[k_axis]:
            raise ShapeError(
                f"matmul: x has shape {x.shape}, W has shape {W.shape}; x.shape[-1] must equal "
                f"W.shape[{k_axis}] (dtypes {x.dtype}, {W.dtype})"
            )
        return _product(x, W)

    def backward(self, gy):
        x, W = self.inputs
        if x.ndim > 1 and W.ndim > 1:
            gx = matmul(gy, swap_last_two(W)) if self.needs_grad(0) else None
            gW = matmul(swap_last_two(x), gy) if self.needs_grad(1) else None
            return gx, gW  # the engine sums broadcast batch axes away
        # A 1-D operand: promote it to a matrix (row x, column W), differentiate the
        # matrix product, then reduce to the promoted shape and drop the added axis.
        x2 = reshape(x, (1, x.shape[0])) if x.ndim == 1 else x
        W2 = reshape(W, (W.shape[0], 1)) if W.ndim == 1 else W
        batch = np.broadcast_shapes(x2.shape[:-2], W2.shape[:-2])
        gy = reshape(gy, (*batch, x2.shape[-2], W2.shape[-1]))
        gx = gW = None
        if self.needs_grad(0):
            gx = reshape(sum_to(matmul(gy, swap_last_two(W2)), x2.shape), x.shape)
        if self.needs_grad(1):
            gW = reshape(sum_to(matmul(swap_last_two(x2), gy), W2.shape), W.shape)
        return gx, gW

    def to_onnx(self, g, x, W):
        return g.op("MatMul", x, W)  # ONNX's MatMul has NumPy's rules, 1-D operands too


def matmul(x, W) -> Variable:
    """Matrix product ``x @ W`` with NumPy's rules (batched, broadcast, 1-D operands)."""
    return MatMul()(x, W)


# -- linear ----------------------------------------------------------------------------------
class Linear(Function):
    """y = x @ W + b in one node. x: (..., in), W: (in, out), b: (out,) or None -> (..., out).

    gx = gy @ W^T (skipped when x is a constant, e.g. the input batch), gW = x^T gy over
    every leading axis, gb = gy summed over the leading axes.
    """

    retain_inputs = (0, 1)  # x for gW, W for gx; of b only the shape
    retain_outputs = ()

    def forward(self, x, W, b=None):
        if W.ndim != 2 or x.ndim == 0 or x.shape[-1] != W.shape[0]:
            raise ShapeError(
                f"linear: x {x.dtype} {x.shape} and W {W.dtype} {W.shape} do not fit; expected "
                f"x (..., in) and W (in, out) with x.shape[-1] == W.shape[0]")
        y = _product(x, W)
        if b is None:
            return y
        if b.shape != y.shape[-1:] or b.dtype != y.dtype:  # not the usual bias (out,)
            try:
                out_shape = np.broadcast_shapes(y.shape, b.shape)
            except ValueError as e:
                raise ShapeError(f"linear: b {b.dtype} {b.shape} does not broadcast to the "
                                 f"output {y.shape} (x {x.shape}, W {W.shape}); expected b "
                                 "(out,)") from e
            if out_shape != y.shape or np.result_type(y, b) != y.dtype:
                return y + b
        y += b  # y is a fresh array: adding in place saves one output-sized allocation
        return y

    def backward(self, gy):
        inputs = self.inputs
        x, W = inputs[0], inputs[1]
        wants = (x.requires_grad, W.requires_grad, len(inputs) == 3 and inputs[2].requires_grad)
        if x.ndim == 2 and (len(inputs) == 2 or inputs[2].shape == W.shape[1:]):
            # A batch of rows and the usual bias: one LinearGrad node.
            return in_slots(wants[:len(inputs)], LinearGrad(wants)(x, W, gy))
        # Both products take transposed views (W.T, x.T: F-ordered), which NumPy passes to
        # BLAS as transposed operands: no copy before either product.
        gx = matmul(gy, transpose(W)) if self.needs_grad(0) else None
        gW = None
        if self.needs_grad(1):
            if x.ndim == 2:
                gW = matmul(transpose(x), gy)
            else:  # (..., in): every leading axis is a batch axis of the weight gradient
                rows = math.prod(x.shape[:-1])  # not -1: that fails if in or out is 0
                gW = matmul(transpose(reshape(x, (rows, W.shape[0]))),
                            reshape(gy, (rows, W.shape[1])))
        if len(self.inputs) == 2:
            return gx, gW
        b = self.inputs[2]
        gb = sum_to(gy, b.shape) if self.needs_grad(2) else None
        return gx, gW, gb

    def backward_arrays(self, gy):
        inputs = self.inputs
        x, W = inputs[0], inputs[1]
        if x.ndim == 2 and (len(inputs) == 2 or inputs[2].shape == W.shape[1:]):
            wants = (x.requires_grad, W.requires_grad,
                     len(inputs) == 3 and inputs[2].requires_grad)
            grads = LinearGrad(wants).forward(x._data, W._data, gy)
            return in_slots(wants[:len(inputs)], grads)
        # Other shapes: backward itself, on a constant gy (the engine takes Variables too).
        return self.backward(Variable(gy))

    def to_onnx(self, g, x, W, b=None):
        # Gemm needs a 2-D x; MatMul then Add covers (..., in) inputs as well.
        if self.inputs[0].ndim == 2:
            return g.op("Gemm", x, W, b)
        y = g.op("MatMul", x, W)
        return y if b is None else g.op("Add", y, b)


class LinearGrad(Function):
    """Linear's derivatives for a 2-D x and a bias of shape (out,): gx = gy W^T,
    gW = x^T gy and gb = gy summed over the batch, those that ``wants`` (three bools) names,
    as the outputs in that order. One node instead of two Transposes, two MatMuls and a
    SumTo: four Function calls fewer in every backward through a linear layer, with the same
    arrays (the products on the same transposed views, the sum over the same axis).

    The next order is written with the ops of those nodes: ggx gives gy ``ggx @ W`` and W
    ``(gy^T @ ggx)^T``; ggW gives x ``(ggW @ gy^T)^T`` and gy ``x @ ggW``; ggb gives gy
    ``ggb`` broadcast. gy's three terms are added here, in that order, where the unfused
    graph's engine added them in its visit order: second and higher derivatives agree with
    it to rounding (tested), not bit for bit.
    """

    retain_inputs = (0, 1, 2)
    retain_outputs = ()

    def __init__(self, wants: tuple[bool, bool, bool]) -> None:
        self.wants = wants

    def forward(self, x, W, gy):
        want_gx, want_gW, want_gb = self.wants
        grads = []
        if want_gx:
            grads.append(gy @ W.T)
        if want_gW:
            grads.append(x.T @ gy)
        if want_gb:
            grads.append(gy.sum((0,)))
        return grads[0] if len(grads) == 1 else tuple(grads)

    def backward(self, *ggs):
        x, W, gy = self.inputs
        ggx, ggW, ggb = in_slots(self.wants, ggs)
        g_x = g_W = g_gy = None
        if ggx is not None:
            if gy.requires_grad:
                g_gy = matmul(ggx, W)
            if W.requires_grad:
                g_W = transpose(matmul(transpose(gy), ggx))
        if ggW is not None:
            if x.requires_grad:
                g_x = transpose(matmul(ggW, transpose(gy)))
            if gy.requires_grad:
                g_gy = plus(g_gy, matmul(x, ggW))
        if ggb is not None and gy.requires_grad:
            g_gy = plus(g_gy, broadcast_to(ggb, gy.shape))
        return g_x, g_W, g_gy


def linear(x, W, b=None) -> Variable:
    """Affine map ``x @ W + b`` as one node (DeZero's ``linear``).

    x: (..., in), W: (in, out), b: (out,) or None -> (..., out). When x is a constant (a
    plain array) its gradient is not computed.
    """
    if b is None:
        return Linear()(x, W)
    return Linear()(x, W, b)


def linear_simple(x, W, b=None) -> Variable:
    """``matmul(x, W) + b`` as two nodes, freeing the intermediate product (DeZero's).

    The product's array is not needed by either backward, so it is replaced by a
    zero-strided view of the same shape and dtype (the engine reads only its shape).
    """
    t = matmul(x, W)
    if b is None:
        return t
    y = t + b
    xp = get_array_module(t.data)
    t.data = xp.broadcast_to(xp.zeros((), dtype=t.dtype), t.shape)
    return y


# -- dot / outer -----------------------------------------------------------------------------
def dot(a, b) -> Variable:
    """``numpy.dot``: inner product of 1-D vectors, matrix product of 2-D (DeZero's
    ``Variable.dot``), product with a 0-d operand, and for N-D a sum over the last axis of
    a and the second-to-last of b: (..., k) . (..., k, m) -> (a..., b..., m).
    """
    a_ndim, b_ndim = a.ndim, b.ndim
    if a_ndim == 0 or b_ndim == 0:
        return a * b if isinstance(a, Variable) else b * a
    if a_ndim <= 2 and b_ndim <= 2:
        return matmul(a, b)
    return tensordot(a, b, axes=([a_ndim - 1], [max(b_ndim - 2, 0)]))


def outer(a, b) -> Variable:
    """Outer product of the flattened inputs: y[i, j] = a_i * b_j. (m,), (n,) -> (m, n)."""
    return reshape(a, (-1, 1)) * reshape(b, (1, -1))


# -- tensordot -------------------------------------------------------------------------------
class TensorDot(Function):
    """y = tensordot(a, b, (a_axes, b_axes)): a's and b's paired axes are summed away.

    y has a's free axes, then b's. The gradients are tensordots of gy with the other
    operand, transposed back to the operand's axis order.
    """

    retain_inputs = (0, 1)
    retain_outputs = ()

    def __init__(self, a_axes: tuple, b_axes: tuple) -> None:
        self.a_axes = a_axes
        self.b_axes = b_axes

    def forward(self, a, b):
        for i, j in zip(self.a_axes, self.b_axes):
            if a.shape[i] != b.shape[j]:
                raise ShapeError(
                    f"tensordot: a axis {i} (length {a.shape[i]}) is paired with b axis {j} "
                    f"(length {b.shape[j]}); paired axes must have equal lengths "
                    f"(inputs: {describe([a, b])})")
        return get_array_module(a).tensordot(a, b, axes=(self.a_axes, self.b_axes))

    def backward(self, gy):
        a, b = self.inputs
        free_a = [i for i in range(a.ndim) if i not in self.a_axes]
        free_b = [j for j in range(b.ndim) if j not in self.b_axes]
        n_free_a = len(free_a)
        ga = gb = None
        # tensordot keeps the leftover axes of each operand in increasing order; each leftover
        # axis of one operand stands for the axis of the other that it was paired with.
        if self.needs_grad(0):
            g = tensordot(gy, b, axes=(list(range(n_free_a, gy.ndim)), free_b))
            paired = [self.a_axes[self.b_axes.index(j)] for j in sorted(self.b_axes)]
            ga = _transposed_back(g, free_a + paired)
        if self.needs_grad(1):
            g = tensordot(a, gy, axes=(free_a, list(range(n_free_a))))
            paired = [self.b_axes[self.a_axes.index(i)] for i in sorted(self.a_axes)]
            gb = _transposed_back(g, paired + free_b)
        return ga, gb

    def to_onnx(self, g, a, b):
        # As an einsum: paired axes share a label; y lists a's free labels, then b's.
        ndim_a, ndim_b = self.inputs[0].ndim, self.inputs[1].ndim
        labels = iter("abcdefghijklmnopqrstuvwxyz")
        a_labels = [next(labels) for _ in range(ndim_a)]
        b_labels = [next(labels) for _ in range(ndim_b)]
        for i, j in zip(self.a_axes, self.b_axes):
            b_labels[j % ndim_b] = a_labels[i % ndim_a]
        paired_a = {i % ndim_a for i in self.a_axes}
        paired_b = {j % ndim_b for j in self.b_axes}
        out = ([c for i, c in enumerate(a_labels) if i not in paired_a]
               + [c for j, c in enumerate(b_labels) if j not in paired_b])
        equation = f"{''.join(a_labels)},{''.join(b_labels)}->{''.join(out)}"
        return g.op("Einsum", a, b, equation=equation)


def tensordot(a, b, axes=2) -> Variable:
    """Sum of products over paired axes (``numpy.tensordot``).

    axes: an int n (a's last n axes with b's first n) or (a_axes, b_axes).
    a: (free_a..., k...), b: (k..., free_b...) -> (free_a..., free_b...).
    """
    a_axes, b_axes = _tensordot_axes(axes, tuple(a.shape), tuple(b.shape))
    return TensorDot(a_axes, b_axes)(a, b)


def _tensordot_axes(axes, a_shape: tuple, b_shape: tuple) -> tuple[tuple, tuple]:
    a_ndim, b_ndim = len(a_shape), len(b_shape)
    if isinstance(axes, (int, np.integer)):
        n = int(axes)
        if not 0 <= n <= min(a_ndim, b_ndim):
            raise ShapeError(f"tensordot: axes={n} pairs the last {n} axes of a with the first "
                             f"{n} of b, but a has shape {a_shape} and b {b_shape}")
        return tuple(range(a_ndim - n, a_ndim)), tuple(range(n))
    try:
        a_axes, b_axes = axes
    except (TypeError, ValueError) as e:
        raise ShapeError(f"tensordot: axes must be an int or a pair of axis lists, got "
                         f"{axes!r}") from e
    a_axes = (a_axes,) if isinstance(a_axes, (int, np.integer)) else tuple(a_axes)
    b_axes = (b_axes,) if isinstance(b_axes, (int, np.integer)) else tuple(b_axes)
    if len(a_axes) != len(b_axes):
        raise ShapeError(f"tensordot: {len(a_axes)} axes of a paired with {len(b_axes)} of b "
                         f"({axes!r})")
    for axis, ndim, name in [(a, a_ndim, "a") for a in a_axes] + [(b, b_ndim, "b")
                                                                    for b in b_axes]:
        if not -ndim <= int(axis) < ndim:
            shape = a_shape if name == "a" else b_shape
            raise ShapeError(f"tensordot: axis {axis} is out of range for {name} of shape "
                             f"{shape}")
    return (tuple(int(a) % a_ndim for a in a_axes), tuple(int(b) % b_ndim for b in b_axes))


# -- einsum ----------------------------------------------------------------------------------
_LABELS = frozenset(string.ascii_letters)


def _parse_einsum(subscripts: str, shapes: Sequence[tuple]) -> tuple[list[str], str]:
    """Explicit form of ``subscripts``: one label string per operand and the output's.

    Ellipses become fresh labels (right-aligned, so shorter operands broadcast); the implicit
    output is the ellipsis labels then the labels used once, in alphabetical order (NumPy's
    rule).
    """
    spec = subscripts.replace(" ", "")
    if spec.count("->") > 1:
        raise ValueError(f"einsum: more than one '->' in {subscripts!r}")
    inputs, arrow, output = spec.partition("->")
    terms = inputs.split(",")
    if len(terms) != len(shapes):
        raise ValueError(f"einsum: {subscripts!r} names {len(terms)} operand(s) but "
                         f"{len(shapes)} were given")
    for term in terms + ([output] if arrow else []):
        if set(term.replace("...", "")) - _LABELS or term.count("...") > 1:
            raise ValueError(f"einsum: bad term {term!r} in {subscripts!r}; use letters and at "
                             "most one '...'")
    used = set(spec) & _LABELS
    fresh = iter(sorted(_LABELS - used))
    ellipsis_dims = []
    for term, shape in zip(terms, shapes):
        explicit = len(term.replace("...", ""))
        n = len(shape) - explicit if "..." in term else 0
        if n < 0 or ("..." not in term and explicit != len(shape)):
            raise ShapeError(f"einsum: term {term!r} does not fit an operand of shape {shape} "
                             f"({subscripts!r})")
        ellipsis_dims.append(n)
    n_ellipsis = max(ellipsis_dims, default=0)
    try:
        ellipsis_labels = "".join(next(fresh) for _ in range(n_ellipsis))
    except StopIteration:
        raise ValueError(f"einsum: too many dimensions for {subscripts!r}") from None
    terms = [t.replace("...", ellipsis_labels[n_ellipsis - n:]) for t, n in
             zip(terms, ellipsis_dims)]
    if arrow:
        if "..." in output:
            output = output.replace("...", ellipsis_labels)
        elif n_ellipsis:
            raise ValueError(f"einsum: the operands have '...' dimensions but the output of "
                             f"{subscripts!r} has no '...'")
        if len(set(output)) != len(output) or set(output) - set("".join(terms)):
            raise ValueError(f"einsum: output {output!r} repeats a label or uses one that no "
                             f"operand has ({subscripts!r})")
    else:
        counts: dict[str, int] = {}
        for label in "".join(terms):
            counts[label] = counts.get(label, 0) + 1
        once = sorted(label for label, c in counts.items()
                      if c == 1 and label not in ellipsis_labels)
        output = ellipsis_labels + "".join(once)
    return terms, output


class Einsum(Function):
    """y = einsum(terms -> output, *operands) with explicit labels (see :func:`einsum`).

    The gradient of operand k is another einsum: gy and the other operands contracted to
    operand k's labels. A label repeated in operand k (a diagonal) pairs with an identity
    matrix; a label only operand k has (summed over it alone) is broadcast back.
    """

    # retain_inputs: every operand (each gradient contracts the others with gy), however
    # many there are; set in forward.
    retain_outputs = ()

    def __init__(self, terms: list[str], output: str) -> None:
        self.terms = terms
        self.out_labels = output

    def forward(self, *operands):
        self.retain_inputs = tuple(range(len(operands)))
        spec = ",".join(self.terms) + "->" + self.out_labels
        large = len(operands) > 2 or sum(op.size for op in operands) > 4096
        return get_array_module(operands[0]).einsum(spec, *operands, optimize=large)

    def backward(self, gy):
        return tuple(self._operand_grad(k, gy) if self.needs_grad(k) else None
                     for k in range(len(self.inputs)))

    def to_onnx(self, g, *operands):
        return g.op("Einsum", *operands,
                    equation=",".join(self.terms) + "->" + self.out_labels)

    def _operand_grad(self, k: int, gy) -> Variable:
        target_var = self.inputs[k]
        xp = get_array_module(gy.data)
        terms = [self.out_labels] + [t for j, t in enumerate(self.terms) if j != k]
        operands = [gy] + [x for j, x in enumerate(self.inputs) if j != k]
        used = set("".join(self.terms)) | set(self.out_labels)
        fresh = iter(sorted(_LABELS - used))
        target = ""
        for axis, label in enumerate(self.terms[k]):
            if label in target:  # a diagonal: g[.., i, .., j, ..] = g_i * delta_ij
                renamed = next(fresh)
                terms.append(label + renamed)
                operands.append(xp.eye(target_var.shape[axis], dtype=gy.dtype))
                label = renamed
            target += label
        available = set("".join(terms))
        reduced = "".join(label for label in target if label in available)
        spec = ",".join(terms) + "->" + reduced
        g = _einsum_explicit(spec, operands)
        if reduced == target:
            return g
        # Labels only operand k had: the gradient is constant along them.
        kept_shape = tuple(n if label in available else 1
                           for label, n in zip(target, target_var.shape))
        return broadcast_to(reshape(g, kept_shape), target_var.shape)


def einsum(subscripts: str, *operands) -> Variable:
    """Einstein summation (``numpy.einsum``), differentiable in every operand.

    subscripts: explicit ('ij,jk->ik') or implicit ('ij,jk': labels used once, sorted);
    '...' broadcasts leading dimensions. Repeated labels take diagonals ('ii->i') or traces
    ('ii'). Example: batched matmul 'bij,bjk->bik', bilinear form 'i,ij,j'.
    """
    if not operands:
        raise ValueError(f"einsum: {subscripts!r} needs at least one operand")
    shapes = [getattr(op, "shape", np.shape(op)) for op in operands]
    terms, output = _parse_einsum(subscripts, shapes)
    return Einsum(terms, output)(*operands)


def _einsum_explicit(spec: str, operands) -> Variable:
    inputs, _, output = spec.partition("->")
    return Einsum(inputs.split(","), output)(*operands)


