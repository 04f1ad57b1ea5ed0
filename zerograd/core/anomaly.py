"""Anomaly mode's checks (``zerograd.detect_anomaly()``), and the error messages that name
where a Function was created.

While the mode is on, ``Function.__call__`` calls :func:`after_forward` for every op: it
raises if the output holds NaN or infinity, and records on the Function the stack of the
code that called it and a checksum of each input array. The engine then calls
:func:`before_backward` (the checksums still match: no input was changed in place, by any
route) and :func:`after_backward` (no gradient holds NaN or infinity) for every Function
recorded that way. Nothing here runs while the mode is off.
"""

from __future__ import annotations

import linecache
import os
import sys
import threading
import types
import zlib

import numpy as np

from zerograd.errors import AnomalyError, InPlaceError, describe

# Frames from files under this directory are zerograd's own; the line to show is the first
# frame outside it (the user's code that called the op, even through layers and functions).
_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep
_STACK_LIMIT = 40
# The Function whose backward is running in this thread (so that an op inside it that
# produces NaN can say where it is).
_current = threading.local()


class _Record:
    """What anomaly mode keeps about a Function: the calling stack (innermost first, as
    (file, line, function name)) and, per input, the array forward saw and its checksum."""

    __slots__ = ("stack", "inputs")

    def __init__(self, stack: list, inputs: list) -> None:
        self.stack = stack
        self.inputs = inputs


def _calling_stack(depth: int) -> list:
    frame: types.FrameType | None = sys._getframe(depth)
    stack: list[tuple[str, int, str]] = []
    while frame is not None and len(stack) < _STACK_LIMIT:
        stack.append((frame.f_code.co_filename, frame.f_lineno, frame.f_code.co_name))
        frame = frame.f_back
    return stack


def _user_frame(stack: list):
    for entry in stack:
        if not os.path.abspath(entry[0]).startswith(_PACKAGE_DIR):
            return entry
    return stack[0] if stack else None


def _format_frame(entry) -> str:
    filename, lineno, name = entry
    line = linecache.getline(filename, lineno).strip()
    return f"{filename}:{lineno} in {name}" + (f": {line}" if line else "")


def _format_stack(stack: list) -> str:
    """The forward stack, outermost call first (as Python prints a traceback)."""
    return "\n".join("  " + _format_frame(entry) for entry in reversed(stack))


def _checksum(a):
    """A CRC-32 of a NumPy array's bytes (None for CuPy arrays: reading them back to the host
    on every op would cost more than the check is worth)."""
    if not isinstance(a, np.ndarray):
        return None
    return zlib.crc32(np.ascontiguousarray(a).view(np.uint8).reshape(-1))


def _not_finite(a) -> str | None:
    """'nan', 'inf' or 'nan and inf' if the float array ``a`` holds them, else None."""
    if a is None or getattr(a, "dtype", None) is None or a.dtype.kind not in "fc":
        return None
    if bool(np.isfinite(a).all()):
        return None
    has_nan = bool(np.isnan(a).any())
    has_inf = bool(np.isinf(a).any())
    return " and ".join(word for word, present in (("nan", has_nan), ("inf", has_inf))
                        if present)


def created_at(f) -> str:
    """' (called at file:line in fn: code)' for a Function recorded in anomaly mode, else
    a hint to turn the mode on."""
    record = getattr(f, "_anomaly", None)
    if record is None:
        return (" (run the forward pass under zerograd.detect_anomaly() to see the line "
                "that called it)")
    entry = _user_frame(record.stack)
    return f" (called at {_format_frame(entry)})" if entry else ""


def _with_stack(error: Exception, f) -> Exception:
    record = getattr(f, "_anomaly", None)
    if record is not None:
        note = f"The forward call of {f.name}, outermost first:\n" + _format_stack(record.stack)
        if hasattr(error, "add_note"):  # Python 3.11+: shown under the traceback
            error.add_note(note)
        else:  # Python 3.10 has no notes: the stack goes into the message itself
            error.args = (f"{error.args[0] if error.args else ''}\n{note}", *error.args[1:])
    return error


# -- the checks -------------------------------------------------------------------------------
def after_forward(f, xs: list, ys: tuple) -> None:
    """Raise AnomalyError if an output of ``f`` holds NaN/inf; record the stack and checksums."""
    stack = _calling_stack(3)  # skip this function and Function.__call__
    f._anomaly = _Record(stack, [(x, _checksum(x)) for x in xs])
    for i, y in enumerate(ys):
        found = _not_finite(y)
        if found:
            bad_inputs = [j for j, x in enumerate(xs) if _not_finite(x)]
            source = (f"inputs {bad_inputs} already held nan/inf" if bad_inputs
                      else "its inputs are finite")
            outer = getattr(_current, "function", None)
            inside = (f"; this ran inside the backward of {outer.name}{created_at(outer)}"
                      if outer is not None else "")
            raise _with_stack(AnomalyError(
                f"anomaly mode: {f.name} produced {found} in output {i} "
                f"({describe([y])}) from inputs {describe(xs) or '(none)'}; {source}"
                f"{created_at(f)}{inside}"
            ), f)


def before_backward(f) -> None:
    """Raise InPlaceError if an input array of ``f`` changed since forward (same array object,
    different bytes). A rebound ``x.data`` (a new array) is not a change in place."""
    _current.function = f
    record = getattr(f, "_anomaly", None)
    if record is None:
        return
    for i, (x, (array, checksum)) in enumerate(zip(f.inputs, record.inputs)):
        if checksum is None or x._data is not array:
            continue
        if _checksum(array) != checksum:
            raise _with_stack(InPlaceError(
                f"{f.name}'s backward reads {input_label(f, x, i)}, whose array was changed in "
                f"place after {f.name} ran (anomaly mode compares checksums, so this catches "
                f"x.data[...] = ... and writes through other references to the array too); "
                f"the gradient would be wrong{created_at(f)}"
            ), f)


def after_backward(f, gxs: tuple) -> None:
    """Raise AnomalyError if a gradient that ``f.backward`` returned holds NaN/inf."""
    _current.function = None
    for i, (x, gx) in enumerate(zip(f.inputs, gxs)):
        if gx is None:
            continue
        found = _not_finite(getattr(gx, "_data", gx))
        if found:
            raise _with_stack(AnomalyError(
                f"anomaly mode: the backward of {f.name} returned {found} in the gradient of "
                f"{input_label(f, x, i)}; {f.name}'s inputs: "
                f"{describe([v._data for v in f.inputs])}{created_at(f)}"
            ), f)


def input_label(f, x, position) -> str:
    """'input 1 named "W" (float32 (3, 4))'."""
    name = f' named "{x.name}"' if x.name else ""
    data = "no data" if x._data is None else f"{x._data.dtype} {tuple(x._data.shape)}"
    return f"input {position}{name} ({data})"
