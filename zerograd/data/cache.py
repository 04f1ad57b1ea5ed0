"""DeZero's ``load_cache_npz`` / ``save_cache_npz``: a dataset's arrays cached as .npz."""

from __future__ import annotations

import os

import numpy as np

from zerograd.data.download import cache_dir


def _cache_path(filename: str, train: bool) -> str:
    name = filename[filename.rfind("/") + 1:]
    return os.path.join(cache_dir(), name + (".train.npz" if train else ".test.npz"))


def load_cache_npz(filename: str, train: bool = False):
    """``(data, label)`` cached for ``filename`` (a URL or name), or ``(None, None)``."""
    path = _cache_path(filename, train)
    if not os.path.exists(path):
        return None, None
    with np.load(path, allow_pickle=False) as loaded:
        return loaded["data"], loaded["label"]


def save_cache_npz(data, label, filename: str, train: bool = False) -> str | None:
    """Caches ``data`` and ``label`` (atomically) unless already cached; returns the path."""
    path = _cache_path(filename, train)
    if os.path.exists(path):
        return None
    from zerograd.serialization import save_npz

    os.makedirs(os.path.dirname(path), exist_ok=True)
    return save_npz(path, {"data": data, "label": label})


__all__ = ["load_cache_npz", "save_cache_npz"]
