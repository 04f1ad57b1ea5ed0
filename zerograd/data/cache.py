"""DeZero's ``load_cache_npz`` / ``save_cache_npz``: a dataset's arrays cached as .npz."""

from __future__ import annotations

import os

from zerograd.data.download import cache_dir
from zerograd.serialization import CorruptFileError, load_npz, save_npz


def _cache_path(filename: str, train: bool) -> str:
    name = filename[filename.rfind("/") + 1:]
    return os.path.join(cache_dir(), name + (".train.npz" if train else ".test.npz"))


def load_cache_npz(filename: str, train: bool = False):
    """``(data, label)`` cached for ``filename`` (a URL or name), or ``(None, None)``.

    A truncated or corrupt cache file raises ``CorruptFileError`` naming it (delete it and the
    data set is rebuilt); nothing is unpickled.
    """
    path = _cache_path(filename, train)
    if not os.path.exists(path):
        return None, None
    arrays = load_npz(path)
    missing = [key for key in ("data", "label") if key not in arrays]
    if missing:
        raise CorruptFileError(f"load_cache_npz: {path!r} has no {' or '.join(missing)} array "
                               f"(it holds {sorted(arrays)}); not a dataset cache")
    return arrays["data"], arrays["label"]


def save_cache_npz(data, label, filename: str, train: bool = False) -> str | None:
    """Caches ``data`` and ``label`` (atomically) unless already cached; returns the path."""
    path = _cache_path(filename, train)
    if os.path.exists(path):
        return None
    os.makedirs(os.path.dirname(path), exist_ok=True)
    return save_npz(path, {"data": data, "label": label})


__all__ = ["load_cache_npz", "save_cache_npz"]
