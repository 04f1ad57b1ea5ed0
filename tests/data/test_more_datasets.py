"""CIFAR-10/100 (binary archives), Tiny Shakespeare, ImageNet labels, the npz cache helpers."""

import io
import os
import tarfile

import numpy as np
import pytest

from zerograd.data import download as download_module
from zerograd.datasets import (
    CIFAR10,
    CIFAR100,
    DataFormatError,
    ImageNet,
    Shakespear,
    Shakespeare,
    load_cache_npz,
    save_cache_npz,
)


class FakeResponse(io.BytesIO):
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def cifar_records(n, label_columns, seed=0):
    rng = np.random.default_rng(seed)
    labels = np.stack([rng.integers(0, high, n) for high in label_columns], axis=1)
    images = rng.integers(0, 256, (n, 3, 32, 32))
    records = np.concatenate([labels, images.reshape(n, -1)], axis=1).astype(np.uint8)
    return records, labels, images.astype(np.uint8)


def write_tar(path, members):
    with tarfile.open(path, "w:gz") as tar:
        for name, payload in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))


def test_cifar10_from_extracted_folder(tmp_path):
    folder = tmp_path / "cifar-10-batches-bin"
    folder.mkdir()
    parts = [cifar_records(3, [10], seed=i) for i in range(6)]
    for i in range(5):
        (folder / f"data_batch_{i + 1}.bin").write_bytes(parts[i][0].tobytes())
    (folder / "test_batch.bin").write_bytes(parts[5][0].tobytes())
    train = CIFAR10(root=tmp_path, transform=None)
    assert train.data.shape == (15, 3, 32, 32) and train.data.dtype == np.uint8
    np.testing.assert_array_equal(train.data[3:6], parts[1][2])
    np.testing.assert_array_equal(train.label, np.concatenate([p[1][:, 0] for p in parts[:5]]))
    test = CIFAR10(train=False, root=tmp_path)
    x, t = test[1]
    assert x.dtype == np.float32 and x.shape == (3, 32, 32)
    np.testing.assert_allclose(x, (parts[5][2][1] - 127.5) / 127.5, rtol=1e-6)
    assert -1.0 <= x.min() and x.max() <= 1.0 and t == parts[5][1][1, 0]
    assert CIFAR10.labels()[0] == "airplane"


def test_cifar100_from_archive_with_label_types(tmp_path):
    records, labels, images = cifar_records(4, [20, 100])
    write_tar(tmp_path / "cifar-100-binary.tar.gz",
              {"cifar-100-binary/train.bin": records.tobytes(),
               "cifar-100-binary/test.bin": records[:2].tobytes()})
    fine = CIFAR100(root=tmp_path, transform=None)
    coarse = CIFAR100(root=tmp_path, label_type="coarse", transform=None)
    np.testing.assert_array_equal(fine.label, labels[:, 1])
    np.testing.assert_array_equal(coarse.label, labels[:, 0])
    np.testing.assert_array_equal(fine.data, images)
    assert len(CIFAR100(train=False, root=tmp_path)) == 2
    assert len(CIFAR100.labels()) == 100 and len(CIFAR100.labels("coarse")) == 20
    assert CIFAR100.labels()[0] == "apple" and CIFAR100.labels("coarse")[19] == "vehicles_2"
    with pytest.raises(ValueError, match="label_type must be 'fine' or 'coarse'"):
        CIFAR100(root=tmp_path, label_type="medium")


def test_cifar_errors_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"cifar-10-binary\.tar\.gz.*download=True"):
        CIFAR10(root=tmp_path)
    records, _, _ = cifar_records(2, [10])
    write_tar(tmp_path / "cifar-10-binary.tar.gz",
              {"cifar-10-batches-bin/test_batch.bin": records.tobytes()[:-5]})
    with pytest.raises(DataFormatError, match=r"test_batch\.bin: 6141 bytes is not a whole"):
        CIFAR10(train=False, root=tmp_path)
    with pytest.raises(DataFormatError, match="has no member cifar-10-batches-bin/data_batch_1"):
        CIFAR10(train=True, root=tmp_path)
    archive = tmp_path / "cifar-10-binary.tar.gz"
    archive.write_bytes(archive.read_bytes()[:40])
    with pytest.raises(DataFormatError, match="corrupt or truncated archive"):
        CIFAR10(train=False, root=tmp_path)
    bad = records.copy()
    bad[0, 0] = 12
    write_tar(archive, {"cifar-10-batches-bin/test_batch.bin": bad.tobytes()})
    with pytest.raises(DataFormatError, match="label 12 is out of range for 10 classes"):
        CIFAR10(train=False, root=tmp_path)


