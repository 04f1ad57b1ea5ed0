"""Words for the learner tools: what to call a Variable, how to print a small array.

A Variable's label is its ``name``; an unnamed one is called by the Python name that holds
it in the caller's code (``x`` for ``x = Variable(...)``) when there is one, so a learner's
picture says ``x`` and ``y`` as their code does. That name is only shown, never stored.
"""

from __future__ import annotations

import sys

import numpy as np

from zerograd.backend import as_numpy
from zerograd.core.variable import Variable

# Arrays up to this many elements are shown in full; larger ones by their range.
SMALL = 12


def caller_names(depth: int) -> dict[int, str]:
    """{id(variable): python name} for the Variables bound in the frame ``depth`` levels up.

    In a notebook or a script that frame's locals are the user's namespace; names that
    start with an underscore (IPython's ``_``, ``_1``...) are skipped.
    """
    try:
        frame = sys._getframe(depth + 1)
    except ValueError:
        return {}
    names: dict[int, str] = {}
    for name, value in list(frame.f_locals.items()):
        if isinstance(value, Variable) and not name.startswith("_"):
            names.setdefault(id(value), name)
    return names


def variable_name(v: Variable, names: dict[int, str]) -> str:
    """The name to show for ``v``: its ``name``, else its Python name, else ''."""
    if v.name is not None:
        return v.name
    return names.get(id(v), "")


def shape_dtype(a) -> str:
    """'(2, 3) float32', as DeZero's graph labels write a Variable's array."""
    return f"{tuple(a.shape)} {a.dtype}"


def array_text(a, limit: int = SMALL, one_line: bool = False) -> str:
    """A small array in full (4 significant digits), a large one by its range and mean.

    ``one_line``: rows of a matrix side by side (``[[1, 2], [3, 4]]``) instead of below.
    """
    a = np.asarray(as_numpy(a))
    if a.size <= limit:
        if a.ndim == 0:
            return _number(a.item())
        text = np.array2string(a, precision=4, separator=", ", suppress_small=False,
                               max_line_width=10_000 if one_line else 60,
                               formatter={"float_kind": _number})
        return " ".join(line.strip() for line in text.splitlines()) if one_line else text
    if a.dtype.kind in "fc" or a.dtype.kind in "iu":
        return (f"{a.size} values in [{_number(a.min().item())}, {_number(a.max().item())}],"
                f" mean {_number(a.mean().item())}")
    return f"{a.size} values"


def _number(value) -> str:
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, complex):
        return f"{value:.4g}"
    return f"{float(value):.4g}"


def flat_values(a) -> list:
    """The elements of ``a`` as a flat list of Python numbers (for JSON)."""
    a = np.asarray(as_numpy(a))
    if a.dtype.kind == "b":
        return [bool(v) for v in a.ravel()]
    if a.dtype.kind in "iu":
        return [int(v) for v in a.ravel()]
    return [float(v) for v in a.ravel().astype(np.float64)]
