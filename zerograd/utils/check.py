"""``check_function(fn, *inputs)``: is my Function right? Every mistake, in plain words.

Writing ``forward`` and ``backward`` is the heart of the book, and the mistakes are always
the same few: backward returns the wrong number of gradients, or one of the wrong shape or
dtype, or the wrong values; backward computes on raw arrays (``x.data``), which gives the
right first derivative and silently cuts the graph for the second; forward returns a
Python number or a list; forward or backward changes an input in place. The engine
forgives some of these (it casts a float64 gradient back to float32, wraps an ndarray) and
stops at others with an error about the engine; ``check_function`` finds them all, names
the input and says what to change. It raises nothing unless ``strict=True``.

Values are checked in float64 against central differences of a random projection: with
random weights u, the gradient of <u, fn(x)> must match its numerical derivative, element
by element; for order 2 the same is done for <w, gradient> (the second derivative), and so
on. Types, shapes and dtypes are checked in the inputs' own dtypes.
"""

from __future__ import annotations

import copy
import html
import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from zerograd._config import no_grad
from zerograd.backend import as_numpy
from zerograd.core.function import Function
from zerograd.core.variable import Variable, is_array
from zerograd.errors import ZerogradError
from zerograd.ops.reduction import sum as _sum
from zerograd.utils.graph import collect
from zerograd.utils.trace import TraceStep, trace_backward

_ORDINAL = {1: "first", 2: "second", 3: "third"}

# What check_function checks: a Function subclass, an instance, or a function of Variables
# (whatever it returns: a wrong return value is one of the mistakes reported).
Checked = type[Function] | Function | Callable[..., object]
Weights = list[list[np.ndarray]]  # per level: u for the outputs, then a w per input


class FunctionCheckError(ZerogradError, AssertionError):
    """``check_function(..., strict=True)`` found problems; the message lists them."""


@dataclass
class Problem:
    """One mistake: ``kind`` (a short tag such as "gradient values"), ``message``."""

    kind: str
    message: str

    def __str__(self) -> str:
        return f"[{self.kind}] {self.message}"


@dataclass
class FunctionReport:
    """What ``check_function`` found: ``problems`` (empty when all is well) and ``passed``
    (what was checked and found right). True in an ``if`` when there is no problem."""

    name: str
    problems: list[Problem] = field(default_factory=list)
    passed: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def __bool__(self) -> bool:
        return self.ok

    def kinds(self) -> list[str]:
        return [p.kind for p in self.problems]

    def __str__(self) -> str:
        if self.ok:
            lines = [f"check_function({self.name}): no problem found."]
        else:
            n = len(self.problems)
            lines = [f"check_function({self.name}): {n} problem{'s' if n > 1 else ''}."]
            lines += [f"{i}. {p}" for i, p in enumerate(self.problems, 1)]
        if self.passed:
            lines.append("Checked and right: " + "; ".join(self.passed) + ".")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return str(self)

    def _repr_html_(self) -> str:
        color = "#1b7f3b" if self.ok else "#b00020"
        title = ("no problem found" if self.ok else
                 f"{len(self.problems)} problem{'s' if len(self.problems) > 1 else ''}")
        items = "".join(f"<li><b>{html.escape(p.kind)}</b>: "
                        f"<span style='white-space: pre-wrap'>{html.escape(p.message)}</span>"
                        f"</li>" for p in self.problems)
        passed = ("<p style='color:#555'>Checked and right: "
                  + html.escape("; ".join(self.passed)) + ".</p>") if self.passed else ""
        return (f"<div><p style='color:{color}; font-weight:600'>check_function("
                f"{html.escape(self.name)}): {title}</p><ol>{items}</ol>{passed}</div>")

    def raise_if_problems(self) -> FunctionReport:
        if self.problems:
            raise FunctionCheckError(str(self))
        return self


