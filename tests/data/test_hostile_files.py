"""Hostile and corrupt data files: every reader raises an error naming the file, never
allocates what a header merely claims, and never decompresses a gzip bomb to the end."""

import gzip
import io
import os
import tarfile
import tracemalloc

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import zerograd.data.cifar as cifar_module
from zerograd.data.dataset import DataFormatError
from zerograd.datasets import CIFAR10, IDXFormatError, load_cache_npz, read_idx
from zerograd.errors import ZerogradError
from zerograd.serialization import CorruptFileError


def idx_header(shape, type_code=0x08) -> bytes:
    return bytes([0, 0, type_code, len(shape)]) + b"".join(n.to_bytes(4, "big") for n in shape)


def peak_bytes(fn) -> int:
    """The peak Python/NumPy memory traced while ``fn`` runs (it is expected to raise)."""
    tracemalloc.start()
    try:
        fn()
    except ZerogradError:
        pass
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak


def test_error_classes():
    assert issubclass(IDXFormatError, DataFormatError)
    assert issubclass(DataFormatError, CorruptFileError)  # one class to catch for every file
    assert issubclass(DataFormatError, ZerogradError) and issubclass(DataFormatError, ValueError)


# --- IDX (MNIST, Fashion-MNIST) ---------------------------------------------------------------
def test_raw_header_claiming_terabytes_is_refused_before_allocating(tmp_path):
    path = tmp_path / "huge-idx3-ubyte"
    path.write_bytes(idx_header((2 ** 32 - 1, 2 ** 32 - 1, 28)) + bytes(100))
    with pytest.raises(IDXFormatError, match=r"huge-idx3-ubyte: truncated: the header declares "
                                             r"shape \(4294967295, 4294967295, 28\) "
                                             rf"\({(2 ** 32 - 1) ** 2 * 28} bytes of uint8\) but "
                                             r"100 bytes follow"):
        read_idx(path)
    assert peak_bytes(lambda: read_idx(path)) < 64 * 1024


def test_gzip_header_claiming_more_than_the_file_can_hold(tmp_path):
    path = tmp_path / "huge-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(idx_header((60000, 28, 28 * 1000)) + bytes(1000)))
    size = os.path.getsize(path)
    with pytest.raises(IDXFormatError, match=rf"huge-idx3-ubyte\.gz: the header declares shape "
                                             rf"\(60000, 28, 28000\) \(47040000000 bytes of "
                                             rf"uint8\), more than a {size}-byte gzip file can "
                                             rf"hold"):
        read_idx(path)
    assert peak_bytes(lambda: read_idx(path)) < 64 * 1024


def test_gzip_bomb_behind_a_small_header_is_not_decompressed(tmp_path, monkeypatch):
    # 10 declared bytes, then 64 MB of zeros that compress to about 64 KB.
    payload = idx_header((10,)) + bytes(64 * 2 ** 20)
    path = tmp_path / "bomb-idx1-ubyte.gz"
    path.write_bytes(gzip.compress(payload, compresslevel=9))
    assert os.path.getsize(path) < 200_000
    delivered = []

    class CountingGzipFile(gzip.GzipFile):
        def read(self, size=-1):
            data = super().read(size)
            delivered.append(len(data))
            return data

    monkeypatch.setattr(gzip, "open", lambda name, mode: CountingGzipFile(name, mode))
    with pytest.raises(IDXFormatError, match=r"bomb-idx1-ubyte\.gz: has trailing bytes: the "
                                             r"header declares shape \(10,\)"):
        read_idx(path)
    assert sum(delivered) == 4 + 4 + 10 + 1  # the header, the payload and one byte more
    assert peak_bytes(lambda: read_idx(path)) < 2 * 2 ** 20


def test_gzip_bomb_with_an_honest_header_stops_at_max_bytes(tmp_path):
    n = 8 * 2 ** 20
    path = tmp_path / "zeros-idx1-ubyte.gz"
    path.write_bytes(gzip.compress(idx_header((n,)) + bytes(n), compresslevel=9))
    with pytest.raises(IDXFormatError, match=r"zeros-idx1-ubyte\.gz: the header declares shape "
                                             r"\(8388608,\) \(8388608 bytes of uint8\), more "
                                             r"than max_bytes=1048576; pass read_idx\(\.\.\., "
                                             r"max_bytes=\)"):
        read_idx(path, max_bytes=2 ** 20)
    assert peak_bytes(lambda: read_idx(path, max_bytes=2 ** 20)) < 2 ** 20
    assert read_idx(path).shape == (n,)  # within the default limit it is just a big file


