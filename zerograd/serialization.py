"""Safe, atomic saving and loading of arrays (.npz) and metadata (.json).

Writing. Every writer goes through :func:`atomic_write`: the bytes go to a temporary file in
the destination's directory, are flushed to disk, and only then replace the destination with
``os.replace`` (atomic on POSIX and Windows). An interrupted or failing write therefore
leaves the previous file intact. A write killed outright (``kill -9``, power loss) cannot
remove its temporary file, so temporary files are named after their writer,
``.NAME.zerograd-PID-HOST-XXXXXXXX.tmp``, and the next save in that directory (or
:func:`remove_stale_temp_files`) removes those whose writer process is gone.

Reading. Every reader raises :class:`CorruptFileError` (a ``ValueError``) naming the file
when it is truncated, damaged, not the expected format, or would need pickle to load (an
.npz from the internet cannot run code). :class:`NpzReader` reads the zip directory and
every member's ``.npy`` header (name, shape, dtype, memory order) and checks them, and the
sizes they declare, before any array data is read: a small file that claims or inflates to a
huge array fails before the memory is allocated. A caller that knows what it will receive (a
model's parameters, an optimizer's state) passes it as ``expected`` and every such array must
have that shape; the others together may declare at most :data:`MAX_INFLATION` times the
file's size (so a decompression bomb fails from its directory), unless the caller passes a
larger ``max_bytes``. JSON is refused beyond :data:`MAX_JSON_DEPTH` levels of nesting.

Nested state (an optimizer's per-parameter arrays next to its scalar settings) is stored in
one .npz by :func:`save_state` / :func:`load_state`: the arrays under their own keys and the
tree's shape, with the scalars, as a JSON string under the key ``__tree__``.

The file formats and every check are described in docs/serialization.md.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import re
import socket
import struct
import tempfile
import zipfile
import zlib
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from typing import IO, Any, NamedTuple, cast

import numpy as np

from zerograd.backend import as_numpy
from zerograd.errors import DTypeError, ShapeError, ZerogradError

try:  # zipfile reads LZMA members when Python was built with lzma
    from lzma import LZMAError
except ImportError:  # pragma: no cover - such builds cannot open those members at all
    class LZMAError(Exception):  # type: ignore[no-redef]
        pass

__all__ = [
    "CorruptFileError", "atomic_write", "remove_stale_temp_files", "save_npz", "load_npz",
    "NpyHeader", "NpzReader", "save_json", "load_json", "save_state", "load_state",
    "npz_path", "MAX_LOAD_BYTES", "MAX_INFLATION", "INFLATION_ALLOWANCE", "MAX_JSON_DEPTH",
]

_TREE_KEY = "__tree__"
_ARRAY_TAG = "__array__"

#: Default bound on the bytes one ``load_npz``/``load_state``/``NpzReader`` may allocate for
#: arrays (the sum of the sizes the file declares). VGG16's weights are 0.5 GiB, with Adam's
#: two moments 1.6 GiB. Pass ``max_bytes=`` to read a larger trusted file (``math.inf``: no
#: bound), or raise this module attribute (read at each call).
MAX_LOAD_BYTES = 4 * 2**30

#: Without ``max_bytes=``, the arrays a file declares (those the caller does not expect by
#: shape) may together be at most this many times the file's own size. Deflate expands one
#: byte to at most 1032, so a decompression bomb declares about 1000 times its size; saved
#: weights, optimizer moments and datasets declare 1 to 10 times theirs. A file of mostly
#: zeros can exceed the ratio honestly: its reader passes ``max_bytes=`` (or ``expected=``).
MAX_INFLATION = 100

#: Whatever the file's size, it may declare this much: a small file of zeros is no danger.
INFLATION_ALLOWANCE = 64 * 2**20

#: Deepest nesting of lists/objects accepted in JSON (metadata, the tree of ``save_state``).
#: Without a bound a file of ``[[[[...`` makes the parser raise RecursionError.
MAX_JSON_DEPTH = 100


class CorruptFileError(ZerogradError, ValueError):
    """A file exists but cannot be read as what it should be (truncated, wrong format)."""


def npz_path(path: str | os.PathLike) -> str:
    """``path`` with an ``.npz`` suffix added when it has none (``np.savez``'s rule)."""
    path = os.fspath(path)
    return path if path.endswith(".npz") else path + ".npz"


# -- atomic writes and their temporary files -----------------------------------------------------
# A temporary file's name says who wrote it: ".weights.npz.zerograd-4242-1a2b3c4d-k3j5h2x1.tmp"
# is being (or was) written by process 4242 on the host whose name hashes to 1a2b3c4d. The
# host matters on shared file systems, where a pid means nothing on another machine.
_TEMP_INFIX = ".zerograd-"
_TEMP_NAME = re.compile(r"^\..+\.zerograd-(?P<pid>\d+)-(?P<host>[0-9a-f]{8})-[a-z0-9_]+\.tmp$")


def _host_tag() -> str:
    return f"{zlib.crc32(socket.gethostname().encode('utf-8', 'replace')):08x}"


def _temp_prefix(path: str) -> str:
    return f".{os.path.basename(path)}{_TEMP_INFIX}{os.getpid()}-{_host_tag()}-"


def _process_exists(pid: int) -> bool:
    """Whether process ``pid`` is running (on this host). When unsure, says it is."""
    if pid <= 0:
        return False  # no writer has such a pid (and os.kill(0, ...) means the process group)
    if pid == os.getpid():
        return True  # this process: another thread may be writing it right now
    if os.name != "posix":
        return True  # without kill(pid, 0) there is no harmless probe: never remove
    try:
        os.kill(pid, 0)  # signal 0: only checks that the process exists
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, and belongs to another user
    except OverflowError:
        return False  # larger than any pid the system can have
    # A process killed but not yet reaped by its parent (a zombie) still answers kill(0);
    # it will never finish its write. Linux shows its state in /proc.
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            state = f.read().rpartition(")")[2].split()[0]
    except (OSError, IndexError):
        return True
    return state not in ("Z", "X")


def remove_stale_temp_files(directory: str | os.PathLike) -> list[str]:
    """Remove the temporary files that killed zerograd saves left in ``directory``.

    Only files named as :func:`atomic_write` names them, written on this host by a process
    that no longer exists, are removed: never a live writer's file, never anyone else's.
    Returns the paths removed. Files that vanish meanwhile or cannot be removed are skipped.
    Every save calls this on its directory; the command line calls it on its run directory.
    """
    directory = os.fspath(directory)
    try:
        names = os.listdir(directory)
    except (FileNotFoundError, NotADirectoryError):
        return []
    host = _host_tag()
    removed = []
    for name in names:
        match = _TEMP_NAME.match(name)
        if match is None or match["host"] != host or _process_exists(int(match["pid"])):
            continue
        path = os.path.join(directory, name)
        try:
            os.unlink(path)
        except OSError:  # already gone (another cleaner), or not ours to remove
            continue
        removed.append(path)
    return removed


def _default_file_mode(path: str) -> int:
    """The existing file's permissions, else 0666 less the process umask."""
    try:
        return os.stat(path).st_mode & 0o777
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def _fsync_directory(directory: str) -> None:
    """Make the rename itself durable (POSIX); a no-op where directories cannot be opened."""
    if os.name != "posix":
        return
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems do not sync directories; the rename is still atomic
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "wb") -> Iterator[IO]:
    """Open a temporary file next to ``path`` for writing; on success it replaces ``path``.

    ``mode`` is ``"wb"`` (bytes) or ``"w"`` (UTF-8 text). If the ``with`` body raises
    (including KeyboardInterrupt), the temporary file is removed and ``path`` is untouched.
    If the process is killed, the temporary file stays until the next save in the directory
    removes it (see :func:`remove_stale_temp_files`).
    """
    if mode not in ("wb", "w"):
        raise ValueError(f"atomic_write: mode must be 'wb' or 'w', got {mode!r}")
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    remove_stale_temp_files(directory)
    fd, tmp_path = tempfile.mkstemp(dir=directory, prefix=_temp_prefix(path), suffix=".tmp")
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
    _fsync_directory(directory)


