"""Clear errors for what the loaders and datasets cannot use: each names the loader or the
dataset, what was given and what was expected."""

import re

import numpy as np
import pytest

from zerograd import Variable, datasets
from zerograd.dataloaders import DataLoader, SeqDataLoader
from zerograd.datasets import DatasetIndexError
from zerograd.errors import DTypeError, ShapeError, ZerogradError
from zerograd.transforms import Compose, Flatten


class Pairs:
    """A plain sequence dataset: examples given as a list of (x, t) pairs."""

    def __init__(self, examples):
        self.examples = examples

    def __getitem__(self, i):
        return self.examples[i]

    def __len__(self):
        return len(self.examples)


# --- what is not a dataset ----------------------------------------------------------------
@pytest.mark.parametrize("loader", [DataLoader, SeqDataLoader])
@pytest.mark.parametrize("given, shown", [(None, "got None"), (5, "got int 5"),
                                          (object(), "got object <object object")])
def test_non_datasets_are_named(loader, given, shown):
    with pytest.raises(DTypeError, match=rf"{loader.__name__}: dataset must be a Dataset, or "
                                         rf"any object with len\(dataset\) and dataset\[i\] "
                                         rf"-> \(x, t\); {shown}"):
        loader(given, 3)


@pytest.mark.parametrize("given", [np.zeros((6, 2), np.float32),
                                   Variable(np.zeros((6, 2), np.float32))])
def test_bare_arrays_point_to_array_dataset(given):
    with pytest.raises(DTypeError, match=r"DataLoader: dataset must be a Dataset .*got a bare "
                                         r"array \(float32 \(6, 2\)\); wrap arrays as "
                                         r"ArrayDataset\(x, t\)"):
        DataLoader(given, 2)


def test_a_tuple_of_arrays_is_caught_at_the_first_batch():
    x, t = datasets.get_spiral(seed_global=False)
    loader = DataLoader((x, t), 2, shuffle=False)  # len 2, indexable: looks like a dataset
    with pytest.raises(DTypeError, match=r"DataLoader: dataset\[0\] returned float32 "
                                         r"\(300, 2\); expected a pair \(x, t\).*"
                                         r"ArrayDataset\(x, t\)"):
        next(loader)


def test_examples_that_are_not_pairs():
    loader = DataLoader(Pairs([(1, 2, 3), (4, 5, 6)]), 2, shuffle=False)
    with pytest.raises(DTypeError, match=r"dataset\[0\] returned a tuple of 3 items; "
                                         r"expected a pair"):
        next(loader)


# --- batch sizes -----------------------------------------------------------------------------
@pytest.mark.parametrize("loader", [DataLoader, SeqDataLoader])
@pytest.mark.parametrize("batch_size, shown", [(0, "0 (int)"), (-3, "-3 (int)"),
                                               (2.0, "2.0 (float)"), (True, "True (bool)"),
                                               ("30", "'30' (str)"), (None, "None (NoneType)")])
def test_batch_size_must_be_a_positive_int(loader, batch_size, shown):
    ds = datasets.ArrayDataset(np.arange(10.0), np.arange(10))
    with pytest.raises(ValueError, match=rf"{loader.__name__}: batch_size must be a positive "
                                         rf"int \(examples per batch\), got {re.escape(shown)}"):
        loader(ds, batch_size)


def test_numpy_int_batch_size_is_accepted():
    loader = DataLoader(datasets.ArrayDataset(np.arange(10.0)), np.int64(4), shuffle=False)
    assert loader.batch_size == 4 and type(loader.batch_size) is int
    assert [len(x) for x, _ in loader] == [4, 4, 2]


def test_seq_loader_needs_one_example_per_stream():
    ds = datasets.ArrayDataset(np.arange(5.0), np.arange(5))
    with pytest.raises(ValueError, match=r"SeqDataLoader: batch_size 6 is larger than the "
                                         r"dataset \(5 examples\)"):
        SeqDataLoader(ds, 6)
    x, t = SeqDataLoader(ds, 5).next()  # exactly one example per stream is fine
    assert x.tolist() == [0, 1, 2, 3, 4] and t.tolist() == [0, 1, 2, 3, 4]


# --- indices out of range -------------------------------------------------------------------
def test_dataset_index_out_of_range_names_the_dataset():
    ds = datasets.Spiral(seed_global=False)
    with pytest.raises(DatasetIndexError, match=r"Spiral: index 300 is out of range for 300 "
                                                r"examples \(expected -300 <= index < 300\)"):
        ds[300]
    with pytest.raises(DatasetIndexError, match=r"index -301 is out of range"):
        ds[-301]
    with pytest.raises(DatasetIndexError, match=r"Spiral: indices \[300, -301\] are out of "
                                                r"range for 300 examples"):
        ds[np.array([1, 300, -301])]
    with pytest.raises(DatasetIndexError, match=r"boolean mask must have shape \(300,\)"):
        ds[np.ones(5, dtype=bool)]
    # Still an IndexError (and a ZerogradError): Python's sequence iteration stops on it.
    assert issubclass(DatasetIndexError, IndexError)
    assert issubclass(DatasetIndexError, ZerogradError)
    small = datasets.ArrayDataset(np.arange(3.0), np.arange(3))
    assert [float(x) for x, _ in small] == [0.0, 1.0, 2.0]
    np.testing.assert_array_equal(ds[-300][0], ds[0][0])  # the edges are valid
    np.testing.assert_array_equal(ds[np.array([-300, 299])][1], ds.label[[0, 299]])


def test_subset_index_out_of_range():
    sub = datasets.Subset(datasets.ArrayDataset(np.arange(10.0)), [4, 7])
    with pytest.raises(DatasetIndexError, match=r"Subset: index 2 is out of range for 2 "
                                                r"examples"):
        sub[2]
    with pytest.raises(DatasetIndexError, match=r"Subset: indices \[5\] are out of range"):
        sub[np.array([0, 5])]


