"""CIFAR-10 and CIFAR-100 from the official *binary* archives (no pickle is ever loaded).

DeZero reads the Python-pickle version of the archives; unpickling downloaded data can run
arbitrary code, so zerograd reads the binary version instead: fixed-size records of label
byte(s) followed by 3,072 pixel bytes (3 x 32 x 32, channel-first). The archive
(``cifar-10-binary.tar.gz`` / ``cifar-100-binary.tar.gz``) or its extracted folder is looked up
in ``root`` (default ``cache_dir()/cifar``) and downloaded only with ``download=True``.

Sizes are checked before anything is read: a batch file must be a whole number of records
and no bigger than the official file, and a tar member's declared size must fit the archive
(what its compressed size can expand to, at most ``MAX_ARCHIVE_BYTES``), so a truncated,
corrupt or hostile archive (a gzip bomb) raises ``DataFormatError`` naming the file.
"""

from __future__ import annotations

import os
import tarfile
import zlib
from collections.abc import Callable, Sequence

import numpy as np

from zerograd.data._io import CHUNK_BYTES, DEFLATE_MAX_RATIO, read_exactly
from zerograd.data.dataset import DataFormatError, Dataset
from zerograd.data.download import cache_dir, get_file
from zerograd.data.transforms import Compose, Normalize, ToFloat, TransformLike

IMAGE_SHAPE = (3, 32, 32)
IMAGE_BYTES = 3 * 32 * 32
# The official archives hold about 185 MB uncompressed; reading stops well past that.
MAX_ARCHIVE_BYTES = 1 << 29

# Scales uint8 pixels to [-1, 1]. DeZero's default, Normalize(0.5, 0.5) on raw 0..255 values,
# gives [-1, 509]: clearly meant for [0, 1] pixels.
DEFAULT_TRANSFORM = Compose([ToFloat(), Normalize(127.5, 127.5)])

CIFAR10_NAMES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse",
                 "ship", "truck")
CIFAR100_COARSE_NAMES = (
    "aquatic_mammals", "fish", "flowers", "food_containers", "fruit_and_vegetables",
    "household_electrical_devices", "household_furniture", "insects", "large_carnivores",
    "large_man-made_outdoor_things", "large_natural_outdoor_scenes",
    "large_omnivores_and_herbivores", "medium_mammals", "non-insect_invertebrates", "people",
    "reptiles", "small_mammals", "trees", "vehicles_1", "vehicles_2")


