"""What the tests of tests/fast share: counting the compiled kernels' calls, lowering every
threshold, and running an op spec's harness on one path (the kernels-on fixture itself is
``kernels_on`` in conftest.py)."""

from __future__ import annotations

from collections.abc import Iterable
from types import ModuleType

import zerograd._fast as fast
from tests.ops.harness import (
    check_double_backward,
    check_dtype_and_grad_shapes,
    check_forward,
    check_grad,
    check_zero_d,
)


def count_calls(monkeypatch, kernels: Iterable[tuple[ModuleType, Iterable[str]]]) -> dict:
    """Wrap each named kernel of each module; returns {kernel name: calls}, filled as they run."""
    calls: dict[str, int] = {}
    for module, names in kernels:
        for name in names:
            original = getattr(module, name)

            def wrapper(*args, _original=original, _name=name, **kwargs):
                calls[_name] = calls.get(_name, 0) + 1
                return _original(*args, **kwargs)

            monkeypatch.setattr(module, name, wrapper)
    return calls


def record_shapes(monkeypatch, module: ModuleType, name: str) -> list:
    """Wrap one kernel; returns the list of its first argument's shape, one per call."""
    shapes: list = []
    original = getattr(module, name)

    def wrapper(*args, **kwargs):
        shapes.append(args[0].shape)
        return original(*args, **kwargs)

    monkeypatch.setattr(module, name, wrapper)
    return shapes


def every_size(monkeypatch) -> None:
    """Make every wired kernel take arrays of any size (the specs' inputs are small)."""
    monkeypatch.setattr(fast, "THRESHOLDS", {name: (0, None) for name in fast.THRESHOLDS})


def check_spec_on_path(spec, setting: str, monkeypatch, zero_d: bool = False) -> None:
    """The op spec harness (forward, gradients, second order, dtypes; 0-d inputs too with
    ``zero_d``) with ZEROGRAD_FAST=``setting`` and every kernel taking any size."""
    monkeypatch.setenv("ZEROGRAD_FAST", setting)
    every_size(monkeypatch)
    check_forward(spec)
    check_grad(spec)
    if spec.double_backward:
        check_double_backward(spec)
    check_dtype_and_grad_shapes(spec)
    if zero_d:
        check_zero_d(spec)