def check_function(fn: Checked, *inputs: object, order: int = 2, strict: bool = False,
                   rtol: float = 1e-4, atol: float = 1e-5, eps: float = 1e-6,
                   seed: int = 0) -> FunctionReport:
    """Check ``fn`` at ``inputs`` and report every problem in plain words.

    ``fn``: a ``Function`` subclass (called as ``fn()(*inputs)``), an instance (a fresh
    copy per call, so its settings are kept) or a plain function of Variables.
    ``inputs``: arrays, Variables or numbers; floating-point ones get gradients checked.
    ``order``: how many derivatives to check against central differences (1, 2, ...).
    ``rtol``/``atol``: the tolerance of the value checks, which run in float64.
    Returns a :class:`FunctionReport`; with ``strict=True`` raises ``FunctionCheckError``
    if it has problems.
    """
    if not isinstance(order, int) or order < 1:
        raise ValueError(f"check_function: order must be an int >= 1, got {order!r}")
    target = _Target(fn)
    report = FunctionReport(target.name)
    arrays = [_as_input(x, i) for i, x in enumerate(inputs)]
    checks: list[Callable[..., bool]] = [_check_forward, _check_backward_types, _check_values]
    for check in checks:
        if check(target, arrays, order, report, rtol=rtol, atol=atol, eps=eps,
                 seed=seed) is False:
            break  # a later check would only repeat the same failure
    if strict:
        report.raise_if_problems()
    return report


# -- what is being checked --------------------------------------------------------------
class _Target:
    """Calls ``fn`` on Variables, the same way every time (a fresh Function per call)."""

    kind: str  # "class", "instance" or "callable"
    cls: type[Function] | None  # the class under test; None for a plain function
    name: str
    make: Callable[[], Function] | None  # a fresh Function to call; None for a plain function
    fn: Callable[..., object]  # the plain function

    def __init__(self, fn: Checked) -> None:
        if isinstance(fn, type) and issubclass(fn, Function):
            self.kind, self.cls, self.name = "class", fn, fn.__name__
            self.make = fn
        elif isinstance(fn, Function):
            self.kind, self.cls, self.name = "instance", type(fn), type(fn).__name__
            self.make = lambda: _fresh_copy(fn)
        elif callable(fn):
            self.kind, self.cls = "callable", None
            self.name = getattr(fn, "__name__", type(fn).__name__)
            self.make = None
            self.fn = fn
        else:
            raise TypeError(f"check_function: fn is a {type(fn).__name__}; expected a "
                            f"Function subclass, a Function instance or a function of "
                            f"Variables")

    def __call__(self, xs: list[Variable]) -> list[Variable]:
        ys = self.make()(*xs) if self.make is not None else self.fn(*xs)
        if isinstance(ys, Variable):
            return [ys]
        if isinstance(ys, (list, tuple)) and all(isinstance(y, Variable) for y in ys):
            return list(ys)
        raise TypeError(f"{self.name} returned a {type(ys).__name__} ({ys!r:.60}); a "
                        f"function of Variables must return a Variable (or a tuple of them)")

    def is_mine(self, f: Function) -> bool:
        """Whether a Function of the graph is the one under test (else a helper it used)."""
        return self.cls is None or isinstance(f, self.cls)


def _fresh_copy(f: Function) -> Function:
    g = copy.copy(f)
    for attribute in ("inputs", "outputs", "generation"):
        g.__dict__.pop(attribute, None)  # the copy records its own graph
    return g


def _as_input(x: object, i: int) -> np.ndarray:
    if isinstance(x, Variable):
        return np.array(as_numpy(x.data), copy=True)
    if is_array(x):
        return np.array(as_numpy(x), copy=True)
    if isinstance(x, (int, float, np.generic)) and not isinstance(x, bool):
        return np.array(x)
    raise TypeError(f"check_function: input {i} is a {type(x).__name__}; expected an "
                    f"ndarray, a Variable or a number")


def _is_float(a: np.ndarray) -> bool:
    return a.dtype.kind == "f"


def _variables(arrays: list[np.ndarray]) -> list[Variable]:
    # Integer inputs (indices, labels) are constants: no gradient is asked of them.
    return [Variable(a.copy(), requires_grad=_is_float(a)) for a in arrays]


def _input_name(i: int, a: np.ndarray) -> str:
    return f"input {i} ({a.dtype} {tuple(a.shape)})"


