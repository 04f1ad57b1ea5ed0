"""The op test harness: one spec per op drives every check an op must pass.

An ``OpSpec`` names a zerograd function, its NumPy reference and how to make inputs.
``check_*`` functions run, for each spec:

* forward against the NumPy reference (float64, and float32 with a looser tolerance);
* the gradient in float64 against central differences: element by element for small
  inputs, by random projection <u, J v> (HIPS autograd's check_vjp) for large ones;
* the second derivative (double backward through ``create_graph=True``) against central
  differences of the first derivative, where the math allows;
* dtype preservation (float32 in -> float32 out and float32 gradients) and gradients
  shaped like their inputs;
* for every function in the graph with a ``backward_arrays`` (the first-order backward on
  raw arrays that ``backward()`` without ``create_graph`` runs), the same gradients as its
  ``backward``, bit for bit, with the same dtypes;
* 0-d inputs, for every op that takes them: forward, and the second order of
  ``sum <w, y * y> / 2``, whose upstream gradient ``w * y`` depends on the inputs, so even
  a piecewise-linear op (relu, clip) differentiates its backward with a recorded ``gy``.
  0-d is where NumPy hands back scalars instead of arrays (``x > 0`` is a ``np.bool_``).

Spec tables live in ``tests/ops/specs/<family>.py`` (a ``SPECS`` list each) and are
collected by ``tests/ops/test_op_specs.py``, which also fails for any public function of
``zerograd.functions`` that has no spec and is not listed as non-differentiable.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from zerograd import Variable

Shape = tuple


@dataclass
class OpSpec:
    """How to test one op.

    name:      id shown by pytest (unique); ``covers`` lists the public function names the
               spec tests (defaults to ``[name]``).
    fn:        the zerograd function, called as ``fn(*inputs, **kwargs)`` with Variables for
               the differentiable inputs and arrays for the others.
    ref:       NumPy reference, called as ``ref(*arrays, **kwargs)``.
    shapes:    list of input-shape tuples to try, e.g. ``[((2, 3), (3,)), ((), ())]``.
    domain:    (low, high) for uniform inputs, or one (low, high) per input.
    make_inputs: optional ``(rng, shapes, dtype) -> list of arrays`` replacing the uniform
               draw (labels, indices, inputs away from kinks, positive-definite...).
    diff_args: indices of the inputs that are differentiable (default: all).
    double_backward: check second derivatives too.
    zero_d:    the op takes 0-d inputs (every input shape ``()``, drawn by ``make_inputs``
               when there is one): forward, first and second order are then checked on
               them too (:func:`check_zero_d`). False for an op that needs axes (conv,
               softmax over axis 1, ...): it must then refuse 0-d inputs with a zerograd
               error, never a raw NumPy one.
    """

    name: str
    fn: Callable
    ref: Callable
    shapes: Sequence[tuple] = (((2, 3),),)
    domain: tuple | Sequence[tuple] = (-2.0, 2.0)
    kwargs: dict = field(default_factory=dict)
    make_inputs: Callable | None = None
    diff_args: Sequence[int] | None = None
    double_backward: bool = True
    dtypes: Sequence = (np.float32, np.float64)
    rtol: float = 1e-5
    atol: float = 1e-6
    grad_rtol: float = 1e-4
    grad_atol: float = 1e-6
    eps: float = 1e-6
    covers: Sequence[str] | None = None
    zero_d: bool = True

    def __str__(self) -> str:
        return self.name

    @property
    def covered_names(self) -> list[str]:
        return list(self.covers) if self.covers is not None else [self.name]


# ---------------------------------------------------------------------------------------
def make_inputs(spec: OpSpec, shapes: tuple, dtype, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    if spec.make_inputs is not None:
        arrays = spec.make_inputs(rng, shapes, dtype)
        return [a if not (isinstance(a, np.ndarray) and a.dtype.kind == "f") else
                a.astype(dtype) for a in arrays]
    per_input = isinstance(spec.domain[0], (tuple, list))
    domains = spec.domain if per_input else [spec.domain] * len(shapes)
    return [rng.uniform(lo, hi, size=s).astype(dtype) for s, (lo, hi) in zip(shapes, domains)]


def _diff_args(spec: OpSpec, arrays) -> list[int]:
    if spec.diff_args is not None:
        return list(spec.diff_args)
    return [i for i, a in enumerate(arrays) if isinstance(a, np.ndarray) and a.dtype.kind == "f"]


def _call(spec: OpSpec, arrays, diff: list[int]):
    """Call the op with Variables at the differentiable positions; returns (output, vars)."""
    inputs = [Variable(a) if i in diff else a for i, a in enumerate(arrays)]
    y = spec.fn(*inputs, **spec.kwargs)
    return y, inputs


def _as_list(y) -> list:
    return list(y) if isinstance(y, (list, tuple)) else [y]


def _weighted_sum(outputs, weights):
    """sum_k <w_k, y_k> as a zerograd Variable (the scalar whose gradient is J^T w)."""
    total = None
    for y, w in zip(outputs, weights):
        term = (y * w).sum()
        total = term if total is None else total + term
    return total


def _numeric_scalar(f, arrays, i, direction, eps):
    """Central difference of scalar f(arrays) along ``direction`` in argument i."""
    plus = [a.copy() if isinstance(a, np.ndarray) else a for a in arrays]
    minus = [a.copy() if isinstance(a, np.ndarray) else a for a in arrays]
    plus[i] = np.asarray(plus[i] + eps * direction)
    minus[i] = np.asarray(minus[i] - eps * direction)
    return (f(plus) - f(minus)) / (2 * eps)


def _directions(shape, rng, full_limit=24):
    """Unit basis vectors for small inputs, a few random directions for large ones."""
    size = int(np.prod(shape))
    if size <= full_limit:
        for k in range(size):
            e = np.zeros(size)
            e[k] = 1.0
            yield e.reshape(shape)
    else:
        for _ in range(3):
            yield rng.standard_normal(shape)


# ---------------------------------------------------------------------------------------
def check_forward(spec: OpSpec) -> None:
    for shapes, dtype in itertools.product(spec.shapes, spec.dtypes):
        arrays = make_inputs(spec, shapes, dtype)
        diff = _diff_args(spec, arrays)
        y, _ = _call(spec, arrays, diff)
        expected = _as_list(spec.ref(*arrays, **spec.kwargs))
        outputs = _as_list(y)
        assert len(outputs) == len(expected), (
            f"{spec}: {len(outputs)} outputs, expected {len(expected)}")
        rtol, atol = spec.rtol, spec.atol
        if np.dtype(dtype) != np.float64:
            rtol, atol = max(rtol, 1e-4), max(atol, 1e-5)
        for out, exp in zip(outputs, expected):
            assert isinstance(out, Variable), f"{spec}: output is {type(out).__name__}"
            exp = np.asarray(exp)
            assert out.shape == exp.shape, f"{spec} {shapes}: shape {out.shape} != {exp.shape}"
            np.testing.assert_allclose(out.data, exp, rtol=rtol, atol=atol,
                                       err_msg=f"{spec} forward {shapes} {np.dtype(dtype)}")


def check_dtype_and_grad_shapes(spec: OpSpec) -> None:
    if np.float32 not in spec.dtypes:
        return
    for shapes in spec.shapes:
        arrays = make_inputs(spec, shapes, np.float32)
        diff = _diff_args(spec, arrays)
        y, inputs = _call(spec, arrays, diff)
        outputs = _as_list(y)
        for out in outputs:
            if out.dtype.kind == "f":
                assert out.dtype == np.float32, f"{spec}: float32 in, {out.dtype} out"
        rng = np.random.default_rng(1)
        weights = [rng.standard_normal(o.shape).astype(np.float32) for o in outputs]
        _check_raw_backward_dtypes(spec, outputs)
        _weighted_sum(outputs, weights).backward()
        for i in diff:
            v = inputs[i]
            assert v.grad is not None, f"{spec}: no gradient for input {i}"
            assert v.grad.shape == v.shape, f"{spec}: grad {v.grad.shape} for input {v.shape}"
            assert v.grad.dtype == np.float32, f"{spec}: input {i} grad is {v.grad.dtype}"


def _check_raw_backward_dtypes(spec: OpSpec, outputs) -> None:
    """Every function behind ``outputs`` returns float32 gradients for float32 inputs.

    The engine casts a promoted gradient back to its input's dtype, so the gradients that
    reach ``x.grad`` are float32 whatever the op does; an op computing its backward in
    float64 would be silently slow. This calls each recorded function's backward directly
    (float32 seeds, no graph) and checks what it returns, before any cast.
    """
    from zerograd import no_grad

    for f in graph_functions(outputs):
        alive = [ref() for ref in f.outputs]
        seeds = [None if y is None else Variable(np.ones_like(y.data)) for y in alive]
        with no_grad():
            gxs = f.backward(*seeds)
        gxs = gxs if isinstance(gxs, tuple) else (gxs,)
        for x, gx in zip(f.inputs, gxs):
            if gx is not None and x.requires_grad and x.dtype == np.float32:
                assert gx.dtype == np.float32, (
                    f"{spec}: {f.name}.backward returns a {gx.dtype} gradient for a float32 "
                    f"input {x.shape}")


def graph_functions(outputs) -> list:
    """Every function behind ``outputs``, each once, found walking back from them."""
    funcs, seen, found = [o.creator for o in outputs if o.creator is not None], set(), []
    while funcs:
        f = funcs.pop()
        if id(f) in seen:
            continue
        seen.add(id(f))
        found.append(f)
        funcs.extend(x.creator for x in f.inputs if x.creator is not None)
    return found


def check_backward_arrays(spec: OpSpec) -> None:
    """``backward_arrays`` gives what ``backward`` gives, for every function that has one.

    Both are called directly with the same random upstream gradient (no graph recorded):
    the gradients of the inputs that want one must be equal bit for bit and of the same
    dtype, and None in the same places.
    """
    from zerograd import no_grad

    for shapes, dtype in itertools.product(spec.shapes, spec.dtypes):
        arrays = make_inputs(spec, shapes, dtype)
        diff = _diff_args(spec, arrays)
        y, _ = _call(spec, arrays, diff)
        rng = np.random.default_rng(5)
        for f in graph_functions(_as_list(y)):
            if f.backward_arrays is None:
                continue
            (out,) = [ref() for ref in f.outputs]  # backward_arrays: single-output ops
            seed = np.asarray(rng.standard_normal(out.shape)).astype(out.dtype)
            with no_grad():
                expected = f.backward(Variable(seed.copy()))
                got = f.backward_arrays(seed.copy())
            expected = expected if isinstance(expected, tuple) else (expected,)
            got = got if isinstance(got, tuple) else (got,)
            assert len(got) == len(expected), f"{spec}: {f.name}.backward_arrays count"
            for i, (x, e, g) in enumerate(zip(f.inputs, expected, got)):
                if not x.requires_grad:
                    continue
                where = f"{spec} {shapes} {np.dtype(dtype)}: {f.name} input {i}"
                assert (e is None) == (g is None), f"{where}: None in one backward only"
                if e is None:
                    continue
                g = g.data if isinstance(g, Variable) else np.asarray(g)
                assert g.dtype == e.dtype, f"{where}: {g.dtype} vs backward's {e.dtype}"
                np.testing.assert_array_equal(g, e.data, err_msg=where)


def check_grad(spec: OpSpec) -> None:
    """First derivative in float64 against central differences."""
    for shapes in spec.shapes:
        arrays = make_inputs(spec, shapes, np.float64)
        diff = _diff_args(spec, arrays)
        rng = np.random.default_rng(2)
        y, inputs = _call(spec, arrays, diff)
        outputs = _as_list(y)
        weights = [rng.standard_normal(o.shape) for o in outputs]

        def loss(arrs):
            out, _ = _call(spec, arrs, diff)
            return sum(float(np.sum(o.data * w)) for o, w in zip(_as_list(out), weights))

        _weighted_sum(outputs, weights).backward()
        for i in diff:
            grad = inputs[i].grad.data
            for d in _directions(arrays[i].shape, rng):
                numeric = _numeric_scalar(loss, arrays, i, d, spec.eps)
                analytic = float(np.sum(grad * d))
                close = np.isclose(analytic, numeric, rtol=spec.grad_rtol, atol=spec.grad_atol * 10)
                assert close, (f"{spec} {shapes}: d/d(input {i}) backprop {analytic!r} vs "
                               f"numerical {numeric!r}")


def check_double_backward(spec: OpSpec) -> None:
    """Second derivative: d/dx <grad_x(<w, f(x)>), v> via create_graph vs differences."""
    if not spec.double_backward:
        return
    for shapes in spec.shapes:
        arrays = make_inputs(spec, shapes, np.float64)
        diff = _diff_args(spec, arrays)
        rng = np.random.default_rng(3)
        y, _ = _call(spec, arrays, diff)
        weights = [rng.standard_normal(o.shape) for o in _as_list(y)]
        vs = {i: rng.standard_normal(arrays[i].shape) for i in diff}

        def first_order(arrs, keep_graph=False):
            out, inputs = _call(spec, arrs, diff)
            _weighted_sum(_as_list(out), weights).backward(create_graph=keep_graph)
            total = None
            for i in diff:
                g = inputs[i].grad
                if g is None:
                    continue
                term = (g * vs[i]).sum()
                total = term if total is None else total + term
            return total, inputs

        def first_order_value(arrs):
            total, _ = first_order(arrs)
            return 0.0 if total is None else float(total.data)

        total, inputs = first_order(arrays, keep_graph=True)
        if total is None or total.creator is None:
            continue  # the gradient does not depend on the inputs (a linear op)
        for v in inputs:
            if isinstance(v, Variable):
                v.cleargrad()
        total.backward()
        for i in diff:
            g2 = inputs[i].grad
            g2 = np.zeros(arrays[i].shape) if g2 is None else g2.data
            for d in _directions(arrays[i].shape, rng, full_limit=6):
                numeric = _numeric_scalar(first_order_value, arrays, i, d, spec.eps * 10)
                analytic = float(np.sum(g2 * d))
                close = np.isclose(analytic, numeric, rtol=1e-3, atol=spec.grad_atol * 100)
                assert close, (f"{spec} {shapes}: second derivative wrt input {i}: "
                               f"{analytic!r} vs numerical {numeric!r}")


# ---------------------------------------------------------------------------------------
def zero_d_shapes(spec: OpSpec) -> tuple:
    """The spec's inputs, every one of them 0-d."""
    return tuple(() for _ in spec.shapes[0])