def test_cifar_download_with_fake_network(tmp_path, monkeypatch):
    records, labels, _ = cifar_records(3, [10])
    buffer = tmp_path / "server.tar.gz"
    write_tar(buffer, {"cifar-10-batches-bin/test_batch.bin": records.tobytes()})
    requested = []

    def fake_urlopen(url, timeout):
        requested.append(url)
        return FakeResponse(buffer.read_bytes())

    monkeypatch.setattr(download_module, "urlopen", fake_urlopen)
    ds = CIFAR10(train=False, root=tmp_path / "cache", download=True)
    np.testing.assert_array_equal(ds.label, labels[:, 0])
    assert requested == [CIFAR10.url]


def test_shakespeare_ids_and_alias(tmp_path):
    (tmp_path / Shakespeare.file_name).write_text("abca b\n", encoding="utf-8")
    ds = Shakespear(root=tmp_path)
    assert Shakespear is Shakespeare
    assert ds.char_to_id == {"a": 0, "b": 1, "c": 2, " ": 3, "\n": 4}
    assert ds.id_to_char[3] == " "
    np.testing.assert_array_equal(ds.data, [0, 1, 2, 0, 3, 1])
    np.testing.assert_array_equal(ds.label, [1, 2, 0, 3, 1, 4])
    assert ds[2] == (2, 0)
    with pytest.raises(FileNotFoundError, match="download=True"):
        Shakespeare(root=tmp_path / "empty")


def test_imagenet_labels_are_parsed_not_evaluated(tmp_path, monkeypatch):
    monkeypatch.setenv("ZEROGRAD_DATA", str(tmp_path))
    table = "{0: 'tench, Tinca tinca',\n 1: 'goldfish, Carassius auratus'}"
    monkeypatch.setattr(download_module, "urlopen",
                        lambda url, timeout: FakeResponse(table.encode()))
    assert ImageNet.labels() == {0: "tench, Tinca tinca", 1: "goldfish, Carassius auratus"}
    os.remove(os.path.join(tmp_path, "imagenet1000_clsidx_to_labels.txt"))
    monkeypatch.setattr(download_module, "urlopen",
                        lambda url, timeout: FakeResponse(b"__import__('os').system('x')"))
    with pytest.raises(DataFormatError, match="not a literal dict"):
        ImageNet.labels()
    with pytest.raises(NotImplementedError, match="ImageNet.labels"):
        ImageNet()


def test_cache_npz_roundtrip(tmp_path, monkeypatch):
    monkeypatch.setenv("ZEROGRAD_DATA", str(tmp_path))
    url = "https://example.org/files/data.tar.gz"
    assert load_cache_npz(url, train=True) == (None, None)
    data, label = np.arange(6).reshape(3, 2), np.array([0, 1, 0])
    path = save_cache_npz(data, label, url, train=True)
    assert path == os.path.join(tmp_path, "data.tar.gz.train.npz")
    loaded = load_cache_npz(url, train=True)
    np.testing.assert_array_equal(loaded[0], data)
    np.testing.assert_array_equal(loaded[1], label)
    assert save_cache_npz(data, label, url, train=True) is None  # already cached
    assert load_cache_npz(url, train=False) == (None, None)


def test_show_draws_a_grid(tmp_path, monkeypatch):
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = []
    monkeypatch.setattr(plt, "show", lambda: shown.append(plt.gca().images[-1]))
    folder = tmp_path / "cifar-10-batches-bin"
    folder.mkdir()
    (folder / "test_batch.bin").write_bytes(cifar_records(5, [10])[0].tobytes())
    CIFAR10(train=False, root=tmp_path).show(row=2, col=3)
    assert shown[-1].get_array().shape == (64, 96, 3)
    from zerograd.datasets import MNIST

    header = bytes([0, 0, 8, 3]) + b"".join(n.to_bytes(4, "big") for n in (4, 28, 28))
    (tmp_path / "t10k-images-idx3-ubyte").write_bytes(header + bytes(4 * 28 * 28))
    labels = bytes([0, 0, 8, 1]) + (4).to_bytes(4, "big") + bytes(4)
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(labels)
    MNIST(train=False, root=tmp_path).show(row=3, col=2)
    assert shown[-1].get_array().shape == (84, 56)
    plt.close("all")
