"""What the tests of tests/fast share: counting the compiled kernels' calls and lowering
every threshold (the kernels-on fixture itself is ``kernels_on`` in conftest.py)."""

from __future__ import annotations

from collections.abc import Iterable
from types import ModuleType

import zerograd._fast as fast


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
