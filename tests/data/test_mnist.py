import gzip
import io
import os

import numpy as np
import pytest

from zerograd import datasets
from zerograd.data import download as download_module
from zerograd.dataloaders import DataLoader
from zerograd.datasets import MNIST, IDXFormatError, read_idx


def idx_bytes(array: np.ndarray, type_code: int = 0x08) -> bytes:
    header = bytes([0, 0, type_code, array.ndim])
    header += b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    big_endian = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
    return header + array.astype(big_endian[type_code]).tobytes()


def write(path, payload: bytes, compress: bool):
    if compress:
        with gzip.open(path, "wb") as f:
            f.write(payload)
    else:
        with open(path, "wb") as f:
            f.write(payload)
    return str(path)


def fake_split(directory, prefix="t10k", n=5, compress=True, seed=0):
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, n, dtype=np.uint8)
    ext = ".gz" if compress else ""
    write(directory / f"{prefix}-images-idx3-ubyte{ext}", idx_bytes(images), compress)
    write(directory / f"{prefix}-labels-idx1-ubyte{ext}", idx_bytes(labels), compress)
    return images, labels


# --- The real test split (shared data) ------------------------------------------------------------
def test_shared_mnist_test_split(mnist_dir):
    ds = MNIST(train=False, root=mnist_dir)
    assert ds.data.shape == (10000, 1, 28, 28) and ds.data.dtype == np.uint8
    assert ds.label.tolist()[:10] == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
    np.testing.assert_array_equal(
        np.bincount(ds.label), [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009])
    x, t = ds[0]
    assert x.shape == (784,) and x.dtype == np.float32 and t == 7
    assert 0.0 <= x.min() and x.max() == 1.0
    xb, tb = DataLoader(ds, 100, shuffle=False).next()
    np.testing.assert_array_equal(xb[:3], np.stack([ds[i][0] for i in range(3)]))
    np.testing.assert_array_equal(tb[:10], [7, 2, 1, 0, 4, 1, 4, 9, 5, 9])


def test_shared_mnist_explicit_files_and_checksums(mnist_dir):
    images = os.path.join(mnist_dir, "t10k-images-idx3-ubyte.gz")
    labels = os.path.join(mnist_dir, "t10k-labels-idx1-ubyte.gz")
    ds = MNIST(images_file=images, labels_file=labels, transform=None)
    assert ds.data.shape == (10000, 1, 28, 28)
    assert ds[0][0].shape == (1, 28, 28) and ds[0][0].dtype == np.uint8
    for name, digest in MNIST.sha256.items():
        assert download_module.sha256sum(os.path.join(mnist_dir, name)) == digest


def test_missing_train_split_names_the_files(mnist_dir):
    with pytest.raises(FileNotFoundError, match=r"train split .*train-images-idx3-ubyte\.gz"):
        MNIST(train=True, root=mnist_dir)


# --- IDX reading --------------------------------------------------------------------------------
@pytest.mark.parametrize("compress", [True, False])
def test_reads_gzip_and_raw(tmp_path, compress):
    images, labels = fake_split(tmp_path, compress=compress)
    ds = MNIST(train=False, root=tmp_path, transform=None)
    np.testing.assert_array_equal(ds.data[:, 0], images)
    np.testing.assert_array_equal(ds.label, labels)
    assert ds.label.dtype == np.int64
    ds.data[0, 0, 0, 0] = 1  # writable, not a read-only frombuffer view


def test_read_idx_other_dtypes(tmp_path):
    a = np.arange(-6, 6, dtype=np.int32).reshape(3, 4)
    path = write(tmp_path / "a.idx", idx_bytes(a, 0x0C), compress=False)
    out = read_idx(path)
    np.testing.assert_array_equal(out, a)
    assert out.dtype == np.int32 and out.dtype.isnative
    f = np.linspace(-1, 1, 5)
    path = write(tmp_path / "f.idx.gz", idx_bytes(f, 0x0E), compress=True)
    np.testing.assert_array_equal(read_idx(path), f)


def test_truncated_file_is_named(tmp_path):
    images, labels = fake_split(tmp_path, compress=False)
    path = tmp_path / "t10k-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(IDXFormatError, match=r"t10k-images-idx3-ubyte: truncated.*\(5, 28, 28\)"):
        MNIST(train=False, root=tmp_path)


def test_truncated_gzip_is_named(tmp_path):
    fake_split(tmp_path, compress=True)
    path = tmp_path / "t10k-labels-idx1-ubyte.gz"
    path.write_bytes(path.read_bytes()[:-12])
    with pytest.raises(IDXFormatError, match=r"t10k-labels-idx1-ubyte\.gz: corrupt or truncated"):
        MNIST(train=False, root=tmp_path)


