"""Temporary files of atomic writes: named after their writer, removed once it is gone.

The kill test saves a 32 MiB state in a loop in a subprocess and kills it with SIGKILL at
random instants: the file always loads whole (the previous or the new content, never a mix),
and the next save in the directory removes the dead writer's temporary file.
"""

import os
import random
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from zerograd import serialization as S

posix_only = pytest.mark.skipif(os.name != "posix", reason="liveness is probed with kill(pid, 0)")


def _temp_files(directory):
    return sorted(name for name in os.listdir(directory) if name.endswith(".tmp"))


def _fake_temp(directory, target, pid, host=None):
    """A temporary file as atomic_write names them, claimed by ``pid``."""
    host = S._host_tag() if host is None else host
    path = directory / f".{target}.zerograd-{pid}-{host}-abc123_x.tmp"
    path.write_bytes(b"half a file")
    return path


def _dead_pid():
    """The pid of a process that has exited and been reaped."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_temp_file_name_carries_the_writer_pid_and_host(tmp_path, monkeypatch):
    seen = []
    real_replace = os.replace

    def spy(src, dst):
        seen.append(os.path.basename(src))
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", spy)
    S.save_npz(tmp_path / "w.npz", {"W": np.ones(2)})
    (name,) = seen
    match = S._TEMP_NAME.match(name)
    assert match is not None, name
    assert name.startswith(".w.npz.zerograd-")
    assert int(match["pid"]) == os.getpid() and match["host"] == S._host_tag()


@posix_only
def test_cleanup_removes_only_dead_writers_files_of_this_host(tmp_path):
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        dead = _fake_temp(tmp_path, "w.npz", _dead_pid())
        live = _fake_temp(tmp_path, "w.npz", sleeper.pid)
        mine = _fake_temp(tmp_path, "w.npz", os.getpid())  # another thread's write
        other_host = _fake_temp(tmp_path, "w.npz", _dead_pid(), host="00000000"
                                if S._host_tag() != "00000000" else "11111111")
        old_style = tmp_path / ".w.npz.k2j4h5.tmp"  # no pid: whose it is cannot be told
        old_style.write_bytes(b"x")
        unrelated = tmp_path / "notes.tmp"
        unrelated.write_bytes(b"x")
        removed = S.remove_stale_temp_files(tmp_path)
        assert removed == [str(dead)]
        assert not dead.exists()
        for kept in (live, mine, other_host, old_style, unrelated):
            assert kept.exists(), kept
        assert S.remove_stale_temp_files(tmp_path) == []
    finally:
        sleeper.kill()
        sleeper.wait()


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="zombies are seen through /proc")
def test_a_killed_but_unreaped_writer_counts_as_gone(tmp_path):
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # wait until it has exited (a zombie until wait())
        with open(f"/proc/{child.pid}/stat") as f:
            if f.read().rpartition(")")[2].split()[0] == "Z":
                break
        time.sleep(0.01)
    try:
        stale = _fake_temp(tmp_path, "w.npz", child.pid)
        assert S.remove_stale_temp_files(tmp_path) == [str(stale)]
    finally:
        child.wait()


@posix_only
def test_any_save_in_the_directory_cleans_it(tmp_path):
    stale_a = _fake_temp(tmp_path, "a.npz", _dead_pid())
    stale_b = _fake_temp(tmp_path, "metrics.json", _dead_pid())
    S.save_json(tmp_path / "other.json", {"x": 1})
    assert not stale_a.exists() and not stale_b.exists()
    assert _temp_files(tmp_path) == []
    assert S.load_json(tmp_path / "other.json") == {"x": 1}


def test_cleaning_a_missing_directory_is_a_no_op(tmp_path):
    assert S.remove_stale_temp_files(tmp_path / "nothing here") == []


_WRITER = textwrap.dedent("""
    import sys
    import numpy as np
    from zerograd.serialization import save_npz

    path, gen = sys.argv[1], int(sys.argv[2])
    arrays = {f"a{i}": np.empty(1 << 19) for i in range(8)}  # 8 x 4 MiB
    while True:
        gen += 1
        for a in arrays.values():
            a.fill(gen)
        save_npz(path, {**arrays, "gen": np.array(gen)}, compressed=False)
        print(gen, flush=True)
""")


def _check_consistent(path):
    arrays = S.load_npz(path)
    gen = int(arrays.pop("gen"))
    assert len(arrays) == 8
    for key, a in arrays.items():
        assert a.shape == (1 << 19,)
        assert a.min() == a.max() == gen, f"{key} mixes generations"
    return gen


@posix_only
def test_saves_killed_at_random_instants(tmp_path):
    rng = random.Random(1234)
    path = tmp_path / "state.npz"
    script = tmp_path / "writer.py"
    script.write_text(_WRITER)
    S.save_npz(path, {**{f"a{i}": np.zeros(1 << 19) for i in range(8)}, "gen": np.array(0)})
    gen, kills, interrupted = 0, 0, 0
    start = time.monotonic()
    while kills < 12 and time.monotonic() - start < 60:
        child = subprocess.Popen([sys.executable, str(script), str(path), str(gen)],
                                 stdout=subprocess.PIPE, text=True)
        first = child.stdout.readline()  # one save done: the next one is under way
        assert first.strip(), "the writer died before its first save"
        time.sleep(rng.uniform(0.0, 0.2))
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
        done = [int(line) for line in [first, *child.stdout.read().split()] if line.strip()]
        child.stdout.close()
        kills += 1
        loaded = _check_consistent(path)
        # A completed save is on disk; the one the kill interrupted may or may not be.
        assert done[-1] <= loaded <= done[-1] + 1
        leftovers = _temp_files(tmp_path)
        assert len(leftovers) <= 1
        interrupted += len(leftovers)
        # The next save removes the dead writer's file: to the same path, to another file
        # in the directory, or the command line's explicit clean-up.
        gen = loaded + 1
        if kills % 3 == 0:
            S.save_npz(path, {**{f"a{i}": np.full(1 << 19, float(gen)) for i in range(8)},
                              "gen": np.array(gen)}, compressed=False)
        elif kills % 3 == 1:
            S.save_json(tmp_path / "metrics.json", {"kills": kills})
            gen = loaded
        else:
            S.remove_stale_temp_files(tmp_path)
            gen = loaded
        assert _temp_files(tmp_path) == [], f"after kill {kills}"
        assert _check_consistent(path) == gen
    assert kills >= 10, f"only {kills} kills in the time allowed"
    assert interrupted >= 1, "no kill landed inside a save: the test did not test anything"
