"""The error export raises (kept apart so that it imports nothing but zerograd.errors)."""

from __future__ import annotations

from zerograd.errors import ZerogradError


class ExportError(ZerogradError):
    """A model cannot be exported to ONNX: an op without a lowering, or a lowering that
    cannot express what the op did (the message names the op and where it sits)."""
