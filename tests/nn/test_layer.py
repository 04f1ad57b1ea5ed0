"""Layer: ordered registries, buffers, calling, modes, state, save/load, repr."""

import os
import subprocess
import sys
import textwrap
import weakref

import numpy as np
import pytest

import zerograd
import zerograd.layers as L
from zerograd import Parameter, Variable
from zerograd.errors import ShapeError
from zerograd.nn import StateDictError
from zerograd.serialization import CorruptFileError


class Affine(L.Layer):
    """A layer that needs no op beyond the core: y = x * a + c (elementwise)."""

    def __init__(self, n=3):
        super().__init__()
        self.a = Parameter(np.full(n, 2.0, dtype=np.float32), name="a")
        self.c = Parameter(np.zeros(n, dtype=np.float32), name="c")

    def forward(self, x):
        return x * self.a + self.c


class Net(L.Layer):
    def __init__(self):
        super().__init__()
        self.z = Affine(2)
        self.first = Parameter(np.ones((1,), np.float32))
        self.m = Affine(3)
        self.register_buffer("count", np.zeros(1, np.float32))


def test_params_follow_definition_order_through_sublayers():
    net = Net()
    assert [k for k, _ in net.named_params()] == ["z/a", "z/c", "first", "m/a", "m/c"]
    assert list(net.params()) == [net.z.a, net.z.c, net.first, net.m.a, net.m.c]
    assert list(net._params) == ["z", "first", "m"]  # DeZero's registry name, now ordered
    assert list(net.layers()) == [net.z, net.m]


def test_reassigning_or_deleting_unregisters_the_name():
    net = Net()
    net.first = None
    assert "first" not in net._params
    assert [k for k, _ in net.named_params()] == ["z/a", "z/c", "m/a", "m/c"]
    del net.m
    assert [k for k, _ in net.named_params()] == ["z/a", "z/c"]
    net.first = Parameter(np.zeros(1))  # registered again, now at the end
    assert list(net._params) == ["z", "first"]


def test_shared_parameter_is_yielded_once():
    net = Net()
    net.m.a = net.z.a
    assert sum(p is net.z.a for p in net.params()) == 1
    net.cleargrads()


def test_buffers_are_state_but_not_params():
    net = Net()
    assert all(p is not net.count for p in net.params())
    assert [k for k, _ in net.named_buffers()] == ["count"]
    net.count = np.ones(1, np.float32)  # updating a buffer keeps it registered
    assert "count" in net._buffers and "count" in net.state_dict()
    with pytest.raises(TypeError, match="buffer 'count'"):
        net.count = Variable(np.ones(1))
    del net.count
    assert "count" not in net._buffers


def test_forgetting_super_init_is_a_clear_error():
    class Broken(L.Layer):
        def __init__(self):
            self.W = Parameter(np.ones(1))

    with pytest.raises(AttributeError, match=r"super\(\).__init__\(\)"):
        Broken()


def test_call_keeps_weakrefs_and_returns_single_or_tuple():
    layer = Affine()
    x = Variable(np.ones(3, np.float32))
    y = layer(x)
    np.testing.assert_array_equal(y.data, [2, 2, 2])
    assert isinstance(layer.inputs[0], weakref.ref) and layer.inputs[0]() is x
    assert layer.outputs[0]() is y

    class Two(L.Layer):
        def forward(self, x, n):
            return x * 1.0, x * 2.0

    out = Two()(x, 3)  # a plain int input cannot be weakly referenced: still works
    assert isinstance(out, tuple) and len(out) == 2


def test_train_eval_set_the_flag_recursively():
    net = Net()
    assert net.training and net.m.training
    assert net.eval() is net
    assert not net.training and not net.z.training and not net.m.training
    net.train()
    assert net.m.training


def test_cleargrads_and_zero_grad():
    layer = Affine()
    y = layer(Variable(np.ones(3, np.float32)))
    y.backward()
    assert layer.a.grad is not None
    layer.zero_grad()
    assert layer.a.grad is None and layer.c.grad is None


def test_to_cpu_is_in_place_and_to_gpu_needs_cupy():
    net = Net()
    W = net.m.a
    assert net.to_cpu() is net and net.m.a is W
    if not zerograd.cuda.gpu_enable:
        with pytest.raises(RuntimeError, match="CuPy"):
            net.to_gpu()


def test_state_dict_is_a_copy_and_round_trips():
    net = Net()
    state = net.state_dict()
    assert list(state) == ["z/a", "z/c", "first", "m/a", "m/c", "count"]
    state["m/a"][...] = 5  # a copy: the model is unchanged
    assert net.m.a.data[0] == 2.0
    other = Net()
    other.load_state_dict(state)
    np.testing.assert_array_equal(other.m.a.data, [5, 5, 5])
    assert other.m.a.data.dtype == np.float32


