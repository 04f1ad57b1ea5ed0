"""Safe downloads into zerograd's cache directory.

``get_file`` is DeZero's ``utils.get_file`` made safe: a timeout on the connection, the data
streamed into a temporary file in the target directory and renamed into place only when it is
complete (an interrupted download never leaves a truncated file behind), and an optional
SHA-256 check before the rename.
"""

from __future__ import annotations

import hashlib
import os
import sys
import tempfile
import urllib.parse
import urllib.request

# Looked up at call time (not bound in the function) so tests can monkeypatch the network.
urlopen = urllib.request.urlopen

_CHUNK_BYTES = 1 << 16


class DownloadError(OSError):
    """A download failed (network error, bad URL scheme or checksum mismatch)."""


def cache_dir() -> str:
    """zerograd's data directory: ``$ZEROGRAD_DATA`` when set, else ``~/.zerograd``."""
    root = os.environ.get("ZEROGRAD_DATA")
    if root:
        return os.path.abspath(os.path.expanduser(root))
    return os.path.join(os.path.expanduser("~"), ".zerograd")


def sha256sum(path: str | os.PathLike) -> str:
    """Hex SHA-256 digest of the file at ``path``."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK_BYTES), b""):
            digest.update(chunk)
    return digest.hexdigest()


def show_progress(block_num: int, block_size: int, total_size: int) -> None:
    """DeZero's download progress bar, a ``urllib.request.urlretrieve`` report hook.

    Prints ``[###...] 42.00%`` over itself on one line: 30 marks for the whole file.
    """
    if total_size <= 0:
        return  # the server sent no length: nothing to show a fraction of
    fraction = min(block_num * block_size / total_size, 1.0)
    marks = int(fraction * 30)
    print(f"\r[{'#' * marks}{'.' * (30 - marks)}] {fraction * 100:.2f}%", end="")


def get_file(url: str, file_name: str | None = None, *, directory: str | os.PathLike | None = None,
             sha256: str | None = None, timeout: float = 60.0, quiet: bool = False) -> str:
    """Download ``url`` into ``directory`` (default ``cache_dir()``) unless already there.

    Returns the absolute path of the file. ``file_name`` defaults to the last part of the URL.
    Only http(s) URLs are fetched. With ``sha256`` the downloaded bytes must match it (an
    existing cached file is checked too), else ``DownloadError``; nothing is left behind on
    failure.
    """
    if file_name is None:
        file_name = os.path.basename(urllib.parse.urlparse(url).path)
    if not file_name or os.path.basename(file_name) != file_name:
        raise ValueError(f"get_file: cannot derive a plain file name from {url!r} "
                         f"(got {file_name!r}); pass file_name=")
    directory = os.fspath(directory) if directory is not None else cache_dir()
    path = os.path.abspath(os.path.join(directory, file_name))

    if os.path.exists(path):
        if sha256 is not None and sha256sum(path) != sha256.lower():
            raise DownloadError(f"get_file: the cached file {path} does not match the expected "
                                f"SHA-256 {sha256}; delete it to download it again")
        return path

    scheme = urllib.parse.urlparse(url).scheme
    if scheme not in ("http", "https"):
        raise DownloadError(f"get_file: refusing to fetch {url!r}: only http(s) URLs are "
                            f"downloaded (got scheme {scheme!r})")

    os.makedirs(directory, exist_ok=True)
    if not quiet:
        print(f"Downloading: {file_name} from {url}", file=sys.stderr)
    fd, tmp_path = tempfile.mkstemp(dir=directory, prefix=f".{file_name}.", suffix=".part")
    try:
        digest = hashlib.sha256()
        with os.fdopen(fd, "wb") as out, urlopen(url, timeout=timeout) as response:
            for chunk in iter(lambda: response.read(_CHUNK_BYTES), b""):
                digest.update(chunk)
                out.write(chunk)
        if sha256 is not None and digest.hexdigest() != sha256.lower():
            raise DownloadError(f"get_file: {url} downloaded with SHA-256 {digest.hexdigest()}, "
                                f"expected {sha256}; the file was discarded")
        os.chmod(tmp_path, 0o644)  # mkstemp creates 0600; a cache file is for every user
        os.replace(tmp_path, path)
    except BaseException as error:
        if os.path.exists(tmp_path):
            os.remove(tmp_path)
        if isinstance(error, OSError) and not isinstance(error, DownloadError):
            raise DownloadError(f"get_file: could not download {url}: {error}") from error
        raise
    if not quiet:
        print(" Done", file=sys.stderr)
    return path