class CIFAR10(Dataset):
    """CIFAR-10: ``data`` uint8 ``(N, 3, 32, 32)``, ``label`` int64 ``(N,)`` in 0..9.

    50,000 train / 10,000 test images. The default transform gives float32 in [-1, 1].
    """

    url = "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"
    archive = "cifar-10-binary.tar.gz"
    folder = "cifar-10-batches-bin"
    train_files = tuple(f"data_batch_{i}.bin" for i in range(1, 6))
    test_files = ("test_batch.bin",)
    label_bytes = 1
    num_classes = 10
    max_records = 10000  # per file: each official batch holds exactly 10,000 images

    def __init__(self, train: bool = True, transform: TransformLike | None = DEFAULT_TRANSFORM,
                 target_transform: TransformLike | None = None,
                 root: str | os.PathLike | None = None,
                 download: bool = False) -> None:
        self.root = os.fspath(root) if root is not None else os.path.join(cache_dir(), "cifar")
        self.download = download
        super().__init__(train, transform, target_transform)

    def _label_column(self) -> int:
        return 0

    def _check_size(self, path: str, size: int) -> None:
        """A batch file's size, checked before it is read."""
        record = self.label_bytes + IMAGE_BYTES
        if size == 0 or size % record:
            raise DataFormatError(
                f"{path}: {size} bytes is not a whole number of {record}-byte records "
                f"(truncated or not a {type(self).__name__} binary batch)")
        if size > self.max_records * record:
            raise DataFormatError(
                f"{path}: {size} bytes is {size // record} records; a {type(self).__name__} "
                f"batch file holds at most {self.max_records} ({self.max_records * record} "
                f"bytes); not a {type(self).__name__} file")

    def _read_members(self) -> Sequence[tuple[str, bytes | bytearray]]:
        names = self.train_files if self.train else self.test_files
        folder = os.path.join(self.root, self.folder)
        if all(os.path.isfile(os.path.join(folder, n)) for n in names):
            contents: list[tuple[str, bytes | bytearray]] = []
            for name in names:
                path = os.path.join(folder, name)
                self._check_size(path, os.path.getsize(path))
                with open(path, "rb") as f:
                    contents.append((path, f.read()))
            return contents
        archive = os.path.join(self.root, self.archive)
        if not os.path.isfile(archive):
            if not self.download:
                raise FileNotFoundError(
                    f"{type(self).__name__}: neither {folder}/ (with {', '.join(names)}) nor "
                    f"{archive} exists. Pass root= the directory holding them, or "
                    f"download=True to fetch {self.url}")
            archive = get_file(self.url, directory=self.root)
        return _read_tar_members(archive, [f"{self.folder}/{n}" for n in names],
                                 self._check_size)

    def prepare(self) -> None:
        record = self.label_bytes + IMAGE_BYTES
        data, labels = [], []
        for path, content in self._read_members():
            self._check_size(path, len(content))  # the file may have changed since
            records = np.frombuffer(content, np.uint8).reshape(-1, record)
            label = records[:, self._label_column()].astype(np.int64)
            if label.max() >= self.num_classes:
                raise DataFormatError(f"{path}: label {label.max()} is out of range for "
                                      f"{self.num_classes} classes (corrupt file?)")
            data.append(records[:, self.label_bytes:])
            labels.append(label)
        self.data = np.concatenate(data).reshape(-1, *IMAGE_SHAPE)
        self.label = np.concatenate(labels)

    def show(self, row: int = 10, col: int = 10) -> None:
        """Shows ``row x col`` random images (matplotlib; the draw uses the global RNG)."""
        import matplotlib.pyplot as plt

        H, W = IMAGE_SHAPE[1:]
        picks = np.random.randint(0, len(self.data) - 1, size=row * col)
        tiles = self.data[picks].reshape(row, col, 3, H, W).transpose(0, 3, 1, 4, 2)
        plt.imshow(tiles.reshape(row * H, col * W, 3), interpolation="nearest")
        plt.axis("off")
        plt.show()

    @staticmethod
    def labels() -> dict[int, str]:
        return dict(enumerate(CIFAR10_NAMES))


class CIFAR100(CIFAR10):
    """CIFAR-100: 100 fine classes (``label_type='fine'``) or 20 coarse ones (``'coarse'``)."""

    url = "https://www.cs.toronto.edu/~kriz/cifar-100-binary.tar.gz"
    archive = "cifar-100-binary.tar.gz"
    folder = "cifar-100-binary"
    train_files = ("train.bin",)
    test_files = ("test.bin",)
    label_bytes = 2  # coarse, then fine
    max_records = 50000  # train.bin; test.bin holds 10,000

    def __init__(self, train: bool = True, transform: TransformLike | None = DEFAULT_TRANSFORM,
                 target_transform: TransformLike | None = None, label_type: str = "fine",
                 root: str | os.PathLike | None = None, download: bool = False) -> None:
        if label_type not in ("fine", "coarse"):
            raise ValueError(f"CIFAR100: label_type must be 'fine' or 'coarse', "
                             f"got {label_type!r}")
        self.label_type = label_type
        self.num_classes = 100 if label_type == "fine" else 20
        super().__init__(train, transform, target_transform, root=root, download=download)

    def _label_column(self) -> int:
        return 1 if self.label_type == "fine" else 0

    @staticmethod
    def labels(label_type: str = "fine") -> dict[int, str]:
        """Class names. The fine names are CIFAR-100's 100 classes in alphabetical order."""
        if label_type == "coarse":
            return dict(enumerate(CIFAR100_COARSE_NAMES))
        if label_type == "fine":
            return dict(enumerate(CIFAR100_FINE_NAMES))
        raise ValueError(f"CIFAR100.labels: label_type must be 'fine' or 'coarse', "
                         f"got {label_type!r}")