def test_save_load_round_trip_with_buffers(tmp_path):
    net = Net()
    for i, p in enumerate(net.params()):
        p.data[...] = np.arange(p.data.size) + 10 * i
    net.count = np.array([4.0], np.float32)
    path = net.save_weights(tmp_path / "net")
    assert path.endswith("net.npz")
    other = Net()
    other.load_weights(tmp_path / "net.npz")
    for (k1, p1), (k2, p2) in zip(net.named_params(), other.named_params()):
        assert k1 == k2
        np.testing.assert_array_equal(p1.data, p2.data)
    assert other.count[0] == 4.0
    with np.load(path) as npz:  # DeZero's layout: a compressed npz with '/'-joined keys
        assert sorted(npz.files) == ["count", "first", "m/a", "m/c", "z/a", "z/c"]


def test_strict_load_names_missing_and_unexpected_keys(tmp_path):
    net = Net()
    path = tmp_path / "w.npz"
    state = net.state_dict()
    del state["m/c"]
    state["extra/W"] = np.ones(2)
    np.savez_compressed(path, **state)
    other = Net()
    before = other.z.a.data.copy()
    with pytest.raises(StateDictError) as info:
        other.load_weights(path)
    message = str(info.value)
    assert "missing keys" in message and "m/c" in message
    assert "unexpected keys" in message and "extra/W" in message and "w.npz" in message
    assert isinstance(info.value, KeyError)
    np.testing.assert_array_equal(other.z.a.data, before)
    other.z.a.data[...] = 0
    other.load_weights(path, strict=False)  # partial: what both have
    np.testing.assert_array_equal(other.z.a.data, net.z.a.data)


def test_shape_mismatch_is_an_error_even_when_not_strict(tmp_path):
    net = Net()
    state = net.state_dict()
    state["m/a"] = np.ones(4, np.float32)
    other = Net()
    with pytest.raises(ShapeError, match=r"'m/a' has shape \(4,\).*\(3,\)"):
        other.load_state_dict(state, strict=False)
    assert other.z.a.data[0] == 2.0  # nothing was loaded


def test_loading_keeps_the_model_dtype():
    # A DeZero file written under NumPy 2 holds float64 weights (DeZero bug 1).
    net = Net()
    state = {k: v.astype(np.float64) for k, v in net.state_dict().items()}
    net.load_state_dict(state)
    assert all(p.data.dtype == np.float32 for p in net.params())


def test_lazy_parameters_refuse_to_save_and_accept_loading(tmp_path):
    lazy = L.Linear(4)
    with pytest.raises(ValueError, match="not initialised yet: W .*forward pass"):
        lazy.save_weights(tmp_path / "lazy.npz")
    assert not os.path.exists(tmp_path / "lazy.npz")
    ready = L.Linear(4, in_size=3)
    ready.save_weights(tmp_path / "ready.npz")
    lazy.load_weights(tmp_path / "ready.npz")
    np.testing.assert_array_equal(lazy.W.data, ready.W.data)


def test_save_weights_is_atomic(tmp_path, monkeypatch):
    net = Net()
    path = tmp_path / "w.npz"
    net.save_weights(path)
    before = path.read_bytes()

    def fail(f, **arrays):
        f.write(b"partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "savez_compressed", fail)
    with pytest.raises(KeyboardInterrupt):
        net.save_weights(path)
    assert path.read_bytes() == before
    assert [n for n in os.listdir(tmp_path) if n != "w.npz"] == []


def test_truncated_weights_file_error_names_it(tmp_path):
    net = Net()
    path = tmp_path / "w.npz"
    net.save_weights(path)
    path.write_bytes(path.read_bytes()[:40])
    with pytest.raises(CorruptFileError, match="w.npz"):
        Net().load_weights(path)


def test_repr_shows_the_tree():
    text = repr(Net())
    assert text.splitlines()[0] == "Net("
    assert "  (z): Affine()" in text and "  (m): Affine()" in text
    assert repr(L.Linear(5, in_size=2)) == "Linear(in_size=2, out_size=5)"


def test_num_params():
    assert Net().num_params() == 2 + 2 + 1 + 3 + 3
    assert L.Linear(4).num_params() == 4  # lazy W counts 0 until initialised


def test_registry_order_is_identical_across_hash_seeds():
    script = textwrap.dedent("""
        import numpy as np
        import zerograd.layers as L
        from zerograd import Parameter

        class Block(L.Layer):
            def __init__(self):
                super().__init__()
                for name in ["w_q", "w_k", "alpha", "beta", "gamma", "delta", "zeta"]:
                    setattr(self, name, Parameter(np.zeros(1)))
                self.inner = L.Linear(3, in_size=2)
                self.omega = Parameter(np.zeros(1))

        print(",".join(k for k, _ in Block().named_params()))
    """)
    outputs = set()
    for seed in ("0", "1", "12345", "random"):
        env = dict(os.environ, PYTHONHASHSEED=seed)
        result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                                text=True, check=True)
        outputs.add(result.stdout.strip())
    assert outputs == {"w_q,w_k,alpha,beta,gamma,delta,zeta,inner/W,inner/b,omega"}


