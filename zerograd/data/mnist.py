"""MNIST from its standard IDX files (gzip-compressed or not), and an IDX reader.

The files are looked up in ``root`` (a directory the user gives) or the cache directory
(``$ZEROGRAD_DATA/mnist`` or ``~/.zerograd/mnist``), and downloaded only when
``download=True``. Every file is checked: magic number, declared sizes against the bytes
actually present, image size 28x28, as many labels as images. A truncated or corrupt file
raises ``IDXFormatError`` naming it. Headers are never trusted: the size they declare is
checked against the file (and, for gzip, against what its compressed size can expand to)
before anything is allocated, and gzip data is decompressed no further than declared.
"""

from __future__ import annotations

import gzip
import math
import os
import zlib

import numpy as np

from zerograd.data._io import DEFLATE_MAX_RATIO, read_exactly
from zerograd.data.dataset import DataFormatError, Dataset
from zerograd.data.download import cache_dir, get_file
from zerograd.data.transforms import Compose, Flatten, Normalize, ToFloat, TransformLike

# IDX type codes (third byte of the magic number) -> big-endian dtypes.
_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
IMAGES_MAGIC, LABELS_MAGIC = 2051, 2049

# The most a header may declare before anything is allocated for it. MNIST's largest file
# holds 47 MB, EMNIST's about 550 MB; read_idx(max_bytes=...) raises the limit.
MAX_IDX_BYTES = 2 ** 31


class IDXFormatError(DataFormatError):
    """An IDX file is truncated, corrupt or not the kind of file expected."""


def _is_gzip(path: str) -> bool:
    with open(path, "rb") as f:
        return f.read(2) == b"\x1f\x8b"


def read_idx(path: str | os.PathLike, expected_magic: int | None = None, *,
             max_bytes: int = MAX_IDX_BYTES) -> np.ndarray:
    """The array stored in an IDX file (gzip or raw), in native byte order and writable.

    Raises ``IDXFormatError`` naming the file when the magic number is not an IDX one (or not
    ``expected_magic``), the payload is shorter or longer than the header declares, the gzip
    stream is corrupt or truncated, or the header declares more than the file can hold or
    more than ``max_bytes``. The declared size is checked against the file's size before
    anything is allocated, and a gzip file is decompressed only up to the declared size (plus
    one byte, to detect extra data), so a gzip bomb is stopped early.
    """
    path = os.fspath(path)
    compressed = _is_gzip(path)
    file_size = os.path.getsize(path)
    try:
        with (gzip.open if compressed else open)(path, "rb") as f:
            array = _read_idx_stream(f, path, expected_magic, max_bytes, compressed, file_size)
    except (EOFError, gzip.BadGzipFile, zlib.error) as error:
        raise IDXFormatError(f"{path}: corrupt or truncated gzip file ({error}); delete it and "
                             f"fetch it again") from error
    return array


def _read_idx_stream(f, path: str, expected_magic: int | None, max_bytes: int,
                     compressed: bool, file_size: int) -> np.ndarray:
    head = read_exactly(f, 4)
    if len(head) < 4:
        raise IDXFormatError(f"{path}: {len(head)} bytes, too short for an IDX header "
                             f"(truncated file?)")
    magic = int.from_bytes(head, "big")
    type_code, ndim = head[2], head[3]
    if head[0] != 0 or head[1] != 0 or type_code not in _IDX_DTYPES or ndim == 0:
        raise IDXFormatError(f"{path}: bad magic number {magic:#010x}; not an IDX file")
    if expected_magic is not None and magic != expected_magic:
        raise IDXFormatError(f"{path}: magic number {magic}, expected {expected_magic} "
                             f"(is it the right file?)")
    header_bytes = 4 + 4 * ndim
    dims = read_exactly(f, 4 * ndim)
    if len(dims) < 4 * ndim:
        raise IDXFormatError(f"{path}: truncated header ({4 + len(dims)} bytes, expected "
                             f"{header_bytes} for {ndim} dimensions)")
    shape = tuple(int.from_bytes(dims[4 * k:4 * k + 4], "big") for k in range(ndim))
    dtype = np.dtype(_IDX_DTYPES[type_code])
    expected = math.prod(shape) * dtype.itemsize  # Python ints: no overflow on hostile dims
    declared = f"the header declares shape {shape} ({expected} bytes of {dtype.name})"
    if not compressed and file_size - header_bytes != expected:
        present = file_size - header_bytes
        problem = "truncated" if present < expected else "has trailing bytes"
        raise IDXFormatError(f"{path}: {problem}: {declared} but {present} bytes follow")
    # Deflate's maximum ratio bounds what a gzip file of this size can really hold.
    if compressed and expected > file_size * DEFLATE_MAX_RATIO:
        raise IDXFormatError(f"{path}: {declared}, more than a {file_size}-byte gzip file can "
                             f"hold (at most {file_size * DEFLATE_MAX_RATIO}); corrupt or "
                             f"truncated file")
    if expected > max_bytes:
        raise IDXFormatError(f"{path}: {declared}, more than max_bytes={max_bytes}; pass "
                             f"read_idx(..., max_bytes=) a larger limit if the file is genuine")
    payload = read_exactly(f, expected)
    extra = f.read(1)  # also makes gzip check its CRC and length trailer
    if len(payload) != expected or extra:
        problem = "truncated" if len(payload) < expected else "has trailing bytes"
        got = str(len(payload)) if not extra else f"more than {expected}"
        raise IDXFormatError(f"{path}: {problem}: {declared} but {got} bytes follow")
    array = np.frombuffer(payload, dtype).reshape(shape)
    return array.astype(dtype.newbyteorder("="), copy=False)


