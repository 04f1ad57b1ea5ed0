"""zerograd.distributed in one process, without MPI: the fallback world of size 1, the
gradient packing, the structure checks and the sampler. Runs where mpi4py is absent."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import zerograd.distributed as dist
import zerograd.functions as F
import zerograd.layers as L
from zerograd import Model, Parameter, Variable, optimizers
from zerograd.data import ArrayDataset, DataLoader, Subset
from zerograd.distributed import comm
from zerograd.distributed.optimizer import _plan
from zerograd.distributed.params import check_same_structure
from zerograd.optim.schedulers import StepLR


@pytest.fixture(autouse=True)
def local_world(monkeypatch):
    """As on a machine without mpi4py, outside any MPI launcher."""
    comm._reset_for_tests()

    def no_mpi():
        raise ImportError("zerograd.distributed needs mpi4py (blocked by the test); "
                          + comm.MPI_INSTALL_HINT)

    monkeypatch.setattr(comm, "_import_mpi", no_mpi)
    for name in comm._LAUNCHER_SIZE_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    yield
    comm._reset_for_tests()


def test_import_zerograd_needs_no_mpi4py():
    code = ("import sys, zerograd, zerograd.distributed; "
            "print('mpi4py' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=60, check=True)
    assert result.stdout.strip() == "False"


def test_one_process_world():
    group = dist.init()
    assert (group.backend, dist.rank(), dist.world_size(), dist.is_main()) == ("local", 0, 1,
                                                                              True)
    assert dist.init() is group  # joined once
    dist.barrier()
    assert dist.broadcast_object({"a": 1}) == {"a": 1}
    assert dist.allgather_object(5) == [5]
    mean = dist.allreduce_mean(3)
    assert mean == 3.0 and type(mean) is float
    total = dist.allreduce_sum(np.array([1, 2], dtype=np.int32))
    assert total.dtype == np.float64 and total.tolist() == [1.0, 2.0]
    halves = dist.allreduce_mean(np.array([0.5, 1.5], dtype=np.float32))
    assert halves.dtype == np.float32 and halves.tolist() == [0.5, 1.5]
    assert dist.allreduce_mean(Variable(np.array(2.5))) == 2.5


def test_collective_arguments_are_checked():
    with pytest.raises(ValueError, match=r"root must be a rank in 0\.\.0, got 1"):
        dist.broadcast_object(1, root=1)
    with pytest.raises(TypeError, match="allreduce_mean: expected a number.*dtype <U3"):
        dist.allreduce_mean("abc")


def test_a_launcher_without_mpi4py_is_refused(monkeypatch):
    monkeypatch.setenv("OMPI_COMM_WORLD_SIZE", "4")
    with pytest.raises(ImportError, match="an MPI launcher started 4 processes, but mpi4py "
                                          "cannot be imported") as info:
        dist.init()
    assert "pip install 'zerograd[mpi]'" in str(info.value)


def test_an_explicit_communicator_needs_mpi4py():
    with pytest.raises(ImportError, match=r"pip install 'zerograd\[mpi\]'"):
        dist.init(comm=object())


def test_find_mpiexec_prefers_the_one_beside_python(tmp_path, monkeypatch):
    fake = tmp_path / "mpiexec"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    monkeypatch.setattr(sys, "executable", str(tmp_path / "python"))
    assert dist.find_mpiexec() == str(fake)


# -- DistributedOptimizer --------------------------------------------------------------------
def _model(seed: int = 0) -> Model:
    np.random.seed(seed)
    model = Model()
    model.l0 = L.Linear(4, in_size=3)
    model.l1 = L.Linear(2, in_size=4)
    return model


def _loss(model, x, t):
    return F.softmax_cross_entropy(model.l1(F.tanh(model.l0(x))), t)


def _train(model, optimizer, steps: int = 3):
    rng = np.random.default_rng(1)
    for _ in range(steps):
        x = rng.standard_normal((6, 3)).astype(np.float32)
        t = rng.integers(0, 2, size=6)
        loss = _loss(model, x, t)
        model.cleargrads()
        loss.backward()
        optimizer.update()


def test_one_process_update_is_the_wrapped_optimizer_bit_for_bit():
    plain, wrapped = _model(), _model()
    _train(plain, optimizers.Adam().setup(plain))
    optimizer = dist.DistributedOptimizer(optimizers.Adam().setup(wrapped))
    _train(wrapped, optimizer)
    for (name, a), b in zip(plain.state_dict().items(), wrapped.state_dict().values()):
        np.testing.assert_array_equal(a, b, err_msg=name)
    assert optimizer.stats.steps == 0 and optimizer.stats.allreduce_calls == 0


def test_the_wrapper_reads_and_writes_the_wrapped_optimizer():
    model = _model()
    inner = optimizers.MomentumSGD(lr=0.1)
    optimizer = dist.DistributedOptimizer(inner)
    assert optimizer.setup(model) is optimizer and inner.target is model
    optimizer.lr = 0.05
    assert inner.lr == 0.05 and optimizer.lr == 0.05
    scheduler = StepLR(optimizer, step_size=1, gamma=0.5)
    scheduler.step()
    assert inner.lr == pytest.approx(0.025)
    seen = []
    optimizer.add_hook(lambda params: seen.append(len(params)))
    _train(model, optimizer, steps=1)
    assert seen == [4]
    assert optimizer.state_dict()["type"] == "MomentumSGD"
    assert repr(optimizer) == "DistributedOptimizer(MomentumSGD(lr=0.025, momentum=0.9, " \
                              "nesterov=False), world_size=1)"


def test_wrapper_arguments_are_checked():
    with pytest.raises(TypeError, match="expected a zerograd Optimizer, got Model"):
        dist.DistributedOptimizer(Model())
    with pytest.raises(ValueError, match="bucket_bytes must be a positive int, got 0"):
        dist.DistributedOptimizer(optimizers.SGD(), bucket_bytes=0)


def test_packing_gives_views_of_one_buffer_and_leaves_the_computed_gradients_alone():
    model = _model()
    model.unused = L.Linear(2, in_size=3)
    optimizer = dist.DistributedOptimizer(optimizers.SGD().setup(model))
    x = np.ones((2, 3), np.float32)
    loss = _loss(model, x, np.array([0, 1]))
    model.cleargrads()
    loss.backward()
    computed = {name: p.grad.data for name, p in model.named_params() if p.grad is not None}
    copies = {name: g.copy() for name, g in computed.items()}
    optimizer.allreduce_grads()  # the packing and unpacking of every step, with p = 1
    grads = {name: p.grad for name, p in model.named_params()}
    assert grads["unused/W"] is None and grads["unused/b"] is None
    bases = {id(g.data.base) for g in grads.values() if g is not None}
    assert len(bases) == 1  # all float32 gradients live in one reduced buffer
    for name, g in computed.items():
        np.testing.assert_array_equal(grads[name].data, copies[name], err_msg=name)
        np.testing.assert_array_equal(g, copies[name], err_msg=name)  # not written to
        assert grads[name].data is not g
    assert (optimizer.stats.steps, optimizer.stats.allreduce_calls) == (1, 1)
    # 4 parameters used (12+4+8+2 values) and 2 unused (6+2), plus one count each.
    assert optimizer.stats.step_bytes == (12 + 4 + 8 + 2 + 6 + 2 + 6) * 4


def test_bucket_plan_groups_dtypes_and_splits_large_buffers():
    layout = [("<f4", (3, 4)), ("<f8", (5,)), ("<f4", (4,)), ("<f2", (2, 2))]
    buckets = _plan(layout, bucket_bytes=24)
    assert [b.dtype.str for b in buckets] == ["<f2", "<f4", "<f8"]
    f2, f4, f8 = buckets
    assert (f4.members, f4.offsets, f4.length) == ([0, 2], [0, 12, 16], 18)
    assert f4.chunks == [(0, 6), (6, 12), (12, 18)]  # 24 bytes = 6 float32 values
    assert (f8.members, f8.chunks) == ([1], [(0, 3), (3, 6)])
    assert (f2.members, f2.chunks) == ([3], [(0, 5)])
    one = _plan(layout, bucket_bytes=2**20)
    assert [len(b.chunks) for b in one] == [1, 1, 1]


def test_a_layout_change_after_the_first_update_is_refused():
    model = _model()
    optimizer = dist.DistributedOptimizer(optimizers.SGD().setup(model))
    _train(model, optimizer, steps=1)
    optimizer.allreduce_grads()
    model.l1.W.data = np.zeros((4, 3), np.float32)
    model.l1.W.grad = Variable(np.zeros((4, 3), np.float32))
    with pytest.raises(dist.DistributedError,
                       match=r"parameter 'l1/W' changed from \('<f4', \(4, 2\)\) to "
                             r"\('<f4', \(4, 3\)\)"):
        optimizer.allreduce_grads()


def test_an_uninitialised_parameter_is_named():
    model = Model()
    model.l0 = L.Linear(2)
    optimizer = dist.DistributedOptimizer(optimizers.SGD().setup(model))
    with pytest.raises(dist.DistributedError, match="parameter 'l0/W' has no data yet"):
        optimizer.allreduce_grads()


def test_broadcast_optimizer_state_accepts_the_wrapper():
    model = _model()
    optimizer = dist.DistributedOptimizer(optimizers.Adam().setup(model))
    _train(model, optimizer, steps=2)
    before = optimizer.state_dict()
    dist.broadcast_optimizer_state(optimizer)
    after = optimizer.state_dict()
    assert after["counters"] == before["counters"] == {"t": 2}
    np.testing.assert_array_equal(after["params"][0]["state"]["m"],
                                  before["params"][0]["state"]["m"])


# -- broadcast_parameters and the structure check --------------------------------------------
def test_broadcast_parameters_needs_initialised_weights():
    model = Model()
    model.l0 = L.Linear(3)
    model.bn = L.BatchNorm()
    with pytest.raises(dist.DistributedError,
                       match=r"entries not initialised yet: 'l0/W' on rank\(s\) 0; .*"
                             r"run one forward pass on every rank"):
        dist.broadcast_parameters(model)
    model.bn(model.l0(np.ones((2, 4), np.float32)))
    before = {k: v.copy() for k, v in model.state_dict().items()}
    dist.broadcast_parameters(model)
    for name, value in model.state_dict().items():
        np.testing.assert_array_equal(value, before[name], err_msg=name)


def test_broadcast_parameters_takes_parameters_and_refuses_other_things():
    dist.broadcast_parameters([Parameter(np.ones(2)), Parameter(np.zeros(3))])
    dist.broadcast_parameters(Parameter(np.ones(2)))
    with pytest.raises(TypeError, match="expected a Layer/Model, a Parameter or Parameters, "
                                        "got int"):
        dist.broadcast_parameters(3)
    with pytest.raises(TypeError, match="an iterable holding ndarray"):
        dist.broadcast_parameters([np.ones(2)])


def _rows(*entries):
    return [(name, "param", "<f4", shape) for name, shape in entries]


def test_structure_check_names_every_kind_of_difference():
    root = _rows(("l0/W", (3, 4)), ("l0/b", (4,)))
    check_same_structure([root, list(root)], 0, "op")
    with pytest.raises(dist.DistributedError,
                       match=r"op: the model differs between ranks: param 'extra' \(float32 "
                             r"\(2,\)\) exists on rank 1 but not on rank 0"):
        check_same_structure([root, root + _rows(("extra", (2,)))], 0, "op")
    with pytest.raises(dist.DistributedError,
                       match=r"param 'l0/b' \(float32 \(4,\)\) exists on rank 0 but not on "
                             r"rank 2"):
        check_same_structure([root, root, root[:1]], 0, "op")
    with pytest.raises(dist.DistributedError, match="rank 1 defines the same entries as rank "
                                                    "0 in another order"):
        check_same_structure([root, root[::-1]], 0, "op")
    many = [_rows(*[(f"p{i}", (i + 1,)) for i in range(8)]),
            _rows(*[(f"p{i}", (i + 2,)) for i in range(8)])]
    with pytest.raises(dist.DistributedError, match=r"; and 3 more. Hint$"):
        check_same_structure(many, 0, "op", hint="Hint")


# -- the sampler -----------------------------------------------------------------------------
def _shards(n, p, **options):
    samplers = [dist.DistributedSampler(n, num_replicas=p, rank=r, **options)
                for r in range(p)]
    return samplers, [s.indices() for s in samplers]


def test_shards_are_disjoint_equal_and_cover_the_dataset():
    samplers, shards = _shards(12, 3, seed=5)
    assert [len(s) for s in shards] == [4, 4, 4] == [len(s) for s in samplers]
    assert sorted(np.concatenate(shards).tolist()) == list(range(12))
    order = samplers[0].order()
    for r in range(3):
        np.testing.assert_array_equal(shards[r], order[r::3])  # interleaved
        assert list(samplers[r]) == shards[r].tolist()


def test_uneven_datasets_are_padded_or_cut():
    samplers, shards = _shards(10, 3, seed=5)
    order = samplers[0].order()
    assert len(order) == 12 and [len(s) for s in shards] == [4, 4, 4]
    # Padded with the permutation's own first examples: each example at least once.
    np.testing.assert_array_equal(order[10:], order[:2])
    assert set(np.concatenate(shards).tolist()) == set(range(10))
    _, cut = _shards(10, 3, seed=5, drop_last=True)
    assert [len(s) for s in cut] == [3, 3, 3]
    flat = np.concatenate(cut)
    assert len(set(flat.tolist())) == 9
    # More ranks than examples: the padding repeats the order as often as needed.
    _, tiny = _shards(2, 5, shuffle=False)
    assert [s.tolist() for s in tiny] == [[0], [1], [0], [1], [0]]
    with pytest.raises(ValueError, match="drop_last=True leaves no example per rank: 2 "
                                         "examples for 5 ranks"):
        dist.DistributedSampler(2, num_replicas=5, rank=0, drop_last=True)


def test_unpadded_shards_hold_every_example_once():
    samplers, shards = _shards(10, 3, seed=5, pad=False)
    assert [len(s) for s in shards] == [4, 3, 3] == [len(s) for s in samplers]
    assert sorted(np.concatenate(shards).tolist()) == list(range(10))
    _, padded = _shards(10, 3, seed=5)
    for unpadded, with_padding in zip(shards, padded):  # the same order, without the tail
        np.testing.assert_array_equal(unpadded, with_padding[:len(unpadded)])


def test_abort_without_mpi_exits_with_the_status():
    code = "import sys; sys.modules['mpi4py'] = None; import zerograd.distributed as d; d.abort(3)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=60)
    assert result.returncode == 3


def test_each_epoch_reshuffles_and_the_same_epoch_gives_the_same_shard():
    state = np.random.get_state()
    sampler = dist.DistributedSampler(20, num_replicas=2, rank=1, seed=9)
    first = sampler.indices()
    sampler.set_epoch(1)
    second = sampler.indices()
    assert first.tolist() != second.tolist()
    again = dist.DistributedSampler(20, num_replicas=2, rank=1, seed=9)
    again.set_epoch(1)
    np.testing.assert_array_equal(again.indices(), second)  # a resumed run's shard
    other_seed = dist.DistributedSampler(20, num_replicas=2, rank=1, seed=10)
    assert other_seed.indices().tolist() != first.tolist()
    _, unshuffled = _shards(6, 2, shuffle=False)
    assert [s.tolist() for s in unshuffled] == [[0, 2, 4], [1, 3, 5]]
    # NumPy's global random state (DeZero's loader, dropout) is left alone.
    after = np.random.get_state()
    assert np.array_equal(after[1], state[1]) and after[2] == state[2]


def test_sampler_arguments_are_checked():
    with pytest.raises(ValueError, match="rank 2 is not below num_replicas 2"):
        dist.DistributedSampler(10, num_replicas=2, rank=2)
    with pytest.raises(ValueError, match="num_replicas must be an int >= 1, got 0"):
        dist.DistributedSampler(10, num_replicas=0, rank=0)
    with pytest.raises(ValueError, match="the dataset size must be an int >= 1, got 0"):
        dist.DistributedSampler([], num_replicas=1, rank=0)
    sampler = dist.DistributedSampler(10)  # the process group's: one process here
    assert (sampler.num_replicas, sampler.rank, len(sampler)) == (1, 0, 10)
    with pytest.raises(ValueError, match="epoch must be an int >= 0, got -1"):
        sampler.set_epoch(-1)


def test_the_ranks_batches_together_are_one_process_batches():
    """Batch k of p ranks with batch B holds the examples of batch k of one process with
    batch pB over the same permutation: why the training equivalence holds."""
    x = np.arange(24, dtype=np.float32).reshape(24, 1)
    data = ArrayDataset(x, np.arange(24))
    shards = [dist.DatasetShard(data, dist.DistributedSampler(24, num_replicas=3, rank=r,
                                                             seed=2)) for r in range(3)]
    for shard in shards:
        shard.set_epoch(4)
    whole = DataLoader(Subset(data, shards[0].sampler.order()), 6, shuffle=False)
    parts = [DataLoader(shard, 2, shuffle=False) for shard in shards]
    for (_, t), *rank_batches in zip(whole, *parts):
        together = np.concatenate([tr for _, tr in rank_batches])
        assert sorted(together.tolist()) == sorted(t.tolist())


def test_dataset_shard_is_a_dataset():
    x = np.arange(10, dtype=np.float32).reshape(10, 1) * 10
    data = ArrayDataset(x, np.arange(10))
    shard = dist.scatter_dataset(data, shuffle=True, seed=1)  # one process: all of it
    assert len(shard) == 10 and shard.supports_batch_index and shard.epoch == 0
    xi, ti = shard[3]
    assert ti == shard.indices[3] and xi[0] == 10 * shard.indices[3]
    xb, tb = shard[np.array([0, 1])]
    np.testing.assert_array_equal(tb, shard.indices[:2])
    shard.set_epoch(2)
    assert shard.epoch == 2 and shard.indices.tolist() != list(range(10))

    pairs = [(np.array([float(i)]), i) for i in range(6)]  # a plain list of examples
    plain = dist.DatasetShard(pairs, dist.DistributedSampler(6, num_replicas=2, rank=0,
                                                            shuffle=False))
    assert not plain.supports_batch_index
    batches = [t.tolist() for _, t in DataLoader(plain, 2, shuffle=False)]
    assert batches == [[0, 2], [4]]
    with pytest.raises(ValueError, match="the sampler is for 5 examples, the dataset has 6"):
        dist.DatasetShard(pairs, dist.DistributedSampler(5, num_replicas=1, rank=0))


@pytest.mark.torch
@pytest.mark.parametrize("n, p", [(12, 3), (10, 3), (10, 4), (2, 5), (7, 1)])
@pytest.mark.parametrize("drop_last", [False, True])
def test_unshuffled_shards_are_pytorchs(n, p, drop_last):
    """Padding, cutting and interleaving as torch.utils.data.distributed.DistributedSampler
    does (its shuffled order comes from torch's generator, so compare without shuffling)."""
    torch_data = pytest.importorskip("torch.utils.data.distributed")
    if drop_last and n < p:
        return  # PyTorch gives empty shards there; zerograd refuses (see above)
    for r in range(p):
        theirs = list(torch_data.DistributedSampler(range(n), num_replicas=p, rank=r,
                                                    shuffle=False, drop_last=drop_last))
        ours = dist.DistributedSampler(n, num_replicas=p, rank=r, shuffle=False,
                                       drop_last=drop_last)
        assert list(ours) == theirs, (n, p, r)
        assert len(ours) == len(theirs)