# -- 1. forward --------------------------------------------------------------------------
def _check_forward(target: _Target, arrays: list[np.ndarray], order: int,
                   report: FunctionReport, **_: object) -> bool:
    if target.make is None:  # a plain function: checked through the Functions it calls
        return True
    f = target.make()
    xs = [a.copy() for a in arrays]
    try:
        y = f.forward(*xs)
    except Exception as e:
        report.problems.append(Problem("forward error", f"{target.name}.forward raised "
                                       f"{type(e).__name__}: {e} (inputs: {_shapes(arrays)})"))
        return False
    _check_in_place(target.name + ".forward", arrays, xs, report)
    outputs = y if isinstance(y, tuple) else (y,)
    for j, out in enumerate(outputs):
        which = f"output {j}" if len(outputs) > 1 else "its output"
        if isinstance(out, list):
            report.problems.append(Problem("forward output", (
                f"{target.name}.forward returned a list as {which}; return an ndarray "
                f"(np.array(...)), or a tuple of ndarrays for several outputs")))
            return False
        if isinstance(out, Variable):
            report.problems.append(Problem("forward output", (
                f"{target.name}.forward returned a Variable as {which}; forward works on "
                f"the raw arrays it receives (compute with NumPy: np.exp(x), not F.exp(x)) "
                f"and returns an ndarray; Variables belong in backward")))
            return False
        if isinstance(out, (bool, int, float, complex)):
            report.problems.append(Problem("forward output", (
                f"{target.name}.forward returned a Python {type(out).__name__} ({out!r}) "
                f"as {which}, not an array: zerograd wraps it as np.array({out!r}) of "
                f"dtype {np.asarray(out).dtype}, whatever the inputs' dtype. Return an "
                f"array: np.asarray(value, dtype=x.dtype) (a Python number usually comes "
                f"from float(), math.* or .item())")))
        elif not (is_array(out) or isinstance(out, np.generic)):
            report.problems.append(Problem("forward output", (
                f"{target.name}.forward returned a {type(out).__name__} ({out!r:.60}) as "
                f"{which}; return an ndarray")))
            return False
        else:
            in_float = [a.dtype for a in arrays if _is_float(a)]
            out_dtype = np.asarray(out).dtype
            if in_float and out_dtype.kind == "f" and all(out_dtype.itemsize > d.itemsize
                                                           for d in in_float):
                report.problems.append(Problem("forward dtype", (
                    f"{target.name}.forward turned {in_float[0]} inputs into a {out_dtype} "
                    f"{which}; a float64 constant (np.array(2.0), np.ones(shape)) or "
                    f"np.float64 arithmetic promoted it. Make constants with the input's "
                    f"dtype (x.dtype), so float32 stays float32")))
    if not any(p.kind.startswith("forward") for p in report.problems):
        report.passed.append("forward returns arrays")
    return True


def _check_in_place(where: str, before: list[np.ndarray], after: list[np.ndarray],
                    report: FunctionReport) -> None:
    for i, (a, b) in enumerate(zip(before, after)):
        if a.shape != b.shape or not np.array_equal(a, b, equal_nan=True):
            report.problems.append(Problem("input modified", (
                f"{where} changed {_input_name(i, a)} in place (an operator such as "
                f"x += ..., x *= ..., x[...] = ..., or a NumPy out= argument). The input "
                f"is still needed (by backward, or by the caller): compute a new array "
                f"instead, y = x + ...")))


# -- 2. backward: counts, types, shapes, dtypes -------------------------------------------
def _check_backward_types(target: _Target, arrays: list[np.ndarray], order: int,
                          report: FunctionReport, **_: object) -> bool:
    xs = _variables(arrays)
    data = [x.data for x in xs]
    try:
        ys = target(xs)
    except Exception as e:
        report.problems.append(Problem("forward error", (
            f"calling {target.name} raised {type(e).__name__}: {e}")))
        return False
    if target.make is None:  # a Function's forward was checked on its own already
        _check_in_place(target.name, arrays, data, report)
    before = [a.copy() for a in data]  # as backward finds them
    mine = [f for f in collect(ys)[1] if target.is_mine(f)]
    if not mine:
        if any(x.requires_grad for x in xs):
            report.problems.append(Problem("no graph", (
                f"{target.name} recorded no graph: its outputs have no creator, so backward "
                f"cannot reach the inputs (was it computed on .data, or under no_grad?)")))
        return False
    rng = np.random.default_rng(seed=12345)
    for y in ys:
        y.grad = Variable(_random_like(rng, y.data), requires_grad=False)
    error: Exception | None
    try:
        trace = trace_backward(ys[0], show=False, retain_grad=True, names={})
    except Exception as e:
        trace = None
        error = e
    else:
        error = None
    steps = [] if trace is None else [s for s in trace if target.is_mine(s.function)]
    if error is not None:
        steps = _steps_so_far(error, target)
    for step in steps:
        problems = _gradient_problems(step, target)
        report.problems.extend(problems)
        if problems and error is not None:
            return False
    if error is not None:
        report.problems.append(Problem("backward error", (
            f"backward raised {type(error).__name__}: {error}")))
        return False
    _check_in_place(f"{target.name}.backward", before, data, report)
    if not any(p.kind.startswith("gradient") for p in report.problems):
        report.passed.append("backward returns one gradient per input, of its shape and "
                             "dtype")
    return True


