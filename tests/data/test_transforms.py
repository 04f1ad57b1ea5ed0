import subprocess
import sys

import numpy as np
import pytest

from zerograd import transforms as T
from zerograd.errors import DTypeError, ShapeError


def test_import_does_not_need_pillow():
    code = ("import sys, zerograd.transforms, zerograd.datasets, zerograd.dataloaders; "
            "assert 'PIL' not in sys.modules, 'PIL imported'; "
            "assert 'matplotlib' not in sys.modules; assert 'sklearn' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_compose_order_and_empty():
    f = T.Compose([lambda x: x + 1, lambda x: x * 10])
    assert f(1) == 20
    assert T.Compose()(5) == 5 and T.Compose([])(5) == 5
    assert not f.batchable
    np.testing.assert_array_equal(T.apply_batch(f, np.array([1, 2])), [20, 30])


def test_normalize_scalar_keeps_float32():
    x = np.array([[0.0, 255.0]], dtype=np.float32)
    y = T.Normalize(0.0, 255.0)(x)
    assert y.dtype == np.float32
    np.testing.assert_array_equal(y, [[0.0, 1.0]])
    y = T.Normalize(np.float64(1.0), np.float64(2.0))(x)  # NumPy scalars do not upcast
    assert y.dtype == np.float32


def test_normalize_integer_input_does_not_wrap():
    x = np.array([0, 100, 255], dtype=np.uint8)
    y = T.Normalize(mean=128, std=2)(x)
    np.testing.assert_allclose(y, [-64.0, -14.0, 63.5])
    assert y.dtype == np.float64


def test_normalize_per_channel_example_and_batch():
    rng = np.random.default_rng(0)
    x = rng.random((4, 3, 2, 2)).astype(np.float32)
    mean, std = [0.1, 0.2, 0.3], [1.0, 2.0, 4.0]
    t = T.Normalize(mean, std)
    expected = (x - np.reshape(mean, (1, 3, 1, 1))) / np.reshape(std, (1, 3, 1, 1))
    np.testing.assert_allclose(t(x[1]), expected[1], rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(t.apply_batch(x), expected, rtol=1e-5, atol=1e-7)
    assert t.apply_batch(x).dtype == np.float32
    # A one-element sequence acts as a scalar (DeZero's reshape crashes there).
    np.testing.assert_allclose(T.Normalize([0.5], [2.0])(x[0]), (x[0] - 0.5) / 2.0)


def test_normalize_errors():
    with pytest.raises(ShapeError, match=r"3 per-channel mean values .* shape \(2, 5\)"):
        T.Normalize([0, 0, 0], 1)(np.zeros((2, 5), np.float32))
    with pytest.raises(ValueError, match="std must be non-zero"):
        T.Normalize(0, [1, 0])


def test_flatten_astype_toint():
    x = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    assert T.Flatten()(x).shape == (24,)
    assert T.Flatten().apply_batch(x).shape == (2, 12)
    np.testing.assert_array_equal(T.Flatten().apply_batch(x)[1], x[1].ravel())
    assert T.ToFloat()(x).dtype == np.float32
    assert T.AsType(np.float64)(x).dtype == np.float64
    assert T.ToInt()(np.array([1.7, -2.2])).tolist() == [1, -2]
    assert T.ToInt()(np.array([1.7])).dtype == np.int64
    assert isinstance(T.ToFloat(), T.AsType)


def test_mnist_default_pipeline_batch_equals_examples():
    x = np.random.default_rng(1).integers(0, 256, size=(5, 1, 28, 28), dtype=np.uint8)
    pipeline = T.Compose([T.Flatten(), T.ToFloat(), T.Normalize(0.0, 255.0)])
    batch = T.apply_batch(pipeline, x)
    examples = np.stack([pipeline(xi) for xi in x])
    assert batch.dtype == np.float32 and batch.shape == (5, 784)
    np.testing.assert_array_equal(batch, examples)
    assert batch.max() <= 1.0


def test_center_crop_arrays():
    x = np.arange(5 * 6).reshape(1, 5, 6)  # (C, H, W)
    y = T.CenterCrop((4, 3))(x)  # (width, height)
    np.testing.assert_array_equal(y, x[:, 1:4, 1:5])
    batch = np.stack([x, x + 100])
    np.testing.assert_array_equal(T.CenterCrop((4, 3)).apply_batch(batch)[1], x[:, 1:4, 1:5] + 100)
    with pytest.raises(ShapeError, match="larger than the image"):
        T.CenterCrop(7)(x)


def test_random_horizontal_flip_arrays_follow_global_rng():
    x = np.arange(2 * 3 * 4, dtype=np.float32).reshape(2, 3, 4)
    flip = T.RandomHorizontalFlip()
    np.random.seed(0)
    coins = np.random.rand(6) < 0.5
    np.random.seed(0)
    outs = [flip(x) for _ in range(6)]
    for coin, out in zip(coins, outs):
        np.testing.assert_array_equal(out, x[..., ::-1] if coin else x)
    assert coins.any() and not coins.all()
    # A batch draws the same coins in one call.
    batch = np.stack([x] * 6)
    np.random.seed(0)
    flipped = flip.apply_batch(batch)
    for coin, out in zip(coins, flipped):
        np.testing.assert_array_equal(out, x[..., ::-1] if coin else x)
    np.testing.assert_array_equal(batch[0], x)  # the input is not modified
    assert T.RandomHorizontalFlip(p=1.0)(x)[0, 0, 0] == 3.0
    assert T.RandomHorizontalFlip(p=0.0, rng=np.random.default_rng(0))(x) is x


def test_image_transforms_with_pillow():
    Image = pytest.importorskip("PIL.Image")
    rgb = np.zeros((4, 6, 3), dtype=np.uint8)
    rgb[..., 0] = 10
    rgb[..., 2] = 30
    rgb[0, 0] = [1, 2, 3]
    img = Image.fromarray(rgb)
    arr = T.ToArray()(img)
    assert arr.shape == (3, 4, 6) and arr.dtype == np.float32
    assert arr[:, 0, 0].tolist() == [1.0, 2.0, 3.0]
    bgr = T.ToArray(np.uint8)(T.Convert("BGR")(img))
    assert bgr[:, 0, 0].tolist() == [3, 2, 1]
    gray = T.ToArray()(T.Convert("L")(img))
    assert gray.shape == (1, 4, 6)
    assert T.Resize((3, 2))(img).size == (3, 2)
    assert T.Resize(5)(img).size == (5, 5)
    cropped = T.CenterCrop((2, 2))(img)
    assert cropped.size == (2, 2)
    np.testing.assert_array_equal(np.asarray(cropped), rgb[1:3, 2:4])
    back = T.ToPIL()(T.ToArray(np.uint8)(img))
    np.testing.assert_array_equal(np.asarray(back), rgb)
    flipped = T.RandomHorizontalFlip(p=1.0)(img)
    np.testing.assert_array_equal(np.asarray(flipped), rgb[:, ::-1])
    with pytest.raises(DTypeError, match="ToArray: expected a PIL image"):
        T.ToArray()([1, 2])
    with pytest.raises(DTypeError, match="PIL image; convert it with ToArray"):
        T.Flatten()(img)


def test_non_batchable_compose_in_dataset_falls_back_per_example():
    pytest.importorskip("PIL")
    from zerograd.datasets import ArrayDataset

    images = np.random.default_rng(0).integers(0, 256, (3, 3, 8, 8), dtype=np.uint8)
    pipeline = T.Compose([T.ToPIL(), T.Resize(4), T.ToArray()])
    ds = ArrayDataset(images, np.arange(3), transform=pipeline)
    xb, tb = ds[np.arange(3)]
    assert xb.shape == (3, 3, 4, 4)
    np.testing.assert_array_equal(xb[2], ds[2][0])