def test_bad_magic_and_swapped_files(tmp_path):
    junk = write(tmp_path / "junk", b"<html>not found</html>", compress=False)
    with pytest.raises(IDXFormatError, match="junk: bad magic number"):
        read_idx(junk)
    fake_split(tmp_path, compress=False)
    with pytest.raises(IDXFormatError, match="magic number 2049, expected 2051"):
        MNIST(images_file=tmp_path / "t10k-labels-idx1-ubyte",
              labels_file=tmp_path / "t10k-images-idx3-ubyte")
    short = write(tmp_path / "short", b"\x00\x00", compress=False)
    with pytest.raises(IDXFormatError, match="short: 2 bytes, too short"):
        read_idx(short)


def test_trailing_bytes_and_count_mismatch(tmp_path):
    fake_split(tmp_path, compress=False, n=5)
    path = tmp_path / "t10k-images-idx3-ubyte"
    path.write_bytes(path.read_bytes() + b"\x00")
    with pytest.raises(IDXFormatError, match="trailing bytes"):
        MNIST(train=False, root=tmp_path)
    fake_split(tmp_path, compress=False, n=5)
    write(tmp_path / "t10k-labels-idx1-ubyte", idx_bytes(np.zeros(4, np.uint8)), compress=False)
    with pytest.raises(IDXFormatError, match=r"\(4,\) labels for 5 images"):
        MNIST(train=False, root=tmp_path)


def test_wrong_image_size(tmp_path):
    write(tmp_path / "t10k-images-idx3-ubyte", idx_bytes(np.zeros((2, 8, 8), np.uint8)), False)
    write(tmp_path / "t10k-labels-idx1-ubyte", idx_bytes(np.zeros(2, np.uint8)), False)
    with pytest.raises(IDXFormatError, match=r"images of shape \(8, 8\), expected \(28, 28\)"):
        MNIST(train=False, root=tmp_path)


def test_cache_dir_from_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("ZEROGRAD_DATA", str(tmp_path))
    (tmp_path / "mnist").mkdir()
    images, _ = fake_split(tmp_path / "mnist", prefix="train", n=3)
    ds = MNIST(train=True)
    assert ds.root == str(tmp_path / "mnist")
    np.testing.assert_array_equal(ds.data[:, 0], images)
    with pytest.raises(FileNotFoundError, match="download=True"):
        MNIST(train=False)


def test_half_given_files_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="give both images_file= and labels_file="):
        MNIST(images_file=tmp_path / "x")


# --- Download (network monkeypatched) -------------------------------------------------------------
class FakeResponse(io.BytesIO):
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def test_download_fetches_missing_files(tmp_path, monkeypatch):
    payloads = {}
    source = tmp_path / "server"
    source.mkdir()
    images, labels = fake_split(source, prefix="train", n=4)
    for name in os.listdir(source):
        payloads[name] = (source / name).read_bytes()
    requested = []

    def fake_urlopen(url, timeout):
        requested.append((url, timeout))
        return FakeResponse(payloads[url.rsplit("/", 1)[1]])

    monkeypatch.setattr(download_module, "urlopen", fake_urlopen)
    root = tmp_path / "cache"
    with pytest.raises(FileNotFoundError):
        MNIST(root=root)  # no download unless asked
    assert requested == []
    ds = MNIST(root=root, download=True, transform=None)
    np.testing.assert_array_equal(ds.data[:, 0], images)
    np.testing.assert_array_equal(ds.label, labels)
    assert [url for url, _ in requested] == [
        MNIST.mirrors[0] + "train-images-idx3-ubyte.gz",
        MNIST.mirrors[0] + "train-labels-idx1-ubyte.gz"]
    assert all(timeout > 0 for _, timeout in requested)
    assert sorted(os.listdir(root)) == ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"]
    MNIST(root=root, download=True)  # cached now: no more requests
    assert len(requested) == 2


def test_download_falls_back_to_the_next_mirror(tmp_path, monkeypatch):
    source = tmp_path / "server"
    source.mkdir()
    fake_split(source, prefix="train", n=2)

    def fake_urlopen(url, timeout):
        if url.startswith(MNIST.mirrors[0]):
            raise OSError("connection refused")
        return FakeResponse((source / url.rsplit("/", 1)[1]).read_bytes())

    monkeypatch.setattr(download_module, "urlopen", fake_urlopen)
    assert len(MNIST(root=tmp_path / "cache", download=True)) == 2


def test_download_failure_reports_every_mirror(tmp_path, monkeypatch):
    def offline(url, timeout):
        raise OSError("network is unreachable")

    monkeypatch.setattr(download_module, "urlopen", offline)
    with pytest.raises(OSError, match="could not download train-images-idx3-ubyte.gz") as info:
        MNIST(root=tmp_path, download=True)
    assert str(info.value).count("network is unreachable") == len(MNIST.mirrors)
    assert os.listdir(tmp_path) == []  # no partial files left


def test_datasets_module_exports_mnist():
    assert datasets.MNIST is MNIST
    assert MNIST.labels()[3] == "3"