def _steps_so_far(error: BaseException, target: _Target) -> list[TraceStep]:
    """The steps ``trace_backward`` recorded before ``error`` stopped it."""
    trace = getattr(error, "zerograd_trace", None)
    return [] if trace is None else [s for s in trace if target.is_mine(s.function)]


def _gradient_problems(step: TraceStep, target: _Target) -> list[Problem]:
    """What is wrong with what one ``backward`` call returned, for each input."""
    f = step.function
    name = f"{f.name}.backward"
    inputs = f.inputs
    returned = step.returned
    if isinstance(returned, list):
        return [Problem("gradient count", (
            f"{name} returned a list of {len(returned)}; return a tuple (gx0, gx1) for "
            f"several inputs (a list is taken as one gradient)"))]
    gxs = returned if isinstance(returned, tuple) else (returned,)
    if len(gxs) != len(inputs):
        return [Problem("gradient count", (
            f"{name} returned {len(gxs)} gradient(s) for {len(inputs)} input(s); return one "
            f"per input of forward, in order (None for an input without a gradient)"))]
    problems = []
    for i, (x, gx) in enumerate(zip(inputs, gxs)):
        if gx is None or x.data is None:
            continue
        label = _input_name(i, x.data)
        if isinstance(gx, (list, tuple)) or not (isinstance(gx, Variable) or is_array(gx)
                                                or isinstance(gx, np.generic)):
            problems.append(Problem("gradient type", (
                f"{name} returned a {type(gx).__name__} ({gx!r:.40}) as the gradient of "
                f"{label}; return a Variable of that input's shape")))
            continue
        g = gx.data if isinstance(gx, Variable) else np.asarray(gx)
        if g.shape != x.data.shape and not _broadcasts_to(x.data.shape, g.shape):
            problems.append(Problem("gradient shape", (
                f"{name} returned a gradient of shape {tuple(g.shape)} for {label}; a "
                f"gradient has its input's shape {tuple(x.data.shape)} (or a shape that "
                f"broadcasting made from it, which the engine sums back)")))
        if (x.data.dtype.kind == "f" and g.dtype != x.data.dtype):
            problems.append(Problem("gradient dtype", (
                f"{name} returned a {g.dtype} gradient for {label}: the engine casts it back "
                f"to {x.data.dtype}, but the work was done in {g.dtype}. Usually a float64 "
                f"constant (np.array(2.0), np.ones(shape)) or an array made without "
                f"dtype=x.dtype; use the input's dtype")))
    return problems


def _broadcasts_to(shape: tuple[int, ...], grad_shape: tuple[int, ...]) -> bool:
    """Whether an array of ``shape`` broadcasts to ``grad_shape`` (the engine sums back)."""
    if len(grad_shape) < len(shape):
        return False
    tail = grad_shape[len(grad_shape) - len(shape):]
    return all(s == t or s == 1 for s, t in zip(shape, tail))


