import numpy as np
import pytest

import zerograd
from zerograd import datasets
from zerograd.data.transforms import Compose, Flatten, Normalize, ToFloat
from zerograd.errors import DTypeError, ShapeError


# --- Spiral ---------------------------------------------------------------------------------
@pytest.mark.parametrize("train", [True, False])
def test_spiral_equals_dezero(dezero, train):
    import dezero.datasets

    x, t = datasets.get_spiral(train=train)
    state = np.random.get_state()
    x_ref, t_ref = dezero.datasets.get_spiral(train=train)
    np.random.set_state(state)
    assert x.dtype == np.float32 and x.shape == (300, 2)
    assert t.dtype == np.int64 and t.shape == (300,)
    np.testing.assert_array_equal(x, x_ref)
    np.testing.assert_array_equal(t, t_ref)


def test_spiral_known_values():
    x, t = datasets.get_spiral()
    np.testing.assert_allclose(x[0], [-0.13981389, -0.00721657], rtol=1e-6)
    np.testing.assert_array_equal(t[:5], [1, 1, 2, 0, 1])
    np.testing.assert_array_equal(np.bincount(t), [100, 100, 100])
    # Points lie on radius i/100 < 1.
    assert np.all(np.hypot(x[:, 0], x[:, 1]) < 1.0)


def test_spiral_reseeds_global_rng_like_dezero_unless_told_not_to():
    np.random.seed(7)
    expected = np.random.rand(3)
    np.random.seed(7)
    datasets.Spiral(seed_global=False)
    datasets.Spiral(train=False, seed_global=False)
    datasets.get_spiral(seed_global=False)
    np.testing.assert_array_equal(np.random.rand(3), expected)
    np.random.seed(7)
    datasets.Spiral()  # the default, DeZero's: the global state is now seeded with 1984
    after_default = np.random.rand(3)
    assert not np.array_equal(after_default, expected)
    datasets.get_spiral()
    np.testing.assert_array_equal(np.random.rand(3), after_default)


def test_spiral_dataset_items():
    ds = datasets.Spiral()
    x, t = datasets.get_spiral()
    assert len(ds) == 300
    xi, ti = ds[5]
    np.testing.assert_array_equal(xi, x[5])
    assert ti == t[5]
    xb, tb = ds[np.array([5, 0, 299])]
    np.testing.assert_array_equal(xb, x[[5, 0, 299]])
    np.testing.assert_array_equal(tb, t[[5, 0, 299]])
    xs, ts = ds[10:13]
    np.testing.assert_array_equal(xs, x[10:13])
    x0, t0 = ds[np.array(7)]  # a 0-d array is one example, as an int is
    assert x0.shape == (2,) and t0 == t[7]
    assert ds[-1][1] == t[-1]


# --- SinCurve -------------------------------------------------------------------------------
def test_sincurve_matches_dezero_draws(dezero):
    import dezero.datasets

    np.random.seed(3)
    ours = datasets.SinCurve(train=True)
    after_ours = np.random.rand()
    np.random.seed(3)
    ref = dezero.datasets.SinCurve(train=True)
    after_ref = np.random.rand()
    np.testing.assert_array_equal(ours.data, ref.data)
    np.testing.assert_array_equal(ours.label, ref.label)
    assert after_ours == after_ref  # the same number of global draws


def test_sincurve_values():
    np.random.seed(0)
    train = datasets.SinCurve(train=True)
    test = datasets.SinCurve(train=False)
    grid = np.linspace(0, 2 * np.pi, 1000)
    assert train.data.shape == (999, 1) and train.label.shape == (999, 1)
    assert train.data.dtype == np.float64
    assert np.max(np.abs(train.data[:, 0] - np.sin(grid[:-1]))) <= 0.05
    np.testing.assert_array_equal(train.data[1:], train.label[:-1])
    np.testing.assert_allclose(test.data[:, 0], np.cos(grid[:-1]))
    np.testing.assert_allclose(test.label[:, 0], np.cos(grid[1:]))


# --- Dataset base / ArrayDataset / Subset -----------------------------------------------------
class Squares(datasets.Dataset):
    def prepare(self):
        self.data = np.arange(10, dtype=np.float32)
        self.label = np.arange(10) ** 2


def test_dataset_protocol_and_transforms():
    ds = Squares(transform=lambda x: x * 2, target_transform=lambda t: t + 1)
    assert len(ds) == 10
    x, t = ds[3]
    assert x == 6.0 and t == 10
    xb, tb = ds[[1, 2]]  # plain callables: applied per example, then stacked
    np.testing.assert_array_equal(xb, [2.0, 4.0])
    np.testing.assert_array_equal(tb, [2, 5])
    assert ds.supports_batch_index