# DeZero's default: flatten to (784,), float32 in [0, 1]. Stateless, so one instance serves all.
DEFAULT_TRANSFORM = Compose([Flatten(), ToFloat(), Normalize(0.0, 255.0)])


class MNIST(Dataset):
    """MNIST: ``data`` uint8 ``(N, 1, 28, 28)``, ``label`` int64 ``(N,)``.

    The default transform (DeZero's) flattens each image to ``(784,)`` float32 in [0, 1].
    Files are read from ``root`` (default: ``cache_dir()/mnist``); ``images_file`` and
    ``labels_file`` name the two files explicitly instead. ``download=True`` fetches missing
    standard files from ``mirrors`` into the directory.
    """

    mirrors = ("https://ossci-datasets.s3.amazonaws.com/mnist/",
               "https://storage.googleapis.com/cvdf-datasets/mnist/")
    files = {True: ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
             False: ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}
    # Checksums of the gzip files we can vouch for; the IDX checks cover the others.
    sha256 = {
        "t10k-images-idx3-ubyte.gz":
            "167310007f03058885c7e95e6c0b19c20de5c7fd3031f4cbdadc9014a523d80b",
        "t10k-labels-idx1-ubyte.gz":
            "fc607395669ec21321ea83e4b82c0544b7e8e63ff5b34337c06bc0a17cc0da3c",
    }

    def __init__(self, train: bool = True, transform: TransformLike | None = DEFAULT_TRANSFORM,
                 target_transform: TransformLike | None = None,
                 root: str | os.PathLike | None = None,
                 download: bool = False, images_file: str | os.PathLike | None = None,
                 labels_file: str | os.PathLike | None = None) -> None:
        self.root = os.fspath(root) if root is not None else os.path.join(cache_dir(), "mnist")
        self.download = download
        self.images_file = images_file
        self.labels_file = labels_file
        super().__init__(train, transform, target_transform)

    def _locate(self) -> tuple[str, str]:
        images_file, labels_file = self.images_file, self.labels_file
        if (images_file is None) != (labels_file is None):
            raise ValueError("MNIST: give both images_file= and labels_file=, or neither")
        if images_file is not None and labels_file is not None:
            paths = (os.fspath(images_file), os.fspath(labels_file))
            for path in paths:
                if not os.path.isfile(path):
                    raise FileNotFoundError(f"MNIST: no such file: {path}")
            return paths
        split = "train" if self.train else "test"
        found: list[str] = []
        missing = []
        for stem in self.files[self.train]:
            candidates = [os.path.join(self.root, stem + ext) for ext in (".gz", "")]
            path = next((p for p in candidates if os.path.isfile(p)), None)
            if path is None and self.download:
                path = self._fetch(stem + ".gz")
            if path is None:
                missing.append(f"{stem}.gz (or {stem})")
            else:
                found.append(path)
        if missing:
            raise FileNotFoundError(
                f"MNIST: the {split} split is not in {self.root}: missing {', '.join(missing)}. "
                f"Pass root= a directory holding the IDX files, images_file=/labels_file=, or "
                f"download=True to fetch them from {self.mirrors[0]}")
        return found[0], found[1]

    def _fetch(self, file_name: str) -> str:
        errors = []
        for mirror in self.mirrors:
            try:
                return get_file(mirror + file_name, directory=self.root,
                                sha256=self.sha256.get(file_name))
            except OSError as error:
                errors.append(f"{mirror}: {error}")
        raise OSError(f"MNIST: could not download {file_name}:\n  " + "\n  ".join(errors))

    def prepare(self) -> None:
        images_path, labels_path = self._locate()
        images = read_idx(images_path, IMAGES_MAGIC)
        labels = read_idx(labels_path, LABELS_MAGIC)
        if images.ndim != 3 or images.shape[1:] != (28, 28):
            raise IDXFormatError(f"{images_path}: images of shape {images.shape[1:]}, "
                                 f"expected (28, 28)")
        if labels.ndim != 1 or len(labels) != len(images):
            raise IDXFormatError(f"{labels_path}: {labels.shape} labels for {len(images)} images "
                                 f"in {images_path}; expected one label per image")
        self.data = images.reshape(-1, 1, 28, 28)
        self.label = labels.astype(np.int64)

    def show(self, row: int = 10, col: int = 10) -> None:
        """Shows ``row x col`` random images (matplotlib; the draw uses the global RNG)."""
        import matplotlib.pyplot as plt

        H, W = 28, 28
        picks = np.random.randint(0, len(self.data) - 1, size=row * col)
        tiles = self.data[picks].reshape(row, col, H, W)
        img = tiles.transpose(0, 2, 1, 3).reshape(row * H, col * W)
        plt.imshow(img, cmap="gray", interpolation="nearest")
        plt.axis("off")
        plt.show()

    @staticmethod
    def labels() -> dict[int, str]:
        return {i: str(i) for i in range(10)}


__all__ = ["IDXFormatError", "MNIST", "read_idx"]
