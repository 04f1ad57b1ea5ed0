"""Transforms: callables applied to one example, most of them also to a whole batch.

Every transform here works on a single example (``t(x)``, DeZero's protocol) and, when
``t.batchable`` is true, on a batch at once (``t.apply_batch(xs)``, examples along axis 0),
which is what lets the ``DataLoader`` fetch and transform a batch with a few NumPy calls.
``apply_batch(t, xs)`` handles any callable, falling back to one call per example.

Array conventions are DeZero's: images are channel-first, ``(C, H, W)`` per example and
``(N, C, H, W)`` per batch. Image transforms that need Pillow import it only when they run, so
``import zerograd.transforms`` needs NumPy only.

Types: an example is an array (NumPy or CuPy) or a PIL image, and a transform may return
either (``ToPIL``, ``ToArray``); Pillow is optional and CuPy untyped, so examples and batches
are typed ``Any``, and a transform is ``Callable[[Any], Any]`` (:data:`TransformLike`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any, Protocol, cast

import numpy as np
from numpy.typing import DTypeLike

from zerograd.backend import get_array_module
from zerograd.backend.array_utils import pair
from zerograd.data._batch import stack_batch
from zerograd.errors import DTypeError, ShapeError

# What a dataset or apply_batch accepts as a transform: a Transform or any function of one
# example (DeZero's protocol).
TransformLike = Callable[[Any], Any]


class _Batchable(Protocol):
    """A transform that also takes a whole batch (``batchable`` true)."""

    def apply_batch(self, xs: Any) -> Any: ...


def _pil_image_module() -> Any:
    try:
        from PIL import Image
    except ImportError as error:  # pragma: no cover - Pillow is installed in the test setup
        raise ImportError("this image transform needs Pillow: pip install pillow") from error
    return Image


def _is_pil_image(x: object) -> bool:
    # Checked without importing Pillow: a PIL image's class lives in a PIL.* module.
    return type(x).__module__.split(".")[0] == "PIL"


def apply_batch(transform: TransformLike | None, xs: Any) -> Any:
    """``transform`` applied to every example of the batch ``xs`` (examples along axis 0).

    Uses ``transform.apply_batch`` when the transform is batchable, else calls it once per
    example and stacks the results (DeZero's behaviour, the fallback for plain functions).
    """
    if transform is None:
        return xs
    if getattr(transform, "batchable", False):  # DeZero-style duck typing, not a base class
        return cast(_Batchable, transform).apply_batch(xs)
    return stack_batch([transform(x) for x in xs], _name(transform), "transformed examples")


def _name(transform: object) -> str:
    return getattr(transform, "__name__", None) or type(transform).__name__


class Transform:
    """Base class: ``__call__`` transforms one example; ``apply_batch`` a stack of them.

    The default ``apply_batch`` loops over the examples; subclasses that can do better with
    one array operation override it.
    """

    batchable = True

    def __call__(self, x: Any) -> Any:
        raise NotImplementedError

    def apply_batch(self, xs: Any) -> Any:
        return stack_batch([self(x) for x in xs], type(self).__name__, "transformed examples")

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_"))
        return f"{type(self).__name__}({fields})"


class Identity(Transform):
    """Returns its input unchanged (the default transform of a Dataset)."""

    def __call__(self, x: Any) -> Any:
        return x

    def apply_batch(self, xs: Any) -> Any:
        return xs


class Compose(Transform):
    """Applies ``transforms`` in order. ``Compose([])`` is the identity."""

    def __init__(self, transforms: Iterable[TransformLike] | None = None) -> None:
        self.transforms = list(transforms) if transforms is not None else []

    @property
    def batchable(self) -> bool:  # type: ignore[override]
        return all(getattr(t, "batchable", False) for t in self.transforms)

    def __call__(self, x: Any) -> Any:
        for t in self.transforms:
            x = t(x)
        return x

    def apply_batch(self, xs: Any) -> Any:
        if not self.batchable:
            return stack_batch([self(x) for x in xs], "Compose", "transformed examples")
        for t in self.transforms:
            xs = cast(_Batchable, t).apply_batch(xs)  # every one is batchable (checked above)
        return xs


# ---------------------------------------------------------------------------------------------
# Array transforms
# ---------------------------------------------------------------------------------------------
class Normalize(Transform):
    """``(x - mean) / std``, with ``mean``/``std`` scalars or one value per channel.

    Per-channel values apply along the channel axis: axis 0 of an example ``(C, ...)``, axis 1
    of a batch ``(N, C, ...)``. A float input keeps its dtype (float32 stays float32); an
    integer input becomes float64 (NumPy's true division), with no wrap-around.
    """

    def __init__(self, mean: float | Sequence[float] = 0,
                 std: float | Sequence[float] = 1) -> None:
        self.mean = mean
        self.std = std
        if np.any(np.asarray(std) == 0):
            raise ValueError(f"Normalize: std must be non-zero, got {std!r}")

    def _stats(self, x: Any, channel_axis: int) -> tuple[np.dtype, Any, Any]:
        xp = get_array_module(x)
        dtype = x.dtype if np.issubdtype(x.dtype, np.floating) else np.dtype(np.float64)
        stats = []
        for name, given in (("mean", self.mean), ("std", self.std)):
            value = np.asarray(given, dtype=dtype)
            if value.ndim > 1:
                raise ShapeError(f"Normalize: {name} must be a scalar or a 1-D sequence, "
                                 f"got shape {value.shape}")
            if value.size == 1:
                value = value.reshape(())
            elif value.ndim == 1:
                if x.ndim <= channel_axis or x.shape[channel_axis] != value.size:
                    raise ShapeError(
                        f"Normalize: {value.size} per-channel {name} values for an input of "
                        f"shape {x.shape} ({x.dtype}); expected channels along axis "
                        f"{channel_axis} of size {value.size}")
                shape = [1] * x.ndim
                shape[channel_axis] = value.size
                value = value.reshape(shape)
            stats.append(xp.asarray(value))
        return dtype, stats[0], stats[1]

    def _normalize(self, x: Any, channel_axis: int) -> Any:
        x = _as_array(x, "Normalize")
        dtype, mean, std = self._stats(x, channel_axis)
        return (x.astype(dtype, copy=False) - mean) / std

    def __call__(self, x: Any) -> Any:
        return self._normalize(x, 0)

    def apply_batch(self, xs: Any) -> Any:
        return self._normalize(xs, 1)


class Flatten(Transform):
    """One example to 1-D; a batch ``(N, ...)`` to ``(N, -1)``."""

    def __call__(self, x: Any) -> Any:
        return _as_array(x, "Flatten").reshape(-1)

    def apply_batch(self, xs: Any) -> Any:
        xs = _as_array(xs, "Flatten")
        return xs.reshape(len(xs), -1)


class AsType(Transform):
    """Casts to ``dtype`` (no copy when the dtype already matches)."""

    def __init__(self, dtype: DTypeLike = np.float32) -> None:
        self.dtype = dtype

    def __call__(self, x: Any) -> Any:
        return _as_array(x, type(self).__name__).astype(self.dtype, copy=False)

    def apply_batch(self, xs: Any) -> Any:
        return self(xs)


class ToFloat(AsType):
    """Casts to a float dtype (default float32). DeZero's ``ToFloat`` (an ``AsType``)."""

    def __init__(self, dtype: DTypeLike = np.float32) -> None:
        super().__init__(dtype)


class ToInt(AsType):
    """Casts to an integer dtype (default: NumPy's default int, int64)."""

    def __init__(self, dtype: DTypeLike = int) -> None:
        super().__init__(dtype)


def _as_array(x: Any, op: str) -> Any:
    if _is_pil_image(x):
        raise DTypeError(f"{op}: got a PIL image; convert it with ToArray() first")
    if hasattr(x, "shape") and hasattr(x, "dtype"):  # NumPy or CuPy arrays, NumPy scalars
        return x
    return np.asarray(x)


# ---------------------------------------------------------------------------------------------
# Image transforms (Pillow only when given PIL images)
# ---------------------------------------------------------------------------------------------
class Convert(Transform):
    """PIL image to ``mode`` (``'RGB'``, ``'L'``, ...; ``'BGR'`` swaps the channels of RGB)."""

    batchable = False

    def __init__(self, mode: str = "RGB") -> None:
        self.mode = mode

    def __call__(self, img: Any) -> Any:
        Image = _pil_image_module()
        if self.mode == "BGR":
            r, g, b = img.convert("RGB").split()
            return Image.merge("RGB", (b, g, r))
        return img.convert(self.mode)


class Resize(Transform):
    """PIL image resized to ``size`` = ``(width, height)`` (an int means a square).

    ``mode`` is a Pillow resampling filter; ``None`` means bilinear.
    """

    batchable = False

    def __init__(self, size: int | tuple[int, int] | list[int], mode: int | None = None) -> None:
        self.size = pair(size)
        self.mode = mode

    def __call__(self, img: Any) -> Any:
        Image = _pil_image_module()
        mode = Image.BILINEAR if self.mode is None else self.mode
        return img.resize(self.size, mode)


class CenterCrop(Transform):
    """The central ``size`` = ``(width, height)`` region of a PIL image or of an array.

    Arrays are cropped in their last two axes (``(C, H, W)``, ``(H, W)`` or a batch
    ``(N, C, H, W)``); when the margin is odd the extra pixel is cut from the right/bottom.
    """

    def __init__(self, size: int | tuple[int, int] | list[int]) -> None:
        self.size = pair(size)

    def _box(self, W: int, H: int) -> tuple[int, int, int, int]:
        OW, OH = self.size
        if OW > W or OH > H:
            raise ShapeError(f"CenterCrop: crop size (width, height) = {self.size} is larger "
                             f"than the image's ({W}, {H})")
        left, top = (W - OW) // 2, (H - OH) // 2
        return left, top, left + OW, top + OH

    def __call__(self, img: Any) -> Any:
        if _is_pil_image(img):
            return img.crop(self._box(*img.size))
        x = _as_array(img, "CenterCrop")
        if x.ndim < 2:
            raise ShapeError(f"CenterCrop: expected an image (..., H, W), got shape {x.shape}")
        left, top, right, bottom = self._box(x.shape[-1], x.shape[-2])
        return x[..., top:bottom, left:right]

    def apply_batch(self, xs: Any) -> Any:
        return self(xs)


class ToArray(Transform):
    """PIL image ``(H, W, C)`` to a channel-first array ``(C, H, W)`` of ``dtype``.

    Grayscale images become ``(1, H, W)``. A NumPy array passes through unchanged (DeZero).
    """

    batchable = False

    def __init__(self, dtype: DTypeLike = np.float32) -> None:
        self.dtype = dtype

    def __call__(self, img: Any) -> Any:
        if isinstance(img, np.ndarray):
            return img
        if not _is_pil_image(img):
            raise DTypeError(f"ToArray: expected a PIL image or a NumPy array, "
                             f"got {type(img).__name__}")
        x = np.asarray(img)
        x = x[np.newaxis] if x.ndim == 2 else x.transpose(2, 0, 1)
        return x.astype(self.dtype)


class ToPIL(Transform):
    """Channel-first array ``(C, H, W)`` (or ``(H, W)``) to a PIL image.

    A single channel gives a grayscale image. Pillow wants uint8 for multi-channel images.
    """

    batchable = False

    def __call__(self, x: Any) -> Any:
        Image = _pil_image_module()
        x = np.asarray(x)
        if x.ndim == 3:
            x = x[0] if x.shape[0] == 1 else x.transpose(1, 2, 0)
        elif x.ndim != 2:
            raise ShapeError(f"ToPIL: expected (C, H, W) or (H, W), got shape {x.shape}")
        try:
            return Image.fromarray(x)
        except TypeError as error:
            raise DTypeError(f"ToPIL: Pillow cannot make an image from {x.dtype} {x.shape} "
                             f"(convert with AsType(np.uint8) first): {error}") from error


class RandomHorizontalFlip(Transform):
    """Mirrors the image left-right with probability ``p``.

    Works on PIL images and on arrays (last axis is the width), and on a batch, where each
    example is flipped independently. The coin is ``rng.random() < p`` per example, drawn from
    ``rng`` (a ``np.random.Generator``/``RandomState``) or, by default, NumPy's global random
    state; a batch draws its ``N`` coins in one call, the same numbers as ``N`` single calls.
    """

    def __init__(self, p: float = 0.5,
                 rng: np.random.Generator | np.random.RandomState | None = None) -> None:
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"RandomHorizontalFlip: p must be in [0, 1], got {p}")
        self.p = p
        self.rng = rng

    def _coins(self, n: int | None) -> Any:
        rng = np.random if self.rng is None else self.rng
        draw = rng.random_sample if hasattr(rng, "random_sample") else rng.random
        return draw() < self.p if n is None else draw(n) < self.p

    def __call__(self, img: Any) -> Any:
        if not self._coins(None):
            return img
        if _is_pil_image(img):
            Image = _pil_image_module()
            return img.transpose(Image.FLIP_LEFT_RIGHT)
        return _as_array(img, "RandomHorizontalFlip")[..., ::-1]

    def apply_batch(self, xs: Any) -> Any:
        xs = _as_array(xs, "RandomHorizontalFlip")
        flip = self._coins(len(xs))
        if not flip.any():
            return xs
        out = xs.copy()
        out[flip] = xs[flip][..., ::-1]
        return out


__all__ = [
    "AsType", "CenterCrop", "Compose", "Convert", "Flatten", "Identity", "Normalize",
    "RandomHorizontalFlip", "Resize", "ToArray", "ToFloat", "ToInt", "ToPIL", "Transform",
    "TransformLike", "apply_batch",
]
