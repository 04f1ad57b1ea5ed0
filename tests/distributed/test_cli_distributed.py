"""``zerograd train --distributed`` under ``mpiexec -n 2``, checked from outside.

Each launch gives rank 0 and rank 1 working directories of their own (MPICH's ``-wdir``),
and ``--out`` is relative: rank 1 sees no file rank 0 writes, as on two hosts without a
shared file system. So an empty directory for rank 1 shows that it wrote nothing, and a
resume that works shows that rank 1 got the checkpoint from rank 0, not from the disk.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

import zerograd
import zerograd.functions as F
import zerograd.layers as L
from tests.distributed.conftest import TIMEOUT, child_env, mpi_unavailable
from zerograd.distributed import find_mpiexec
from zerograd.serialization import load_state
from zerograd.training import rundir

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SPIRAL = ["--dataset", "spiral", "--no-progress", "--out", "run"]
# Two summation orders of the same mean gradient (one batch of 60, or two of 30 averaged)
# differ by a few float32 ulps, which Adam's normalised steps carry into the weights.
FLOAT32 = dict(rtol=2e-5, atol=2e-6)
# The model with dropout whose failures the tests inject (see DropoutMLP).
DROPOUT_MODEL = ["--model", "tests.distributed.test_cli_distributed:dropout_mlp"]


class DropoutMLP(zerograd.Model):
    """Linear-ReLU-dropout-Linear: its training draws from the random state, so a resume
    that restored the wrong rank's state would change the weights.

    ``ZG_TEST_FAIL=RANK:CALL:HOW`` makes rank RANK fail at its CALL-th training forward:
    ``raise`` a RuntimeError, or ``exit`` the process at once (a killed rank).
    """

    def __init__(self, hidden: int, n_outputs: int) -> None:
        super().__init__()
        self.l0 = L.Linear(hidden)
        self.l1 = L.Linear(n_outputs)
        self.calls = 0

    def forward(self, x):
        if zerograd.Config.train:
            self.calls += 1
            self._maybe_fail()
        return self.l1(F.dropout(F.relu(self.l0(x)), 0.2))

    def _maybe_fail(self) -> None:
        fail = os.environ.get("ZG_TEST_FAIL")
        if not fail:
            return
        rank, call, how = fail.split(":")
        import zerograd.distributed as dist

        if dist.rank() == int(rank) and self.calls == int(call):
            if how == "exit":
                os._exit(7)
            raise RuntimeError(f"injected failure on rank {rank} at call {call}")


def dropout_mlp(spec, config):
    return DropoutMLP(config.hidden[0], spec.n_outputs)


@pytest.fixture
def launch(tmp_path):
    """``launch(*args, env=None, check=True)``: ``zerograd train --distributed ARGS`` on 2
    ranks, rank 0 in tmp_path/rank0 and rank 1 in tmp_path/rank1."""
    reason = mpi_unavailable()
    if reason:
        pytest.skip(reason)
    dirs = [tmp_path / "rank0", tmp_path / "rank1"]
    for d in dirs:
        d.mkdir()

    def run(*args: str, env: dict | None = None, check: bool = True):
        program = [sys.executable, "-m", "zerograd", "train", "--distributed", *args]
        command = [find_mpiexec(), "-n", "1", "-wdir", str(dirs[0]), *program, ":",
                   "-n", "1", "-wdir", str(dirs[1]), *program]
        result = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT,
                                stdin=subprocess.DEVNULL,
                                env=child_env(PYTHONPATH=REPO, **(env or {})))
        if check and result.returncode != 0:
            raise AssertionError(f"{' '.join(command)} failed with status "
                                 f"{result.returncode}:\n{result.stdout}\n{result.stderr}")
        return result

    run.dirs = dirs
    return run


def alone(cwd, *args: str) -> subprocess.CompletedProcess:
    """``zerograd train --distributed ARGS`` without mpiexec: one process, world size 1."""
    command = [sys.executable, "-m", "zerograd", "train", "--distributed", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT, cwd=cwd,
                          stdin=subprocess.DEVNULL, env=child_env(PYTHONPATH=REPO), check=True)


def history(run_dir) -> list[dict]:
    with open(os.path.join(run_dir, rundir.METRICS)) as f:
        records = json.load(f)["history"]
    return [{k: v for k, v in r.items() if k != "seconds"} for r in records]


@pytest.mark.parametrize("extra", [(), ("--clip", "0.05")], ids=["plain", "clipped"])
def test_two_ranks_equal_one_process_with_twice_the_batch(launch, tmp_path, extra):
    # With --clip, the averaged gradient is clipped (as one process clips its whole batch's).
    result = launch(*SPIRAL, "--epochs", "3", "--batch-size", "30", *extra)
    reference = tmp_path / "alone"
    reference.mkdir()
    single = alone(reference, *SPIRAL, "--epochs", "3", "--batch-size", "60", *extra)
    assert "training as one process (world size 1)" in single.stdout
    assert "batch size 60 per process x 1 process," in single.stdout
    assert "batch size 30 per process x 2 processes," in result.stdout

    two = np.load(launch.dirs[0] / "run" / rundir.WEIGHTS)
    one = np.load(reference / "run" / rundir.WEIGHTS)
    assert sorted(two) == sorted(one) == ["l0/W", "l0/b", "l1/W", "l1/b"]
    for name in one:
        np.testing.assert_allclose(two[name], one[name], err_msg=name, **FLOAT32)
    # Training moved the biases (which start at zero) far beyond the tolerance.
    assert np.abs(two["l0/b"]).max() > 1e-2
    # The epochs' means are over all 300 examples on both: the same numbers to rounding.
    for a, b in zip(history(launch.dirs[0] / "run"), history(reference / "run")):
        assert a == pytest.approx(b, rel=1e-5)


def test_only_rank_0_writes_and_prints_and_its_files_agree(launch):
    result = launch(*SPIRAL, "--epochs", "2", "--batch-size", "30", "--save-best")
    assert os.listdir(launch.dirs[1]) == []  # rank 1 wrote nothing, not even a directory
    run_dir = launch.dirs[0] / "run"
    assert sorted(os.listdir(run_dir)) == sorted([*rundir.RUN_FILES, "best.npz"])
    # One process speaks: one header line, one line per epoch, one summary.
    lines = result.stdout.splitlines()
    assert [line.split()[0] for line in lines] == ["training", "epoch", "epoch", "wrote"]
    state = load_state(run_dir / rundir.CHECKPOINT)
    assert state["epoch"] == 2 and state["world_size"] == 2
    # Every rank's own random state and nothing else (the epoch is complete).
    assert [sorted(r) for r in state["ranks"]] == [["rng"], ["rng"]]
    weights = np.load(run_dir / rundir.WEIGHTS)
    for name, value in state["model"].items():
        np.testing.assert_array_equal(weights[name], value)
    with open(run_dir / rundir.METRICS) as f:
        metrics = json.load(f)
    assert metrics["epochs_done"] == 2 and metrics["finished"]
    assert metrics["history"] == state["history"]


def test_resume_after_a_killed_rank_is_bit_identical(launch, tmp_path):
    args = [*DROPOUT_MODEL, "--dataset", "spiral", "--no-progress", "--epochs", "4",
            "--batch-size", "30", "--checkpoint-every", "2"]
    launch(*args, "--out", "whole")
    # 5 steps per epoch; rank 1 dies in its 14th: the last commit is step 12, that is
    # batch 2 of epoch 3, in the middle of an epoch.
    killed = launch(*args, "--out", "cut", env={"ZG_TEST_FAIL": "1:14:exit"}, check=False)
    assert killed.returncode != 0
    cut = launch.dirs[0] / "cut"
    state = load_state(cut / rundir.CHECKPOINT)
    assert (state["epoch"], state["step"]) == (2, 2)
    # The ranks draw different dropout masks, and each one's state is kept.
    assert state["ranks"][0]["rng"]["numpy"]["keys"].tolist() != \
        state["ranks"][1]["rng"]["numpy"]["keys"].tolist()
    assert set(state["ranks"][1]["partial"]) == {"sums", "count", "seconds"}
    resumed = launch("--out", "cut", "--resume")
    assert "resuming cut after epoch 2 (batch 2 of epoch 3)" in resumed.stdout
    whole = launch.dirs[0] / "whole"
    for name in (rundir.WEIGHTS, rundir.OPTIMIZER):
        a, b = np.load(whole / name), np.load(cut / name)
        assert sorted(a) == sorted(b)
        for key in a:
            np.testing.assert_array_equal(a[key], b[key], err_msg=f"{name} {key}")
    assert history(cut) == history(whole)
    assert os.listdir(launch.dirs[1]) == []


def test_an_exception_on_rank_1_ends_the_job_with_its_traceback(launch):
    result = launch(*DROPOUT_MODEL, *SPIRAL, "--epochs", "2", "--batch-size", "30",
                    env={"ZG_TEST_FAIL": "1:3:raise"}, check=False)
    assert result.returncode != 0
    assert "uncaught exception on rank 1 of 2" in result.stderr
    assert "Traceback (most recent call last)" in result.stderr
    assert "RuntimeError: injected failure on rank 1 at call 3" in result.stderr
    assert "test_cli_distributed.py" in result.stderr  # the frame that raised


def test_an_error_on_rank_0_alone_ends_every_rank_with_status_2(launch):
    # Only rank 0 looks for the checkpoint; without the abort rank 1 would wait forever.
    result = launch("--out", "missing", "--resume", check=False)
    assert result.returncode == 2
    assert "zerograd: error: --resume: no checkpoint at missing/checkpoint.npz" in result.stderr


def test_fit_distributed_true_alone_is_the_one_process_run(tmp_path):
    """fit(distributed=True) outside mpiexec: zerograd.distributed's world of one, whose
    run equals a plain one, and whose checkpoint records that world."""
    from zerograd import optimizers, training
    from zerograd.data import DataLoader
    from zerograd.datasets import Spiral
    from zerograd.models import MLP

    def run(**kwargs):
        zerograd.seed(0)
        model = MLP((10, 3))
        optimizer = optimizers.SGD(lr=1.0).setup(model)
        loader = DataLoader(Spiral(train=True, seed_global=False), 30, shuffle=True)
        trainer = training.fit(model, loader, optimizer, epochs=2, verbose=0, **kwargs)
        return trainer, model

    trainer, model = run(distributed=True, out=tmp_path / "run")
    plain, plain_model = run()
    assert trainer.group.size == 1 and trainer.is_main
    assert trainer.history == [{**r, "seconds": t["seconds"]}
                               for r, t in zip(plain.history, trainer.history)]
    for (name, p), (_, q) in zip(model.named_params(), plain_model.named_params()):
        np.testing.assert_array_equal(p.data, q.data, err_msg=name)
    state = load_state(tmp_path / "run" / rundir.CHECKPOINT)
    assert state["world_size"] == 1 and "ranks" not in state


def test_fit_names_what_a_distributed_object_lacks():
    from zerograd.training.group import ProcessGroup

    with pytest.raises(TypeError, match=r"Half has no \['allreduce_sum'\]"):
        ProcessGroup(type("Half", (), {"is_main": lambda self: True})())
