"""Conv2d, Deconv2d, Conv1d and the pooling layers: shapes, values, lazy sizes, init, errors."""

import math

import numpy as np
import pytest

import zerograd.functions as F
from tests.nn.helpers import import_dezero
from zerograd import Variable, test_mode
from zerograd.errors import ShapeError
from zerograd.models import Sequential
from zerograd.nn.conv import Conv1d, Conv2d, Deconv2d
from zerograd.nn.linear import Linear
from zerograd.nn.pooling import AdaptiveAvgPool2d, AvgPool2d, MaxPool2d


def _rand(*shape, seed=0, dtype=np.float32):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


# -- Conv2d ----------------------------------------------------------------------------------
def test_conv2d_lazy_in_channels_and_dezero_init():
    np.random.seed(3)
    layer = Conv2d(8, 3, stride=1, pad=1)
    assert layer.W.data is None and layer.in_channels is None
    assert layer.b.data.dtype == np.float32 and np.all(layer.b.data == 0)
    x = _rand(2, 5, 7, 7)
    np.random.seed(3)
    expected = np.random.randn(8, 5, 3, 3).astype(np.float32) * np.float32(math.sqrt(1 / 45))
    np.random.seed(3)
    y = layer(x)
    assert layer.in_channels == 5
    assert layer.W.shape == (8, 5, 3, 3) and layer.W.dtype == np.float32
    np.testing.assert_array_equal(layer.W.data, expected)
    assert y.shape == (2, 8, 7, 7) and y.dtype == np.float32
    np.testing.assert_allclose(y.data, F.conv2d(x, layer.W, layer.b, 1, 1).data, rtol=1e-6)


def test_conv2d_eager_in_channels_draws_at_construction():
    np.random.seed(0)
    layer = Conv2d(4, (3, 2), in_channels=6, nobias=True)
    np.random.seed(0)
    expected = np.random.randn(4, 6, 3, 2).astype(np.float32) * np.float32(math.sqrt(1 / 36))
    np.testing.assert_array_equal(layer.W.data, expected)
    assert layer.b is None
    assert [name for name, _ in layer.named_params()] == ["W"]