def test_labels_shorter_than_data_are_caught_when_the_dataset_is_built():
    class Short(datasets.Dataset):
        def prepare(self):
            self.data = np.zeros((4, 2))
            self.label = np.zeros(3)

    with pytest.raises(ShapeError, match=r"Short: prepare\(\) set 4 examples of data but 3 "
                                         r"labels; expected one label per example"):
        Short()


# --- ragged examples --------------------------------------------------------------------------
def test_ragged_examples_name_the_two_that_differ():
    ds = Pairs([(np.zeros(2, np.float32), 0), (np.zeros(2, np.float32), 1),
                (np.zeros(3, np.float32), 2)])
    loader = DataLoader(ds, 3, shuffle=False)
    with pytest.raises(ShapeError, match=r"DataLoader: cannot stack a batch of x: dataset\[0\] "
                                         r"is float32 \(2,\) but dataset\[2\] is float32 "
                                         r"\(3,\); every example's x must have the same shape"):
        next(loader)


def test_ragged_labels_and_missing_labels():
    ds = Pairs([(np.zeros(2), np.array([1])), (np.zeros(2), np.array([1, 2]))])
    with pytest.raises(ShapeError, match=r"batch of t: dataset\[0\] is int64 \(1,\) but "
                                         r"dataset\[1\] is int64 \(2,\)"):
        DataLoader(ds, 2, shuffle=False).next()
    ds = Pairs([(np.zeros(2), 0), (np.zeros(2), None)])
    with pytest.raises(ShapeError, match=r"dataset\[1\] has label None but dataset\[0\] has a "
                                         r"label"):
        DataLoader(ds, 2, shuffle=False).next()


def test_ragged_list_data_in_a_dataset():
    class Sentences(datasets.Dataset):
        def prepare(self):
            self.data = [np.arange(3), np.arange(3), np.arange(5)]
            self.label = np.array([0, 1, 0])

    ds = Sentences()
    with pytest.raises(ShapeError, match=r"Sentences: cannot stack a batch of x: dataset\[0\] "
                                         r"is int64 \(3,\) but dataset\[2\] is int64 \(5,\)"):
        ds[[0, 1, 2]]
    x, t = ds[[0, 1]]  # a batch whose examples agree is fine
    np.testing.assert_array_equal(x, [[0, 1, 2], [0, 1, 2]])
    with pytest.raises(ShapeError, match=r"DataLoader: cannot stack a batch of x"):
        DataLoader(ds, 3, shuffle=False).next()


def test_ragged_object_array_data():
    data = np.empty(3, dtype=object)
    data[:] = [np.zeros(2), np.zeros(2), np.zeros(4)]
    ds = datasets.ArrayDataset(data, np.arange(3))
    assert not ds.supports_batch_index  # so the loader stacks example by example ...
    with pytest.raises(ShapeError, match=r"dataset\[0\] is float64 \(2,\) but dataset\[2\] is "
                                         r"float64 \(4,\)"):
        DataLoader(ds, 3, shuffle=False).next()  # ... and names the ragged one


def test_ragged_after_a_per_example_transform():
    ds = datasets.ArrayDataset(np.zeros((3, 4)), np.arange(3),
                               transform=lambda x: x[: int(x.sum()) + 2 + (x.size > 0)])
    ds.data[2, 0] = 1.0  # example 2 keeps one more element than the others
    with pytest.raises(ShapeError, match=r"<lambda>: cannot stack a batch of transformed "
                                         r"examples: batch item 0 is float64 \(3,\) but batch "
                                         r"item 2 is float64 \(4,\)"):
        ds[np.arange(3)]

    class Unbatchable(Flatten):
        batchable = False

    odd = datasets.ArrayDataset([np.zeros((2, 2)), np.zeros((2, 2)), np.zeros((3, 3))],
                                transform=Compose([Unbatchable()]))
    assert odd[0][0].shape == (4,) and odd[2][0].shape == (9,)  # one by one: fine
    with pytest.raises(ShapeError, match=r"ArrayDataset: cannot stack a batch of x: "
                                         r"dataset\[0\] is float64 \(4,\) but dataset\[2\] "
                                         r"is float64 \(9,\)"):
        odd[[0, 1, 2]]


def test_a_transform_that_evens_out_shapes_still_batches():
    crop = datasets.ArrayDataset([np.arange(3.0), np.arange(5.0)], np.arange(2),
                                 transform=lambda x: x[:2])
    x, t = crop[[0, 1]]  # transformed one by one, then stacked
    np.testing.assert_array_equal(x, [[0.0, 1.0], [0.0, 1.0]])
    x, t = DataLoader(crop, 2, shuffle=False).next()
    np.testing.assert_array_equal(x, [[0.0, 1.0], [0.0, 1.0]])


def test_array_dataset_of_ragged_examples():
    ds = datasets.ArrayDataset([np.zeros(2), np.ones(2), np.arange(3.0)], np.arange(3))
    np.testing.assert_array_equal(ds[2][0], [0.0, 1.0, 2.0])  # one at a time: as given
    np.testing.assert_array_equal(ds[[0, 1]][0], [[0.0, 0.0], [1.0, 1.0]])
    with pytest.raises(ShapeError, match=r"ArrayDataset: cannot stack a batch of x: "
                                         r"dataset\[1\] is float64 \(2,\) but dataset\[2\] is "
                                         r"float64 \(3,\)"):
        ds[[1, 2]]
    x, t = next(DataLoader(ds, 1, shuffle=False))  # batches of one always stack
    assert x.shape == (1, 2) and t.tolist() == [0]