@pytest.mark.parametrize("head, message", [
    (bytes([1, 0, 8, 1]), "bad magic number 0x01000801; not an IDX file"),
    (bytes([0, 0, 7, 1]), "bad magic number 0x00000701; not an IDX file"),  # no type 0x07
    (bytes([0, 0, 8, 0]), "bad magic number 0x00000800; not an IDX file"),  # 0 dimensions
    (b"\x89PNG", "bad magic number 0x89504e47; not an IDX file"),
])
@pytest.mark.parametrize("compress", [False, True])
def test_wrong_magic_numbers(tmp_path, head, message, compress):
    data = head + bytes(16)
    path = tmp_path / "file"
    path.write_bytes(gzip.compress(data) if compress else data)
    with pytest.raises(IDXFormatError, match=rf"{path}: {message}"):
        read_idx(path)


@pytest.mark.parametrize("compress", [False, True])
def test_truncated_dimension_header(tmp_path, compress):
    data = bytes([0, 0, 8, 3]) + (5).to_bytes(4, "big") + b"\x00\x00"
    path = tmp_path / "cut"
    path.write_bytes(gzip.compress(data) if compress else data)
    with pytest.raises(IDXFormatError, match=r"cut: truncated header \(10 bytes, expected 16 "
                                             r"for 3 dimensions\)"):
        read_idx(path)


def test_gzip_checksum_mismatch_is_caught(tmp_path):
    blob = bytearray(gzip.compress(idx_header((3,)) + bytes([1, 2, 3])))
    blob[-8] ^= 0xFF  # the CRC-32 in the trailer
    path = tmp_path / "crc-idx1-ubyte.gz"
    path.write_bytes(bytes(blob))
    with pytest.raises(IDXFormatError, match=r"crc-idx1-ubyte\.gz: corrupt or truncated gzip"):
        read_idx(path)


def valid_idx() -> bytes:
    array = np.arange(24, dtype=">i2").reshape(2, 3, 4)
    return idx_header(array.shape, 0x0B) + array.tobytes()


@pytest.mark.parametrize("compress", [False, True])
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(flips=st.lists(st.tuples(st.integers(0, 10 ** 6), st.integers(1, 255)), max_size=3),
       cut=st.one_of(st.none(), st.integers(0, 10 ** 6)))
def test_idx_byte_flips_and_truncations(tmp_path, compress, flips, cut):
    blob = bytearray(gzip.compress(valid_idx()) if compress else valid_idx())
    for position, mask in flips:
        blob[position % len(blob)] ^= mask
    if cut is not None:
        blob = blob[:cut % (len(blob) + 1)]
    path = tmp_path / "fuzz-idx3-ubyte"
    path.write_bytes(bytes(blob))
    try:
        array = read_idx(path)
    except IDXFormatError as error:
        assert str(path) in str(error)
    else:  # a flip that leaves a valid file (a changed value) reads consistently
        assert array.size * array.itemsize == len(valid_idx()) - 4 - 4 * array.ndim


# --- CIFAR ----------------------------------------------------------------------------------
RECORD = 1 + 3 * 32 * 32


