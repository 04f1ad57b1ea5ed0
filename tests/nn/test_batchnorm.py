"""BatchNorm and GroupNorm layers: statistics, running buffers, modes, save/load."""

import numpy as np
import pytest

import zerograd.functions as F
from tests.nn.helpers import import_dezero
from zerograd import Variable, test_mode
from zerograd.errors import ShapeError
from zerograd.models import Model, Sequential
from zerograd.nn.batchnorm import BatchNorm, GroupNorm
from zerograd.nn.conv import Conv2d
from zerograd.nn.linear import Linear
from zerograd.nn.pooling import MaxPool2d


def _rand(*shape, seed=0, dtype=np.float32, scale=1.0, shift=0.0):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(shape) * scale + shift).astype(dtype)


def test_lazy_size_params_and_buffers():
    bn = BatchNorm()
    assert bn.gamma.data is None and bn.avg_mean is None
    bn(_rand(4, 3, 5, 5))
    assert bn.size == 3
    assert [name for name, _ in bn.named_params()] == ["gamma", "beta"]
    assert [name for name, _ in bn.named_buffers()] == ["avg_mean", "avg_var"]
    assert sorted(bn.state_dict()) == ["avg_mean", "avg_var", "beta", "gamma"]
    for a in (bn.gamma.data, bn.beta.data, bn.avg_mean, bn.avg_var):
        assert a.dtype == np.float32 and a.shape == (3,)


@pytest.mark.parametrize("shape", [(8, 3), (4, 3, 5, 6)])
def test_training_normalises_per_channel_and_updates_running_stats(shape):
    x = _rand(*shape, scale=3.0, shift=2.0)
    bn = BatchNorm()
    y = bn(x)
    axes = (0,) + tuple(range(2, x.ndim))
    assert y.dtype == np.float32
    np.testing.assert_allclose(y.data.mean(axis=axes), 0, atol=1e-5)
    np.testing.assert_allclose(y.data.var(axis=axes), 1, rtol=1e-3)
    m = x.size // x.shape[1]
    mean = x.astype(np.float64).mean(axis=axes)
    var = x.astype(np.float64).var(axis=axes) * m / (m - 1)
    np.testing.assert_allclose(bn.avg_mean, 0.1 * mean, rtol=1e-5)
    np.testing.assert_allclose(bn.avg_var, 0.9 + 0.1 * var, rtol=1e-5)
    bn(x)
    np.testing.assert_allclose(bn.avg_mean, 0.19 * mean, rtol=1e-5)