# -- .npz writing ---------------------------------------------------------------------------------
# np.savez's own parameters, which therefore cannot name an array.
_SAVEZ_ARGUMENTS = ("file", "allow_pickle")

def save_npz(path: str | os.PathLike, arrays: Mapping[str, Any], compressed: bool = True) -> str:
    """Write ``arrays`` (name -> array, NumPy or CuPy) to ``path`` atomically; returns the path.

    ``.npz`` is appended when ``path`` has no such suffix, as ``np.savez`` does. Values must
    be arrays or scalars (no ``None``, no objects): anything that would need pickle is refused.
    """
    path = npz_path(path)
    converted = {}
    for key, value in arrays.items():
        if key in _SAVEZ_ARGUMENTS:
            # np.savez takes the arrays as keyword arguments next to its own: an entry named
            # 'file' would clash with the file, one named 'allow_pickle' would be taken as that
            # flag and silently not saved.
            raise ValueError(f"save_npz({path!r}): an entry cannot be named {key!r} (numpy.savez "
                             f"reserves the names {', '.join(_SAVEZ_ARGUMENTS)}); rename it")
        if value is None:
            raise ValueError(f"save_npz({path!r}): entry {key!r} is None; only arrays can be saved")
        array = as_numpy(value)
        if array.dtype.hasobject:
            raise ValueError(f"save_npz({path!r}): entry {key!r} is an object array, which would "
                             "need pickle to load; store numeric or string arrays only")
        converted[key] = array
    writer = np.savez_compressed if compressed else np.savez
    with atomic_write(path, "wb") as f:
        # Nothing here needs pickle (object arrays were refused above).
        writer(f, allow_pickle=False, **converted)
    return path


