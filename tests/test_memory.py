"""zerograd.memory: ``import zerograd`` keeps a step's freed arrays mapped (glibc), so that the
next step reuses their pages instead of faulting fresh ones in; the environment can refuse.

The allocator is process-wide, so every check of its behaviour runs in a fresh interpreter.
"""

import json
import os
import subprocess
import sys

import pytest

import zerograd.memory as memory

GLIBC = memory._glibc() is not None
needs_glibc = pytest.mark.skipif(not GLIBC, reason="glibc's malloc only")

# One "step" of a whole-sequence op: its input projection, saved activations and a copied
# output, a few MiB each, all but the output freed at its end. This is the pattern that made
# 2,500 page faults a call in LSTMSeq's forward under glibc's adaptive thresholds.
STEP_FAULTS = """
import json, os, resource, sys
import numpy as np
import zerograd

MiB = 1 << 18  # float32 elements in 1 MiB

def step():
    xw = np.ones(4 * MiB, np.float32)
    act = np.ones(4 * MiB, np.float32)
    saved = [np.ones(MiB, np.float32) for _ in range(3)]
    y = saved[2].copy()
    del act, saved, xw
    return y

for _ in range(3):
    step()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(20):
    step()
faults = (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 20
print(json.dumps({"faults": faults, "settings": zerograd.memory.settings()}))
"""


@pytest.fixture
def own_state(monkeypatch):
    """The module's record of what it did, as a copy this test may change."""
    monkeypatch.setattr(memory, "_state", dict(memory._state))


def run_fresh(code: str, **environment) -> dict:
    env = {k: v for k, v in os.environ.items()
           if k not in ("ZEROGRAD_MALLOC", "GLIBC_TUNABLES") and not k.startswith("MALLOC_")}
    env.update(environment)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=env, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout)


@needs_glibc
def test_import_keeps_freed_memory_and_a_step_then_faults_no_pages_in():
    kept = run_fresh(STEP_FAULTS)
    assert kept["settings"] == {"applied": True, "reason": "set by zerograd",
                                "mmap_threshold": 32 << 20, "trim_threshold": 128 << 20}
    assert kept["faults"] <= 5
    # What the setting removes: glibc's own thresholds give the pages back every step
    # (4 KiB pages: the step's 10 MiB of freed arrays are about 2,500 of them).
    system = run_fresh(STEP_FAULTS, ZEROGRAD_MALLOC="system")
    assert system["settings"]["applied"] is False
    assert system["settings"]["reason"] == "ZEROGRAD_MALLOC=system"
    assert system["faults"] >= 500


SETTINGS = "import json, zerograd; print(json.dumps(zerograd.memory.settings()))"


@pytest.mark.parametrize("value", ["", "1", "keep", " KEEP "])
@needs_glibc
def test_zerograd_malloc_keep_values(value):
    assert run_fresh(SETTINGS, ZEROGRAD_MALLOC=value)["applied"] is True


@pytest.mark.parametrize("value", ["0", "system", "System"])
def test_zerograd_malloc_system_leaves_the_allocator_alone(value):
    assert run_fresh(SETTINGS, ZEROGRAD_MALLOC=value) == {
        "applied": False, "reason": "ZEROGRAD_MALLOC=system", "mmap_threshold": None,
        "trim_threshold": None}


def test_a_bad_zerograd_malloc_fails_the_import_naming_the_values():
    out = subprocess.run([sys.executable, "-c", "import zerograd"], capture_output=True,
                         text=True, env={**os.environ, "ZEROGRAD_MALLOC": "lots"}, timeout=120)
    assert out.returncode != 0
    assert ("ValueError: ZEROGRAD_MALLOC must be keep (or 1, or unset) or system (or 0), "
            "got 'lots'") in out.stderr


@pytest.mark.parametrize("variable, value, named", [
    ("MALLOC_TRIM_THRESHOLD_", "1000000", "MALLOC_TRIM_THRESHOLD_"),
    ("MALLOC_MMAP_THRESHOLD_", "1000000", "MALLOC_MMAP_THRESHOLD_"),
    ("MALLOC_TOP_PAD_", "0", "MALLOC_TOP_PAD_"),
    ("MALLOC_MMAP_MAX_", "0", "MALLOC_MMAP_MAX_"),
    ("GLIBC_TUNABLES", "glibc.malloc.trim_threshold=1000000", "GLIBC_TUNABLES"),
])
@needs_glibc
def test_the_users_own_glibc_settings_win(variable, value, named):
    settings = run_fresh(SETTINGS, **{variable: value})
    assert settings["applied"] is False
    assert settings["reason"] == f"the environment sets glibc's malloc ({named})"


@needs_glibc
def test_other_glibc_tunables_do_not_count_as_malloc_settings():
    assert run_fresh(SETTINGS, GLIBC_TUNABLES="glibc.cpu.hwcaps=-AVX512F")["applied"] is True


@needs_glibc
def test_release_freed_memory_gives_the_kept_pages_back():
    code = """
import json
import numpy as np
import zerograd

def rss_mib():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096 / 2**20

start = rss_mib()
arrays = [np.ones(1 << 18, np.float32) for _ in range(80)]  # 80 MiB from the heap
del arrays
kept = rss_mib()
released = zerograd.memory.release_freed_memory()
print(json.dumps({"start": start, "kept": kept, "after": rss_mib(), "released": released}))
"""
    out = run_fresh(code)
    assert out["kept"] - out["start"] >= 70  # below the trim threshold: still mapped
    assert out["released"] is True
    assert out["after"] - out["start"] <= 10


@pytest.mark.parametrize("name, value", [("mmap_threshold", -1), ("trim_threshold", 2**31),
                                         ("mmap_threshold", 1.5), ("trim_threshold", True)])
def test_keep_freed_memory_refuses_a_bad_size(name, value):
    with pytest.raises(ValueError, match=f"keep_freed_memory: {name} must be a number of "
                                         r"bytes in \[0, 2\*\*31\)"):
        memory.keep_freed_memory(**{name: value})


def test_a_refused_mallopt_is_reported(monkeypatch, own_state):
    class RefusingLibc:  # glibc's mallopt returns 0 for a value it does not accept
        def mallopt(self, parameter, value):
            return 0

    monkeypatch.setattr(memory, "_glibc", RefusingLibc)
    assert memory.keep_freed_memory(mmap_threshold=1 << 20) is False
    assert memory.settings()["applied"] is False
    assert memory.settings()["reason"] == ("glibc's mallopt refused mmap_threshold=1048576 "
                                           "or trim_threshold=134217728")


def test_another_c_library_is_left_alone(monkeypatch, own_state):
    def not_glibc(name):
        raise ValueError("unrecognized configuration name")

    monkeypatch.setattr(memory.os, "confstr", not_glibc)
    assert memory.keep_freed_memory() is False
    assert memory.settings()["reason"] == "the C library is not glibc"
    assert memory.release_freed_memory() is False


def test_settings_is_a_copy():
    settings = memory.settings()
    settings["applied"] = "changed"
    assert memory.settings()["applied"] != "changed"
