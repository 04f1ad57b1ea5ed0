"""`zerograd train` killed with SIGKILL at any instant: `--resume` finishes the run exactly.

The run directory's commit point is the rename of checkpoint.npz; every other file is derived
from it (docs/cli.md, "The commit protocol"). These tests kill a real `zerograd train`
process at each of its file operations (before each rename or removal, so a finished
temporary file is left too) and at random instants, then check that `--resume` completes,
removes the leftovers and ends with weights, optimizer state and metrics bit-identical to an
uninterrupted run's.
"""

import json
import os
import random
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from zerograd import cli
from zerograd.serialization import load_npz, load_state

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = ["--dataset", "spiral", "--hidden", "8", "--batch-size", "100", "--epochs", "2",
        "--lr", "0.05", "--no-progress"]
# Runs `zerograd train` with os.replace and os.remove counted: the ZG_KILL_AT-th call kills
# the process (SIGKILL, so no handler or finally block runs) just before it happens. The
# count of all calls is printed at the end, to enumerate the kill points.
KILLABLE = """
import os, signal, sys
from zerograd import cli

kill_at = int(os.environ.get("ZG_KILL_AT", "0"))
calls = 0
if os.environ.get("ZG_NO_MATPLOTLIB"):
    sys.modules["matplotlib"] = None  # importing it raises ImportError: no curves, and faster

def counted(real):
    def call(*args, **kwargs):
        global calls
        calls += 1
        if calls == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
        return real(*args, **kwargs)
    return call

os.replace, os.remove = counted(os.replace), counted(os.remove)
status = cli.main(sys.argv[1:])
print(f"file operations: {calls}", file=sys.stderr)
sys.exit(status)
"""
EXPECTED_FILES = sorted(cli.RUN_FILES)


def _env():
    return {**os.environ, "MPLBACKEND": "Agg", "OPENBLAS_NUM_THREADS": "1"}


def killable(out, *args, kill_at=0, curves=True):
    """Runs the counted `zerograd train --out out ...`; returns the CompletedProcess.

    ``curves=False`` hides matplotlib, whose import and drawing would be most of the time of
    the many short runs of the kill-at-every-operation test.
    """
    env = {**_env(), "ZG_KILL_AT": str(kill_at)}
    if not curves:
        env["ZG_NO_MATPLOTLIB"] = "1"
    return subprocess.run([sys.executable, "-c", KILLABLE, "train", "--out", out, *args],
                          capture_output=True, text=True, cwd=REPO, timeout=120, env=env)


def finish(out, curves=True):
    """What a user does after the kill: --resume, or a fresh start when nothing was saved."""
    result = killable(out, "--resume", "--no-progress", curves=curves)
    if not os.path.exists(os.path.join(out, cli.CHECKPOINT)):
        assert result.returncode == 2, result.stderr
        assert "no checkpoint at" in result.stderr
        assert "start the run without --resume" in result.stderr
        # No --overwrite needed: the directory holds no run, at most temporary files.
        result = killable(out, *TINY, curves=curves)
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def snapshot(out):
    """Everything the run's files say, less the epoch times."""
    weights = load_npz(os.path.join(out, cli.WEIGHTS))
    optimizer = load_state(os.path.join(out, cli.OPTIMIZER))
    checkpoint = load_state(os.path.join(out, cli.CHECKPOINT))
    with open(os.path.join(out, cli.METRICS)) as f:
        metrics = json.load(f)
    with open(os.path.join(out, cli.METRICS_CSV)) as f:
        csv_rows = [line.split(",")[:-1] for line in f.read().splitlines()]  # less seconds
    history = [{k: v for k, v in r.items() if k != "seconds"} for r in metrics["history"]]
    return {"weights": weights, "optimizer": optimizer, "checkpoint_model": checkpoint["model"],
            "epochs_done": metrics["epochs_done"], "finished": metrics["finished"],
            "history": history, "csv": csv_rows}