# -- .npz reading: headers first, data only after every check -------------------------------------
# What a damaged or hostile zip makes zipfile, zlib and NumPy's header parser raise.
_READ_ERRORS = (zipfile.BadZipFile, zlib.error, LZMAError, EOFError, OSError, ValueError,
                KeyError, IndexError, RuntimeError, OverflowError, struct.error)

_NPY_MAGIC = b"\x93NUMPY"
_READ_CHUNK = 1 << 20  # bytes per read while filling an array (the zip's own buffer stays small)


def _size(nbytes: float) -> str:
    """A byte count as people read it: '1.5 GiB' (messages only)."""
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if nbytes < 1024 or unit == "GiB":
            return f"{nbytes:.0f} {unit}" if unit == "bytes" else f"{nbytes:.1f} {unit}"
        nbytes /= 1024
    raise AssertionError("unreachable")


def _default_bound(file_size: int) -> float:
    """What a file of ``file_size`` bytes may declare when its reader set no ``max_bytes``."""
    return min(MAX_LOAD_BYTES, max(MAX_INFLATION * file_size, INFLATION_ALLOWANCE))


class _Expected(NamedTuple):
    """What the caller will accept under one key: the array's shape and dtype, and the name
    the caller knows it by (the last step of its path in the tree) for messages."""

    shape: tuple[int, ...]
    dtype: np.dtype
    name: str


def _expected_arrays(expected: Any) -> dict[str, _Expected]:
    """Flatten an expected tree to {key in the file: _Expected}, with save_state's keys.

    ``expected`` mirrors the state that will be loaded (dicts, lists); its leaves are arrays
    or anything else with ``shape`` and ``dtype`` (only those are used: pass the model's own
    arrays, nothing is copied), or anything else (None: not known yet), which expects nothing.
    A key that save_state would have had to make unique (a dict key ``'a/b'`` next to a
    nested ``a`` holding ``b``) is ambiguous here, so it expects nothing either.
    """
    found: dict[str, _Expected] = {}
    ambiguous: set[str] = set()
    stack = [("", "", expected)]
    while stack:
        prefix, name, node = stack.pop()
        if isinstance(node, Mapping):
            children = [(str(k), v) for k, v in node.items()]
        elif isinstance(node, (list, tuple)):
            children = [(str(i), v) for i, v in enumerate(node)]
        else:
            if hasattr(node, "shape") and hasattr(node, "dtype"):
                key = prefix or "array"
                if key in found or key == _TREE_KEY:
                    ambiguous.add(key)
                found[key] = _Expected(tuple(node.shape), np.dtype(node.dtype), name or key)
            continue
        stack.extend((f"{prefix}/{k}" if prefix else k, k, v) for k, v in children)
    for key in ambiguous:
        found.pop(key, None)
    return found


