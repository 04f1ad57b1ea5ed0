"""fit(out=..., resume=True): an interrupted-and-resumed run ends with the very weights,
optimizer state and history of an uninterrupted one, for an MLP, a CNN and an LSTM trained
with truncated BPTT; interrupted between epochs, in the middle of one (Ctrl-C) and by
SIGKILL in the middle of one."""

import os
import signal
import subprocess
import sys

import numpy as np
import pytest

from tests.training.factories import setup
from zerograd import optim, training
from zerograd.serialization import load_npz, load_state
from zerograd.training import rundir

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class InterruptAt(training.Callback):
    """Ctrl-C after the ``global_step``-th batch of the run."""

    def __init__(self, global_step):
        self.global_step = global_step

    def on_batch_end(self, trainer, logs):
        if trainer.global_step == self.global_step:
            raise KeyboardInterrupt


def run(kind, out, epochs=2, resume=False, callbacks=(), checkpoint_every=None):
    model, loader, kwargs = setup(kind)
    if kind == "mlp":  # a scheduler's state travels with the run too
        scheduler = optim.StepLR(kwargs["optimizer"], step_size=1, gamma=0.5)
        callbacks = [training.LearningRateScheduler(scheduler), *callbacks]
    return training.fit(model, loader, epochs=epochs, out=str(out), resume=resume, verbose=0,
                        callbacks=callbacks, checkpoint_every=checkpoint_every, **kwargs)


def without_seconds(history):
    return [{k: v for k, v in r.items() if k != "seconds"} for r in history]


def assert_same_run(a, b):
    wa, wb = load_npz(os.path.join(a, rundir.WEIGHTS)), load_npz(os.path.join(b, rundir.WEIGHTS))
    assert list(wa) == list(wb)
    for key in wa:
        np.testing.assert_array_equal(wa[key], wb[key])
    oa = load_state(os.path.join(a, rundir.OPTIMIZER))
    ob = load_state(os.path.join(b, rundir.OPTIMIZER))
    assert oa["counters"] == ob["counters"] and oa["hyperparams"] == ob["hyperparams"]
    for pa, pb in zip(oa["params"], ob["params"], strict=True):
        for key in pa["state"]:
            np.testing.assert_array_equal(pa["state"][key], pb["state"][key])
    ca = load_state(os.path.join(a, rundir.CHECKPOINT))
    cb = load_state(os.path.join(b, rundir.CHECKPOINT))
    assert without_seconds(ca["history"]) == without_seconds(cb["history"])
    assert ca["epoch"] == cb["epoch"] and ca["step"] == cb["step"] == 0


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    runs = {}
    for kind in ("mlp", "cnn", "lstm"):
        out = tmp_path_factory.mktemp(kind) / "full"
        trainer = run(kind, out)
        runs[kind] = (str(out), trainer)
    return runs


@pytest.mark.parametrize("kind", ["mlp", "cnn", "lstm"])
def test_interrupted_mid_epoch_resumes_bit_identically(kind, tmp_path, uninterrupted):
    full, trainer = uninterrupted[kind]
    per_epoch = trainer.batches_per_epoch
    out = tmp_path / "split"
    # Interrupted in the middle of the second epoch, one batch after a mid-epoch commit
    # (for the LSTM: a commit between two BPTT windows of 5 batches).
    every = 5 if kind == "lstm" else 3
    stop = per_epoch + every + 1
    with pytest.raises(KeyboardInterrupt):
        run(kind, out, callbacks=[InterruptAt(stop)], checkpoint_every=every)
    state = load_state(os.path.join(out, rundir.CHECKPOINT))
    assert state["epoch"] == 1 and 0 < state["step"] < per_epoch
    assert "partial" in state and state["loader"]["iteration"] == state["step"]
    resumed = run(kind, out, resume=True, checkpoint_every=every)
    assert resumed.epoch == 2
    assert without_seconds(resumed.history) == without_seconds(trainer.history)
    assert_same_run(full, str(out))


