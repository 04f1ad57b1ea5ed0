"""Losses and metrics by name, for ``fit(loss=..., metrics=...)``.

A loss is ``loss(y, t) -> Variable`` (a scalar): a zerograd function or one of the names in
``LOSSES``. A metric is ``metric(y, t) -> float``, the mean over the batch, computed on raw
arrays without a graph; the loop averages it over an epoch weighted by batch size, so the
epoch's value is the value over all its examples. Names in ``METRICS`` or any callable (its
``__name__`` names the column).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

import numpy as np

from zerograd import functions as F
from zerograd.backend import as_numpy
from zerograd.core.variable import Variable
from zerograd.errors import DTypeError, ShapeError

LOSSES: dict[str, Callable] = {
    "softmax_cross_entropy": F.softmax_cross_entropy,
    "cross_entropy": F.softmax_cross_entropy,
    "mean_squared_error": F.mean_squared_error,
    "mse": F.mean_squared_error,
}


def _array(value) -> np.ndarray:
    return as_numpy(value.data if isinstance(value, Variable) else value)


def accuracy(y, t) -> float:
    """The fraction of rows whose largest score is at the label: y (N, C) scores, t (N,)."""
    y, t = _array(y), _array(t)
    if t is None or t.dtype.kind not in "iub":
        kind = "no targets" if t is None else f"{t.dtype} targets of shape {t.shape}"
        raise DTypeError(f"metric 'accuracy' needs integer class labels t, got {kind}; for "
                         f"regression pass metrics=()")
    if y.ndim != 2 or t.shape != (y.shape[0],):
        raise ShapeError(f"metric 'accuracy': y has shape {y.shape} and t {t.shape}; expected "
                         f"scores (N, C) and labels (N,)")
    return float((y.argmax(axis=1) == t).mean())


METRICS: dict[str, Callable] = {"accuracy": accuracy}


def resolve_loss(loss) -> Callable:
    if isinstance(loss, str):
        if loss not in LOSSES:
            raise ValueError(f"fit: unknown loss {loss!r}; choose from {sorted(LOSSES)} or pass "
                             f"a function loss(y, t) -> Variable")
        return LOSSES[loss]
    if not callable(loss):
        raise TypeError(f"fit: loss must be a name or a function loss(y, t), got "
                        f"{type(loss).__name__}")
    return loss


def resolve_metrics(metrics) -> dict[str, Callable]:
    """``("accuracy", my_metric)`` or ``{"name": fn}`` -> ``{"name": fn}``, in order."""
    if metrics is None:
        return {}
    if isinstance(metrics, Mapping):
        items = list(metrics.items())
    elif isinstance(metrics, str) or callable(metrics):
        items = [_named(metrics)]
    elif isinstance(metrics, Iterable):
        items = [_named(m) for m in metrics]
    else:
        raise TypeError(f"fit: metrics must be names, functions or a dict of them, got "
                        f"{type(metrics).__name__}")
    resolved = {}
    for name, fn in items:
        if name in ("loss", "epoch", "seconds", "lr"):
            raise ValueError(f"fit: a metric may not be called {name!r}: the loop writes that "
                             f"column itself")
        resolved[name] = fn
    return resolved


def _named(metric) -> tuple[str, Callable]:
    if isinstance(metric, str):
        if metric not in METRICS:
            raise ValueError(f"fit: unknown metric {metric!r}; choose from {sorted(METRICS)} or "
                             f"pass a function metric(y, t) -> float")
        return metric, METRICS[metric]
    if not callable(metric):
        raise TypeError(f"fit: a metric must be a name or a function, got "
                        f"{type(metric).__name__}")
    return getattr(metric, "__name__", type(metric).__name__), metric


__all__ = ["LOSSES", "METRICS", "accuracy", "resolve_loss", "resolve_metrics"]
