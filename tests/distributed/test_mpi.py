"""Data parallelism under ``mpiexec -n 2``: the programs in worker.py, checked from outside.

The central claim: 2 ranks with batch B reach the weights that 1 process reaches with batch
2B on the same examples, to float32 rounding (float64: to its rounding).
"""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from tests.distributed import worker
from tests.distributed.conftest import run_alone

PARAMS = ("l0/W", "l0/b", "l1/W", "l1/b")
# Two summation orders of the same mean gradient (a 2B batch, or two B batches averaged)
# differ by a few ulps; Adam's normalised steps carry that into the weights unchanged.
TOLERANCE = {"float32": dict(rtol=2e-5, atol=2e-6), "float64": dict(rtol=1e-12, atol=1e-13)}


def load(out, r: int):
    return np.load(os.path.join(out, f"rank{r}.npz"))


def load_json(out, r: int) -> dict:
    with open(os.path.join(out, f"rank{r}.json")) as f:
        return json.load(f)


@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "adam"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_two_ranks_equal_one_process_with_twice_the_batch(mpirun, tmp_path, optimizer, dtype):
    steps = 7  # 3 steps per epoch (48 examples, 16 per step): crosses two reshuffles
    mpirun("train", tmp_path, "--optimizer", optimizer, "--batch", "8", "--steps", str(steps),
           "--dtype", dtype)
    rank0, rank1 = load(tmp_path, 0), load(tmp_path, 1)
    expected = worker.reference(optimizer, batch=16, steps=steps, dtype=np.dtype(dtype))
    for name in PARAMS:
        # The ranks apply the same averaged gradient to the same weights: bit for bit.
        np.testing.assert_array_equal(rank0[name], rank1[name], err_msg=name)
        assert rank0[name].dtype == np.dtype(dtype)
        np.testing.assert_allclose(rank0[name], expected[name], err_msg=name,
                                   **TOLERANCE[dtype])
        # Training moved the weights far beyond the tolerance: the comparison means something.
        start = worker.make_model(100, dtype=np.dtype(dtype)).state_dict()[name]
        assert np.abs(rank0[name] - start).max() > 1e-3
    # One Allreduce per step (one dtype, one bucket) carrying 66 gradients + 4 counts.
    np.testing.assert_array_equal(rank0["stats"],
                                  [steps, steps, 70 * np.dtype(dtype).itemsize])
    # The reported losses are global means, the same on both ranks.
    np.testing.assert_array_equal(rank0["losses"], rank1["losses"])


def test_small_buckets_split_the_reduction_but_not_the_result(mpirun, tmp_path):
    mpirun("train", tmp_path, "--optimizer", "adam", "--steps", "4", "--bucket-bytes", "64")
    rank0 = load(tmp_path, 0)
    expected = worker.reference("adam", batch=16, steps=4)
    for name in PARAMS:
        np.testing.assert_allclose(rank0[name], expected[name], err_msg=name,
                                   **TOLERANCE["float32"])
    # 70 float32 values in chunks of 16: 5 Allreduce calls per step.
    np.testing.assert_array_equal(rank0["stats"], [4, 4 * 5, 280])


def test_batchnorm_statistics_are_per_rank(mpirun, tmp_path):
    """What is equivalent with BatchNorm: each rank normalises by the statistics of its own
    B examples, so 2 ranks equal one process that runs every 2B batch as two B-example
    passes ("ghost batches") and averages their gradients, not one 2B pass. The running
    averages are each rank's own: they differ between ranks (rank 0's are the ones saved)."""
    steps = 5
    mpirun("train", tmp_path, "--optimizer", "sgd", "--steps", str(steps), "--batchnorm")
    rank0, rank1 = load(tmp_path, 0), load(tmp_path, 1)
    ghost = worker.reference("sgd", batch=16, steps=steps, ghost_batch=8)
    names = PARAMS + ("bn/gamma", "bn/beta")
    for name in names:
        np.testing.assert_array_equal(rank0[name], rank1[name], err_msg=name)
        np.testing.assert_allclose(rank0[name], ghost[name], err_msg=name,
                                   **TOLERANCE["float32"])
    # Not equivalent: normalising by the statistics of the full 2B batch.
    np.random.seed(100)
    full = _reference_full_batch_batchnorm(steps)
    assert max(np.abs(rank0[n] - full[n]).max() for n in names) > 1e-3
    # Each rank's running statistics come from its own shard.
    for name in ("bn/avg_mean", "bn/avg_var"):
        assert np.abs(rank0[name] - rank1[name]).max() > 1e-3, name


def _reference_full_batch_batchnorm(steps: int) -> dict:
    """One process, plain zerograd, BatchNorm over whole batches of 16."""
    from zerograd.data import DataLoader, Subset

    data = worker.dataset()
    model = worker.make_model(100, batchnorm=True)
    optimizer = worker.make_optimizer("sgd").setup(model)
    done, epoch = 0, 0
    while done < steps:
        for x, t in DataLoader(Subset(data, worker.shard_order(epoch)), 16, shuffle=False):
            worker.step(model, optimizer, x, t)
            done += 1
            if done == steps:
                break
        epoch += 1
    return model.state_dict()


