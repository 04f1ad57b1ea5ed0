"""zerograd.serialization: atomic writes, safe loads, clear errors on damaged files."""

import os

import numpy as np
import pytest

from zerograd import serialization as S


def test_npz_round_trip_keeps_keys_order_and_dtypes(tmp_path):
    arrays = {"l0/W": np.arange(6, dtype=np.float32).reshape(2, 3), "l0/b": np.zeros(3),
              "step": np.array(7)}
    written = S.save_npz(tmp_path / "w", arrays)
    assert written == str(tmp_path / "w.npz")  # np.savez's suffix rule
    loaded = S.load_npz(tmp_path / "w")  # the suffix is found again on load
    assert list(loaded) == list(arrays)
    for key, value in arrays.items():
        assert loaded[key].dtype == value.dtype
        np.testing.assert_array_equal(loaded[key], value)


def test_npz_refuses_none_and_object_arrays(tmp_path):
    with pytest.raises(ValueError, match="'W' is None"):
        S.save_npz(tmp_path / "a.npz", {"W": None})
    with pytest.raises(ValueError, match="object array"):
        S.save_npz(tmp_path / "a.npz", {"W": np.array([None, 1], dtype=object)})
    assert not os.path.exists(tmp_path / "a.npz")


def _leftovers(directory):
    return [name for name in os.listdir(directory) if name.endswith(".tmp")]


@pytest.mark.parametrize("error", [RuntimeError, KeyboardInterrupt])
def test_failed_write_keeps_old_file_and_leaves_no_temporary(tmp_path, monkeypatch, error):
    path = tmp_path / "w.npz"
    S.save_npz(path, {"W": np.ones(3)})
    before = path.read_bytes()

    def write_half_then_fail(f, **arrays):
        f.write(b"PK\x03\x04 half a zip archive")
        raise error("disk full")

    monkeypatch.setattr(np, "savez_compressed", write_half_then_fail)
    with pytest.raises(error):
        S.save_npz(path, {"W": np.zeros(3)})
    assert path.read_bytes() == before
    np.testing.assert_array_equal(S.load_npz(path)["W"], np.ones(3))
    assert _leftovers(tmp_path) == []


def test_atomic_write_text_and_creates_directory(tmp_path):
    path = tmp_path / "sub" / "log.txt"
    with S.atomic_write(path, "w") as f:
        f.write("héllo")
    assert path.read_text(encoding="utf-8") == "héllo"
    with pytest.raises(ValueError, match="mode"):
        with S.atomic_write(path, "a"):
            pass


def test_truncated_npz_raises_corrupt_file_error_naming_the_file(tmp_path):
    path = tmp_path / "w.npz"
    S.save_npz(path, {"W": np.random.default_rng(0).normal(size=(50, 50))})
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(S.CorruptFileError, match="w.npz") as info:
        S.load_npz(path)
    assert isinstance(info.value, ValueError)


def test_garbage_and_flipped_bytes_raise_corrupt_file_error(tmp_path):
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"this is not a zip file at all")
    with pytest.raises(S.CorruptFileError, match="garbage.npz"):
        S.load_npz(garbage)

    path = tmp_path / "flipped.npz"
    S.save_npz(path, {"W": np.arange(1000.0)}, compressed=True)
    data = bytearray(path.read_bytes())
    middle = len(data) // 3
    data[middle:middle + 20] = bytes(20)
    path.write_bytes(bytes(data))
    with pytest.raises(S.CorruptFileError, match="flipped.npz"):
        S.load_npz(path)


def test_pickled_object_arrays_are_refused(tmp_path):
    path = tmp_path / "objects.npz"
    np.savez(path, W=np.array([{"a": 1}], dtype=object))
    with pytest.raises(S.CorruptFileError, match="objects.npz"):
        S.load_npz(path)


def test_missing_file_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing.npz"):
        S.load_npz(tmp_path / "nothing.npz")


def test_json_round_trip_with_numpy_scalars(tmp_path):
    path = tmp_path / "log.json"
    S.save_json(path, {"loss": [np.float32(0.5), 0.25], "epoch": np.int64(3),
                       "acc": np.array([0.5, 1.0])})
    assert S.load_json(path) == {"loss": [0.5, 0.25], "epoch": 3, "acc": [0.5, 1.0]}


def test_corrupt_json_raises_naming_the_file(tmp_path):
    path = tmp_path / "log.json"
    path.write_text('{"loss": [0.5, ')
    with pytest.raises(S.CorruptFileError, match="log.json"):
        S.load_json(path)


def test_state_tree_round_trip(tmp_path):
    state = {"type": "Adam", "hyperparams": {"alpha": 0.001, "flag": True, "none": None},
             "counters": {"t": 3},
             "params": [{"name": "l0/W", "state": {"m": np.ones((2, 2), np.float32)}},
                        {"name": "l0/b", "state": {}}]}
    S.save_state(tmp_path / "opt.npz", state)
    loaded = S.load_state(tmp_path / "opt.npz")
    assert loaded["hyperparams"] == state["hyperparams"]
    assert loaded["counters"] == {"t": 3}
    assert loaded["params"][1] == {"name": "l0/b", "state": {}}
    m = loaded["params"][0]["state"]["m"]
    assert m.dtype == np.float32
    np.testing.assert_array_equal(m, np.ones((2, 2)))


def test_load_state_rejects_plain_npz(tmp_path):
    S.save_npz(tmp_path / "w.npz", {"W": np.ones(2)})
    with pytest.raises(S.CorruptFileError, match="not written by save_state"):
        S.load_state(tmp_path / "w.npz")


def test_state_keys_that_contain_slashes_do_not_collide(tmp_path):
    state = {"model": {"l0/W": np.ones(2), "l0": {"W": np.zeros(2)}}, "__tree__": np.ones(1)}
    S.save_state(tmp_path / "s.npz", state)
    loaded = S.load_state(tmp_path / "s.npz")
    np.testing.assert_array_equal(loaded["model"]["l0/W"], np.ones(2))
    np.testing.assert_array_equal(loaded["model"]["l0"]["W"], np.zeros(2))
    np.testing.assert_array_equal(loaded["__tree__"], np.ones(1))


def test_atomic_writes_get_ordinary_file_permissions(tmp_path):
    import os

    from zerograd.serialization import atomic_write

    umask = os.umask(0o022)
    try:
        target = tmp_path / "weights.bin"
        with atomic_write(target) as f:
            f.write(b"x")
        assert target.stat().st_mode & 0o777 == 0o644
        target.chmod(0o600)
        with atomic_write(target) as f:
            f.write(b"y")
        assert target.stat().st_mode & 0o777 == 0o600  # an existing file keeps its mode
    finally:
        os.umask(umask)
