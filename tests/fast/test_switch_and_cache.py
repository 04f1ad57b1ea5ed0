"""The dispatch switch (ZEROGRAD_FAST, numpy_only), `import zerograd` staying NumPy-only, and
the on-disk cache: a second process loads the compiled kernel instead of compiling it, from
zerograd's cache folder, leaving the user's own numba functions alone."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import zerograd._fast as fast

ROOT = Path(__file__).resolve().parents[2]


def _python(code: str, script_dir: Path | None = None, **env) -> str:
    """Run ``code`` in a fresh interpreter (from a file in ``script_dir`` if given: numba
    caches only functions defined in files)."""
    full = dict(os.environ, PYTHONPATH=str(ROOT), **env)
    full.pop("NUMBA_CACHE_DIR", None)
    if script_dir is None:
        command = [sys.executable, "-c", code]
    else:
        script_dir.mkdir(exist_ok=True)
        (script_dir / "run.py").write_text(code)
        command = [sys.executable, str(script_dir / "run.py")]
    result = subprocess.run(command, env=full, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_import_zerograd_does_not_import_numba():
    code = "import sys, zerograd, zerograd._fast; print('numba' in sys.modules)"
    assert _python(code) == "False"


def test_mode_from_the_environment(monkeypatch):
    for raw, expected in (("0", "off"), ("1", "on"), ("", "auto"), ("AUTO", "auto")):
        monkeypatch.setenv("ZEROGRAD_FAST", raw)
        assert fast.mode() == expected
    monkeypatch.setenv("ZEROGRAD_FAST", "yes")
    with pytest.raises(ValueError, match="ZEROGRAD_FAST must be 0, 1 or auto .*got 'yes'"):
        fast.mode()
    with pytest.raises(ValueError, match="got 'yes'"):  # every time, not only the first
        fast.mode()


def test_mode_follows_every_change_of_os_environ(monkeypatch):
    # mode() reads os.environ's own mapping and parses each raw value once: it must still
    # see each assignment and deletion at once, as os.environ.get does.
    monkeypatch.delenv("ZEROGRAD_FAST", raising=False)
    assert fast.mode() == "auto"
    for raw, expected in ((" 1 ", "on"), ("0", "off"), ("auto", "auto"), ("1", "on")):
        os.environ["ZEROGRAD_FAST"] = raw
        assert fast.mode() == expected, raw
        assert fast.mode() == expected, raw  # the parsed value, from the cache
    del os.environ["ZEROGRAD_FAST"]
    assert fast.mode() == "auto"


def test_mode_without_os_environs_mapping(monkeypatch):
    # Where os.environ keeps no such mapping, mode() asks os.environ.get.
    monkeypatch.setattr(fast, "_ENVIRON_KEY", None)
    monkeypatch.setenv("ZEROGRAD_FAST", "0")
    assert fast.mode() == "off"
    monkeypatch.setenv("ZEROGRAD_FAST", "1")
    assert fast.mode() == "on"


def test_zero_forces_the_numpy_path(monkeypatch):
    monkeypatch.setenv("ZEROGRAD_FAST", "0")
    assert fast.available() is False


def test_numba_missing(monkeypatch):
    monkeypatch.setattr(fast, "_numba_imports", False)
    monkeypatch.delenv("ZEROGRAD_FAST", raising=False)
    assert fast.available() is False  # auto: quietly the NumPy path
    monkeypatch.setenv("ZEROGRAD_FAST", "1")
    with pytest.raises(fast.FastPathError, match=r"ZEROGRAD_FAST=1 but numba cannot be "
                                                 r"imported; install it with pip install"):
        fast.available()


def test_numpy_only_block(monkeypatch):
    pytest.importorskip("numba")
    monkeypatch.delenv("ZEROGRAD_FAST", raising=False)
    assert fast.available() is True
    with fast.numpy_only():
        assert fast.available() is False
        with fast.numpy_only():
            assert fast.available() is False
        assert fast.available() is False
    assert fast.available() is True


def test_cache_dir_precedence(monkeypatch, tmp_path):
    monkeypatch.delenv("NUMBA_CACHE_DIR", raising=False)
    monkeypatch.delenv("ZEROGRAD_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert fast.cache_dir() == tmp_path / "xdg" / "zerograd" / "numba"
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path / "numba"))
    assert fast.cache_dir() == tmp_path / "numba"
    monkeypatch.setenv("ZEROGRAD_CACHE", str(tmp_path / "zg"))
    assert fast.cache_dir() == tmp_path / "zg" / "numba"


# A subprocess that runs one small kernel and reports numba's cache statistics for it, and
# where a user's own cached numba function would be stored.
_RUN_KERNEL = """
import json, numpy as np, numba
from numba.core import config
from zerograd._fast import indexing
out = indexing.scatter_rows((4, 3), 0, np.array([1, 1, 3]), np.ones((3, 3)))
stats = indexing._scatter_rows3.stats
@numba.njit(cache=True)
def users_own(x):
    return x + 1
print(json.dumps({"hits": sum(stats.cache_hits.values()),
                  "misses": sum(stats.cache_misses.values()),
                  "row1": out[1].tolist(), "numba_cache_dir": config.CACHE_DIR,
                  "user_locator": type(users_own._cache._impl.locator).__name__}))
"""


def test_second_process_loads_compiled_kernels_from_the_cache(tmp_path):
    pytest.importorskip("numba")
    env = {"ZEROGRAD_CACHE": str(tmp_path), "ZEROGRAD_FAST": "1"}
    cold = json.loads(_python(_RUN_KERNEL, tmp_path / "user", **env))
    assert cold["misses"] == 1 and cold["hits"] == 0  # compiled, then saved
    assert cold["row1"] == [2.0, 2.0, 2.0]
    saved = list((tmp_path / "numba").rglob("*.nbi"))
    assert any("_scatter_rows3" in p.name for p in saved), saved
    warm = json.loads(_python(_RUN_KERNEL, tmp_path / "user", **env))
    assert warm["hits"] == 1 and warm["misses"] == 0  # loaded: no compilation
    # numba's own setting is untouched, so a user's function is cached where numba puts it.
    assert warm["numba_cache_dir"] == ""
    assert warm["user_locator"] != "UserProvidedCacheLocator"


def test_unwritable_cache_dir_still_works(tmp_path):
    pytest.importorskip("numba")
    if os.geteuid() == 0:
        blocked = tmp_path / "file"  # root writes anywhere: use a path that cannot be a folder
        blocked.write_text("not a folder")
    else:
        blocked = tmp_path / "ro"
        blocked.mkdir(mode=0o500)
    result = json.loads(_python(_RUN_KERNEL, tmp_path / "user", ZEROGRAD_CACHE=str(blocked / "x"),
                                ZEROGRAD_FAST="1"))
    assert result["row1"] == [2.0, 2.0, 2.0]  # numba fell back to another location
