"""Property tests: random damage to valid files never crashes a loader.

Flipped bytes, truncations, cut-out and inserted runs of valid .npz (compressed and stored),
state (.npz with a JSON tree) and .json files: every loader either raises one of zerograd's
documented errors (CorruptFileError, or another ZerogradError such as ShapeError when a
damaged header names another shape) or returns exactly what was saved, never part of it;
each attempt stays within a small memory bound and a time bound (hypothesis's deadline).
"""

import json
import tracemalloc

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import zerograd.layers as L
from zerograd import serialization as S
from zerograd.errors import ZerogradError

FUZZ = settings(max_examples=60, deadline=1000, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture])
MEMORY_BOUND = 2 * 2**20  # the files are a few KiB; a loader fooled into a big allocation fails

ARRAYS = {"l0/W": np.arange(120, dtype=np.float32).reshape(12, 10) / 7,
          "l0/b": np.linspace(-1, 1, 10, dtype=np.float32), "step": np.array(7)}
STATE = {"type": "Adam", "hyperparams": {"alpha": 0.001, "beta1": 0.9}, "counters": {"t": 3},
         "params": [{"name": "W", "state": {"m": np.ones((4, 3)), "v": np.full((4, 3), 2.0)}}]}
METRICS = {"history": [{"epoch": i, "loss": 1.0 / (i + 1), "tags": ["a", "b"]}
                       for i in range(5)], "finished": True}


@st.composite
def damage(draw, data: bytes) -> bytes:
    """One of: 1-8 flipped bytes, a truncation, a run cut out, a run of junk inserted."""
    kind = draw(st.sampled_from(["flip", "truncate", "cut", "insert"]))
    size = len(data)
    if kind == "truncate":
        return data[: draw(st.integers(0, size - 1))]
    if kind == "cut":
        start = draw(st.integers(0, size - 1))
        return data[:start] + data[start + draw(st.integers(1, 64)):]
    if kind == "insert":
        start = draw(st.integers(0, size))
        return data[:start] + draw(st.binary(min_size=1, max_size=64)) + data[start:]
    out = bytearray(data)
    for _ in range(draw(st.integers(1, 8))):
        out[draw(st.integers(0, size - 1))] ^= draw(st.integers(1, 255))
    return bytes(out)


def _attempt(load):
    """(result or None, error or None, peak bytes) of one load."""
    tracemalloc.start()
    try:
        result, error = load(), None
    except ZerogradError as e:
        result, error = None, e
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return result, error, peak


def _valid(tmp_path, name, write):
    path = tmp_path / name
    write(path)
    return path, path.read_bytes()


def _assert_same_arrays(got, expected):
    assert list(got) == list(expected)
    for key, value in expected.items():
        assert got[key].dtype == value.dtype and got[key].shape == value.shape
        np.testing.assert_array_equal(got[key], value)


@pytest.mark.parametrize("compressed", [True, False], ids=["deflate", "stored"])
@FUZZ
@given(data=st.data())
def test_damaged_npz(tmp_path, compressed, data):
    path, valid = _valid(tmp_path, "w.npz", lambda p: S.save_npz(p, ARRAYS, compressed))
    path.write_bytes(data.draw(damage(valid)))
    result, error, peak = _attempt(lambda: S.load_npz(path))
    assert peak < MEMORY_BOUND
    if error is None:
        _assert_same_arrays(result, ARRAYS)  # the damage hit nothing that matters
    else:
        assert "w.npz" in str(error)


@FUZZ
@given(data=st.data())
def test_damaged_weights_leave_the_model_untouched(tmp_path, data):
    source = L.Linear(10, in_size=12)
    path, valid = _valid(tmp_path, "w.npz", source.save_weights)
    path.write_bytes(data.draw(damage(valid)))
    model = L.Linear(10, in_size=12)
    before = {k: p.data.copy() for k, p in model.named_params()}
    _, error, peak = _attempt(lambda: model.load_weights(path))
    assert peak < MEMORY_BOUND
    expected = before if error is not None else {k: p.data for k, p in source.named_params()}
    for key, p in model.named_params():  # all old or all new: never half loaded
        np.testing.assert_array_equal(p.data, expected[key])


@FUZZ
@given(data=st.data())
def test_damaged_state(tmp_path, data):
    path, valid = _valid(tmp_path, "opt.npz", lambda p: S.save_state(p, STATE))
    path.write_bytes(data.draw(damage(valid)))
    result, error, peak = _attempt(lambda: S.load_state(path))
    assert peak < MEMORY_BOUND
    if error is None:
        # Damage inside the JSON text would be caught by the member's CRC: what loads is
        # what was saved.
        assert result["type"] == "Adam" and result["counters"] == {"t": 3}
        assert result["hyperparams"] == STATE["hyperparams"]
        _assert_same_arrays(result["params"][0]["state"], STATE["params"][0]["state"])


@FUZZ
@given(data=st.data())
def test_damaged_json(tmp_path, data):
    path, valid = _valid(tmp_path, "metrics.json", lambda p: S.save_json(p, METRICS))
    path.write_bytes(data.draw(damage(valid)))
    result, error, peak = _attempt(lambda: S.load_json(path))
    assert peak < MEMORY_BOUND
    if error is None:
        # JSON has no checksum: damage may leave other valid JSON, but it is all of it.
        assert result == json.loads(path.read_text("utf-8"))
    else:
        assert isinstance(error, S.CorruptFileError) and "metrics.json" in str(error)


@FUZZ
@given(text=st.text(alphabet="[]{}\"\\,:01a ", max_size=400))
def test_json_made_of_brackets_and_quotes(tmp_path, text):
    path = tmp_path / "m.json"
    path.write_text(text, encoding="utf-8")
    result, error, _ = _attempt(lambda: S.load_json(path))
    if error is None:
        assert result == json.loads(text)
    else:
        assert isinstance(error, S.CorruptFileError)
