"""Safe, atomic saving and loading of arrays (.npz) and metadata (.json).

Every writer goes through :func:`atomic_write`: the bytes go to a temporary file in the
destination's directory, are flushed to disk, and only then replace the destination with
``os.replace`` (atomic on POSIX and Windows). An interrupted or failing write therefore
leaves the previous file intact and no half-written file behind.

Every reader raises :class:`CorruptFileError` (a ``ValueError``) naming the file when it is
truncated, not the expected format, or would need pickle to load (``allow_pickle=False``
always: an .npz from the internet cannot run code).

Nested state (an optimizer's per-parameter arrays next to its scalar settings) is stored in
one .npz by :func:`save_state` / :func:`load_state`: the arrays under their own keys and the
tree's shape, with the scalars, as a JSON string under the key ``__tree__``.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import zipfile
import zlib
from collections.abc import Iterator, Mapping
from typing import IO, Any

import numpy as np

from zerograd.backend import as_numpy
from zerograd.errors import ZerogradError

__all__ = [
    "CorruptFileError", "atomic_write", "save_npz", "load_npz", "save_json", "load_json",
    "save_state", "load_state", "npz_path",
]

_TREE_KEY = "__tree__"
_ARRAY_TAG = "__array__"


class CorruptFileError(ZerogradError, ValueError):
    """A file exists but cannot be read as what it should be (truncated, wrong format)."""


def npz_path(path: str | os.PathLike) -> str:
    """``path`` with an ``.npz`` suffix added when it has none (``np.savez``'s rule)."""
    path = os.fspath(path)
    return path if path.endswith(".npz") else path + ".npz"


def _default_file_mode(path: str) -> int:
    """The existing file's permissions, else 0666 less the process umask."""
    try:
        return os.stat(path).st_mode & 0o777
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "wb") -> Iterator[IO]:
    """Open a temporary file next to ``path`` for writing; on success it replaces ``path``.

    ``mode`` is ``"wb"`` (bytes) or ``"w"`` (UTF-8 text). If the ``with`` body raises
    (including KeyboardInterrupt), the temporary file is removed and ``path`` is untouched.
    """
    if mode not in ("wb", "w"):
        raise ValueError(f"atomic_write: mode must be 'wb' or 'w', got {mode!r}")
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp_path = tempfile.mkstemp(dir=directory, prefix="." + os.path.basename(path) + ".",
                                    suffix=".tmp")
    try:
        encoding = None if "b" in mode else "utf-8"
        with os.fdopen(fd, mode, encoding=encoding) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        # mkstemp creates the file private (0600); give it the mode a plain open() would.
        os.chmod(tmp_path, _default_file_mode(path))
        os.replace(tmp_path, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_path)
        raise


def save_npz(path: str | os.PathLike, arrays: Mapping[str, Any], compressed: bool = True) -> str:
    """Write ``arrays`` (name -> array, NumPy or CuPy) to ``path`` atomically; returns the path.

    ``.npz`` is appended when ``path`` has no such suffix, as ``np.savez`` does. Values must
    be arrays or scalars (no ``None``, no objects): anything that would need pickle is refused.
    """
    path = npz_path(path)
    converted = {}
    for key, value in arrays.items():
        if value is None:
            raise ValueError(f"save_npz({path!r}): entry {key!r} is None; only arrays can be saved")
        array = as_numpy(value)
        if array.dtype == object:
            raise ValueError(f"save_npz({path!r}): entry {key!r} is an object array, which would "
                             "need pickle to load; store numeric or string arrays only")
        converted[key] = array
    writer = np.savez_compressed if compressed else np.savez
    with atomic_write(path, "wb") as f:
        writer(f, **converted)
    return path