class NpyHeader(NamedTuple):
    """What a member's ``.npy`` header declares, read without reading the data."""

    shape: tuple[int, ...]
    dtype: np.dtype
    fortran_order: bool
    nbytes: int


def _find_npz(path: str | os.PathLike, caller: str) -> str:
    path = os.fspath(path)
    if not os.path.exists(path) and os.path.exists(path + ".npz"):
        path += ".npz"
    if not os.path.exists(path):
        raise FileNotFoundError(f"{caller}: no such file: {path!r}")
    return path


def _sniff(path: str, head: bytes, caller: str) -> None:
    """Name the format when a file is not a zip archive at all."""
    if head.startswith(b"PK"):
        return
    if not head:
        what = "is empty"
    elif head.startswith(_NPY_MAGIC):
        what = ("is a single .npy array, not an .npz archive of named arrays (np.save writes "
                ".npy; np.savez and save_weights write .npz)")
    elif head[:1] == b"\x80":
        what = "looks like a Python pickle, which zerograd never loads (it could run code)"
    else:
        what = f"is not an .npz (zip) archive: it starts with {head[:8]!r}"
    raise CorruptFileError(f"{caller}: {path!r} {what}")


class NpzReader:
    """An open .npz archive whose members' headers are read and checked; no data read yet.

    ``headers`` maps each key (the member name without ``.npy``, in archive order) to its
    :class:`NpyHeader`. Opening checks, before any array data is read:

    - the file is a zip archive (not a lone .npy, a pickle, a truncated or empty file);
    - every member is a ``.npy`` file, and no key appears twice;
    - every header parses (format 1.0 or 2.0), declares no object dtype (pickle) and no
      negative dimension, and its shape times its item size equals the data size the zip
      directory declares for the member;
    - every array named in ``expected`` (a tree like the state to be loaded, whose leaves
      are arrays of the shapes and dtypes wanted, see :func:`load_state`) has exactly that
      shape (else ShapeError) and numbers that convert to that dtype, ``np.can_cast(...,
      "same_kind")`` (else DTypeError): these arrays are bounded by the caller's own;
    - the other arrays together declare at most ``max_bytes``. ``None`` (the default):
      :data:`MAX_INFLATION` times the file's size, at least :data:`INFLATION_ALLOWANCE` and
      at most :data:`MAX_LOAD_BYTES` (a decompression bomb fails from the zip directory
      alone); a number: that many bytes; ``math.inf``: no bound.

    ``read(key)`` then reads one array, checking that the data is complete and its CRC right.
    Every other failure is a :class:`CorruptFileError` naming the file (and the member).

    ::

        with NpzReader("weights.npz") as npz:
            print(npz.headers["l0/W"].shape)
            W = npz.read("l0/W")
    """

    def __init__(self, path: str | os.PathLike, max_bytes: float | None = None,
                 caller: str = "NpzReader", expected: Any = None) -> None:
        self.caller = caller
        self.path = _find_npz(path, caller)
        self._file = open(self.path, "rb")  # noqa: SIM115 - closed by close()/__exit__
        try:
            _sniff(self.path, self._file.read(8), caller)
            self._file.seek(0)
            try:
                self._zip = zipfile.ZipFile(self._file)
            except _READ_ERRORS as e:
                raise self._error(f"is truncated or not a zip archive ({type(e).__name__}: "
                                  f"{e})") from e
            self._check_member_count()
            self._members: dict[str, tuple[zipfile.ZipInfo, int]] = {}
            self.headers: dict[str, NpyHeader] = self._read_headers(
                max_bytes, _expected_arrays(expected))
        except BaseException:
            self._file.close()
            raise

    def _error(self, what: str, key: str | None = None) -> CorruptFileError:
        where = f"{self.path!r}" if key is None else f"{self.path!r}, array {key!r},"
        return CorruptFileError(f"{self.caller}: {where} {what}")

    def _check_member_count(self) -> None:
        # zipfile trusts the directory's entries one by one; a damaged length field (an entry's
        # comment swallowing the next entry) silently hides members. The end record counts
        # them independently. (_EndRecData: zipfile's own reader of that record, zip64 too.)
        # (typeshed declares only zipfile's public names, hence the ignores.)
        end = zipfile._EndRecData(self._file)  # type: ignore[attr-defined]
        listed = len(self._zip.infolist())
        counted = None if end is None else end[zipfile._ECD_ENTRIES_TOTAL]  # type: ignore[attr-defined]
        if counted is not None and counted != listed:
            raise self._error(f"is damaged: its directory holds {listed} members but its end "
                              f"record counts {counted}")

    def _read_headers(self, max_bytes: float | None,
                      expected: Mapping[str, _Expected]) -> dict[str, NpyHeader]:
        infos = self._zip.infolist()
        # Arrays the caller expects are bounded by its own shapes, checked on each header
        # below; the rest are bounded by max_bytes, checked here on the zip directory alone,
        # so that nothing of a bomb is decompressed.
        unexpected = [info for info in infos if info.filename[: -len(".npy")] not in expected]
        declared = sum(info.file_size for info in unexpected)
        if max_bytes is None:
            file_size = os.fstat(self._file.fileno()).st_size
            bound = _default_bound(file_size)
            rule = (f"in a file of {_size(file_size)}; without max_bytes a file may declare "
                    f"{MAX_INFLATION} times its size (MAX_INFLATION), at least "
                    f"{_size(INFLATION_ALLOWANCE)} and at most {_size(MAX_LOAD_BYTES)} "
                    f"(MAX_LOAD_BYTES): {_size(bound)} here")
        else:
            bound, rule = max_bytes, f"more than max_bytes={max_bytes}"
        if declared > bound:
            largest = max(unexpected, key=lambda info: info.file_size)
            name = largest.filename[: -len(".npy")]
            try:  # its header costs a few hundred bytes to read, and names the array
                header = self._read_header(largest)[0]
                what = f", {header.dtype} {header.shape}"
            except (CorruptFileError, *_READ_ERRORS):
                what = ""
            raise self._error(
                f"declares {_size(declared)} of arrays ({declared} bytes; "
                f"{_size(largest.file_size)} in {name!r}{what}) {rule}. "
                "Nothing was read; pass a larger max_bytes (math.inf: no bound) if the file "
                "is trusted")
        headers = {}
        for info in infos:
            name = info.filename
            if not name.endswith(".npy"):
                raise self._error(f"holds a member {name!r} that is not a .npy array; an .npz "
                                  "archive holds only arrays")
            key = name[: -len(".npy")]
            if key in headers:
                raise self._error("appears twice in the archive", key)
            try:
                header, header_size = self._read_header(info)
            except CorruptFileError:
                raise
            except _READ_ERRORS as e:
                raise self._error(f"has a damaged .npy header ({type(e).__name__}: {e})",
                                  key) from e
            data_size = info.file_size - header_size
            if header.nbytes != data_size:
                raise self._error(
                    f"declares {header.dtype} {header.shape} ({header.nbytes} bytes) but the "
                    f"archive holds {data_size} bytes of data for it", key)
            if key in expected:
                self._check_expected(key, header, expected[key])
            headers[key] = header
            self._members[key] = (info, header_size)
        return headers

    def _check_expected(self, key: str, header: NpyHeader, want: _Expected) -> None:
        """The header of an array the caller expects must fit it; nothing has been read."""
        where = f"{self.caller}: {self.path!r}, array {key!r}"
        # The caller's name for the array when it differs from the key ('l0/b' of a model,
        # stored under 'model/l0/b' in a checkpoint), so that the message speaks its words.
        what = f"{where}:" if want.name == key else f"{where}: {want.name!r}"
        if header.shape != want.shape:
            raise ShapeError(f"{what} has shape {header.shape} ({header.dtype}, "
                             f"{_size(header.nbytes)} declared) in the file, expected "
                             f"{want.shape} ({want.dtype}); no data was read")
        if header.dtype.kind not in "biuf" or not np.can_cast(header.dtype, want.dtype,
                                                               "same_kind"):
            raise DTypeError(f"{what} is a {header.dtype} array in the file, expected numbers "
                             f"convertible to {want.dtype} (shape {want.shape}); no data was "
                             "read")

    def _read_header(self, info: zipfile.ZipInfo) -> tuple[NpyHeader, int]:
        key = info.filename[: -len(".npy")]
        with self._zip.open(info) as fp:
            version = np.lib.format.read_magic(fp)
            if version == (1, 0):
                shape, fortran_order, dtype = np.lib.format.read_array_header_1_0(fp)
            elif version == (2, 0):
                shape, fortran_order, dtype = np.lib.format.read_array_header_2_0(fp)
            else:  # 3.0 only adds UTF-8 field names of structured dtypes
                raise self._error(f"uses .npy format version {version}; only 1.0 and 2.0 "
                                  "are read", key)
            header_size = fp.tell()
        if dtype.hasobject:
            raise self._error(f"has dtype {dtype}, an object array that would need pickle to "
                              "load; zerograd never unpickles", key)
        if dtype.subdtype is not None:
            raise self._error(f"has the sub-array dtype {dtype}, which np.save never writes",
                              key)
        if any(n < 0 for n in shape):
            raise self._error(f"declares a negative dimension in its shape {shape}", key)
        nbytes = math.prod(shape) * dtype.itemsize
        return NpyHeader(tuple(shape), dtype, bool(fortran_order), nbytes), header_size

    def keys(self) -> list[str]:
        return list(self.headers)

    def read(self, key: str) -> np.ndarray:
        """The array stored under ``key`` (read in full, its CRC checked)."""
        if key not in self.headers:
            raise KeyError(f"{self.caller}: {self.path!r} has no array {key!r}; it holds "
                           f"{list(self.headers)}")
        header = self.headers[key]
        info, header_size = self._members[key]
        array = np.empty(math.prod(header.shape), dtype=header.dtype)
        try:
            # ZipFile.open gives a ZipExtFile (a BufferedIOBase, with readinto); typeshed
            # says IO[bytes].
            with cast(io.BufferedIOBase, self._zip.open(info)) as fp:
                fp.read(header_size)
                if header.nbytes:
                    buffer = array.view(np.uint8).data  # a memoryview of the array's bytes
                    filled = 0
                    while filled < header.nbytes:
                        n = fp.readinto(buffer[filled: filled + _READ_CHUNK])
                        if not n:
                            raise self._error(f"is truncated: {filled} of {header.nbytes} bytes "
                                              "of data", key)
                        filled += n
                # Reading to the end is what makes zipfile compare the CRC.
                if fp.read(1):
                    raise self._error("has more data than its header declares", key)
        except CorruptFileError:
            raise
        except _READ_ERRORS as e:
            raise self._error(f"is damaged ({type(e).__name__}: {e})", key) from e
        if header.fortran_order:
            return array.reshape(header.shape[::-1]).transpose()
        return array.reshape(header.shape)

    def read_all(self, keys: Iterable[str] | None = None) -> dict[str, np.ndarray]:
        """{key: array} for ``keys`` (default: every key, in archive order)."""
        return {key: self.read(key) for key in (self.headers if keys is None else keys)}

    def close(self) -> None:
        self._zip.close()
        self._file.close()

    def __enter__(self) -> NpzReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def load_npz(path: str | os.PathLike, max_bytes: float | None = None,
             expected: Mapping[str, Any] | None = None) -> dict[str, np.ndarray]:
    """Read every array of an .npz file into a dict (NumPy arrays, in the file's key order).

    Raises FileNotFoundError if there is no such file (``path`` and ``path + '.npz'`` are
    tried) and CorruptFileError if it is truncated, damaged, not an .npz, holds object
    arrays or declares more than ``max_bytes`` bytes (None: :data:`MAX_INFLATION` times the
    file's size, see :class:`NpzReader`). ``expected`` ({key: array of the wanted shape and
    dtype}) makes those arrays ShapeError/DTypeError unless they fit, and exempts them from
    the bound. Everything is checked on the headers before any data is read; nothing is
    returned unless every array was read whole.
    """
    with NpzReader(path, max_bytes=max_bytes, caller="load_npz", expected=expected) as npz:
        return npz.read_all()


