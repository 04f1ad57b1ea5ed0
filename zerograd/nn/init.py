"""Weight initialisers, shared by every layer.

An initialiser is a callable ``init(shape, dtype=np.float32, fan_in=None, fan_out=None)``
returning a NumPy array of that shape and dtype. The factories below build them::

    L.Linear(100, initializer=init.he_normal())
    L.Linear(100, initializer="xavier_uniform")       # by name, default settings

Fans: a layer passes ``fan_in``/``fan_out`` when it knows them; otherwise they follow from
the shape by :func:`compute_fans` (2-D ``(in, out)``: zerograd's Linear layout; N-D
``(out, in, *kernel)``: the convolution layout).

Initialisers are small objects (not closures), so layers holding them pickle and deep-copy.
Random draws come from NumPy's global random state (``np.random.seed`` reproduces them, in the
same order as DeZero) unless an ``rng`` (``np.random.Generator``) is given. Scaling happens in
the target dtype, so a float32 weight stays float32 (DeZero's became float64 under NumPy 2).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from numpy.typing import DTypeLike

__all__ = [
    "Initializer", "compute_fans", "get_initializer",
    "normal", "uniform", "lecun_normal", "xavier_normal", "xavier_uniform", "glorot_normal",
    "glorot_uniform", "he_normal", "he_uniform", "kaiming_normal", "kaiming_uniform",
    "zeros", "ones", "constant", "dezero_default",
]

Initializer = Callable[..., np.ndarray]
# What the layers' ``initializer=`` accepts: see get_initializer.
InitializerLike = Initializer | str | float | None
# Where an initialiser draws from: None is NumPy's global state (DeZero's draws).
RandomSource = np.random.Generator | np.random.RandomState | None


def compute_fans(shape: tuple) -> tuple[int, int]:
    """(fan_in, fan_out) of a weight: (in, out) for 2-D, (in * k, out * k) for (out, in, *k)."""
    shape = tuple(int(s) for s in shape)
    if len(shape) == 0:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    if len(shape) == 2:
        return shape[0], shape[1]
    receptive = math.prod(shape[2:])
    return shape[1] * receptive, shape[0] * receptive


def _fans(shape: tuple[int, ...], fan_in: int | None,
          fan_out: int | None) -> tuple[int, int]:
    default_in, default_out = compute_fans(shape)
    return (default_in if fan_in is None else int(fan_in),
            default_out if fan_out is None else int(fan_out))


def _standard_normal(shape: tuple[int, ...], rng: RandomSource) -> np.ndarray:
    # np.random.randn(*shape) is DeZero's draw; keep that exact call for the global state.
    if rng is None:
        return np.random.randn(*shape)
    return rng.standard_normal(shape)


def _uniform(low: float, high: float, shape: tuple[int, ...],
             rng: RandomSource) -> np.ndarray:
    if rng is None:
        return np.random.uniform(low, high, size=shape)
    return rng.uniform(low, high, size=shape)


def _scaled_normal(shape: tuple[int, ...], dtype: DTypeLike, std: float, mean: float,
                   rng: RandomSource) -> np.ndarray:
    # Cast first, then scale by a scalar of the same dtype: float32 stays float32 and equals
    # DeZero's float32 result (randn(...).astype(float32) * float32(std)) bit for bit.
    w = _standard_normal(shape, rng).astype(dtype)
    w *= w.dtype.type(std)
    if mean != 0.0:
        w += w.dtype.type(mean)
    return w


class _Initializer:
    """Base of the initialisers that the factories below return.

    An initialiser is an object, its settings kept as attributes, and not a closure over
    them: a layer stores its initialiser (it draws the lazy weights at the first call), and
    a closure cannot be pickled, so neither could any layer or model holding one. A class
    defined at module level pickles and deep-copies like any other value (an ``rng`` given
    to it is copied along, so a copy draws what the original would have drawn).
    """

    __name__ = "initializer"  # subclasses' instances set their own, shown by repr()

    def __call__(self, shape: tuple[int, ...], dtype: DTypeLike = np.float32,
                 fan_in: int | None = None, fan_out: int | None = None) -> np.ndarray:
        raise NotImplementedError

    def __repr__(self) -> str:
        return self.__name__


class _Normal(_Initializer):
    def __init__(self, std: float, mean: float, rng: RandomSource) -> None:
        self.std, self.mean, self.rng = std, mean, rng
        self.__name__ = f"normal(std={std}, mean={mean})"

    def __call__(self, shape: tuple[int, ...], dtype: DTypeLike = np.float32,
                 fan_in: int | None = None, fan_out: int | None = None) -> np.ndarray:
        return _scaled_normal(tuple(shape), dtype, self.std, self.mean, self.rng)


def normal(std: float = 1.0, mean: float = 0.0, rng: RandomSource = None) -> Initializer:
    """Draw from N(mean, std^2)."""
    return _Normal(std, mean, rng)


class _Uniform(_Initializer):
    def __init__(self, low: float, high: float, rng: RandomSource) -> None:
        self.low, self.high, self.rng = low, high, rng
        self.__name__ = f"uniform(low={low}, high={high})"

    def __call__(self, shape: tuple[int, ...], dtype: DTypeLike = np.float32,
                 fan_in: int | None = None, fan_out: int | None = None) -> np.ndarray:
        return _uniform(self.low, self.high, tuple(shape), self.rng).astype(dtype)


def uniform(scale: float = 0.05, low: float | None = None, high: float | None = None,
            rng: RandomSource = None) -> Initializer:
    """Draw from U(low, high); by default U(-scale, scale)."""
    return _Uniform(-scale if low is None else low, scale if high is None else high, rng)


class _LecunNormal(_Initializer):
    __name__ = "lecun_normal"

    def __init__(self, scale: float, rng: RandomSource) -> None:
        self.scale, self.rng = scale, rng

    def __call__(self, shape: tuple[int, ...], dtype: DTypeLike = np.float32,
                 fan_in: int | None = None, fan_out: int | None = None) -> np.ndarray:
        fan_in, _ = _fans(shape, fan_in, fan_out)
        return _scaled_normal(tuple(shape), dtype, math.sqrt(self.scale / fan_in), 0.0,
                              self.rng)


def lecun_normal(scale: float = 1.0, rng: RandomSource = None) -> Initializer:
    """N(0, scale / fan_in): randn * sqrt(scale / fan_in). DeZero's default for Linear/Conv."""
    return _LecunNormal(scale, rng)


