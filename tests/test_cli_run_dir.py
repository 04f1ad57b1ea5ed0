"""The run directory: one commit point, derived files repaired from it, --overwrite,
interrupts (Ctrl-C, SIGTERM) that finish consistently."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from zerograd import cli
from zerograd.serialization import load_npz, load_state
from zerograd.training import Trainer, rundir

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FAST = ["--no-progress", "--dataset", "spiral", "--hidden", "10", "--lr", "0.05"]


def run_main(args, capsys):
    status = cli.main(args)
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def metrics(out):
    with open(os.path.join(out, cli.METRICS)) as f:
        return json.load(f)


def without_seconds(log):
    return [{k: v for k, v in record.items() if k != "seconds"} for record in log["history"]]


def checkpoint(out):
    return load_state(os.path.join(out, cli.CHECKPOINT))


def assert_outputs_describe_checkpoint(out):
    """Every derived file says what the checkpoint says."""
    state = checkpoint(out)
    weights = load_npz(os.path.join(out, cli.WEIGHTS))
    assert list(weights) == list(state["model"])
    for key in weights:
        np.testing.assert_array_equal(weights[key], state["model"][key])
    optimizer = load_state(os.path.join(out, cli.OPTIMIZER))
    assert optimizer["counters"] == state["optimizer"]["counters"]
    log = metrics(out)
    assert log["epochs_done"] == state["epoch"] and log["history"] == state["history"]
    with open(os.path.join(out, cli.METRICS_CSV)) as f:
        rows = f.read().splitlines()
    assert rows[0] == ",".join(state["history"][0])
    assert [int(row.split(",")[0]) for row in rows[1:]] == list(range(1, state["epoch"] + 1))


def make_stale(out, older):
    """What a kill between the checkpoint's rename and the others' leaves: every derived
    file one or more epochs behind the checkpoint."""
    for name in (cli.WEIGHTS, cli.OPTIMIZER, cli.METRICS, cli.METRICS_CSV):
        shutil.copy(os.path.join(older, name), os.path.join(out, name))
    os.remove(os.path.join(out, cli.CURVES))


@pytest.fixture
def two_runs(tmp_path, capsys):
    """A 1-epoch run and a 3-epoch run of the same settings."""
    one, three = str(tmp_path / "one"), str(tmp_path / "three")
    assert run_main(["train", "--out", one, "--epochs", "1", *FAST], capsys)[0] == 0
    assert run_main(["train", "--out", three, "--epochs", "3", *FAST], capsys)[0] == 0
    return one, three


def test_every_epoch_commits_the_checkpoint_then_rewrites_the_derived_files(tmp_path, capsys):
    out = str(tmp_path / "run")
    assert run_main(["train", "--out", out, "--epochs", "2", *FAST], capsys)[0] == 0
    assert sorted(os.listdir(out)) == sorted(cli.RUN_FILES)
    assert checkpoint(out)["epoch"] == 2
    assert_outputs_describe_checkpoint(out)
    with open(os.path.join(out, cli.METRICS_CSV)) as f:
        header, *rows = f.read().splitlines()
    assert header == "epoch,loss,accuracy,test_loss,test_accuracy,seconds"
    record = metrics(out)["history"][1]
    assert rows[1].split(",") == [repr(record[k]) for k in header.split(",")]


def test_resume_of_a_finished_run_repairs_files_left_behind(two_runs, capsys):
    one, three = two_runs
    expected = metrics(three)
    make_stale(three, one)
    assert metrics(three)["epochs_done"] == 1
    status, stdout, _ = run_main(["train", "--out", three, "--resume", "--no-progress"], capsys)
    assert status == 0
    assert "were behind checkpoint.npz (epoch 3)" in stdout
    assert "nothing to do: the run is finished, with 3 of 3 epochs" in stdout
    assert_outputs_describe_checkpoint(three)
    assert metrics(three) == expected
    assert os.path.exists(os.path.join(three, cli.CURVES))  # redrawn for the finished run


def interrupt_at(monkeypatch, epoch):
    """Ctrl-C at the start of epoch ``epoch + 1`` (after ``epoch`` completed epochs)."""
    real_train_epoch = Trainer.train_epoch

    def interrupted(trainer):
        if trainer.epoch == epoch:
            raise KeyboardInterrupt
        return real_train_epoch(trainer)

    monkeypatch.setattr(Trainer, "train_epoch", interrupted)


def test_resume_continues_from_the_checkpoint_not_the_stale_files(tmp_path, two_runs, capsys,
                                                                  monkeypatch):
    one, three = two_runs
    partial = str(tmp_path / "partial")
    interrupt_at(monkeypatch, 2)
    assert run_main(["train", "--out", partial, "--epochs", "3", *FAST], capsys)[0] == 130
    monkeypatch.undo()
    make_stale(partial, one)  # as if killed after epoch 2's checkpoint, before its weights
    status, stdout, _ = run_main(["train", "--out", partial, "--resume", "--no-progress"],
                                 capsys)
    assert status == 0 and f"resuming {partial} after epoch 2" in stdout
    assert "were behind checkpoint.npz (epoch 2)" in stdout
    assert_outputs_describe_checkpoint(partial)
    for key, value in load_npz(os.path.join(three, cli.WEIGHTS)).items():
        np.testing.assert_array_equal(load_npz(os.path.join(partial, cli.WEIGHTS))[key], value)
    assert without_seconds(metrics(partial)) == without_seconds(metrics(three))


def test_eval_rewrites_weights_left_behind_by_a_killed_save(two_runs, capsys):
    one, three = two_runs
    final_accuracy = metrics(three)["history"][-1]["test_accuracy"]
    make_stale(three, one)
    status, stdout, _ = run_main(["eval", "--weights", os.path.join(three, cli.WEIGHTS)],
                                 capsys)
    assert status == 0 and "were behind checkpoint.npz (epoch 3)" in stdout
    assert float(stdout.split("accuracy")[-1]) == pytest.approx(final_accuracy, abs=1e-4)
    assert_outputs_describe_checkpoint(three)
    # Consistent now: a second eval writes nothing and says nothing about it.
    status, stdout, _ = run_main(["eval", "--weights", os.path.join(three, cli.WEIGHTS)],
                                 capsys)
    assert status == 0 and "behind" not in stdout


def test_eval_of_stale_files_it_cannot_rewrite(two_runs, capsys, monkeypatch):
    one, three = two_runs
    make_stale(three, one)

    def read_only(out, state, curves):
        raise PermissionError(13, "Permission denied", os.path.join(out, cli.WEIGHTS))

    monkeypatch.setattr(rundir, "write_outputs", read_only)
    weights = os.path.join(three, cli.WEIGHTS)
    status, _, stderr = run_main(["eval", "--weights", weights], capsys)
    assert status == 2 and stderr.count("\n") == 1
    assert f"{weights} is behind {os.path.join(three, cli.CHECKPOINT)}" in stderr
    assert "Permission denied" in stderr and f"--out {three} --resume" in stderr


def test_eval_of_a_run_without_a_completed_epoch(tmp_path, capsys, monkeypatch):
    out = str(tmp_path / "run")
    interrupt_at(monkeypatch, 0)
    assert run_main(["train", "--out", out, "--epochs", "2", *FAST], capsys)[0] == 130
    assert checkpoint(out)["epoch"] == 0
    assert sorted(os.listdir(out)) == [cli.CHECKPOINT, cli.METRICS_CSV, cli.METRICS]
    status, _, stderr = run_main(["eval", "--weights", os.path.join(out, cli.WEIGHTS)], capsys)
    assert status == 2 and "no completed epoch yet" in stderr


def test_out_holding_a_run_is_refused_unless_overwrite(tmp_path, capsys):
    out = str(tmp_path / "run")
    assert run_main(["train", "--out", out, "--epochs", "2", *FAST], capsys)[0] == 0
    before = load_npz(os.path.join(out, cli.WEIGHTS))
    status, _, stderr = run_main(["train", "--out", out, "--epochs", "1", *FAST], capsys)
    assert status == 2
    assert stderr == (f"zerograd: error: --out {out} already holds a run (mlp on spiral, 2 of 2 "
                      f"epochs); add --resume to continue it, --overwrite to replace it, or "
                      f"choose another --out\n")
    for key, value in load_npz(os.path.join(out, cli.WEIGHTS)).items():  # untouched
        np.testing.assert_array_equal(value, before[key])
    status, _, stderr = run_main(["train", "--out", out, "--resume", "--overwrite"], capsys)
    assert status == 2 and "give one of them" in stderr

    # --overwrite: a new run, as if the directory had been empty.
    fresh = str(tmp_path / "fresh")
    assert run_main(["train", "--out", fresh, "--epochs", "1", "--seed", "3", *FAST],
                    capsys)[0] == 0
    status, _, _ = run_main(["train", "--out", out, "--epochs", "1", "--seed", "3",
                             "--overwrite", *FAST], capsys)
    assert status == 0
    assert metrics(out)["epochs_done"] == 1 and len(metrics(out)["history"]) == 1
    for key, value in load_npz(os.path.join(fresh, cli.WEIGHTS)).items():
        np.testing.assert_array_equal(load_npz(os.path.join(out, cli.WEIGHTS))[key], value)


def test_out_with_only_derived_files_or_other_files(tmp_path, capsys):
    derived = tmp_path / "derived"
    derived.mkdir()
    (derived / cli.WEIGHTS).write_bytes(b"old")
    status, _, stderr = run_main(["train", "--out", str(derived), "--epochs", "1", *FAST],
                                 capsys)
    assert status == 2 and "already holds a run (weights.npz)" in stderr
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    assert run_main(["train", "--out", str(other), "--epochs", "1", *FAST], capsys)[0] == 0
    assert (other / "notes.txt").read_text() == "mine"
    status, _, stderr = run_main(["train", "--out", str(other / "notes.txt"), *FAST], capsys)
    assert status == 2 and "is a file, not a directory" in stderr


def test_overwrite_removes_what_the_new_run_has_not_written_yet(tmp_path, capsys, monkeypatch):
    out = str(tmp_path / "run")
    assert run_main(["train", "--out", out, "--epochs", "2", *FAST], capsys)[0] == 0
    interrupt_at(monkeypatch, 0)
    status, _, _ = run_main(["train", "--out", out, "--overwrite", "--epochs", "5", *FAST],
                            capsys)
    assert status == 130
    # No weights, optimizer state or curves of the old run next to the new run's checkpoint.
    assert sorted(os.listdir(out)) == [cli.CHECKPOINT, cli.METRICS_CSV, cli.METRICS]
    assert metrics(out)["epochs_done"] == 0 and metrics(out)["config"]["epochs"] == 5


# A process that leaves the temporary file of an unfinished save behind (os._exit runs no
# cleanup, as a kill would), named by zerograd's own atomic_write.
LEAVE_TEMP_FILE = """
import os, sys
from zerograd.serialization import atomic_write
writing = atomic_write(sys.argv[1])  # kept: collecting it would close the file
f = writing.__enter__()
f.write(b"half a file")
f.flush()
os._exit(0)
"""


def leave_temp_file(path):
    subprocess.run([sys.executable, "-c", LEAVE_TEMP_FILE, path], check=True, cwd=REPO,
                   timeout=60)


def test_stale_temp_files_are_removed_at_start_and_resume(tmp_path, capsys):
    out = tmp_path / "run"
    leave_temp_file(str(out / cli.WEIGHTS))
    assert len(os.listdir(out)) == 1  # a directory holding no run: no --overwrite needed
    assert run_main(["train", "--out", str(out), "--epochs", "1", *FAST], capsys)[0] == 0
    assert sorted(os.listdir(out)) == sorted(cli.RUN_FILES)
    leave_temp_file(str(out / cli.CHECKPOINT))
    status, stdout, _ = run_main(["train", "--out", str(out), "--resume", "--epochs", "2",
                                  "--no-progress"], capsys)
    assert status == 0 and "removed 1 temporary file(s) of interrupted saves" in stdout
    assert sorted(os.listdir(out)) == sorted(cli.RUN_FILES)


def test_ctrl_c_writes_curves_and_metrics_of_the_completed_epochs(tmp_path, capsys,
                                                                  monkeypatch):
    pytest.importorskip("matplotlib")
    out = str(tmp_path / "run")
    interrupt_at(monkeypatch, 2)
    status, stdout, stderr = run_main(["train", "--out", out, "--epochs", "5", *FAST], capsys)
    assert status == 130
    assert "interrupted: 2 completed epoch(s) saved" in stdout
    assert stderr == (f"zerograd: interrupted (Ctrl-C); the completed epochs are saved. "
                      f"Continue with: zerograd train --out {out} --resume\n")
    with open(os.path.join(out, cli.CURVES), "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    assert_outputs_describe_checkpoint(out)
    assert metrics(out)["epochs_done"] == 2 and not metrics(out)["finished"]


def test_interrupt_during_a_save_leaves_files_of_the_committed_epoch(tmp_path, capsys,
                                                                     monkeypatch):
    """Ctrl-C right after epoch 2's checkpoint was renamed: the run in memory, the checkpoint
    and the files all reach epoch 2 (and with the interrupt one save earlier, epoch 1)."""
    for checkpoint_done in (True, False):
        out = str(tmp_path / f"run{checkpoint_done}")
        real_save_state = rundir.save_state

        def save_state(path, state, real=real_save_state, after=checkpoint_done):
            if state.get("epoch") == 2 and path.endswith(cli.CHECKPOINT):
                if after:
                    real(path, state)
                raise KeyboardInterrupt
            return real(path, state)

        monkeypatch.setattr(rundir, "save_state", save_state)
        status, _, _ = run_main(["train", "--out", out, "--epochs", "3", *FAST], capsys)
        monkeypatch.undo()
        assert status == 130
        assert checkpoint(out)["epoch"] == (2 if checkpoint_done else 1)
        assert_outputs_describe_checkpoint(out)


# `zerograd train` with every epoch 50 ms longer, so that a signal surely finds it running.
SLOW_TRAIN = """
import sys, time
from zerograd import cli
from zerograd.training import Trainer
real_train_epoch = Trainer.train_epoch