def check_zero_d(spec: OpSpec) -> None:
    """0-d inputs: forward, gradient and second order, or a clear refusal."""
    from zerograd.errors import ZerogradError

    shapes = zero_d_shapes(spec)
    if not spec.zero_d:
        try:
            arrays = make_inputs(spec, shapes, np.float64)
        except (IndexError, ValueError):
            return  # the spec's inputs (labels, masks) cannot even be drawn 0-d
        diff = _diff_args(spec, arrays)
        try:
            _call(spec, arrays, diff)
        except (ZerogradError, IndexError) as e:  # indexing ops raise IndexError, as NumPy
            assert "()" in str(e) or "0-d" in str(e), (
                f"{spec}: the error for 0-d inputs does not name the shape: {e}")
            return
        raise AssertionError(f"{spec}: zero_d=False, but the op accepts 0-d inputs; "
                             f"remove zero_d=False so they are checked")
    zero_d = OpSpec(**{**spec.__dict__, "shapes": [shapes]})
    check_forward(zero_d)
    check_grad(zero_d)
    check_second_order_composed(zero_d)


def check_second_order_composed(spec: OpSpec) -> None:
    """Second order of ``L = sum_k <w_k, y_k * y_k> / 2`` via create_graph vs differences.

    ``dL/dy = w * y`` carries a graph back to the inputs, so the op's backward is handed a
    recorded upstream gradient (what happens in ``tanh(relu(x))``) and its result is
    differentiated again: a linear op's backward must stay differentiable in ``gy``.
    """
    for shapes in spec.shapes:
        arrays = make_inputs(spec, shapes, np.float64)
        diff = _diff_args(spec, arrays)
        rng = np.random.default_rng(4)
        y, _ = _call(spec, arrays, diff)
        weights = [rng.standard_normal(o.shape) * 0.5 for o in _as_list(y)]
        vs = {i: rng.standard_normal(arrays[i].shape) for i in diff}

        def first_order(arrs, keep_graph=False):
            out, inputs = _call(spec, arrs, diff)
            squares = [o * o for o in _as_list(out) if o.dtype.kind == "f"]
            _weighted_sum(squares, weights).backward(create_graph=keep_graph)
            total = None
            for i in diff:
                g = inputs[i].grad
                if g is not None:
                    term = (g * vs[i]).sum()
                    total = term if total is None else total + term
            return total, inputs

        def first_order_value(arrs):
            total, _ = first_order(arrs)
            return 0.0 if total is None else float(total.data)

        total, inputs = first_order(arrays, keep_graph=True)
        assert total is not None and total.creator is not None, (
            f"{spec} {shapes}: the gradient of sum(w * y * y) does not depend on the inputs")
        for v in inputs:
            if isinstance(v, Variable):
                v.cleargrad()
        total.backward()
        for i in diff:
            g2 = inputs[i].grad
            g2 = np.zeros(arrays[i].shape) if g2 is None else g2.data
            assert g2.shape == arrays[i].shape, (
                f"{spec} {shapes}: second-order gradient {g2.shape} for input {arrays[i].shape}")
            for d in _directions(arrays[i].shape, rng, full_limit=6):
                numeric = _numeric_scalar(first_order_value, arrays, i, d, spec.eps * 10)
                analytic = float(np.sum(g2 * d))
                close = np.isclose(analytic, numeric, rtol=1e-3, atol=spec.grad_atol * 100)
                assert close, (f"{spec} {shapes}: second derivative of sum(w*y*y)/2 wrt input "
                               f"{i}: {analytic!r} vs numerical {numeric!r}")
