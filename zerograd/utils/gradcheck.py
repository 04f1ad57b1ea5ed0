"""Numerical differentiation and gradient checking (DeZero's names, without its side effects)."""

from __future__ import annotations

import numpy as np

from zerograd.backend import as_numpy
from zerograd.core.variable import Variable


def numerical_diff(f, x: Variable, eps: float = 1e-4) -> np.ndarray:
    """Central difference (f(x + eps) - f(x - eps)) / (2 eps) of a function of one Variable.

    For elementwise ``f`` this is the derivative at every element of ``x``.
    """
    x0 = Variable(np.asarray(as_numpy(x.data) - eps))
    x1 = Variable(np.asarray(as_numpy(x.data) + eps))
    y0 = f(x0)
    y1 = f(x1)
    return (as_numpy(y1.data) - as_numpy(y0.data)) / (2 * eps)


def _output_sum(f, args, kwargs) -> float:
    y = f(*args, **kwargs)
    if isinstance(y, (list, tuple)):
        return float(sum(np.sum(as_numpy(getattr(v, "data", v))) for v in y))
    return float(np.sum(as_numpy(getattr(y, "data", y))))


def numerical_grad(f, x, *args, eps: float = 1e-4, **kwargs) -> np.ndarray:
    """Gradient of ``sum(f(x, *args))`` with respect to ``x`` by central differences.

    ``x`` is a Variable or an array; its data is perturbed element by element and restored
    (2 evaluations per element). Returns an array shaped like ``x``.
    """
    data = x.data if isinstance(x, Variable) else x
    grad = np.zeros(data.shape, dtype=np.float64)
    call_args = (x, *args)
    it = np.nditer(data, flags=["multi_index"], op_flags=[["readwrite"]])
    while not it.finished:
        idx = it.multi_index
        original = data[idx].copy()
        data[idx] = original + eps
        y_plus = _output_sum(f, call_args, kwargs)
        data[idx] = original - eps
        y_minus = _output_sum(f, call_args, kwargs)
        data[idx] = original
        grad[idx] = (y_plus - y_minus) / (2 * eps)
        it.iternext()
    return grad


def gradient_check(f, x, *args, rtol: float = 1e-4, atol: float = 1e-5, **kwargs) -> bool:
    """Compare backprop gradients of ``sum(f(x, *args))`` with central differences.

    Every Variable among ``x`` and ``args`` is checked (in float64 copies: the caller's
    Variables are not modified). Prints the first mismatch and returns False, else True.
    """
    originals = (x, *args)
    copies = []
    for a in originals:
        if isinstance(a, Variable):
            copies.append(Variable(as_numpy(a.data).astype(np.float64)))
        elif isinstance(a, np.ndarray) and a is x:
            copies.append(Variable(a.astype(np.float64)))
        else:
            copies.append(a)

    y = f(*copies, **kwargs)
    outputs = y if isinstance(y, (list, tuple)) else [y]
    for out in outputs:
        if isinstance(out, Variable) and out.creator is not None:
            out.backward()

    ok = True
    for i, v in enumerate(copies):
        if not isinstance(v, Variable):
            continue

        def f_of_arg(arg, i=i):
            return f(*copies[:i], arg, *copies[i + 1:], **kwargs)

        numeric = numerical_grad(f_of_arg, v)
        analytic = np.zeros_like(v.data) if v.grad is None else as_numpy(v.grad.data)
        if analytic.shape != numeric.shape or not np.allclose(analytic, numeric, rtol=rtol,
                                                                atol=atol):
            ok = False
            print(f"gradient_check: argument {i} (shape {v.shape}) mismatch")
            print(f"  backprop:  shape {analytic.shape}, values {analytic.ravel()[:10]}")
            print(f"  numerical: shape {numeric.shape}, values {numeric.ravel()[:10]}")
            if analytic.shape == numeric.shape:
                diff = np.abs(analytic - numeric).max()
                print(f"  max abs difference {diff:.3e} (rtol {rtol}, atol {atol})")
    return ok


def array_equal(a, b) -> bool:
    """True if two arrays or Variables (NumPy or CuPy) hold equal values and shapes."""
    a = as_numpy(a.data if isinstance(a, Variable) else a)
    b = as_numpy(b.data if isinstance(b, Variable) else b)
    return bool(np.array_equal(a, b))


def array_allclose(a, b, rtol: float = 1e-4, atol: float = 1e-5) -> bool:
    """True if two arrays or Variables are elementwise close (``numpy.allclose``)."""
    a = as_numpy(a.data if isinstance(a, Variable) else a)
    b = as_numpy(b.data if isinstance(b, Variable) else b)
    return bool(np.allclose(a, b, rtol=rtol, atol=atol))
