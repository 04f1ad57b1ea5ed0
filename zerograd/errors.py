"""Exceptions raised by zerograd. Each one names the op and the inputs involved."""


class ZerogradError(Exception):
    """Base class of zerograd's own errors."""


class ShapeError(ZerogradError, ValueError):
    """Input shapes do not fit the op (a ValueError, as NumPy would raise)."""


class DTypeError(ZerogradError, TypeError):
    """Input types or dtypes do not fit the op (a TypeError, as NumPy would raise)."""


class GraphError(ZerogradError, RuntimeError):
    """The graph cannot be used as asked (walked again after backward(retain_graph=False),
    a backward that returned something other than gradients)."""


class InPlaceError(GraphError):
    """An array that a backward needs was changed in place after the forward pass recorded
    it (``x.data -= ...`` between forward and backward): the gradient would be wrong."""


class AnomalyError(ZerogradError, FloatingPointError):
    """Anomaly mode (``zerograd.detect_anomaly()``) found NaN or infinity in an op's output
    or in the gradient a backward returned (a FloatingPointError, as NumPy's
    ``np.seterr(all="raise")`` raises)."""


def describe(arrays) -> str:
    """'float32 (2, 3), int64 (4,)' for a sequence of arrays (or anything with shape/dtype)."""
    parts = []
    for a in arrays:
        shape = getattr(a, "shape", None)
        dtype = getattr(a, "dtype", None)
        if shape is None:
            parts.append(type(a).__name__)
        else:
            parts.append(f"{dtype} {tuple(shape)}")
    return ", ".join(parts)