@pytest.mark.parametrize("kind", ["mlp", "lstm"])
def test_interrupted_between_epochs_resumes_bit_identically(kind, tmp_path, uninterrupted):
    full, trainer = uninterrupted[kind]
    out = tmp_path / "split"
    with pytest.raises(KeyboardInterrupt):
        run(kind, out, callbacks=[InterruptAt(trainer.batches_per_epoch + 1)])
    assert load_state(os.path.join(out, rundir.CHECKPOINT))["epoch"] == 1
    run(kind, out, resume=True)
    assert_same_run(full, str(out))


def test_resume_raises_the_number_of_epochs(tmp_path):
    three, split = tmp_path / "three", tmp_path / "split"
    run("mlp", three, epochs=3)
    run("mlp", split, epochs=2)
    messages = []
    model, loader, kwargs = setup("mlp")
    scheduler = training.LearningRateScheduler(optim.StepLR(kwargs["optimizer"], 1, 0.5))
    resumed = training.fit(model, loader, epochs=3, out=str(split), resume=True,
                           callbacks=[scheduler], log=messages.append, verbose=2, **kwargs)
    assert resumed.epoch == 3 and f"resuming {split} after epoch 2" in messages
    assert_same_run(str(three), str(split))
    # Resumed again, finished: nothing to do.
    messages.clear()
    model, loader, kwargs = setup("mlp")
    training.fit(model, loader, epochs=3, out=str(split), resume=True, log=messages.append,
                 **kwargs)
    assert any(m.startswith("nothing to do: the run is finished, with 3 of 3") for m in messages)


# A run killed with SIGKILL (no handler, no finally) at the KILL_AT-th batch, or just before
# the KILL_RENAME-th rename of a file (so a finished temporary file is left too).
KILLED = """
import os, signal, sys
sys.path.insert(0, os.getcwd())
from tests.training.test_resume import run
from zerograd import training

kill_at, kill_rename = int(os.environ["KILL_AT"]), int(os.environ["KILL_RENAME"])
renames = 0
real_replace = os.replace

def replace(*args, **kwargs):
    global renames
    renames += 1
    if renames == kill_rename:
        os.kill(os.getpid(), signal.SIGKILL)
    return real_replace(*args, **kwargs)

os.replace = replace

class Kill(training.Callback):
    def on_batch_end(self, trainer, logs):
        if trainer.global_step == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)

run(sys.argv[1], sys.argv[2], callbacks=[Kill()], checkpoint_every=3,
    resume=os.path.exists(os.path.join(sys.argv[2], "checkpoint.npz")))
print("finished")
"""


@pytest.mark.parametrize("kill_at, kill_rename", [(17, 0), (0, 25)])
def test_sigkill_mid_epoch_resumes_bit_identically(tmp_path, uninterrupted, kill_at,
                                                   kill_rename):
    """SIGKILL after batch 17 (the last commit after batch 15, in epoch 2), and before the
    25th rename: 3 for epoch 0's commit, 5 for each of the commits after batches 3, 6, 9 and
    10 (the end of epoch 1), then the checkpoint of batch 12's: its derived files are not
    written yet."""
    full, _ = uninterrupted["mlp"]
    out = str(tmp_path / "killed")
    env = {**os.environ, "MPLBACKEND": "Agg", "KILL_AT": str(kill_at),
           "KILL_RENAME": str(kill_rename)}
    killed = subprocess.run([sys.executable, "-c", KILLED, "mlp", out], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=120)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    state = load_state(os.path.join(out, rundir.CHECKPOINT))
    assert state["epoch"] == 1 and state["step"] > 0  # killed in the middle of epoch 2
    env.update(KILL_AT="0", KILL_RENAME="0")
    resumed = subprocess.run([sys.executable, "-c", KILLED, "mlp", out], cwd=REPO, env=env,
                             capture_output=True, text=True, timeout=120)
    assert resumed.returncode == 0 and "finished" in resumed.stdout, resumed.stderr
    assert_same_run(full, out)
    assert sorted(os.listdir(out)) == sorted(rundir.RUN_FILES)  # no temporary file left