# -- 3. values against central differences, order by order ------------------------------
def _check_values(target: _Target, arrays: list[np.ndarray], order: int,
                  report: FunctionReport, rtol: float, atol: float, eps: float,
                  seed: int) -> bool:
    arrays64 = [a.astype(np.float64) if _is_float(a) else a for a in arrays]
    wrt = [i for i, a in enumerate(arrays64) if _is_float(a)]
    if not wrt:
        report.passed.append("no floating-point input: no gradient to check")
        return True
    rng = np.random.default_rng(seed)
    with no_grad():
        ys = target(_variables(arrays64))
    # Random weights for every level: u for the outputs, then one w per input per order.
    weights = [[_random_like(rng, y.data) for y in ys]]
    for _ in range(order - 1):
        weights.append([_random_like(rng, a) for a in arrays64])
    for k in range(1, order + 1):
        ordinal = _ORDINAL.get(k, f"order-{k}")
        try:
            analytic, raw = _analytic(target, arrays64, weights, k - 1)
            numeric = _numeric(target, arrays64, weights, k - 1, wrt, eps)
        except Exception as e:
            report.problems.append(Problem(f"{ordinal} derivative", (
                f"computing the {ordinal} derivative raised {type(e).__name__}: {e}")))
            return False
        wrong = []
        for i in wrt:
            mismatch = _mismatch(analytic[i], numeric[i], rtol, atol)
            if mismatch:
                wrong.append((i, mismatch))
        if not wrong:
            report.passed.append(f"{ordinal} derivative matches central differences")
            continue
        for i, text in wrong:
            a = arrays64[i]
            what = ("the gradient" if k == 1 else
                    f"the {ordinal} derivative (checked as the gradient of a random weighting of "
                    f"the gradient)")
            message = (f"{what} of {_input_name(i, arrays[i])} disagrees with central "
                       f"differences: {text}")
            if k == 1 and analytic[i] is None:
                message = (f"backward gives no gradient (None) for {_input_name(i, a)}, but "
                           f"its numerical gradient is not zero: {text}")
            if k >= 2:
                message += _why_higher_order_fails(target, raw, i)
            report.problems.append(Problem(f"{ordinal} derivative", message))
        return False  # higher orders build on this one
    return True


def _analytic(target: _Target, arrays: list[np.ndarray], weights: Weights, level: int
              ) -> tuple[list[np.ndarray | None], list[TraceStep]]:
    """The gradient of G_level by backprop, per input (None where there is none), and the
    raw values the function's backward returned on the way (for diagnosis)."""
    xs = _variables(arrays)
    raw: list[TraceStep] = []
    g = _level(target, xs, weights, level, create_graph=True, record=raw)
    for x in xs:
        x.cleargrad()
    if g.creator is not None:
        g.backward()
    return [None if x.grad is None else np.array(as_numpy(x.grad.data), dtype=np.float64)
            for x in xs], raw


def _numeric(target: _Target, arrays: list[np.ndarray], weights: Weights, level: int,
             wrt: list[int], eps: float) -> dict[int, np.ndarray]:
    """The gradient of G_level by central differences, for each input in ``wrt`` (by its
    index)."""
    result: dict[int, np.ndarray] = {}
    for i in wrt:
        base = [a.copy() for a in arrays]
        grad = np.zeros(base[i].shape)
        for index in np.ndindex(*base[i].shape):
            original = base[i][index]
            base[i][index] = original + eps
            plus = _value(target, base, weights, level)
            base[i][index] = original - eps
            minus = _value(target, base, weights, level)
            base[i][index] = original
            grad[index] = (plus - minus) / (2 * eps)
        result[i] = grad
    return result


def _value(target: _Target, arrays: list[np.ndarray], weights: Weights, level: int) -> float:
    if level == 0:
        with no_grad():
            ys = target(_variables(arrays))
        return float(sum(np.sum(as_numpy(y.data) * u) for y, u in zip(ys, weights[0])))
    return float(as_numpy(_level(target, _variables(arrays), weights, level,
                                 create_graph=False).data))


def _level(target: _Target, xs: list[Variable], weights: Weights, level: int,
           create_graph: bool, record: list[TraceStep] | None = None) -> Variable:
    """G_0 = sum_j <u_j, y_j>; G_k = sum_i <w_i, dG_(k-1)/dx_i>, as a Variable.

    ``record``: a list that receives the steps of the function under test from the
    backward passes that should have recorded a graph (to tell why one did not)."""
    ys = target(xs)
    g = _weighted_sum(ys, weights[0])
    for k in range(1, level + 1):
        for x in xs:
            x.cleargrad()
        if g.creator is not None:
            # The last level only needs a value, unless a caller differentiates it.
            graph = create_graph or k < level
            if record is not None and graph:
                trace = trace_backward(g, create_graph=True, show=False, names={})
                record.extend(s for s in trace if target.is_mine(s.function))
            else:
                g.backward(create_graph=graph)
        grads = [x.grad for x in xs]
        g = _weighted_sum(grads, weights[k])
    return g