def slow_train_epoch(trainer):
    time.sleep(0.05)
    return real_train_epoch(trainer)

Trainer.train_epoch = slow_train_epoch
sys.exit(cli.main(sys.argv[1:]))
"""


def test_sigterm_finishes_like_ctrl_c_and_the_run_resumes_exactly(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    full = str(tmp_path / "full")
    args = ["--epochs", "12", *FAST]
    assert run_main(["train", "--out", full, *args], capsys)[0] == 0
    out = str(tmp_path / "run")
    process = subprocess.Popen([sys.executable, "-c", SLOW_TRAIN, "train", "--out", out, *args],
                               cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, env={**os.environ, "MPLBACKEND": "Agg"})
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # wait for a committed epoch, then stop it
        try:
            if metrics(out)["epochs_done"] >= 1:
                break
        except (OSError, ValueError, KeyError):
            pass
        time.sleep(0.01)
    process.send_signal(signal.SIGTERM)
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 143, stderr
    assert "zerograd: interrupted (SIGTERM)" in stderr
    assert f"zerograd train --out {out} --resume" in stderr
    assert "Traceback" not in stderr
    epochs = checkpoint(out)["epoch"]
    assert 1 <= epochs < 12 and f"interrupted: {epochs} completed epoch(s)" in stdout
    assert os.path.exists(os.path.join(out, cli.CURVES))
    assert_outputs_describe_checkpoint(out)
    assert run_main(["train", "--out", out, "--resume", "--no-progress"], capsys)[0] == 0
    for key, value in load_npz(os.path.join(full, cli.WEIGHTS)).items():
        np.testing.assert_array_equal(load_npz(os.path.join(out, cli.WEIGHTS))[key], value)


def test_sigterm_handler_is_restored(tmp_path, capsys):
    before = signal.getsignal(signal.SIGTERM)
    assert run_main(["train", "--out", str(tmp_path / "r"), "--epochs", "1", *FAST],
                    capsys)[0] == 0
    assert signal.getsignal(signal.SIGTERM) is before
