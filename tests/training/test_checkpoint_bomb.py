"""A checkpoint whose optimizer state (or weights) is a decompression bomb: resuming fails at
once, in little memory, with one line naming the file, the array, its declared shape and the
shape the receiving model or optimizer has, through fit(resume=True) and the command line."""

import os
import subprocess
import sys
import time
import tracemalloc
import zipfile
import zlib
from pathlib import Path

import pytest

from tests.test_serialization_hostile import _write_zip, _zeros_bomb
from tests.training.factories import setup
from zerograd import cli, training
from zerograd.errors import ShapeError
from zerograd.serialization import CorruptFileError

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MiB = 2**20
BOMB_SHAPE = (3 * 2**26,)  # 1.5 GiB of float64 zeros in a 1.5 MiB member


def bomb_checkpoint(path, key):
    """Replace member ``key`` of the checkpoint at ``path`` by BOMB_SHAPE zeros, the rest
    kept byte for byte (recompressed)."""
    members = []
    with zipfile.ZipFile(path) as zf:
        names = zf.namelist()
        assert f"{key}.npy" in names, names
        for name in names:
            if name == f"{key}.npy":
                members.append((name, *_zeros_bomb(BOMB_SHAPE)))
                continue
            data = zf.read(name)
            c = zlib.compressobj(6, zlib.DEFLATED, -15)
            members.append((name, c.compress(data) + c.flush(), len(data), zlib.crc32(data)))
    _write_zip(Path(path), members)
    assert os.path.getsize(path) < 2 * MiB
    return path


def measured(f):
    """(exception raised by f, seconds, peak bytes traced)."""
    tracemalloc.start()
    start = time.perf_counter()
    try:
        f()
    except Exception as e:  # noqa: BLE001 - the test inspects it
        error = e
    else:
        error = None
    seconds = time.perf_counter() - start
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return error, seconds, peak


def trained_run(tmp_path):
    out = tmp_path / "run"
    model, loader, kwargs = setup("mlp")
    training.fit(model, loader, epochs=1, out=str(out), verbose=0, **kwargs)
    return out


def resume(out, sized):
    model, loader, kwargs = setup("mlp")
    if sized:  # the first layer is lazy: a forward pass gives it its shape, (2, 10)
        model(next(iter(loader))[0])
    return lambda: training.fit(model, loader, epochs=2, out=str(out), resume=True,
                                verbose=0, **kwargs)


@pytest.mark.parametrize("key, name", [("optimizer/params/0/state/m", "'m'"),
                                       ("model/l0/W", "'l0/W'")])
def test_fit_resume_refuses_the_bomb_from_its_header(tmp_path, key, name):
    out = trained_run(tmp_path)
    path = bomb_checkpoint(str(out / "checkpoint.npz"), key)
    error, seconds, peak = measured(resume(out, sized=True))
    assert isinstance(error, ShapeError), error
    assert str(error) == (f"load_checkpoint: {path!r}, array {key!r}: {name} has shape "
                          f"(201326592,) (float64, 1.5 GiB declared) in the file, expected "
                          f"(2, 10) (float32); no data was read")
    assert seconds < 1.0, seconds
    assert peak < 8 * MiB, f"{peak / MiB:.1f} MiB allocated"


def test_lazy_model_bounds_the_bomb_by_the_files_size(tmp_path):
    # Before its first forward pass the model cannot say l0/W's shape (nor the optimizer
    # its state's): the file's own size bounds those arrays.
    out = trained_run(tmp_path)
    path = bomb_checkpoint(str(out / "checkpoint.npz"), "optimizer/params/0/state/m")
    error, seconds, peak = measured(resume(out, sized=False))
    assert isinstance(error, CorruptFileError), error
    message = str(error)
    assert message.startswith(f"load_checkpoint: {path!r} declares 1.5 GiB of arrays ("), message
    assert "1.5 GiB in 'optimizer/params/0/state/m', float64 (201326592,)) in a file of " \
        "1.5 MiB" in message and "\n" not in message, message
    assert seconds < 1.0, seconds
    assert peak < 8 * MiB, f"{peak / MiB:.1f} MiB allocated"


def test_cli_resume_refuses_the_bomb_in_little_memory(tmp_path, capsys):
    out = str(tmp_path / "run")
    assert cli.main(["train", "--out", out, "--epochs", "1", "--no-progress", "--dataset",
                     "spiral", "--hidden", "10"]) == 0
    path = bomb_checkpoint(os.path.join(out, "checkpoint.npz"), "optimizer/params/0/state/m")
    capsys.readouterr()
    args = ["train", "--out", out, "--resume", "--epochs", "2", "--no-progress"]
    status = []
    error, seconds, peak = measured(lambda: status.append(cli.main(args)))
    stderr = capsys.readouterr().err
    assert error is None and status == [2]
    assert stderr.startswith("zerograd: error: ") and stderr.count("\n") == 1, stderr
    assert f"{path!r}" in stderr and "'optimizer/params/0/state/m', float64 (201326592,)" in stderr
    assert seconds < 1.0, seconds
    assert peak < 8 * MiB, f"{peak / MiB:.1f} MiB allocated"

    # The same through a process of its own: its peak resident memory (the interpreter,
    # NumPy and zerograd included) stays far below the 1.5 GiB the file declares. Measured
    # inside it (VmHWM, which exec resets): a child's ru_maxrss on Linux also counts the
    # parent's memory at fork, a test process's gigabyte included.
    if not os.path.exists("/proc/self/status"):
        return  # not Linux: no VmHWM to read; the in-process bound above still holds
    env = {**os.environ, "PYTHONPATH": REPO}
    child = subprocess.run([sys.executable, "-c", CHILD, *args], cwd=REPO, env=env,
                           capture_output=True, text=True, timeout=120)
    assert child.returncode == 2 and child.stderr.count("\n") == 1, child.stderr
    assert "'optimizer/params/0/state/m', float64 (201326592,)" in child.stderr
    resident_kib = int(child.stdout.split("VmHWM")[-1].split()[0])
    assert resident_kib * 1024 < 400 * MiB, f"{resident_kib / 1024:.0f} MiB resident"


# zerograd's command line, then the process's peak resident memory (Linux's /proc).
CHILD = """
import sys
from zerograd import cli
status = cli.main(sys.argv[1:])
with open("/proc/self/status") as f:
    print("VmHWM", [line.split()[1] for line in f if line.startswith("VmHWM")][0])
sys.exit(status)
"""