def _weighted_sum(vs: Sequence[Variable | None], ws: Sequence[np.ndarray]) -> Variable:
    total: Variable | None = None
    for v, w in zip(vs, ws):
        if v is None:
            continue
        term = _sum(v * w)
        total = term if total is None else total + term
    return total if total is not None else Variable(np.array(0.0), requires_grad=False)


def _mismatch(analytic: np.ndarray | None, numeric: np.ndarray, rtol: float,
              atol: float) -> str:
    """'' if close, else which elements differ and by how much."""
    if analytic is None:
        analytic = np.zeros_like(numeric)
    if analytic.shape != numeric.shape:
        return f"backprop has shape {analytic.shape}, the input has shape {numeric.shape}"
    bad = ~np.isclose(analytic, numeric, rtol=rtol, atol=atol)
    if not bad.any():
        return ""
    where = list(zip(*np.nonzero(bad)))
    parts = []
    for index in where[:4]:
        index = tuple(int(j) for j in index)
        shown = index if len(index) != 1 else index[0]
        label = f"[{shown}]" if index else "the value"
        a, n = float(analytic[index]), float(numeric[index])
        parts.append(f"{label}: backprop {a:.6g}, numerical {n:.6g} (off by {abs(a - n):.3g})")
    more = f", and {len(where) - 4} more" if len(where) > 4 else ""
    return (f"{len(where)} of {numeric.size} element(s) differ: " + "; ".join(parts)
            + more + f" (tolerance rtol={rtol:g}, atol={atol:g})")


def _why_higher_order_fails(target: _Target, raw: list[TraceStep], i: int) -> str:
    """A hint for a wrong higher derivative: a backward that left the graph."""
    hints = []
    for step in raw[:1]:  # every call of the same backward says the same
        returned = step.returned if isinstance(step.returned, tuple) else (step.returned,)
        kinds = {type(g).__name__ for g in returned if g is not None}
        if any(is_array(g) for g in returned):
            hints.append(f"{step.op}.backward returned NumPy arrays ({', '.join(kinds)}): "
                         f"the engine accepts them for the first derivative, but they carry "
                         f"no graph, so nothing differentiates them again")
        elif any(isinstance(g, Variable) and g.creator is None for g in returned):
            hints.append(f"{step.op}.backward returned a gradient with no creator under "
                         f"create_graph=True: it was computed from raw arrays (x.data, "
                         f"self.inputs[0].data, np.*), which cuts the graph")
    source = _data_lines(target)
    if source:
        hints.append("These lines of backward use raw arrays: " + "; ".join(source))
    if not hints:
        return ""
    return (". Likely cause: " + ". ".join(hints) + ". Write backward with zerograd ops on "
            "Variables (x, = self.inputs; return gy * F.cos(x)), so that it can be "
            "differentiated again")


def _data_lines(target: _Target) -> list[str]:
    cls = target.cls
    if cls is None or "backward" not in cls.__dict__:
        return []
    try:
        lines, first = inspect.getsourcelines(cls.backward)
    except (OSError, TypeError):
        return []
    found = []
    for n, line in enumerate(lines):
        code = line.split("#", 1)[0]
        if ".data" in code or "np." in code or "numpy." in code:
            found.append(f"line {first + n}: {line.strip()}")
    return found[:3]


def _random_like(rng: np.random.Generator, a: object) -> np.ndarray:
    a = np.asarray(as_numpy(a))
    dtype = a.dtype if a.dtype.kind == "f" else np.float64
    # Away from zero and of both signs, so that no element is accidentally unchecked.
    values = rng.uniform(0.5, 1.5, size=a.shape) * rng.choice([-1.0, 1.0], size=a.shape)
    return np.asarray(values, dtype=dtype)


def _shapes(arrays: Sequence[np.ndarray]) -> str:
    return ", ".join(f"{a.dtype} {tuple(a.shape)}" for a in arrays)


__all__ = ["FunctionCheckError", "FunctionReport", "Problem", "check_function"]