def load_npz(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Read every array of an .npz file into a dict (NumPy arrays, in the file's key order).

    Raises FileNotFoundError if there is no such file (``path`` and ``path + '.npz'`` are
    tried) and CorruptFileError if it is truncated, not an .npz, or holds object arrays.
    """
    path = os.fspath(path)
    if not os.path.exists(path) and os.path.exists(path + ".npz"):
        path += ".npz"
    if not os.path.exists(path):
        raise FileNotFoundError(f"load_npz: no such file: {path!r}")
    try:
        with np.load(path, allow_pickle=False) as npz:
            if not isinstance(npz, np.lib.npyio.NpzFile):
                raise CorruptFileError(f"load_npz: {path!r} is a single .npy array, not an .npz "
                                       "archive of named arrays")
            return {key: npz[key] for key in npz.files}
    except CorruptFileError:
        raise
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError, KeyError) as e:
        raise CorruptFileError(
            f"load_npz: cannot read {path!r}: the file is truncated, corrupt or not an .npz "
            f"archive of plain arrays ({type(e).__name__}: {e})"
        ) from e


def _json_default(value):
    # NumPy scalars and small arrays show up in metrics and settings; JSON wants Python types.
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"save_json: {type(value).__name__} is not JSON serialisable")


def save_json(path: str | os.PathLike, obj: Any, indent: int | None = 2) -> str:
    """Write ``obj`` as JSON (NumPy scalars/arrays converted) to ``path`` atomically."""
    path = os.fspath(path)
    text = json.dumps(obj, indent=indent, default=_json_default, allow_nan=True)
    with atomic_write(path, "w") as f:
        f.write(text)
        f.write("\n")
    return path


def load_json(path: str | os.PathLike) -> Any:
    """Read a JSON file; CorruptFileError naming the file if it is not valid JSON."""
    path = os.fspath(path)
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CorruptFileError(f"load_json: {path!r} is not valid JSON (truncated or corrupt): "
                               f"{e}") from e


def _split_tree(tree: Any, arrays: dict, prefix: str) -> Any:
    """Replace every array in ``tree`` by a reference, collecting the arrays by key."""
    if isinstance(tree, Mapping):
        out = {}
        for key, value in tree.items():
            if not isinstance(key, str):
                raise TypeError(f"save_state: dict keys must be str, got {key!r} at {prefix!r}")
            out[key] = _split_tree(value, arrays, f"{prefix}/{key}" if prefix else key)
        return out
    if isinstance(tree, (list, tuple)):
        return [_split_tree(v, arrays, f"{prefix}/{i}" if prefix else str(i))
                for i, v in enumerate(tree)]
    if isinstance(tree, np.generic):
        return tree.item()
    if tree is None or isinstance(tree, (bool, int, float, str)):
        return tree
    if hasattr(tree, "shape") and hasattr(tree, "dtype"):
        key = prefix or "array"
        if key in arrays or key == _TREE_KEY:  # 'a/b' as one key and as a nested path
            key = f"{key}#{len(arrays)}"
        arrays[key] = as_numpy(tree)
        return {_ARRAY_TAG: key}
    raise TypeError(f"save_state: cannot store {type(tree).__name__} at {prefix!r}; use arrays, "
                    "numbers, strings, None, lists and dicts")


def _join_tree(tree: Any, arrays: Mapping[str, np.ndarray], path: str) -> Any:
    if isinstance(tree, dict):
        if set(tree) == {_ARRAY_TAG}:
            key = tree[_ARRAY_TAG]
            if key not in arrays:
                raise CorruptFileError(f"load_state: {path!r} lists array {key!r} but the file "
                                       "does not contain it")
            return arrays[key]
        return {k: _join_tree(v, arrays, path) for k, v in tree.items()}
    if isinstance(tree, list):
        return [_join_tree(v, arrays, path) for v in tree]
    return tree


def save_state(path: str | os.PathLike, state: Any, compressed: bool = True) -> str:
    """Save a tree of dicts/lists holding arrays and JSON scalars to one .npz, atomically.

    Arrays are stored under '/'-joined keys (``state/3/m``); the structure and the scalars go
    into a JSON string under ``__tree__``. Read it back with :func:`load_state`.
    """
    arrays: dict[str, np.ndarray] = {}
    skeleton = _split_tree(state, arrays, "")
    arrays[_TREE_KEY] = np.array(json.dumps(skeleton, default=_json_default))
    return save_npz(path, arrays, compressed=compressed)


def load_state(path: str | os.PathLike) -> Any:
    """Read a tree written by :func:`save_state` (arrays come back as NumPy arrays)."""
    arrays = load_npz(path)
    if _TREE_KEY not in arrays:
        raise CorruptFileError(f"load_state: {os.fspath(path)!r} has no {_TREE_KEY!r} entry; it "
                               "was not written by save_state (use load_npz for plain arrays)")
    try:
        skeleton = json.loads(str(arrays.pop(_TREE_KEY)))
    except json.JSONDecodeError as e:
        raise CorruptFileError(f"load_state: the structure stored in {os.fspath(path)!r} is not "
                               f"valid JSON: {e}") from e
    return _join_tree(skeleton, arrays, os.fspath(path))