def dezero_default(rng: RandomSource = None) -> Initializer:
    """DeZero's Linear/Conv weights: ``randn(*shape) * sqrt(1 / fan_in)`` (lecun_normal)."""
    return lecun_normal(1.0, rng)


class _XavierNormal(_Initializer):
    __name__ = "xavier_normal"

    def __init__(self, gain: float, rng: RandomSource) -> None:
        self.gain, self.rng = gain, rng

    def __call__(self, shape: tuple[int, ...], dtype: DTypeLike = np.float32,
                 fan_in: int | None = None, fan_out: int | None = None) -> np.ndarray:
        fan_in, fan_out = _fans(shape, fan_in, fan_out)
        std = self.gain * math.sqrt(2.0 / (fan_in + fan_out))
        return _scaled_normal(tuple(shape), dtype, std, 0.0, self.rng)


def xavier_normal(gain: float = 1.0, rng: RandomSource = None) -> Initializer:
    """Glorot & Bengio (2010): N(0, std^2), std = gain * sqrt(2 / (fan_in + fan_out))."""
    return _XavierNormal(gain, rng)


class _XavierUniform(_Initializer):
    __name__ = "xavier_uniform"

    def __init__(self, gain: float, rng: RandomSource) -> None:
        self.gain, self.rng = gain, rng

    def __call__(self, shape: tuple[int, ...], dtype: DTypeLike = np.float32,
                 fan_in: int | None = None, fan_out: int | None = None) -> np.ndarray:
        fan_in, fan_out = _fans(shape, fan_in, fan_out)
        bound = self.gain * math.sqrt(6.0 / (fan_in + fan_out))
        return _uniform(-bound, bound, tuple(shape), self.rng).astype(dtype)