def test_dataset_without_labels_returns_none():
    class NoLabel(datasets.Dataset):
        def prepare(self):
            self.data = np.arange(4)

    ds = NoLabel()
    assert ds[1] == (1, None)
    xb, tb = ds[np.array([0, 3])]
    np.testing.assert_array_equal(xb, [0, 3])
    assert tb is None


def test_dataset_rejects_float_index():
    with pytest.raises(DTypeError, match="Squares: an index must be an int"):
        Squares()[1.0]
    with pytest.raises(DTypeError, match="float64"):
        Squares()[np.array([0.5])]


def test_overridden_getitem_is_not_batch_fetched():
    class Custom(Squares):
        def __getitem__(self, index):
            return self.data[index], 0

    assert not Custom().supports_batch_index


def test_array_dataset():
    x = np.random.rand(6, 2).astype(np.float32)
    t = np.arange(6)
    ds = datasets.ArrayDataset(x, t, transform=Normalize(0.5, 2.0))
    xi, ti = ds[4]
    np.testing.assert_allclose(xi, (x[4] - 0.5) / 2.0)
    assert xi.dtype == np.float32 and ti == 4
    xb, _ = ds[np.array([4, 1])]
    np.testing.assert_allclose(xb, (x[[4, 1]] - 0.5) / 2.0)
    assert datasets.TensorDataset is datasets.ArrayDataset
    v = datasets.ArrayDataset(zerograd.Variable(x))
    assert v.data is x and v[0][1] is None


def test_array_dataset_length_mismatch():
    with pytest.raises(ShapeError, match=r"data has 3 examples .* label has 2"):
        datasets.ArrayDataset(np.zeros((3, 2)), np.zeros(2))


def test_subset_batches_through_one_index():
    ds = datasets.Spiral()
    sub = datasets.Subset(ds, [10, 3, 7])
    assert len(sub) == 3 and sub.supports_batch_index
    xb, tb = sub[np.array([2, 0])]
    np.testing.assert_array_equal(xb, ds.data[[7, 10]])
    np.testing.assert_array_equal(tb, ds.label[[7, 10]])
    np.testing.assert_array_equal(sub[1][0], ds.data[3])
    with pytest.raises(IndexError):
        datasets.Subset(ds, [300])


# --- Digits -----------------------------------------------------------------------------------
def test_digits_split_and_scaling(global_rng_guard):
    pytest.importorskip("sklearn")
    train, test = datasets.Digits(), datasets.Digits(train=False)
    assert len(train) == 1438 and len(test) == 359
    assert train.data.dtype == np.float32 and train.data.shape == (1438, 1, 8, 8)
    assert train.data.min() == 0.0 and train.data.max() == 1.0
    assert train.label.dtype == np.int64
    assert set(np.unique(test.label)) == set(range(10))
    # Deterministic and disjoint: together they are sklearn's digits, each image once.
    from sklearn.datasets import load_digits

    bunch = load_digits()
    together = np.concatenate([train.data, test.data]).reshape(-1, 64)
    assert np.array_equal(np.sort(together * 16, axis=0), np.sort(bunch.data, axis=0))
    np.testing.assert_array_equal(datasets.Digits().label, train.label)
    x, t = train[0]
    assert x.shape == (64,) and x.dtype == np.float32
    assert datasets.Digits(transform=None)[0][0].shape == (1, 8, 8)


def test_digits_without_sklearn(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_sklearn(name, *args, **kwargs):
        if name.startswith("sklearn"):
            raise ImportError("No module named 'sklearn'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_sklearn)
    with pytest.raises(ImportError, match="pip install scikit-learn"):
        datasets.Digits()


def test_dezero_names_are_exported():
    import zerograd.dataloaders
    import zerograd.transforms

    assert zerograd.Dataset is datasets.Dataset
    assert zerograd.DataLoader is zerograd.dataloaders.DataLoader
    assert zerograd.SeqDataLoader is zerograd.dataloaders.SeqDataLoader
    for name in ("Compose", "Flatten", "ToFloat", "Normalize", "AsType", "ToInt", "Convert",
                 "Resize", "CenterCrop", "ToArray", "ToPIL", "RandomHorizontalFlip"):
        assert hasattr(zerograd.transforms, name)
    default = datasets.MNIST.__init__.__defaults__[1]
    assert isinstance(default, Compose)
    assert [type(t) for t in default.transforms] == [Flatten, ToFloat, Normalize]