# -- JSON -----------------------------------------------------------------------------------------
# Strings (whose brackets do not count) and brackets; everything else is skipped unseen.
_JSON_NESTING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]')


def _check_json_depth(text: str, what: str) -> None:
    depth = 0
    for match in _JSON_NESTING.finditer(text):
        token = match.group()
        if token in "[{":
            depth += 1
            if depth > MAX_JSON_DEPTH:
                raise CorruptFileError(f"{what} nests lists/objects more than MAX_JSON_DEPTH="
                                       f"{MAX_JSON_DEPTH} levels deep")
        elif token in "]}":
            depth -= 1


def _parse_json(text: str, what: str) -> Any:
    """json.loads with the depth bound; CorruptFileError naming ``what`` on any failure."""
    _check_json_depth(text, what)
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as e:  # JSONDecodeError, over-long integer literals
        raise CorruptFileError(f"{what} is not valid JSON (truncated or corrupt): {e}") from e


def _json_default(value: Any) -> Any:
    # NumPy scalars and small arrays show up in metrics and settings; JSON wants Python types.
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"save_json: {type(value).__name__} is not JSON serialisable")


def _dump_json(obj: Any, what: str, indent: int | None = None) -> str:
    """json.dumps, refusing what the loaders would refuse (deeper than MAX_JSON_DEPTH)."""
    try:
        text = json.dumps(obj, indent=indent, default=_json_default, allow_nan=True)
    except RecursionError as e:
        raise ValueError(f"{what}: the object nests too deeply to save") from e
    try:
        _check_json_depth(text, what)
    except CorruptFileError as e:
        raise ValueError(f"{e}; the loaders would refuse it, so it is not written") from None
    return text


