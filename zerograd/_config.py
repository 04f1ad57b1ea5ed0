"""Mode flags (``Config``) and the context managers that switch them.

The flags are thread-local: a ``no_grad()`` block in one thread does not turn off
graph recording in another. DeZero's spelling still works: ``Config.enable_backprop``
and ``Config.train`` read and write the calling thread's value.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator


class _ThreadState(threading.local):
    """Per-thread flag values; every new thread starts from the defaults."""

    def __init__(self) -> None:
        self.enable_backprop = True
        self.train = True


# The engine reads this object directly on its hot path (one attribute lookup).
_state = _ThreadState()

_FLAGS = ("enable_backprop", "train")


class _ConfigMeta(type):
    """Routes class-attribute access on ``Config`` to the thread-local state."""

    def __getattr__(cls, name: str):
        if name in _FLAGS:
            return getattr(_state, name)
        raise AttributeError(f"Config has no flag {name!r}; flags are {', '.join(_FLAGS)}")

    def __setattr__(cls, name: str, value) -> None:
        if name not in _FLAGS:
            raise AttributeError(f"Config has no flag {name!r}; flags are {', '.join(_FLAGS)}")
        setattr(_state, name, value)


class Config(metaclass=_ConfigMeta):
    """``Config.enable_backprop``: record graphs. ``Config.train``: training mode."""


@contextlib.contextmanager
def using_config(name: str, value) -> Iterator[None]:
    """Set ``Config.<name>`` to ``value`` inside the ``with`` block (this thread only)."""
    old_value = getattr(Config, name)
    setattr(Config, name, value)
    try:
        yield
    finally:
        setattr(Config, name, old_value)


def no_grad():
    """Run without recording a graph: outputs have no creator and keep no inputs alive."""
    return using_config("enable_backprop", False)


def test_mode():
    """Inference mode: dropout is the identity, batch norm uses its running statistics."""
    return using_config("train", False)


# pytest would otherwise try to collect `test_mode` when a test module imports it.
test_mode.__test__ = False
