"""Layer.load_weights checks a file against the model through serialization's NpzReader
(``expected=`` the model's own arrays): an array bigger than the layer's fails from its
.npy header, naming the file, the key and both shapes, before any data is read."""

import numpy as np
import pytest

import zerograd.layers as L
import zerograd.models as M
from zerograd import serialization
from zerograd.errors import ShapeError


@pytest.fixture
def reads(monkeypatch):
    """The keys whose data NpzReader reads (none, when a header already fails)."""
    seen: list = []
    original = serialization.NpzReader.read_all

    def read_all(self, keys):
        seen.extend(keys)
        return original(self, keys)

    monkeypatch.setattr(serialization.NpzReader, "read_all", read_all)
    return seen


@pytest.mark.parametrize("strict", [True, False])
def test_an_array_bigger_than_the_layers_fails_before_any_data_is_read(tmp_path, reads, strict):
    layer = L.Linear(3, in_size=4)  # W (4, 3), b (3,)
    before = layer.W.data.copy()
    path = tmp_path / "big.npz"
    np.savez(path, W=np.ones((400, 3), np.float32), b=np.zeros(3, np.float32))
    with pytest.raises(ShapeError, match=r"^Linear.load_weights: '.*big.npz', array 'W': has "
                                         r"shape \(400, 3\) \(float32, 4.7 KiB declared\) in "
                                         r"the file, expected \(4, 3\) \(float32\); no data "
                                         r"was read$"):
        layer.load_weights(path, strict=strict)
    assert reads == []
    np.testing.assert_array_equal(layer.W.data, before)


def test_the_key_of_a_nested_layer_is_named(tmp_path, reads):
    model = M.MLP((5, 2))
    model(np.zeros((1, 3), np.float32))  # sizes l0/W (3, 5), l1/W (5, 2)
    state = model.state_dict()
    state["l1/b"] = np.zeros(20, np.float32)
    path = tmp_path / "mlp.npz"
    np.savez(path, **state)
    with pytest.raises(ShapeError, match=r"array 'l1/b': has shape \(20,\) .* expected \(2,\)"):
        model.load_weights(path)
    assert reads == []


def test_a_lazy_layer_takes_its_shape_from_the_file_but_a_sized_entry_is_still_checked(
        tmp_path, reads):
    """Linear(3) knows b's shape (3,) before its first call, not W's."""
    path = tmp_path / "w.npz"
    np.savez(path, W=np.full((5, 3), 2.0, np.float32), b=np.ones(3, np.float32))
    layer = L.Linear(3)
    layer.load_weights(path)
    assert layer.W.data.shape == (5, 3) and layer.W.data[0, 0] == 2.0
    assert sorted(reads) == ["W", "b"]

    np.savez(path, W=np.ones((5, 3), np.float32), b=np.ones(30, np.float32))
    with pytest.raises(ShapeError, match=r"array 'b': has shape \(30,\) .* expected \(3,\)"):
        L.Linear(3).load_weights(path)