def test_matches_torch_batchnorm_in_train_and_eval():
    torch = pytest.importorskip("torch")
    x = _rand(6, 4, 3, 3, scale=2.0, shift=1.0)
    bn = BatchNorm(momentum=0.2, eps=1e-5)
    ref = torch.nn.BatchNorm2d(4, momentum=0.2, eps=1e-5)
    bn(x)
    bn.gamma.data[...] = _rand(4, seed=1)
    bn.beta.data[...] = _rand(4, seed=2)
    with torch.no_grad():
        ref.weight.copy_(torch.from_numpy(bn.gamma.data))
        ref.bias.copy_(torch.from_numpy(bn.beta.data))
        ref(torch.from_numpy(x))  # the same first update as ours
    for step in range(3):
        xs = _rand(6, 4, 3, 3, seed=10 + step, scale=2.0)
        y = bn(xs)
        expected = ref(torch.from_numpy(xs)).detach().numpy()
        np.testing.assert_allclose(y.data, expected, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(bn.avg_mean, ref.running_mean.numpy(), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(bn.avg_var, ref.running_var.numpy(), rtol=1e-5)
    ref.eval()
    bn.eval()
    y = bn(x)
    np.testing.assert_allclose(y.data, ref(torch.from_numpy(x)).detach().numpy(), rtol=1e-4,
                               atol=1e-5)


def _inference_formula(bn, x):
    shape = (1, -1) + (1,) * (x.ndim - 2)
    return (bn.gamma.data.reshape(shape) * (x - bn.avg_mean.reshape(shape))
            / np.sqrt(bn.avg_var.reshape(shape) + bn.eps) + bn.beta.data.reshape(shape))


def test_test_mode_and_eval_use_running_stats_and_freeze_them():
    bn = BatchNorm()
    for seed in range(3):
        bn(_rand(16, 3, seed=seed, scale=2.0, shift=5.0))
    mean, var = bn.avg_mean.copy(), bn.avg_var.copy()
    x = _rand(4, 3, seed=9)
    with test_mode():
        y_test = bn(x)
    np.testing.assert_allclose(y_test.data, _inference_formula(bn, x), rtol=1e-5, atol=1e-6)
    bn.eval()
    y_eval = bn(x)
    np.testing.assert_array_equal(y_eval.data, y_test.data)
    np.testing.assert_array_equal(bn.avg_mean, mean)
    np.testing.assert_array_equal(bn.avg_var, var)
    bn.train()
    bn(x)
    assert not np.array_equal(bn.avg_mean, mean)


def test_backward_in_test_mode_works():
    # DeZero's bug 8: its batch norm backward fails under test_mode().
    bn = BatchNorm(3)
    bn.avg_mean[...] = [1.0, -1.0, 0.5]
    bn.avg_var[...] = [4.0, 0.25, 1.0]
    bn.gamma.data[...] = [2.0, 1.0, -1.0]
    x = Variable(_rand(5, 3))
    with test_mode():
        y = bn(x)
        y.sum().backward()
    expected_gx = np.broadcast_to(bn.gamma.data / np.sqrt(bn.avg_var + bn.eps), (5, 3))
    np.testing.assert_allclose(x.grad.data, expected_gx, rtol=1e-5)
    xhat = (x.data - bn.avg_mean) / np.sqrt(bn.avg_var + bn.eps)
    np.testing.assert_allclose(bn.gamma.grad.data, xhat.sum(axis=0), rtol=1e-5)
    np.testing.assert_allclose(bn.beta.grad.data, [5.0, 5.0, 5.0])


def test_train_gradient_matches_torch():
    torch = pytest.importorskip("torch")
    x = _rand(4, 3, 2, 2, scale=2.0)
    bn = BatchNorm()
    xv = Variable(x)
    y = bn(xv)
    w = _rand(*x.shape, seed=3)
    (y * w).sum().backward()
    xt = torch.from_numpy(x).requires_grad_()
    ref = torch.nn.BatchNorm2d(3, eps=2e-5)
    (ref(xt) * torch.from_numpy(w)).sum().backward()
    np.testing.assert_allclose(xv.grad.data, xt.grad.numpy(), rtol=1e-3, atol=1e-5)
    np.testing.assert_allclose(bn.gamma.grad.data, ref.weight.grad.numpy(), rtol=1e-4,
                               atol=1e-5)
    assert xv.grad.dtype == bn.gamma.grad.dtype == np.float32


def test_running_stats_are_never_optimised():
    bn = BatchNorm(2)
    x = Variable(_rand(8, 2, scale=3.0))
    params = list(bn.params())
    assert all(p is not bn.avg_mean and p is not bn.avg_var for p in params)
    assert len(params) == 2
    (bn(x) ** 2).sum().backward()
    before = bn.avg_mean.copy()
    for p in bn.params():
        p.data -= 0.1 * p.grad.data
    np.testing.assert_array_equal(bn.avg_mean, before)


def test_options_and_errors():
    assert BatchNorm(momentum=0.3).decay == pytest.approx(0.7)
    assert BatchNorm(decay=0.99).momentum == pytest.approx(0.01)
    with pytest.raises(ValueError, match="decay or momentum"):
        BatchNorm(decay=0.9, momentum=0.1)
    with pytest.raises(ValueError, match="eps must be positive"):
        BatchNorm(eps=0)
    bn = BatchNorm(3)
    with pytest.raises(ShapeError, match=r"BatchNorm: the input float32 \(2, 4\) has size = "
                       r"x.shape\[1\] = 4, but gamma has shape \(3,\).*made for size=3"):
        bn(_rand(2, 4))
    with pytest.raises(ShapeError, match="BatchNorm: input must be"):
        BatchNorm()(_rand(5))


def test_float64_input_and_dtype_option():
    bn = BatchNorm()
    y = bn(_rand(4, 2, dtype=np.float64))
    assert y.dtype == np.float64 and bn.avg_mean.dtype == np.float64
    bn32 = BatchNorm(2, dtype=np.float32)
    assert bn32.gamma.dtype == np.float32


def test_decay_one_freezes_and_small_batches_are_finite():
    bn = BatchNorm(decay=1.0)
    bn(_rand(8, 2, shift=4.0))
    np.testing.assert_array_equal(bn.avg_mean, [0.0, 0.0])
    y = BatchNorm()(np.ones((1, 3), np.float32))  # one sample: zero variance, no nan
    assert np.all(np.isfinite(y.data))


def _cnn():
    return Sequential(Conv2d(4, 3, pad=1), BatchNorm(), F.relu, MaxPool2d(2),
                      lambda h: F.reshape(h, (h.shape[0], -1)), Linear(3))


def test_save_load_round_trip_of_a_cnn_keeps_the_buffers(tmp_path):
    np.random.seed(0)
    model = _cnn()
    for seed in range(3):
        model(_rand(5, 2, 6, 6, seed=seed, shift=1.0))
    saved = model.state_dict()
    assert set(saved) == {"l0/W", "l0/b", "l1/gamma", "l1/beta", "l1/avg_mean", "l1/avg_var",
                          "l5/W", "l5/b"}
    assert np.any(saved["l1/avg_mean"] != 0)
    path = model.save_weights(tmp_path / "cnn")
    x = _rand(3, 2, 6, 6, seed=7)
    with test_mode():
        expected = model(x).data

    np.random.seed(1)
    other = _cnn()
    other(_rand(1, 2, 6, 6))  # initialise the lazy sizes, with other weights
    other.load_weights(path)
    for key, value in other.state_dict().items():
        np.testing.assert_array_equal(value, saved[key])
        assert value.dtype == np.float32
    other.eval()
    np.testing.assert_array_equal(other(x).data, expected)


def test_dezero_batchnorm_weights_load_by_key(tmp_path):
    dezero = import_dezero()
    import dezero.layers as DL

    class DeZeroNet(dezero.Model):
        def __init__(self):
            super().__init__()
            self.bn = DL.BatchNorm()

        def forward(self, x):
            return self.bn(x)

    x = _rand(6, 3, 2, 2, scale=2.0, shift=1.0)
    theirs = DeZeroNet()
    theirs(x)
    theirs(x * 2)
    path = str(tmp_path / "bn.npz")
    theirs.save_weights(path)

    class Net(Model):
        def __init__(self):
            super().__init__()
            self.bn = BatchNorm(3)

        def forward(self, x):
            return self.bn(x)

    ours = Net()
    ours.load_weights(path)
    np.testing.assert_allclose(ours.bn.avg_mean, theirs.bn.avg_mean.data, rtol=1e-6)
    np.testing.assert_allclose(ours.bn.avg_var, theirs.bn.avg_var.data, rtol=1e-6)
    with test_mode(), dezero.test_mode():
        np.testing.assert_allclose(ours(x).data, theirs(x).data, rtol=1e-5, atol=1e-6)


# -- GroupNorm ---------------------------------------------------------------------------------
def test_groupnorm_matches_torch_and_is_lazy():
    torch = pytest.importorskip("torch")
    x = _rand(3, 6, 4, 5, scale=2.0, shift=-1.0)
    gn = GroupNorm(3)
    y = gn(x)
    assert gn.num_channels == 6 and gn.gamma.shape == (6,) and gn.gamma.dtype == np.float32
    gn.gamma.data[...] = _rand(6, seed=1)
    gn.beta.data[...] = _rand(6, seed=2)
    y = gn(x)
    expected = torch.nn.functional.group_norm(torch.from_numpy(x), 3,
                                              torch.from_numpy(gn.gamma.data),
                                              torch.from_numpy(gn.beta.data), eps=1e-5).numpy()
    np.testing.assert_allclose(y.data, expected, rtol=1e-4, atol=1e-5)
    with test_mode():
        np.testing.assert_array_equal(gn(x).data, y.data)  # no train/inference difference


def test_groupnorm_errors():
    with pytest.raises(ShapeError, match="6 channels cannot be split into 4"):
        GroupNorm(4, 6)
    gn = GroupNorm(2, 4)
    with pytest.raises(ShapeError, match=r"GroupNorm: the input float32 \(2, 6, 3\) has "
                       r"num_channels = x.shape\[1\] = 6, but gamma has shape \(4,\)"):
        gn(_rand(2, 6, 3))
    with pytest.raises(ValueError, match="num_groups"):
        GroupNorm(0)
