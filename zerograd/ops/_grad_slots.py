"""Helpers of the Grad nodes whose outputs are only the gradients asked for.

A Grad node (``LSTMCellGrad``, ``LinearGrad``, ...) computes the gradients whose flag in
``needs`` is set and returns just those, in order; its op's backward, and its own backward
receiving their gradients, spread them back over one slot per input.
"""

from __future__ import annotations

from typing import Any


def in_slots(needs: tuple, values: Any) -> tuple:
    """``values`` (one per set flag of ``needs``, in order; a single value for one flag)
    spread over len(needs) slots, None where the flag is not set."""
    if not isinstance(values, (tuple, list)):
        values = (values,)
    it = iter(values)
    return tuple(next(it) if need else None for need in needs)


def plus(total: Any, term: Any) -> Any:
    """``total + term``, where a None total means no term yet."""
    return term if total is None else total + term