def save_json(path: str | os.PathLike, obj: Any, indent: int | None = 2) -> str:
    """Write ``obj`` as JSON (NumPy scalars/arrays converted) to ``path`` atomically."""
    path = os.fspath(path)
    text = _dump_json(obj, f"save_json({path!r})", indent=indent)
    with atomic_write(path, "w") as f:
        f.write(text)
        f.write("\n")
    return path


def load_json(path: str | os.PathLike) -> Any:
    """Read a JSON file; CorruptFileError naming the file if it is not valid UTF-8 JSON or
    nests deeper than :data:`MAX_JSON_DEPTH`."""
    path = os.fspath(path)
    with open(path, "rb") as f:
        data = f.read()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise CorruptFileError(f"load_json: {path!r} is not UTF-8 text (corrupt?): {e}") from e
    return _parse_json(text, f"load_json: {path!r}")


# -- trees of arrays and scalars in one .npz ------------------------------------------------------
def _split_tree(tree: Any, arrays: dict, prefix: str, depth: int = 0) -> Any:
    """Replace every array in ``tree`` by a reference, collecting the arrays by key."""
    if depth > MAX_JSON_DEPTH:
        raise ValueError(f"save_state: the state nests more than MAX_JSON_DEPTH="
                         f"{MAX_JSON_DEPTH} levels deep (at {prefix!r}); load_state would "
                         "refuse it")
    if isinstance(tree, Mapping):
        out = {}
        for key, value in tree.items():
            if not isinstance(key, str):
                raise TypeError(f"save_state: dict keys must be str, got {key!r} at {prefix!r}")
            out[key] = _split_tree(value, arrays, f"{prefix}/{key}" if prefix else key,
                                   depth + 1)
        return out
    if isinstance(tree, (list, tuple)):
        return [_split_tree(v, arrays, f"{prefix}/{i}" if prefix else str(i), depth + 1)
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


def _is_array_ref(tree: Any) -> bool:
    return isinstance(tree, dict) and set(tree) == {_ARRAY_TAG}


def _array_refs(tree: Any, path: str) -> list[str]:
    """The keys of every array reference in a loaded skeleton (checked to be strings)."""
    refs = []
    stack = [tree]
    while stack:  # iterative: the depth is bounded already, but this needs no bound at all
        node = stack.pop()
        if _is_array_ref(node):
            key = node[_ARRAY_TAG]
            if not isinstance(key, str):
                raise CorruptFileError(f"load_state: {path!r} refers to an array by "
                                       f"{key!r}, not by a key string")
            refs.append(key)
        elif isinstance(node, dict):
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return refs


def _join_tree(tree: Any, arrays: Mapping[str, np.ndarray]) -> Any:
    if _is_array_ref(tree):
        return arrays[tree[_ARRAY_TAG]]
    if isinstance(tree, dict):
        return {k: _join_tree(v, arrays) for k, v in tree.items()}
    if isinstance(tree, list):
        return [_join_tree(v, arrays) for v in tree]
    return tree


def save_state(path: str | os.PathLike, state: Any, compressed: bool = True) -> str:
    """Save a tree of dicts/lists holding arrays and JSON scalars to one .npz, atomically.

    Arrays are stored under '/'-joined keys (``state/3/m``); the structure and the scalars go
    into a JSON string under ``__tree__``. Read it back with :func:`load_state`.
    """
    arrays: dict[str, np.ndarray] = {}
    skeleton = _split_tree(state, arrays, "")
    arrays[_TREE_KEY] = np.array(_dump_json(skeleton, "save_state"))
    return save_npz(path, arrays, compressed=compressed)


def load_state(path: str | os.PathLike, max_bytes: float | None = None,
               expected: Any = None, caller: str = "load_state") -> Any:
    """Read a tree written by :func:`save_state` (arrays come back as NumPy arrays).

    ``expected`` is what the receiver of the state wants: a tree of the state's structure
    whose leaves are arrays (or anything with ``shape`` and ``dtype``) of the wanted shape and
    dtype, None where not known, e.g. ``{"model": {"l0/W": W.data}, "optimizer":
    optimizer.expected_state()}``. Each such array in the file must have that shape
    (ShapeError) and convertible numbers (DTypeError), and is exempt from ``max_bytes``; the
    others are bounded by it (None: :data:`MAX_INFLATION` times the file's size). ``caller``
    names the operation in errors.

    Before any array is read: the headers are checked (see :class:`NpzReader`), the
    structure under ``__tree__`` is parsed (a text array, JSON, at most MAX_JSON_DEPTH deep),
    and the arrays it refers to must be exactly the arrays in the file, each referred to
    once: a member missing, extra or referred to twice is a CorruptFileError.
    """
    with NpzReader(path, max_bytes=max_bytes, caller=caller, expected=expected) as npz:
        path = npz.path
        tree_header = npz.headers.get(_TREE_KEY)
        if tree_header is None:
            raise CorruptFileError(f"{caller}: {path!r} has no {_TREE_KEY!r} entry; it was "
                                   "not written by save_state (use load_npz for plain arrays)")
        if tree_header.dtype.kind != "U" or tree_header.shape != ():
            raise CorruptFileError(f"{caller}: {path!r} stores {_TREE_KEY!r} as "
                                   f"{tree_header.dtype} {tree_header.shape}; save_state writes "
                                   "one text string there")
        skeleton = _parse_json(str(npz.read(_TREE_KEY)),
                               f"{caller}: the structure stored in {path!r}")
        refs = _array_refs(skeleton, path)
        stored = [key for key in npz.headers if key != _TREE_KEY]
        missing = sorted(set(refs) - set(stored))
        extra = sorted(set(stored) - set(refs))
        twice = sorted(key for key, count in Counter(refs).items() if count > 1)
        if missing or extra or twice:
            parts = []
            if missing:
                parts.append(f"lists arrays the file does not contain: {missing}")
            if extra:
                parts.append(f"contains arrays its structure does not list: {extra}")
            if twice:
                parts.append(f"lists arrays more than once: {twice}")
            raise CorruptFileError(f"{caller}: {path!r} {'; '.join(parts)}")
        arrays = npz.read_all(stored)
    return _join_tree(skeleton, arrays)