def test_dezero_reads_our_files_and_we_read_dezero_files(tmp_path):
    from tests.nn.helpers import import_dezero

    dezero = import_dezero()
    ours = L.Linear(3, in_size=2)
    ours.W.data[...] = np.arange(6).reshape(2, 3)
    ours.save_weights(tmp_path / "ours.npz")
    theirs = dezero.layers.Linear(3, in_size=2)
    theirs.load_weights(str(tmp_path / "ours.npz"))
    np.testing.assert_array_equal(theirs.W.data, ours.W.data)

    theirs.W.data = np.full((2, 3), 0.5)
    theirs.save_weights(str(tmp_path / "theirs.npz"))
    ours.load_weights(tmp_path / "theirs.npz")
    np.testing.assert_array_equal(ours.W.data, np.full((2, 3), 0.5, np.float32))
    assert ours.W.data.dtype == np.float32


def test_pickle_and_deepcopy_after_a_call():
    import copy
    import pickle

    layer = Affine()
    layer(Variable(np.ones(3, np.float32)))
    for clone in (pickle.loads(pickle.dumps(layer)), copy.deepcopy(layer)):
        assert not hasattr(clone, "inputs")
        assert [k for k, _ in clone.named_params()] == ["a", "c"]
        assert clone.a is not layer.a
        np.testing.assert_array_equal(clone.a.data, layer.a.data)
        clone.c = None  # the registries came along and still work
        assert [k for k, _ in clone.named_params()] == ["a"]


def test_batchnorm_running_statistics_are_saved_but_never_optimised(tmp_path):
    import zerograd.functions as F
    import zerograd.optimizers as O
    from zerograd.models import Sequential

    np.random.seed(0)
    model = Sequential(L.Linear(4, in_size=3), L.BatchNorm())
    x = np.random.rand(8, 3).astype(np.float32)
    loss = F.sum(model(x) * model(x))
    assert [k for k, _ in model.named_params()] == ["l0/W", "l0/b", "l1/gamma", "l1/beta"]
    optimizer = O.Adam().setup(model)
    model.cleargrads()
    loss.backward()
    mean_before = model.l1.avg_mean.copy()
    optimizer.update()
    np.testing.assert_array_equal(model.l1.avg_mean, mean_before)
    assert all(p is not model.l1.avg_mean for p, _ in optimizer.state.items())

    model.save_weights(tmp_path / "bn.npz")
    other = Sequential(L.Linear(4, in_size=3), L.BatchNorm())
    other.load_weights(tmp_path / "bn.npz")  # lazy buffers take the saved statistics
    np.testing.assert_array_equal(other.l1.avg_mean, model.l1.avg_mean)
    np.testing.assert_array_equal(other.l1.avg_var, model.l1.avg_var)


def test_saving_never_moves_the_model(tmp_path, monkeypatch):
    net = Net()
    arrays = [p.data for p in net.params()]

    def forbidden(self):
        raise AssertionError("save_weights must not move the model")

    monkeypatch.setattr(L.Layer, "to_cpu", forbidden)
    monkeypatch.setattr(L.Layer, "to_gpu", forbidden)
    net.save_weights(tmp_path / "w.npz")
    net.load_weights(tmp_path / "w.npz")
    assert all(p.data is not a for p, a in zip(net.params(), arrays))  # new arrays loaded
    assert all(p.data.dtype == np.float32 for p in net.params())


def test_call_passes_keyword_options_to_forward():
    import numpy as np

    from zerograd import Variable
    from zerograd.nn.layer import Layer

    class Scale(Layer):
        def forward(self, x, factor=1.0):
            return x * factor

    layer = Scale()
    x = Variable(np.array([1.0, 2.0]))
    np.testing.assert_array_equal(layer(x, factor=3.0).data, [3.0, 6.0])
    assert len(layer.inputs) == 1 and layer.inputs[0]() is x


def test_loading_into_an_unsized_lazy_layer_keeps_the_layer_dtype(tmp_path):
    import numpy as np

    import zerograd.layers as L

    source = L.Linear(3, in_size=2, dtype=np.float64)
    path = source.save_weights(tmp_path / "w.npz")
    target = L.Linear(3)  # float32, W not sized yet
    target.load_weights(path)
    assert target.W.data.dtype == np.float32 and target.W.shape == (2, 3)
    np.testing.assert_allclose(target.W.data, source.W.data.astype(np.float32))
