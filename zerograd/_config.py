"""Mode flags (``Config``) and the context managers that switch them.

The flags are thread-local: a ``no_grad()`` block in one thread does not turn off
graph recording in another. DeZero's spelling still works: ``Config.enable_backprop``
and ``Config.train`` read and write the calling thread's value. ``Config.detect_anomaly``
(zerograd's, PyTorch's idea) turns on anomaly mode; ``detect_anomaly()`` switches it for a
``with`` block.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager


class _ThreadState(threading.local):
    """Per-thread flag values; every new thread starts from the defaults."""

    def __init__(self) -> None:
        self.enable_backprop = True
        self.train = True
        self.detect_anomaly = False


# The engine reads this object directly on its hot path (one attribute lookup).
_state = _ThreadState()

# How many threads have anomaly mode on. Function.__call__ tests this plain number on every
# call and reads the thread-local flag only when it is not zero: a thread-local attribute
# costs several times a list item, and anomaly mode must cost nothing while it is off. (A
# thread that ends with the mode on leaves the count up: the other threads then only pay
# the thread-local read.)
_anomaly_threads = [0]

_FLAGS = ("enable_backprop", "train", "detect_anomaly")


def _set_flag(name: str, value: bool) -> None:
    if name == "detect_anomaly":
        value = bool(value)
        if value != _state.detect_anomaly:
            _anomaly_threads[0] += 1 if value else -1
    setattr(_state, name, value)


class _ConfigMeta(type):
    """Routes class-attribute access on ``Config`` to the thread-local state."""

    def __getattr__(cls, name: str) -> bool:
        if name in _FLAGS:
            return getattr(_state, name)
        raise AttributeError(f"Config has no flag {name!r}; flags are {', '.join(_FLAGS)}")

    def __setattr__(cls, name: str, value: bool) -> None:
        if name not in _FLAGS:
            raise AttributeError(f"Config has no flag {name!r}; flags are {', '.join(_FLAGS)}")
        _set_flag(name, value)


class Config(metaclass=_ConfigMeta):
    """``Config.enable_backprop``: record graphs. ``Config.train``: training mode.
    ``Config.detect_anomaly``: anomaly mode (see :func:`detect_anomaly`)."""

    # Declared for type checkers only: with no class attributes, every read and write goes
    # to the metaclass and so to this thread's state.
    enable_backprop: bool
    train: bool
    detect_anomaly: bool


@contextlib.contextmanager
def using_config(name: str, value: bool) -> Iterator[None]:
    """Set ``Config.<name>`` to ``value`` inside the ``with`` block (this thread only)."""
    old_value = getattr(Config, name)
    setattr(Config, name, value)
    try:
        yield
    finally:
        setattr(Config, name, old_value)


def no_grad() -> AbstractContextManager[None]:
    """Run without recording a graph: outputs have no creator and keep no inputs alive."""
    return using_config("enable_backprop", False)


def test_mode() -> AbstractContextManager[None]:
    """Inference mode: dropout is the identity, batch norm uses its running statistics."""
    return using_config("train", False)


def detect_anomaly(enabled: bool = True) -> AbstractContextManager[None]:
    """Anomaly mode inside the ``with`` block (this thread only), for debugging a model that
    produces NaN or infinity, or a gradient that comes out wrong:

    - the first op whose forward output, or whose backward's gradient, contains NaN or
      infinity raises :class:`~zerograd.errors.AnomalyError` naming the op, its input shapes
      and dtypes, and the line of your code that called it (the forward stack is recorded
      for every op while the mode is on);
    - an input array changed in place between forward and backward by any route
      (``x.data[0] = 5`` included, which normal mode cannot see) raises
      :class:`~zerograd.errors.InPlaceError` in backward: each op's inputs are checksummed.

    It slows every op down (a stack capture, a NaN scan and a checksum per op), so turn it
    on to find a problem, not to train. ``Config.detect_anomaly = True`` sets it as a flag.
    ``detect_anomaly(False)`` turns it off inside the block.
    """
    return using_config("detect_anomaly", enabled)


# pytest would otherwise try to collect `test_mode` when a test module imports it. (A type
# checker knows no attributes of a function beyond the standard ones.)
test_mode.__test__ = False  # type: ignore[attr-defined]