def test_parameter_without_gradient_on_one_rank(mpirun, tmp_path):
    """Rank 1 never uses ``b``, no rank uses ``c``: no hang, the ranks stay equal, ``b``
    moves by rank 0's gradient over 2 (rank 1 counts as zero, as in one process over both
    ranks' examples), and ``c`` has no gradient and does not move."""
    steps = 3
    mpirun("unused", tmp_path, "--steps", str(steps))
    rank0, rank1 = load(tmp_path, 0), load(tmp_path, 1)
    for name in ("a/W", "a/b", "b/W", "b/b", "c/W", "c/b"):
        np.testing.assert_array_equal(rank0[f"after/{name}"], rank1[f"after/{name}"],
                                      err_msg=name)
    # SGD with lr 1: b/W moved by the sum over steps of rank 0's gradient / 2.
    moved = rank0["before/b/W"] - rank0["after/b/W"]
    np.testing.assert_allclose(moved, rank0["grad_b_W"].sum(axis=0) / 2, rtol=1e-5, atol=1e-7)
    assert np.abs(moved).max() > 1e-3
    np.testing.assert_array_equal(rank0["after/c/W"], rank0["before/c/W"])
    assert bool(rank0["grad_c_none"]) and bool(rank1["grad_c_none"])


def test_structure_mismatch_is_reported_on_every_rank(mpirun, tmp_path):
    mpirun("mismatch", tmp_path)
    messages = [load_json(tmp_path, r)["error"] for r in (0, 1)]
    assert messages[0] == messages[1]
    message = messages[0]
    assert message.startswith("broadcast_parameters: the model differs between ranks")
    assert "'l0/W' is float32 (5, 5) on rank 1 but float32 (5, 4) on rank 0" in message
    assert "'l1/W' is float32 (5, 2) on rank 1 but float32 (4, 2) on rank 0" in message


def test_first_update_refuses_weights_that_differ(mpirun, tmp_path):
    mpirun("mismatch", tmp_path, "--no-broadcast")
    messages = [load_json(tmp_path, r)["error"] for r in (0, 1)]
    assert messages[0] == messages[1]
    assert "'l0/W' holds other values on rank 1 than on rank 0" in messages[0]
    assert "broadcast_parameters(model)" in messages[0]


def test_exception_on_one_rank_aborts_the_job_with_its_traceback(mpirun, tmp_path):
    # Rank 0 waits in an allreduce that rank 1 never joins: without the abort, a hang
    # (and this run would exceed its timeout instead of returning).
    result = mpirun("abort", tmp_path, check=False)
    assert result.returncode != 0
    assert "uncaught exception on rank 1 of 2; aborting all 2 processes" in result.stderr
    assert "Traceback (most recent call last)" in result.stderr
    assert "ValueError: deliberate failure on rank 1" in result.stderr
    assert "rank 0 finished" not in result.stdout


def test_abort_ends_every_rank_with_the_given_status(mpirun, tmp_path):
    """For an error a rank handles itself (prints it, then would exit): dist.abort."""
    result = mpirun("abort", tmp_path, "--handled", check=False)
    assert result.returncode == 4
    assert "error: rank 1 gives up" in result.stderr
    assert "rank 0 finished" not in result.stdout


def test_shards_are_disjoint_and_reshuffled_alike_on_every_rank(mpirun, tmp_path):
    mpirun("shards", tmp_path)
    reports = [load_json(tmp_path, r) for r in (0, 1)]
    assert [r["world_size"] for r in reports] == [2, 2]
    for epoch in range(3):
        shards = [np.array(r["epochs"][epoch]) for r in reports]
        assert len(shards[0]) == len(shards[1]) == 24
        assert not set(shards[0]) & set(shards[1])
        assert sorted(np.concatenate(shards)) == list(range(worker.N_EXAMPLES))
        # Both ranks cut the same permutation of this epoch: rank r holds order[r::2].
        order = worker.shard_order(epoch)
        np.testing.assert_array_equal(shards[0], order[0::2])
        np.testing.assert_array_equal(shards[1], order[1::2])
    assert reports[0]["epochs"][0] != reports[0]["epochs"][1]
    assert all(all(r["loader_ok"]) for r in reports)


@pytest.mark.parametrize("block_mpi4py", [False, True], ids=["mpi4py-if-any", "no-mpi4py"])
def test_the_same_script_runs_alone_as_one_process(tmp_path, block_mpi4py):
    """Without mpiexec the training program is a one-process run (world size 1): with
    mpi4py installed, MPI's singleton; without it, zerograd's own fallback."""
    run_alone("train", tmp_path, "--optimizer", "adam", "--batch", "16", "--steps", "4",
              block_mpi4py=block_mpi4py)
    rank0 = load(tmp_path, 0)
    assert rank0["world"][0] == 1
    if block_mpi4py:
        assert rank0["world"][1] == 0  # the local fallback, not MPI
    expected = worker.reference("adam", batch=16, steps=4)
    for name in PARAMS:
        # One process is the plain optimizer: bit for bit the reference.
        np.testing.assert_array_equal(rank0[name], expected[name], err_msg=name)
    # With one process nothing is communicated.
    np.testing.assert_array_equal(rank0["stats"], [0, 0, 0])


def test_launched_without_mpi4py_refuses_to_train_alone(tmp_path):
    result = run_alone("shards", tmp_path, block_mpi4py=True, env={"PMI_SIZE": "2"},
                       check=False)
    assert result.returncode != 0
    assert "an MPI launcher started 2 processes, but mpi4py cannot be imported" in result.stderr
    assert "pip install 'zerograd[mpi]'" in result.stderr
    assert not os.path.exists(os.path.join(tmp_path, "rank0.json"))