def test_conv2d_weights_match_dezero_draw_but_stay_float32():
    dezero = import_dezero()
    x = _rand(1, 3, 5, 5)
    np.random.seed(11)
    theirs = dezero.layers.Conv2d(4, 3, in_channels=3)
    np.random.seed(11)
    ours = Conv2d(4, 3, in_channels=3)
    if int(np.__version__.split(".")[0]) >= 2:
        assert theirs.W.data.dtype == np.float64  # DeZero's bug 1 under NumPy 2
    assert ours.W.dtype == np.float32
    np.testing.assert_allclose(ours.W.data, theirs.W.data, rtol=1e-6)
    np.testing.assert_allclose(ours(x).data, theirs(x).data, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("kwargs", [
    dict(stride=1, pad=0),
    dict(stride=2, pad=1),
    dict(stride=(2, 1), pad=(0, 2), dilation=2),
    dict(stride=1, pad=1, groups=2),
    dict(stride=2, pad=1, dilation=(1, 2), groups=4),
])
def test_conv2d_matches_torch(kwargs):
    torch = pytest.importorskip("torch")
    x = _rand(2, 4, 9, 10, seed=1)
    layer = Conv2d(8, 3, **kwargs)
    y = layer(x)
    groups = kwargs.get("groups", 1)
    assert layer.W.shape == (8, 4 // groups, 3, 3)
    layer.b.data[...] = _rand(8, seed=2)
    y = layer(x)
    expected = torch.nn.functional.conv2d(
        torch.from_numpy(x), torch.from_numpy(layer.W.data), torch.from_numpy(layer.b.data),
        stride=kwargs["stride"], padding=kwargs["pad"], dilation=kwargs.get("dilation", 1),
        groups=groups).numpy()
    assert y.shape == expected.shape
    np.testing.assert_allclose(y.data, expected, rtol=1e-4, atol=1e-5)


def test_conv2d_gradients_reach_the_parameters_in_float32():
    torch = pytest.importorskip("torch")
    x = _rand(2, 3, 6, 6)
    layer = Conv2d(5, 3, 1, 1)
    xv = Variable(x)
    y = layer(xv)
    (y * y).sum().backward()
    xt = torch.from_numpy(x).requires_grad_()
    Wt = torch.from_numpy(layer.W.data.copy()).requires_grad_()
    bt = torch.from_numpy(layer.b.data.copy()).requires_grad_()
    yt = torch.nn.functional.conv2d(xt, Wt, bt, padding=1)
    (yt * yt).sum().backward()
    for ours, theirs in ((layer.W.grad, Wt.grad), (layer.b.grad, bt.grad), (xv.grad, xt.grad)):
        assert ours.dtype == np.float32
        np.testing.assert_allclose(ours.data, theirs.numpy(), rtol=1e-4, atol=1e-4)


def test_conv2d_channel_mismatch_names_the_layer():
    layer = Conv2d(4, 3, in_channels=3)
    with pytest.raises(ShapeError, match=r"Conv2d: .*\(2, 5, 8, 8\).*in_channels=3"):
        layer(_rand(2, 5, 8, 8))
    with pytest.raises(ShapeError, match=r"Conv2d: input must be 4-D"):
        layer(_rand(5, 8, 8))


def test_conv2d_rejects_bad_groups():
    with pytest.raises(ValueError, match="out_channels=6 is not divisible by groups=4"):
        Conv2d(6, 3, groups=4)
    layer = Conv2d(4, 3, groups=2)
    with pytest.raises(ShapeError, match="in_channels=3 is not divisible by groups=2"):
        layer(_rand(1, 3, 5, 5))
    with pytest.raises(ValueError, match="out_channels must be a positive int"):
        Conv2d(0, 3)


def test_conv2d_float64_dtype_option():
    layer = Conv2d(2, 3, dtype=np.float64)
    y = layer(_rand(1, 2, 4, 4, dtype=np.float64))
    assert layer.W.dtype == np.float64 and layer.b.dtype == np.float64 and y.dtype == np.float64


def test_conv2d_initializer_option():
    layer = Conv2d(16, 3, in_channels=8, initializer="he_normal")
    std = float(layer.W.data.std())
    assert abs(std - math.sqrt(2 / 72)) < 0.02
    assert layer.W.dtype == np.float32


# -- Deconv2d --------------------------------------------------------------------------------
def test_deconv2d_lazy_shape_init_and_values():
    torch = pytest.importorskip("torch")
    layer = Deconv2d(3, 4, stride=2, pad=1)
    x = _rand(2, 6, 5, 5)
    np.random.seed(5)
    y = layer(x)
    assert layer.W.shape == (6, 3, 4, 4) and layer.W.dtype == np.float32
    np.random.seed(5)
    expected_W = np.random.randn(6, 3, 4, 4).astype(np.float32) * np.float32(
        math.sqrt(1 / (6 * 16)))
    np.testing.assert_array_equal(layer.W.data, expected_W)
    assert y.shape == (2, 3, 10, 10) and y.dtype == np.float32
    expected = torch.nn.functional.conv_transpose2d(
        torch.from_numpy(x), torch.from_numpy(layer.W.data), torch.from_numpy(layer.b.data),
        stride=2, padding=1).numpy()
    np.testing.assert_allclose(y.data, expected, rtol=1e-4, atol=1e-5)


def test_deconv2d_outsize_groups_and_dilation():
    torch = pytest.importorskip("torch")
    x = _rand(1, 4, 4, 4, seed=3)
    layer = Deconv2d(6, 3, stride=2, pad=1, outsize=(8, 8), groups=2)
    y = layer(x)
    assert layer.W.shape == (4, 3, 3, 3)
    assert y.shape == (1, 6, 8, 8)
    expected = torch.nn.functional.conv_transpose2d(
        torch.from_numpy(x), torch.from_numpy(layer.W.data), None, stride=2, padding=1,
        output_padding=1, groups=2).numpy()
    np.testing.assert_allclose(y.data, expected, rtol=1e-4, atol=1e-5)
    dilated = Deconv2d(2, 3, dilation=2, nobias=True)
    yd = dilated(x)
    expected = torch.nn.functional.conv_transpose2d(
        torch.from_numpy(x), torch.from_numpy(dilated.W.data), dilation=2).numpy()
    np.testing.assert_allclose(yd.data, expected, rtol=1e-4, atol=1e-5)


def test_deconv2d_is_the_transpose_of_conv2d():
    # <conv(x), y> == <x, deconv(y)> with the same weights: the defining property.
    conv = Conv2d(5, 3, stride=2, pad=1, nobias=True, in_channels=4)
    deconv = Deconv2d(4, 3, stride=2, pad=1, nobias=True, in_channels=5, outsize=(9, 9))
    deconv.W.data = conv.W.data
    x, y = _rand(2, 4, 9, 9, seed=1), _rand(2, 5, 5, 5, seed=2)
    lhs = float((conv(x).data * y).sum())
    rhs = float((x * deconv(y).data).sum())
    assert lhs == pytest.approx(rhs, rel=1e-4)


# -- Conv1d ----------------------------------------------------------------------------------
def test_conv1d_matches_torch():
    torch = pytest.importorskip("torch")
    x = _rand(3, 4, 20)
    layer = Conv1d(6, 5, stride=2, pad=2, dilation=2, groups=2)
    y = layer(x)
    assert layer.W.shape == (6, 2, 5) and layer.W.dtype == np.float32
    expected = torch.nn.functional.conv1d(
        torch.from_numpy(x), torch.from_numpy(layer.W.data), torch.from_numpy(layer.b.data),
        stride=2, padding=2, dilation=2, groups=2).numpy()
    assert y.shape == expected.shape == (3, 6, 8)
    np.testing.assert_allclose(y.data, expected, rtol=1e-4, atol=1e-5)


def test_conv1d_lazy_scale_and_errors():
    layer = Conv1d(3, 4)
    np.random.seed(1)
    layer(_rand(1, 2, 10))
    np.random.seed(1)
    expected = np.random.randn(3, 2, 4).astype(np.float32) * np.float32(math.sqrt(1 / 8))
    np.testing.assert_array_equal(layer.W.data, expected)
    with pytest.raises(ShapeError, match=r"Conv1d: input must be 3-D \(N, C, L\)"):
        layer(_rand(1, 2, 3, 10))
    with pytest.raises(ValueError, match="Conv1d: expected an int"):
        Conv1d(3, (2, 2))


# -- pooling layers ---------------------------------------------------------------------------
def test_maxpool2d_defaults_stride_to_kernel_and_matches_torch():
    torch = pytest.importorskip("torch")
    x = _rand(2, 3, 9, 9)
    for layer, kwargs in ((MaxPool2d(2), dict(kernel_size=2)),
                          (MaxPool2d(3, 2, 1), dict(kernel_size=3, stride=2, padding=1)),
                          (MaxPool2d(2, ceil_mode=True), dict(kernel_size=2, ceil_mode=True))):
        y = layer(x)
        expected = torch.nn.functional.max_pool2d(torch.from_numpy(x), **kwargs).numpy()
        assert y.shape == expected.shape and y.dtype == np.float32
        np.testing.assert_array_equal(y.data, expected)
    assert MaxPool2d(2).stride == (2, 2)


def test_avgpool2d_matches_torch():
    torch = pytest.importorskip("torch")
    x = _rand(2, 3, 8, 7)
    for layer, kwargs in ((AvgPool2d(2), dict(kernel_size=2)),
                          (AvgPool2d(3, 1, 1), dict(kernel_size=3, stride=1, padding=1)),
                          (AvgPool2d(3, 2, 1, count_include_pad=False),
                           dict(kernel_size=3, stride=2, padding=1, count_include_pad=False)),
                          (AvgPool2d((2, 3)), dict(kernel_size=(2, 3)))):
        y = layer(x)
        expected = torch.nn.functional.avg_pool2d(torch.from_numpy(x), **kwargs).numpy()
        assert y.shape == expected.shape
        np.testing.assert_allclose(y.data, expected, rtol=1e-5, atol=1e-6)


def test_adaptive_avg_pool2d_matches_torch():
    torch = pytest.importorskip("torch")
    x = _rand(2, 3, 10, 7)
    for size in (1, (5, 7), (3, 4), (None, 2)):
        y = AdaptiveAvgPool2d(size)(x)
        torch_size = size if not isinstance(size, tuple) else tuple(size)
        expected = torch.nn.functional.adaptive_avg_pool2d(torch.from_numpy(x),
                                                           torch_size).numpy()
        np.testing.assert_allclose(y.data, expected, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="AdaptiveAvgPool2d"):
        AdaptiveAvgPool2d(0)


def test_pooling_layers_have_no_params_and_describe_themselves():
    assert list(MaxPool2d(2).params()) == []
    assert repr(MaxPool2d(3, 2, 1)) == "MaxPool2d(kernel_size=(3, 3), stride=(2, 2), pad=(1, 1))"
    assert "count_include_pad=False" in repr(AvgPool2d(2, count_include_pad=False))
    with pytest.raises(ValueError, match="MaxPool2d"):
        MaxPool2d(0)


# -- together ---------------------------------------------------------------------------------
def test_small_cnn_in_sequential_trains_and_summarises():
    np.random.seed(0)
    model = Sequential(Conv2d(4, 3, pad=1), F.relu, MaxPool2d(2), Conv2d(8, 3, pad=1), F.relu,
                       AdaptiveAvgPool2d(1), lambda h: F.reshape(h, (h.shape[0], -1)),
                       Linear(3))
    x = _rand(6, 1, 8, 8)
    t = np.array([0, 1, 2, 0, 1, 2])
    losses = []
    for _ in range(60):
        loss = F.softmax_cross_entropy(model(x), t)
        model.cleargrads()
        loss.backward()
        for p in model.params():
            assert p.grad.dtype == np.float32
            p.data -= 0.3 * p.grad.data
        losses.append(float(loss.data))
    assert losses[-1] < 0.5 * losses[0]
    text = model.summary((2, 1, 8, 8))
    assert "(2, 4, 8, 8)" in text and "(2, 8, 4, 4)" in text and "(2, 8, 1, 1)" in text
    with test_mode():
        assert model(x).dtype == np.float32