def tar_bytes(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, payload in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
    return buffer.getvalue()


def records(n: int) -> bytes:
    rng = np.random.default_rng(n)
    rows = rng.integers(0, 256, (n, RECORD), dtype=np.uint8)
    rows[:, 0] %= 10
    return rows.tobytes()


def test_cifar_folder_file_larger_than_any_official_one(tmp_path, monkeypatch):
    monkeypatch.setattr(CIFAR10, "max_records", 2)
    folder = tmp_path / "cifar-10-batches-bin"
    folder.mkdir()
    (folder / "test_batch.bin").write_bytes(records(3))
    with pytest.raises(DataFormatError, match=r"test_batch\.bin: 9219 bytes is 3 records; a "
                                              r"CIFAR10 batch file holds at most 2"):
        CIFAR10(train=False, root=tmp_path)


def test_cifar_member_size_claiming_more_than_the_archive_holds(tmp_path):
    info = tarfile.TarInfo("cifar-10-batches-bin/test_batch.bin")
    info.size = 10 ** 12  # a terabyte, in a header of a few hundred bytes
    raw = info.tobuf(format=tarfile.GNU_FORMAT) + records(1)
    archive = tmp_path / "cifar-10-binary.tar.gz"
    archive.write_bytes(gzip.compress(raw))
    with pytest.raises(DataFormatError, match=r"cifar-10-binary\.tar\.gz: member "
                                              r"cifar-10-batches-bin/test_batch\.bin claims "
                                              r"1000000000000 bytes.*past the \d+-byte limit"):
        CIFAR10(train=False, root=tmp_path)
    assert peak_bytes(lambda: CIFAR10(train=False, root=tmp_path)) < 2 ** 20


def test_cifar_gzip_bomb_before_the_members(tmp_path, monkeypatch):
    monkeypatch.setattr(cifar_module, "MAX_ARCHIVE_BYTES", 2 ** 20)
    archive = tmp_path / "cifar-10-binary.tar.gz"
    archive.write_bytes(tar_bytes({"padding": bytes(8 * 2 ** 20),
                                   "cifar-10-batches-bin/test_batch.bin": records(2)}))
    with pytest.raises(DataFormatError, match=r"member padding claims 8388608 bytes.*past the "
                                              r"1048576-byte limit"):
        CIFAR10(train=False, root=tmp_path)


def test_cifar_member_not_a_whole_number_of_records_is_refused_before_reading(tmp_path):
    archive = tmp_path / "cifar-10-binary.tar.gz"
    archive.write_bytes(tar_bytes({"cifar-10-batches-bin/test_batch.bin": records(2) + b"x"}))
    with pytest.raises(DataFormatError, match=r"cifar-10-binary\.tar\.gz:cifar-10-batches-bin/"
                                              r"test_batch\.bin: 6147 bytes is not a whole number "
                                              r"of 3073-byte records"):
        CIFAR10(train=False, root=tmp_path)


def test_cifar_truncated_archive(tmp_path):
    blob = tar_bytes({"cifar-10-batches-bin/test_batch.bin": records(3)})
    archive = tmp_path / "cifar-10-binary.tar.gz"
    for cut in (10, len(blob) // 2, len(blob) - 4):
        archive.write_bytes(blob[:cut])
        with pytest.raises(DataFormatError, match=r"cifar-10-binary\.tar\.gz.*(corrupt or "
                                                  r"truncated|truncated)"):
            CIFAR10(train=False, root=tmp_path)


def test_cifar_wrong_kind_of_file(tmp_path):
    (tmp_path / "cifar-10-binary.tar.gz").write_bytes(b"<html>404 not found</html>")
    with pytest.raises(DataFormatError, match=r"cifar-10-binary\.tar\.gz: corrupt or truncated "
                                              r"archive"):
        CIFAR10(train=False, root=tmp_path)


VALID_TAR = tar_bytes({"cifar-10-batches-bin/test_batch.bin": records(2)})


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(flips=st.lists(st.tuples(st.integers(0, 10 ** 6), st.integers(1, 255)), max_size=3),
       cut=st.one_of(st.none(), st.integers(0, 10 ** 6)))
def test_cifar_byte_flips_and_truncations(tmp_path, flips, cut):
    blob = bytearray(VALID_TAR)
    for position, mask in flips:
        blob[position % len(blob)] ^= mask
    if cut is not None:
        blob = blob[:cut % (len(blob) + 1)]
    archive = tmp_path / "cifar-10-binary.tar.gz"
    archive.write_bytes(bytes(blob))
    try:
        ds = CIFAR10(train=False, root=tmp_path, transform=None)
    except DataFormatError as error:
        assert "cifar-10-binary.tar.gz" in str(error)
    else:
        assert ds.data.shape == (2, 3, 32, 32) and ds.label.max() < 10


# --- the npz cache ----------------------------------------------------------------------------
def test_corrupt_cache_names_the_file(tmp_path, monkeypatch):
    monkeypatch.setenv("ZEROGRAD_DATA", str(tmp_path))
    (tmp_path / "data.tar.gz.test.npz").write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(CorruptFileError, match=r"data\.tar\.gz\.test\.npz"):
        load_cache_npz("https://example.org/data.tar.gz")
    np.savez(tmp_path / "other.test.npz", x=np.zeros(2))
    with pytest.raises(CorruptFileError, match=r"other\.test\.npz' has no data or label array "
                                               r"\(it holds \['x'\]\)"):
        load_cache_npz("other")
