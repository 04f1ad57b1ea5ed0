import hashlib
import io
import os

import pytest

from zerograd.data import download
from zerograd.data.download import DownloadError, cache_dir, get_file


class FakeResponse(io.BytesIO):
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class Interrupted(io.RawIOBase):
    """Yields one chunk, then fails as a dropped connection would."""

    def __init__(self):
        self.sent = False

    def read(self, n=-1):
        if self.sent:
            raise ConnectionResetError("connection reset by peer")
        self.sent = True
        return b"x" * 10

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        pass


def serve(monkeypatch, make_response):
    calls = []

    def fake_urlopen(url, timeout):
        calls.append((url, timeout))
        return make_response()

    monkeypatch.setattr(download, "urlopen", fake_urlopen)
    return calls


def test_get_file_downloads_then_uses_the_cache(tmp_path, monkeypatch):
    calls = serve(monkeypatch, lambda: FakeResponse(b"payload"))
    path = get_file("https://example.org/data/file.bin", directory=tmp_path, quiet=True,
                    timeout=5)
    assert path == str(tmp_path / "file.bin")
    assert open(path, "rb").read() == b"payload"
    assert calls == [("https://example.org/data/file.bin", 5)]
    assert get_file("https://example.org/data/file.bin", directory=tmp_path) == path
    assert len(calls) == 1
    assert os.listdir(tmp_path) == ["file.bin"]


def test_checksum_is_verified(tmp_path, monkeypatch):
    serve(monkeypatch, lambda: FakeResponse(b"payload"))
    good = hashlib.sha256(b"payload").hexdigest()
    path = get_file("https://example.org/a.bin", directory=tmp_path, sha256=good, quiet=True)
    assert os.path.exists(path)
    with pytest.raises(DownloadError, match="expected 00+; the file was discarded"):
        get_file("https://example.org/b.bin", directory=tmp_path, sha256="0" * 64, quiet=True)
    assert sorted(os.listdir(tmp_path)) == ["a.bin"]
    with pytest.raises(DownloadError, match="cached file .*a.bin does not match"):
        get_file("https://example.org/a.bin", directory=tmp_path, sha256="1" * 64)


def test_interrupted_download_leaves_nothing(tmp_path, monkeypatch):
    serve(monkeypatch, Interrupted)
    with pytest.raises(DownloadError, match="could not download .*connection reset"):
        get_file("https://example.org/big.bin", directory=tmp_path, quiet=True)
    assert os.listdir(tmp_path) == []


def test_keyboard_interrupt_removes_the_partial_file(tmp_path, monkeypatch):
    class Stop(FakeResponse):
        def read(self, n=-1):
            raise KeyboardInterrupt

    serve(monkeypatch, lambda: Stop(b""))
    with pytest.raises(KeyboardInterrupt):
        get_file("https://example.org/big.bin", directory=tmp_path, quiet=True)
    assert os.listdir(tmp_path) == []


def test_refuses_other_schemes_and_bad_names(tmp_path):
    with pytest.raises(DownloadError, match="only http"):
        get_file("file:///etc/passwd", directory=tmp_path)
    with pytest.raises(ValueError, match="plain file name"):
        get_file("https://example.org/", directory=tmp_path)
    with pytest.raises(ValueError, match="plain file name"):
        get_file("https://example.org/x", file_name="../escape", directory=tmp_path)


def test_cache_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("ZEROGRAD_DATA", str(tmp_path))
    assert cache_dir() == str(tmp_path)
    monkeypatch.delenv("ZEROGRAD_DATA")
    assert cache_dir() == os.path.join(os.path.expanduser("~"), ".zerograd")
