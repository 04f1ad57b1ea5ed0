"""VGG16, ResNet and the small ready CNNs: names/keys, shapes, DeZero weight files, pretrained."""

import os
import urllib.error

import numpy as np
import pytest

import zerograd
import zerograd.functions as F
from tests.nn.helpers import import_dezero
from zerograd import models_vision
from zerograd.data import download
from zerograd.models_vision import (
    VGG16,
    BottleneckA,
    BottleneckB,
    BuildingBlock,
    LeNet,
    PretrainedWeightsError,
    ResNet,
    ResNet50,
    ResNet101,
    ResNet152,
    SmallResNet,
    pretrained_weights_path,
)
from zerograd.nn.batchnorm import BatchNorm


def _rand(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


@pytest.fixture(scope="module")
def vgg():
    np.random.seed(0)
    return VGG16()


@pytest.fixture(scope="module")
def resnet50():
    np.random.seed(0)
    return ResNet50()


# -- names and shapes ---------------------------------------------------------------------------
VGG_CONVS = ["conv1_1", "conv1_2", "conv2_1", "conv2_2", "conv3_1", "conv3_2", "conv3_3",
             "conv4_1", "conv4_2", "conv4_3", "conv5_1", "conv5_2", "conv5_3"]


def test_vgg16_has_dezero_layer_names_and_shapes(vgg):
    names = [path for path, _ in vgg.named_layers() if path]
    assert names == VGG_CONVS + ["fc6", "fc7", "fc8"]
    assert vgg.conv1_1.W.shape == (64, 3, 3, 3)
    assert vgg.conv3_1.W.shape == (256, 128, 3, 3)
    assert vgg.conv5_3.W.shape == (512, 512, 3, 3)
    assert vgg.fc7.W.shape == (4096, 4096) and vgg.fc8.W.shape == (4096, 1000)
    assert vgg.fc6.W.data is None  # sized by the first image
    assert all(p.dtype == np.float32 for p in vgg.params() if p.data is not None)


def test_vgg16_forward_shape_and_eval_disables_dropout(vgg):
    x = _rand(2, 3, 32, 32)
    vgg.eval()
    try:
        y1, y2 = vgg(x), vgg(x)
    finally:
        vgg.train()
    assert y1.shape == (2, 1000) and y1.dtype == np.float32
    assert vgg.fc6.W.shape == (512, 4096)
    np.testing.assert_array_equal(y1.data, y2.data)
    with zerograd.no_grad():
        np.random.seed(1)
        y3 = vgg(x)  # training: dropout on fc6 and fc7
    assert not np.allclose(y3.data, y1.data)
    keys = list(vgg.state_dict())
    assert keys[:2] == ["conv1_1/W", "conv1_1/b"] and keys[-2:] == ["fc8/W", "fc8/b"]
    assert len(keys) == 2 * 16


def test_resnet50_has_dezero_names(resnet50):
    keys = set(resnet50.state_dict())
    assert {"conv1/W", "conv1/b", "bn1/gamma", "bn1/beta", "bn1/avg_mean", "bn1/avg_var",
            "fc6/W", "fc6/b"} <= keys
    for block in ("res2/a", "res3/a", "res4/a", "res5/a"):
        for i in (1, 2, 3, 4):
            assert f"{block}/conv{i}/W" in keys and f"{block}/bn{i}/avg_var" in keys
        assert f"{block}/conv1/b" not in keys  # bottleneck convolutions have no bias
    blocks = {stage: sorted({k.split("/")[1] for k in keys if k.startswith(stage + "/")})
              for stage in ("res2", "res3", "res4", "res5")}
    assert blocks["res2"] == ["a", "b1", "b2"]
    assert blocks["res4"] == ["a", "b1", "b2", "b3", "b4", "b5"]
    assert blocks["res5"] == ["a", "b1", "b2"]
    assert "res2/b1/conv4/W" not in keys  # identity shortcut in BottleneckB
    assert resnet50.res3.a.conv1.W.shape == (128, 256, 1, 1)
    assert resnet50.res3.a.conv4.W.shape == (512, 256, 1, 1)
    assert resnet50.res5.b2.conv3.W.shape == (2048, 512, 1, 1)
    assert resnet50.fc6.W.shape == (2048, 1000)
    assert resnet50.num_params() == 25_557_096  # conv1 bias + torchvision's 25,557,032 - 64
    assert all(p.dtype == np.float32 for p in resnet50.params())


def test_resnet50_forward_and_test_mode(resnet50):
    x = _rand(2, 3, 64, 64)
    with zerograd.test_mode():
        y = resnet50(x)
    assert y.shape == (2, 1000) and y.dtype == np.float32
    assert np.all(np.isfinite(y.data))
    # Inference leaves the running statistics alone; training moves them.
    before = resnet50.bn1.avg_mean.copy()
    with zerograd.test_mode():
        resnet50(x)
    np.testing.assert_array_equal(resnet50.bn1.avg_mean, before)
    with zerograd.no_grad():
        resnet50(x)
    assert not np.array_equal(resnet50.bn1.avg_mean, before)


def test_resnet_depths_and_errors(monkeypatch):
    assert ResNet._DEPTHS == {50: (3, 4, 6, 3), 101: (3, 4, 23, 3), 152: (3, 8, 36, 3)}
    # Build the three variants with one block per stage (the full ones are slow to draw).
    monkeypatch.setattr(ResNet, "_DEPTHS", {n: (1, 1, 1, 1) for n in (50, 101, 152)})
    for cls, n in ((ResNet50, 50), (ResNet101, 101), (ResNet152, 152)):
        model = cls()
        assert isinstance(model, ResNet) and model.n_layers == n
        assert model.WEIGHTS_PATH.format(n).endswith(f"/resnet{n}.npz")
    with pytest.raises(ValueError, match="n_layers must be 50, 101 or 152, got 34"):
        ResNet(34)


def test_bottlenecks_and_building_block():
    x = _rand(2, 8, 8, 8)
    a = BottleneckA(8, 4, 16, stride=2)
    assert a.conv1.stride == (2, 2) and a.conv2.stride == (1, 1)
    fb = BottleneckA(8, 4, 16, stride=2, downsample_fb=True)
    assert fb.conv1.stride == (1, 1) and fb.conv2.stride == (2, 2)
    assert a(x).shape == fb(x).shape == (2, 16, 4, 4)
    b = BottleneckB(16, 4)
    h = _rand(2, 16, 4, 4)
    assert b(h).shape == h.shape and np.all(b(h).data >= 0)
    block = BuildingBlock(3, 8, 4, 16, 1)
    assert [name for name, _ in block.named_layers() if name.count("/") == 0 and name] == [
        "a", "b1", "b2"]
    assert block(x).shape == (2, 16, 8, 8)


# -- weight files -------------------------------------------------------------------------------
def _save_uncompressed(monkeypatch, model, path):
    """DeZero's own save_weights, with np.savez in place of savez_compressed (compressing
    hundreds of MB of random float64 would dominate the test's time; the keys and arrays
    written are the same)."""
    monkeypatch.setattr(np, "savez_compressed", np.savez)
    model.save_weights(path)
    monkeypatch.undo()


@pytest.mark.slow
def test_dezero_vgg16_weights_load_and_give_the_same_output(tmp_path, monkeypatch):
    dezero = import_dezero()
    import dezero.models as DM

    x = _rand(1, 3, 32, 32, seed=4)
    np.random.seed(7)
    theirs = DM.VGG16()
    with dezero.test_mode():
        expected = theirs(x).data  # also sizes their lazy layers
    path = str(tmp_path / "vgg16_dezero.npz")
    _save_uncompressed(monkeypatch, theirs, path)
    del theirs

    ours = VGG16()
    ours.load_weights(path)  # strict: every key matches; fc6 is sized by the file
    assert ours.fc6.W.shape == (512, 4096)
    assert ours.conv1_1.W.dtype == np.float32 and ours.fc6.W.dtype == np.float32
    with zerograd.test_mode():
        y = ours(x)
    np.testing.assert_allclose(y.data, expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max())


@pytest.mark.slow
def test_dezero_resnet50_weights_load_and_give_the_same_output(tmp_path, monkeypatch):
    dezero = import_dezero()
    import dezero.layers as DL
    import dezero.models as DM

    # DeZero's ResNet passes Chainer's argument order (in_channels, out_channels, ksize,
    # stride, pad) to its own Conv2d and fails to build ("multiple values for nobias").
    # Adapt the calls so that DeZero's ResNet code builds the network it means to.
    dezero_conv = DL.Conv2d

    def chainer_order_conv(in_channels, out_channels, ksize, stride=1, pad=0, nobias=False):
        return dezero_conv(out_channels, ksize, stride, pad, nobias, in_channels=in_channels)

    monkeypatch.setattr(DL, "Conv2d", chainer_order_conv)
    np.random.seed(3)
    theirs = DM.ResNet50()
    monkeypatch.undo()
    x = _rand(2, 3, 64, 64, seed=5)
    y_train_theirs = theirs(x).data  # training mode: batch statistics (sizes the BN layers)
    path = str(tmp_path / "resnet50_dezero.npz")
    _save_uncompressed(monkeypatch, theirs, path)
    with dezero.test_mode():
        y_test_theirs = theirs(x).data
    del theirs

    ours = ResNet50()
    ours.load_weights(path)
    assert ours.res4.b3.bn2.avg_var.dtype == np.float32
    with zerograd.test_mode():
        y_test = ours(x)
    np.testing.assert_allclose(y_test.data, y_test_theirs, rtol=1e-3,
                               atol=1e-4 * np.abs(y_test_theirs).max())
    with zerograd.no_grad():
        y_train = ours(x)
    np.testing.assert_allclose(y_train.data, y_train_theirs, rtol=1e-3,
                               atol=1e-4 * np.abs(y_train_theirs).max())


def test_pretrained_without_network_says_where_to_put_the_file(tmp_path, monkeypatch):
    monkeypatch.setenv("ZEROGRAD_DATA", str(tmp_path))

    def no_network(*args, **kwargs):
        raise urllib.error.URLError("network is unreachable")

    monkeypatch.setattr(download, "urlopen", no_network)
    expected = os.path.join(str(tmp_path), "models", "vgg16.npz")
    with pytest.raises(PretrainedWeightsError) as info:
        VGG16(pretrained=True)
    message = str(info.value)
    assert "VGG16(pretrained=True)" in message and expected in message
    assert "network is unreachable" in message and VGG16.WEIGHTS_PATH in message
    assert isinstance(info.value, FileNotFoundError)
    with pytest.raises(PretrainedWeightsError, match=r"ResNet50.*resnet50\.npz"):
        ResNet50(pretrained=True)
    assert not os.path.exists(expected)  # nothing half-written


def test_pretrained_loads_a_file_put_in_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("ZEROGRAD_DATA", str(tmp_path))
    models_dir = tmp_path / "models"
    models_dir.mkdir()
    (models_dir / "resnet101.npz").write_bytes(b"placeholder")

    def no_network(*args, **kwargs):
        raise AssertionError("must not download when the file is present")

    monkeypatch.setattr(download, "urlopen", no_network)
    assert pretrained_weights_path(ResNet.WEIGHTS_PATH.format(101), "ResNet101") == str(
        models_dir / "resnet101.npz")
    loaded = []
    monkeypatch.setattr(ResNet, "load_weights", lambda self, path: loaded.append(path))
    monkeypatch.setattr(ResNet, "_DEPTHS", {101: (1, 1, 1, 1)})  # keep the test small
    ResNet(101, pretrained=True)
    assert loaded == [str(models_dir / "resnet101.npz")]


def test_default_is_not_pretrained_and_never_downloads(monkeypatch):
    monkeypatch.setattr(download, "urlopen", lambda *a, **k: pytest.fail("downloaded"))
    monkeypatch.setattr(ResNet, "_DEPTHS", {50: (1, 1, 1, 1)})
    ResNet50()


# -- preprocess ---------------------------------------------------------------------------------
def test_vgg16_preprocess_matches_dezero():
    Image = pytest.importorskip("PIL.Image")
    rgb = np.zeros((20, 30, 3), np.uint8)
    rgb[..., 0], rgb[..., 1], rgb[..., 2] = 10, 20, 30
    image = Image.fromarray(rgb)
    x = VGG16.preprocess(image)
    assert x.shape == (3, 224, 224) and x.dtype == np.float32 and x.flags.c_contiguous
    np.testing.assert_allclose(x[:, 0, 0], [30 - 103.939, 20 - 116.779, 10 - 123.68],
                               rtol=1e-6)
    assert VGG16.preprocess(rgb, size=None).shape == (3, 20, 30)
    assert VGG16.preprocess(image, size=(64, 32), dtype=np.float64).shape == (3, 32, 64)
    photo = Image.fromarray(np.random.default_rng(0).integers(0, 256, (40, 50, 3), np.uint8))
    try:
        dezero = import_dezero()
    except pytest.skip.Exception:
        return
    import dezero.models as DM

    np.testing.assert_allclose(VGG16.preprocess(photo), DM.VGG16.preprocess(photo), rtol=1e-6)
    assert dezero is not None


# -- small ready models -------------------------------------------------------------------------
def _train_steps(model, x, t, steps, lr):
    losses = []
    for _ in range(steps):
        loss = F.softmax_cross_entropy(model(x), t)
        model.cleargrads()
        loss.backward()
        for p in model.params():
            p.data -= lr * p.grad.data
        losses.append(float(loss.data))
    return losses


def test_lenet_shapes_names_and_learning():
    np.random.seed(0)
    model = LeNet()
    assert [p for p, _ in model.named_layers() if p] == ["conv1", "conv2", "fc1", "fc2"]
    x = _rand(8, 1, 28, 28)
    t = np.arange(8) % 10
    y = model(x)
    assert y.shape == (8, 10) and y.dtype == np.float32
    assert model.conv1.W.shape == (32, 1, 5, 5) and model.conv2.W.shape == (64, 32, 5, 5)
    assert model.fc1.W.shape == (64 * 5 * 5, 256)
    small = LeNet(3, channels=(4, 8), hidden_size=16, dropout=0.2)
    losses = _train_steps(small, x, t % 3, 25, 0.1)
    assert losses[-1] < 0.5 * losses[0]
    with pytest.raises(ValueError, match="dropout"):
        LeNet(dropout=1.0)


def test_small_resnet_shapes_names_batchnorm_and_learning():
    np.random.seed(0)
    model = SmallResNet(blocks_per_stage=2, widths=(4, 8, 16))
    names = [p for p, _ in model.named_layers() if p.count("/") <= 1 and p]
    assert names == ["conv1", "bn1", "res2", "res2/a", "res2/b1", "res3", "res3/a", "res3/b1",
                     "res4", "res4/a", "res4/b1", "fc"]
    assert model.res2.a.conv3 is None  # same width, stride 1: identity shortcut
    assert model.res3.a.conv3.W.shape == (8, 4, 1, 1) and model.res3.a.conv3.stride == (2, 2)
    x = _rand(6, 3, 32, 32)
    y = model(x)
    assert y.shape == (6, 10) and y.dtype == np.float32
    n_bn = sum(isinstance(layer, BatchNorm) for layer in model.layers())
    assert n_bn == 1 + 2 * 6 + 2  # stem, two per block, two projection shortcuts
    losses = _train_steps(model, x, np.arange(6) % 3, 15, 0.05)
    assert losses[-1] < 0.5 * losses[0]
    model.eval()
    y1, y2 = model(x[:2]), model(x[:2])
    np.testing.assert_array_equal(y1.data, y2.data)
    with pytest.raises(ValueError, match="SmallResNet"):
        SmallResNet(widths=(4, 8))


def test_small_models_round_trip_through_save_and_load(tmp_path):
    np.random.seed(0)
    model = SmallResNet(blocks_per_stage=1, widths=(4, 8, 8))
    x = _rand(4, 3, 32, 32)
    with zerograd.no_grad():
        model(x)  # moves the running statistics
    path = model.save_weights(tmp_path / "small_resnet")
    np.random.seed(1)
    other = SmallResNet(blocks_per_stage=1, widths=(4, 8, 8))
    other.load_weights(path)
    with zerograd.test_mode():
        np.testing.assert_array_equal(other(x).data, model(x).data)
    assert "res3/a/bn3/avg_mean" in other.state_dict()


def test_module_exports():
    for name in models_vision.__all__:
        assert hasattr(models_vision, name), name
