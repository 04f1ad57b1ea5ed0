"""Random numbers: zerograd draws from NumPy's global random state, as DeZero does.

Layer initialisation, dropout masks and the DataLoader's shuffling use ``np.random`` (CuPy's
global state for GPU arrays), with DeZero's calls in DeZero's order, so a book script seeded
with ``np.random.seed`` prints the same numbers. One data set reseeds it, because DeZero's
does and the book's printed numbers depend on it: ``get_spiral``/``Spiral`` (pass
``seed_global=False`` to keep the global state as it is).
``seed(n)`` seeds everything zerograd draws from; ``get_state``/``set_state`` save and restore
it (the command line's ``--resume`` uses them).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from zerograd.backend import cupy_module


def seed(n: int) -> None:
    """Seeds NumPy's global random state and, when CuPy runs here, CuPy's."""
    np.random.seed(n)
    cp = cupy_module()
    if cp is not None:
        cp.random.seed(n)


def get_state() -> dict[str, dict[str, Any]]:
    """A picklable snapshot of NumPy's global random state (CuPy's cannot be captured)."""
    state = np.random.get_state(legacy=True)
    # The global RandomState is an MT19937, which legacy=True gives as a 5-tuple; the dict
    # form is for other bit generators.
    if not isinstance(state, tuple):
        raise TypeError(f"random_state.get_state: NumPy's global random state is a "
                        f"{state.get('bit_generator')}, expected MT19937")
    name, keys, pos, has_gauss, cached_gaussian = state
    return {"numpy": {"name": name, "keys": keys.copy(), "pos": int(pos),
                      "has_gauss": int(has_gauss), "cached_gaussian": float(cached_gaussian)}}


def set_state(state: Mapping[str, Mapping[str, Any]]) -> None:
    """Restores a snapshot taken by ``get_state``."""
    s = state["numpy"]
    np.random.set_state((s["name"], np.asarray(s["keys"], dtype=np.uint32), int(s["pos"]),
                         int(s["has_gauss"]), float(s["cached_gaussian"])))


__all__ = ["get_state", "seed", "set_state"]