def assert_same(a, b):
    assert list(a["weights"]) == list(b["weights"])
    for key in a["weights"]:
        np.testing.assert_array_equal(a["weights"][key], b["weights"][key])
        np.testing.assert_array_equal(a["checkpoint_model"][key], b["weights"][key])
    oa, ob = a["optimizer"], b["optimizer"]
    assert oa["counters"] == ob["counters"] and oa["hyperparams"] == ob["hyperparams"]
    for pa, pb in zip(oa["params"], ob["params"], strict=True):
        assert list(pa["state"]) == list(pb["state"])
        for key in pa["state"]:
            np.testing.assert_array_equal(pa["state"][key], pb["state"][key])
    for key in ("epochs_done", "finished", "history", "csv"):
        assert a[key] == b[key], key


def assert_clean(out, curves=True):
    """Exactly the run's files: no temporary file of a killed save is left."""
    if curves:
        pytest.importorskip("matplotlib")
    assert sorted(os.listdir(out)) == sorted(set(EXPECTED_FILES) - set([] if curves else
                                                                       [cli.CURVES]))


def _reference(tmp_path_factory, curves):
    out = str(tmp_path_factory.mktemp("reference") / "run")
    result = killable(out, *TINY, curves=curves)
    assert result.returncode == 0, result.stderr
    operations = int(result.stderr.rsplit("file operations:", 1)[1])
    return snapshot(out), operations


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    return _reference(tmp_path_factory, curves=True)


@pytest.fixture(scope="module")
def reference_without_curves(tmp_path_factory):
    return _reference(tmp_path_factory, curves=False)


def test_killed_at_every_file_operation_resumes_to_the_same_run(tmp_path,
                                                                 reference_without_curves):
    expected, operations = reference_without_curves
    # Epoch 0's commit (checkpoint, then metrics; no weights yet), 5 files per epoch, and the
    # curves' removal at the end (no matplotlib here).
    assert operations == 17
    for kill_at in range(1, operations + 1):
        out = str(tmp_path / f"kill{kill_at}")
        killed = killable(out, *TINY, kill_at=kill_at, curves=False)
        assert killed.returncode == -signal.SIGKILL, (kill_at, killed.stderr)
        finish(out, curves=False)
        assert_same(snapshot(out), expected)
        assert_clean(out, curves=False)


def test_killed_at_random_instants_resumes_to_the_same_run(tmp_path, reference):
    expected, _ = reference
    rng = random.Random(0)  # random instants, the same ones every time
    for i in range(4):
        out = str(tmp_path / f"random{i}")
        process = subprocess.Popen([sys.executable, "-m", "zerograd", "train", "--out", out,
                                    *TINY], cwd=REPO, env=_env(), stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)
        # Imports take most of a tiny run; the instants cover them, training and saving.
        time.sleep(rng.uniform(0.3, 1.5))
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=60)
        finish(out)
        assert_same(snapshot(out), expected)
        assert_clean(out)


def test_a_killed_resume_is_resumed_in_turn(tmp_path, reference):
    """The repair that --resume does is itself interrupted: the next --resume still works."""
    expected, _ = reference
    out = str(tmp_path / "run")
    # After the checkpoint of epoch 1, before its weights: the files are one epoch behind.
    assert killable(out, *TINY, kill_at=8).returncode == -signal.SIGKILL
    assert load_state(os.path.join(out, cli.CHECKPOINT))["epoch"] == 1
    with open(os.path.join(out, cli.METRICS)) as f:
        assert json.load(f)["epochs_done"] == 0
    for kill_at in (1, 3, 5):  # inside the repair: temp removal, optimizer.npz, curves.png
        killed = killable(out, "--resume", "--no-progress", kill_at=kill_at)
        assert killed.returncode == -signal.SIGKILL
    result = killable(out, "--resume", "--no-progress")
    assert result.returncode == 0, result.stderr
    assert "temporary file(s) of interrupted saves" in result.stdout
    assert_same(snapshot(out), expected)
    assert_clean(out)