def xavier_uniform(gain: float = 1.0, rng: RandomSource = None) -> Initializer:
    """Glorot & Bengio (2010): U(-a, a), a = gain * sqrt(6 / (fan_in + fan_out))."""
    return _XavierUniform(gain, rng)


class _HeNormal(_Initializer):
    __name__ = "he_normal"

    def __init__(self, gain: float, rng: RandomSource) -> None:
        self.gain, self.rng = gain, rng

    def __call__(self, shape: tuple[int, ...], dtype: DTypeLike = np.float32,
                 fan_in: int | None = None, fan_out: int | None = None) -> np.ndarray:
        fan_in, _ = _fans(shape, fan_in, fan_out)
        return _scaled_normal(tuple(shape), dtype, self.gain / math.sqrt(fan_in), 0.0,
                              self.rng)


def he_normal(gain: float = math.sqrt(2.0), rng: RandomSource = None) -> Initializer:
    """He et al. (2015): N(0, std^2), std = gain / sqrt(fan_in) (gain sqrt(2) suits ReLU)."""
    return _HeNormal(gain, rng)


class _HeUniform(_Initializer):
    __name__ = "he_uniform"

    def __init__(self, gain: float, rng: RandomSource) -> None:
        self.gain, self.rng = gain, rng

    def __call__(self, shape: tuple[int, ...], dtype: DTypeLike = np.float32,
                 fan_in: int | None = None, fan_out: int | None = None) -> np.ndarray:
        fan_in, _ = _fans(shape, fan_in, fan_out)
        bound = self.gain * math.sqrt(3.0 / fan_in)
        return _uniform(-bound, bound, tuple(shape), self.rng).astype(dtype)


def he_uniform(gain: float = math.sqrt(2.0), rng: RandomSource = None) -> Initializer:
    """He et al. (2015): U(-a, a), a = gain * sqrt(3 / fan_in)."""
    return _HeUniform(gain, rng)


class _Constant(_Initializer):
    def __init__(self, value: float) -> None:
        self.value = value
        self.__name__ = f"constant({value})"

    def __call__(self, shape: tuple[int, ...], dtype: DTypeLike = np.float32,
                 fan_in: int | None = None, fan_out: int | None = None) -> np.ndarray:
        return np.full(tuple(shape), self.value, dtype=dtype)


def constant(value: float) -> Initializer:
    """Every element equal to ``value``."""
    return _Constant(value)


def zeros() -> Initializer:
    """Every element 0 (biases, batch norm's beta)."""
    return constant(0.0)


def ones() -> Initializer:
    """Every element 1 (batch norm's and layer norm's gamma)."""
    return constant(1.0)


glorot_normal = xavier_normal
glorot_uniform = xavier_uniform
kaiming_normal = he_normal
kaiming_uniform = he_uniform

_BY_NAME: dict[str, Callable[[], Initializer]] = {
    "normal": normal, "uniform": uniform, "lecun_normal": lecun_normal,
    "dezero": dezero_default, "dezero_default": dezero_default,
    "xavier_normal": xavier_normal, "xavier_uniform": xavier_uniform,
    "glorot_normal": xavier_normal, "glorot_uniform": xavier_uniform,
    "he_normal": he_normal, "he_uniform": he_uniform,
    "kaiming_normal": he_normal, "kaiming_uniform": he_uniform,
    "zeros": zeros, "ones": ones,
}


def get_initializer(spec: InitializerLike, default: Initializer | None = None) -> Initializer:
    """An initialiser from ``spec``: None (``default``), a name such as "he_normal", a
    callable initialiser, or a number (a constant)."""
    if spec is None:
        if default is None:
            raise ValueError("get_initializer: no initialiser given and no default")
        return default
    if isinstance(spec, str):
        try:
            return _BY_NAME[spec.lower()]()
        except KeyError:
            raise ValueError(f"unknown initialiser {spec!r}; choose one of "
                             f"{', '.join(sorted(_BY_NAME))}") from None
    if isinstance(spec, (int, float)) and not isinstance(spec, bool):
        return constant(float(spec))
    if callable(spec):
        return spec
    raise TypeError(f"an initialiser must be None, a name, a number or a callable "
                    f"(shape, dtype, fan_in, fan_out) -> array; got {type(spec).__name__}")