CIFAR100_FINE_NAMES = tuple("""
apple aquarium_fish baby bear beaver bed bee beetle bicycle bottle bowl boy bridge bus butterfly
camel can castle caterpillar cattle chair chimpanzee clock cloud cockroach couch crab crocodile
cup dinosaur dolphin elephant flatfish forest fox girl hamster house kangaroo keyboard lamp
lawn_mower leopard lion lizard lobster man maple_tree motorcycle mountain mouse mushroom
oak_tree orange orchid otter palm_tree pear pickup_truck pine_tree plain plate poppy porcupine
possum rabbit raccoon ray road rocket rose sea seal shark shrew skunk skyscraper snail snake
spider squirrel streetcar sunflower sweet_pepper table tank telephone television tiger tractor
train trout tulip turtle wardrobe whale willow_tree wolf woman worm
""".split())


def _read_tar_members(archive: str, members: list[str],
                      check_size: Callable[[str, int], None]) -> list[tuple[str, bytearray]]:
    """The bytes of ``members`` of a .tar.gz, read in memory (nothing is extracted to disk).

    Every declared size is checked (``check_size``, and against what the archive can hold)
    before any byte of it is read, so neither a lying header nor a gzip bomb makes this
    allocate or decompress more than the limit. The gzip stream is read to its end, within the
    same limit, so its checksum is verified: a flipped byte cannot pass as data.
    """
    # Deflate's maximum ratio bounds what this many compressed bytes can expand to.
    limit = min(MAX_ARCHIVE_BYTES, os.path.getsize(archive) * DEFLATE_MAX_RATIO)
    wanted = set(members)
    found: dict[str, bytearray] = {}
    try:
        with tarfile.open(archive, "r:gz") as tar:
            for member in iter(tar.next, None):
                end = member.offset_data + member.size
                if end > limit:
                    raise DataFormatError(
                        f"{archive}: member {member.name} claims {member.size} bytes, ending "
                        f"at byte {end} of the uncompressed archive, past the {limit}-byte "
                        f"limit for this archive; corrupt, truncated or not a CIFAR archive")
                if member.name not in wanted or member.name in found:
                    continue
                path = f"{archive}:{member.name}"
                if not member.isfile():
                    raise DataFormatError(f"{archive}: {member.name} is not a regular file")
                check_size(path, member.size)
                content = read_exactly(tar.extractfile(member), member.size)
                if len(content) != member.size:
                    raise DataFormatError(f"{path}: truncated: {len(content)} of "
                                          f"{member.size} bytes")
                found[member.name] = content
            # The end-of-archive blocks and the gzip trailer (CRC-32 and length).
            tail = tar.fileobj
            while tail.read(CHUNK_BYTES):
                if tail.tell() > limit:
                    raise DataFormatError(f"{archive}: more than {limit} bytes of data after "
                                          f"the last member; not a CIFAR archive")
    except (tarfile.TarError, EOFError, zlib.error, OSError) as error:
        if isinstance(error, FileNotFoundError):
            raise
        raise DataFormatError(f"{archive}: corrupt or truncated archive ({error}); delete it "
                              f"and fetch it again") from error
    for name in members:
        if name not in found:
            raise DataFormatError(f"{archive}: the archive has no member {name}")
    return [(f"{archive}:{name}", found[name]) for name in members]


__all__ = ["CIFAR10", "CIFAR100"]
