"""Validation of optimizer, hook and scheduler settings.

A rule checks one setting and returns it as the Python type stored (``float``, ``int`` or
``bool``); a bad value raises naming the owner (``"Adam"``), the setting, the value and what is
valid: ``ValueError("Adam: beta1 must be in [0, 1), got 1.5")``. Wrong types raise TypeError.
NaN is never in a range, and an infinite value only where a range says so (none does).
"""

from __future__ import annotations

import math
import numbers
from typing import Protocol

import numpy as np

__all__ = ["Interval", "Flag", "Integer", "Rule", "NON_NEGATIVE", "POSITIVE", "UNIT",
           "UNIT_OPEN"]


class Rule(Protocol):
    """What validates one setting: ``check`` returns the value as stored (a float, an int or
    a bool) or raises naming ``owner`` and ``name``."""

    def check(self, owner: str, name: str, value: object) -> float: ...


def _whole(value: numbers.Real) -> int:
    # int() converts every real number (NumPy's float32 through __int__: it has no
    # __trunc__, so math.trunc cannot stand in), but typeshed's numbers.Real declares
    # __trunc__ and not __int__, so int(Real) does not type-check.
    return int(value)  # type: ignore[call-overload]


def _describe(value: object) -> str:
    return f"{type(value).__name__} {value!r}"


class Interval:
    """The real numbers from ``low`` to ``high``, each end closed or open: ``[0, 1)``."""

    def __init__(self, low: float, high: float, low_closed: bool = True,
                 high_closed: bool = False) -> None:
        self.low, self.high = low, high
        self.low_closed, self.high_closed = low_closed, high_closed

    def __contains__(self, x: float) -> bool:
        above = x >= self.low if self.low_closed else x > self.low
        below = x <= self.high if self.high_closed else x < self.high
        return above and below  # both False for NaN

    def __str__(self) -> str:
        def end(v: float) -> str:
            return "inf" if v == math.inf else f"{v:g}"

        return (f"{'[' if self.low_closed else '('}{end(self.low)}, {end(self.high)}"
                f"{']' if self.high_closed else ')'}")

    def check(self, owner: str, name: str, value: object) -> float:
        # bool is an int to Python, but lr=True is a mistake, not a rate of 1.
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise TypeError(f"{owner}: {name} must be a real number in {self}, got "
                            f"{_describe(value)}")
        value = float(value)
        if value not in self:
            raise ValueError(f"{owner}: {name} must be in {self}, got {value!r}")
        return value


class Integer:
    """Whole numbers >= ``minimum`` (a float such as 3.0 is accepted, 2.5 is not)."""

    def __init__(self, minimum: int) -> None:
        self.minimum = minimum

    def check(self, owner: str, name: str, value: object) -> int:
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise TypeError(f"{owner}: {name} must be an integer >= {self.minimum}, got "
                            f"{_describe(value)}")
        if not (math.isfinite(value) and value == _whole(value)):
            raise ValueError(f"{owner}: {name} must be an integer >= {self.minimum}, got "
                             f"{value!r}")
        whole = _whole(value)
        if whole < self.minimum:
            raise ValueError(f"{owner}: {name} must be an integer >= {self.minimum}, got "
                             f"{whole}")
        return whole


class Flag:
    """True or False (NumPy's bool too; not 0/1, not strings)."""

    def check(self, owner: str, name: str, value: object) -> bool:
        if not isinstance(value, (bool, np.bool_)):
            raise TypeError(f"{owner}: {name} must be True or False, got {_describe(value)}")
        return bool(value)


NON_NEGATIVE = Interval(0.0, math.inf)                      # [0, inf): rates, decays
POSITIVE = Interval(0.0, math.inf, low_closed=False)       # (0, inf): eps, norms, gammas
UNIT_OPEN = Interval(0.0, 1.0)                             # [0, 1): momentum, betas, alpha
UNIT = Interval(0.0, 1.0, high_closed=True)                # [0, 1]: rho, start_factor
