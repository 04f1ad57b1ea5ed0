"""Damaged and hostile files: decompression bombs, lying headers, and every format mistake
gets a clear error naming the file, what was given and what was expected."""

import io
import json
import os
import struct
import tracemalloc
import zipfile
import zlib

import numpy as np
import pytest

import zerograd.layers as L
import zerograd.optimizers as O
from zerograd import Parameter, Variable
from zerograd import serialization as S
from zerograd.errors import DTypeError, ShapeError
from zerograd.nn import StateDictError
from zerograd.optim import OptimizerStateError

MiB = 2**20


def _npy_header(shape, dtype="<f8"):
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        buffer, {"descr": dtype, "fortran_order": False, "shape": tuple(shape)})
    return buffer.getvalue()


def _write_zip(path, members):
    """A zip of (name, raw deflate stream, uncompressed size, crc32) by hand, so that a
    member can inflate to far more than anything this test holds in memory."""
    local, central, offset = b"", b"", 0
    for name, stream, size, crc in members:
        name = name.encode()
        header = struct.pack("<4s5H3L2H", b"PK\x03\x04", 20, 0, 8, 0, 0, crc, len(stream),
                             size, len(name), 0) + name
        central += struct.pack("<4s6H3L5H2L", b"PK\x01\x02", 20, 20, 0, 8, 0, 0, crc,
                               len(stream), size, len(name), 0, 0, 0, 0, 0, offset) + name
        local += header + stream
        offset += len(header) + len(stream)
    end = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, len(members), len(members),
                      len(central), offset, 0)
    path.write_bytes(local + central + end)


def _zeros_bomb(shape, dtype="<f8"):
    """(deflate stream, size, crc) of an .npy of zeros: 16 MiB blocks compressed once and
    repeated (a full flush makes each block independent), about 1000:1."""
    header = _npy_header(shape, dtype)
    nbytes = int(np.prod(shape)) * np.dtype(dtype).itemsize
    block_size = 16 * MiB
    assert nbytes % block_size == 0
    first = zlib.compressobj(9, zlib.DEFLATED, -15)
    stream = first.compress(header) + first.flush(zlib.Z_FULL_FLUSH)
    block = zlib.compressobj(9, zlib.DEFLATED, -15)
    zeros = bytes(block_size)
    block = block.compress(zeros) + block.flush(zlib.Z_FULL_FLUSH)
    crc = zlib.crc32(header)
    for _ in range(nbytes // block_size):
        crc = zlib.crc32(zeros, crc)
    stream += block * (nbytes // block_size) + b"\x03\x00"  # an empty final block
    return stream, len(header) + nbytes, crc


def _plain_member(name, array):
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, np.asarray(array))
    data = buffer.getvalue()
    c = zlib.compressobj(6, zlib.DEFLATED, -15)
    return name, c.compress(data) + c.flush(), len(data), zlib.crc32(data)


@pytest.fixture(scope="module")
def bomb(tmp_path_factory):
    """weights.npz of 2 MiB whose 'W' inflates to 2 GiB of float64 zeros."""
    path = tmp_path_factory.mktemp("bomb") / "bomb.npz"
    _write_zip(path, [("W.npy", *_zeros_bomb((2**28,))), _plain_member("b.npy", np.zeros(2))])
    assert path.stat().st_size < 3 * MiB
    return path


def _peak_bytes(f):
    tracemalloc.start()
    try:
        f()
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak


def test_the_bomb_is_a_valid_archive_that_inflates_to_2_gib(bomb):
    with zipfile.ZipFile(bomb) as zf:
        info = zf.getinfo("W.npy")
        assert info.file_size > 2**31
        with zf.open(info) as fp:  # the first megabytes really are the array
            assert np.lib.format.read_magic(fp) == (1, 0)
            shape, _, dtype = np.lib.format.read_array_header_1_0(fp)
            assert shape == (2**28,) and dtype == np.float64
            assert fp.read(MiB) == bytes(MiB)


def test_load_weights_refuses_the_bomb_from_its_header(bomb):
    model = L.Linear(2, in_size=3)
    before = model.W.data.copy()
    errors = []

    def load():
        try:
            model.load_weights(bomb)
        except ShapeError as e:
            errors.append(e)

    peak = _peak_bytes(load)
    (error,) = errors
    message = str(error)
    assert "bomb.npz" in message and "'W'" in message
    assert "(268435456,)" in message and "(3, 2)" in message
    assert peak < 4 * MiB, f"{peak / MiB:.1f} MiB allocated"
    np.testing.assert_array_equal(model.W.data, before)


def test_lazy_model_and_load_npz_refuse_the_bomb_by_its_declared_size(bomb):
    # Nothing says what shapes to expect: the bomb declares 1000 times its 2 MiB, which the
    # default bound (MAX_INFLATION = 100 times the file's size) refuses from the directory.
    # Linear(2) knows b's shape, not W's: b is bounded by its own (2,), W by the default,
    # so W alone is counted (2147483776 bytes); the loaders that know nothing count both.
    for load, declared in ((lambda: L.Linear(2).load_weights(bomb), 2147483776),
                           (lambda: S.load_npz(bomb), 2147483920),
                           (lambda: S.load_state(bomb), 2147483920),
                           (lambda: S.load_npz(bomb, max_bytes=2**30), 2147483920)):
        errors = []

        def run(load=load):
            try:
                load()
            except S.CorruptFileError as e:
                errors.append(e)

        peak = _peak_bytes(run)
        (error,) = errors
        message = str(error)
        assert (f"bomb.npz' declares 2.0 GiB of arrays ({declared} bytes; 2.0 GiB in 'W', "
                "float64 (268435456,))") in message, message
        assert ("100 times its size (MAX_INFLATION), at least 64.0 MiB and at most 4.0 GiB "
                "(MAX_LOAD_BYTES): 199.2 MiB here" in message
                or "more than max_bytes=1073741824" in message), message
        assert "\n" not in message
        assert peak < 4 * MiB, f"{peak / MiB:.1f} MiB allocated"
    with pytest.raises(S.CorruptFileError, match="max_bytes=1000"):
        S.load_npz(bomb, max_bytes=1000)


def test_a_header_claiming_more_than_the_member_holds(tmp_path):
    # A small member whose header claims a 4 TiB array: refused before allocating it.
    data = _npy_header((2**40,), "<f4") + bytes(64)
    path = tmp_path / "liar.npz"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("W.npy", data)
    peak = _peak_bytes(lambda: pytest.raises(S.CorruptFileError, S.load_npz, path))
    assert peak < MiB
    with pytest.raises(S.CorruptFileError,
                       match=r"liar.npz', array 'W', declares float32 \(1099511627776,\) "
                             r"\(4398046511104 bytes\) but the archive holds 64 bytes"):
        S.load_npz(path)


def test_negative_dimension_and_unsupported_header_versions(tmp_path):
    path = tmp_path / "neg.npz"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("W.npy", _npy_header((-1, 4)))
    with pytest.raises(S.CorruptFileError, match=r"neg.npz', array 'W', declares a negative"):
        S.load_npz(path)
    v3 = tmp_path / "v3.npz"
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, np.ones(2), version=(3, 0))
    with zipfile.ZipFile(v3, "w") as zf:
        zf.writestr("W.npy", buffer.getvalue())
    with pytest.raises(S.CorruptFileError, match=r"version \(3, 0\); only 1.0 and 2.0"):
        S.load_npz(v3)


# -- every format mistake, clearly ------------------------------------------------------
def test_lone_npy_as_weights(tmp_path):
    path = tmp_path / "W.npy"
    np.save(path, np.ones((3, 2), np.float32))
    with pytest.raises(S.CorruptFileError,
                       match=r"Linear.load_weights: '.*W.npy' is a single .npy array, not an "
                             r"\.npz archive of named arrays"):
        L.Linear(2, in_size=3).load_weights(path)


def test_string_weight_entry(tmp_path):
    path = tmp_path / "w.npz"
    np.savez(path, W=np.full((3, 2), "1.5"), b=np.zeros(2, np.float32))
    model = L.Linear(2, in_size=3)
    before = model.W.data.copy()
    with pytest.raises(DTypeError, match=r"Linear.load_weights: '.*w.npz', array 'W': is a <U3 "
                                         r"array in the file, expected numbers convertible to "
                                         r"float32 \(shape \(3, 2\)\); no data was read"):
        model.load_weights(path)
    np.testing.assert_array_equal(model.W.data, before)
    with pytest.raises(DTypeError, match="convertible to the model's float32 'W'"):
        L.Linear(2).load_weights(path)  # lazy: not sized yet, but the layer's dtype is known
    # Numbers of another kind that convert safely are fine: int and float64 into float32.
    np.savez(path, W=np.arange(6).reshape(3, 2), b=np.zeros(2))
    model.load_weights(path)
    np.testing.assert_array_equal(model.W.data, np.arange(6).reshape(3, 2))
    assert model.W.data.dtype == np.float32


def test_strict_key_mismatch_is_found_from_the_headers(tmp_path):
    path = tmp_path / "w.npz"
    np.savez(path, W=np.ones((3, 2), np.float32), extra=np.ones(1))
    with pytest.raises(StateDictError, match=r"missing keys .*\['b'\]; unexpected keys .*"
                                             r"\['extra'\]"):
        L.Linear(2, in_size=3).load_weights(path)


def test_number_where_an_optimizer_state_array_belongs(tmp_path):
    model = L.Linear(2, in_size=3)
    adam = O.Adam().setup(model)
    for p in model.params():
        p.grad = Variable(np.ones_like(p.data))
    adam.update()
    state = adam.state_dict()
    state["params"][0]["state"]["m"] = 3.0  # crafted: a number, not an array
    path = tmp_path / "opt.npz"
    S.save_state(path, state)
    fresh = O.Adam().setup(L.Linear(2, in_size=3))
    with pytest.raises(OptimizerStateError,
                       match=r"Adam.load_state_dict: '.*opt.npz' has float 3.0 as state 'm' of "
                             r"parameter 'W', expected an array of shape \(3, 2\)"):
        fresh.load_state_dict(S.load_state(path), source=repr(str(path)))
    assert len(fresh.state) == 0 and fresh.t == 0  # nothing changed


def test_crafted_optimizer_states(tmp_path):
    model = L.Linear(2, in_size=3)
    adam = O.Adam().setup(model)
    for p in model.params():
        p.grad = Variable(np.ones_like(p.data))
    adam.update()
    good = adam.state_dict()

    def crafted(**changes):
        state = json.loads(json.dumps(good, default=lambda a: a.tolist()))
        for p, entry in zip(state["params"], good["params"]):
            p["state"] = dict(entry["state"])
        state.update(changes)
        return state

    fresh = O.Adam().setup(L.Linear(2, in_size=3))
    with pytest.raises(OptimizerStateError, match="'params', expected a list"):
        fresh.load_state_dict(crafted(params={"W": 1}))
    with pytest.raises(OptimizerStateError, match=r"alpha must be in \[0, inf\), got -1.0"):
        fresh.load_state_dict(crafted(hyperparams={"alpha": -1}))
    with pytest.raises(OptimizerStateError, match="t must be an integer >= 0, got str"):
        fresh.load_state_dict(crafted(counters={"t": "many"}))
    wrong_names = crafted()
    wrong_names["params"][0]["state"] = {"velocity": np.zeros((3, 2))}
    with pytest.raises(OptimizerStateError, match=r"state \['velocity'\] for parameter 'W'; "
                                                  r"Adam keeps \['m', 'v'\]"):
        fresh.load_state_dict(wrong_names)
    text = crafted()
    text["params"][0]["state"] = {"m": np.full((3, 2), "x"), "v": np.zeros((3, 2))}
    with pytest.raises(DTypeError, match="state 'm' of parameter 'W' is a <U1 array"):
        fresh.load_state_dict(text)
    with pytest.raises(OptimizerStateError, match="is a list, not the dict"):
        fresh.load_state_dict([1, 2])
    assert len(fresh.state) == 0 and fresh.alpha == 0.001 and fresh.t == 0


def test_deeply_nested_json_is_refused_not_a_recursion_error(tmp_path):
    path = tmp_path / "metrics.json"
    path.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(S.CorruptFileError,
                       match=r"load_json: '.*metrics.json' nests lists/objects more than "
                             r"MAX_JSON_DEPTH=100 levels deep"):
        S.load_json(path)
    ok = [[[1]]]
    S.save_json(path, ok)
    assert S.load_json(path) == ok
    brackets_in_strings = {"text": "[[[[" * 1000}
    S.save_json(path, brackets_in_strings)
    assert S.load_json(path) == brackets_in_strings
    deep = []
    for _ in range(200):
        deep = [deep]
    with pytest.raises(ValueError, match="MAX_JSON_DEPTH"):
        S.save_json(path, deep)
    with pytest.raises(ValueError, match="MAX_JSON_DEPTH"):
        S.save_state(tmp_path / "s.npz", {"tree": deep})


def test_deep_tree_inside_a_state_file(tmp_path):
    path = tmp_path / "s.npz"
    np.savez(path, __tree__=np.array("[" * 5000 + "]" * 5000))
    with pytest.raises(S.CorruptFileError, match=r"structure stored in '.*s.npz' nests"):
        S.load_state(path)


def test_invalid_json_text(tmp_path):
    path = tmp_path / "m.json"
    path.write_text("1" * 5000)  # longer than Python's int-from-text limit
    with pytest.raises(S.CorruptFileError, match="m.json' is not valid JSON"):
        S.load_json(path)
    path.write_bytes(b'{"a": "\xff\xfe"}')
    with pytest.raises(S.CorruptFileError, match="m.json' is not UTF-8"):
        S.load_json(path)


def test_object_arrays_are_refused_from_the_header(tmp_path):
    path = tmp_path / "objects.npz"
    np.savez(path, W=np.array([{"a": 1}, None], dtype=object))
    with pytest.raises(S.CorruptFileError, match=r"objects.npz', array 'W', has dtype object, "
                                                 r"an object array that would need pickle"):
        S.load_npz(path)
    with pytest.raises(S.CorruptFileError, match="need pickle"):
        L.Linear(2, in_size=3).load_weights(path)


def test_extra_and_missing_members(tmp_path):
    path = tmp_path / "w.npz"
    L.Linear(2, in_size=3).save_weights(path)
    with zipfile.ZipFile(path, "a") as zf:
        zf.writestr("README.txt", "hello")
    with pytest.raises(S.CorruptFileError,
                       match=r"w.npz' holds a member 'README.txt' that is not a .npy array"):
        L.Linear(2, in_size=3).load_weights(path)

    state_path = tmp_path / "s.npz"
    S.save_state(state_path, {"m": np.ones(2), "k": 3})
    arrays = dict(np.load(state_path))
    np.savez(state_path, **{**arrays, "stowaway": np.ones(1)})
    with pytest.raises(S.CorruptFileError, match=r"contains arrays its structure does not list: "
                                                 r"\['stowaway'\]"):
        S.load_state(state_path)
    del arrays["m"]
    np.savez(state_path, **arrays)
    with pytest.raises(S.CorruptFileError, match=r"lists arrays the file does not contain: "
                                                 r"\['m'\]"):
        S.load_state(state_path)
    tree = json.dumps({"a": {"__array__": "m"}, "b": {"__array__": "m"}})
    np.savez(state_path, __tree__=np.array(tree), m=np.ones(2))
    with pytest.raises(S.CorruptFileError, match=r"lists arrays more than once: \['m'\]"):
        S.load_state(state_path)
    np.savez(state_path, __tree__=np.array(json.dumps({"a": {"__array__": 7}})))
    with pytest.raises(S.CorruptFileError, match="refers to an array by 7"):
        S.load_state(state_path)
    np.savez(state_path, __tree__=np.ones(3))
    with pytest.raises(S.CorruptFileError, match="stores '__tree__' as float64"):
        S.load_state(state_path)


def test_duplicate_members(tmp_path):
    path = tmp_path / "dup.npz"
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, np.ones(2))
    with pytest.warns(UserWarning, match="Duplicate name"):
        with zipfile.ZipFile(path, "w") as zf:
            zf.writestr("W.npy", buffer.getvalue())
            zf.writestr("W.npy", buffer.getvalue())
    with pytest.raises(S.CorruptFileError, match="'W', appears twice"):
        S.load_npz(path)


@pytest.mark.parametrize("content, expected", [
    (b"", "is empty"),
    (b"hello, not a zip", r"is not an .npz \(zip\) archive: it starts with b'hello, n'"),
    (b"\x80\x04\x95 pickled", "looks like a Python pickle"),
    (b"PK\x03\x04 and then nothing", "is truncated or not a zip archive"),
])
def test_not_an_npz(tmp_path, content, expected):
    path = tmp_path / "w.npz"
    path.write_bytes(content)
    for load in (S.load_npz, S.load_state, L.Linear(2, in_size=3).load_weights):
        with pytest.raises(S.CorruptFileError, match=f"'.*w.npz' {expected}"):
            load(path)


def test_truncated_at_every_tenth_of_the_file(tmp_path):
    path = tmp_path / "w.npz"
    S.save_npz(path, {"W": np.arange(2000.0), "b": np.ones(3)})
    data = path.read_bytes()
    for i in range(1, 10):
        path.write_bytes(data[: len(data) * i // 10])
        with pytest.raises(S.CorruptFileError, match="w.npz"):
            S.load_npz(path)


def test_damaged_data_is_found_by_the_crc(tmp_path):
    path = tmp_path / "w.npz"
    S.save_npz(path, {"W": np.arange(1000.0)}, compressed=False)
    data = bytearray(path.read_bytes())
    data[600] ^= 0x01  # inside W's float data: still a well-formed zip and .npy
    path.write_bytes(bytes(data))
    with pytest.raises(S.CorruptFileError, match=r"w.npz', array 'W', is damaged \(BadZipFile: "
                                                 r"Bad CRC-32"):
        S.load_npz(path)


# -- what the reader must still read -----------------------------------------------------
def test_reader_round_trips_every_layout_and_dtype(tmp_path):
    arrays = {
        "fortran": np.asfortranarray(np.arange(12.0).reshape(3, 4)),
        "scalar": np.array(3.5, np.float32), "empty": np.zeros((0, 5)),
        "text": np.array(["a", "bcd"]), "flags": np.array([True, False]),
        "big": np.arange(3 * MiB // 8, dtype=np.int64),  # more than one read chunk
        "record": np.array([(1, 2.0)], dtype=[("i", "<i4"), ("x", "<f8")]),
        "big_endian": np.arange(4, dtype=">i2"),
    }
    for compressed in (True, False):
        path = S.save_npz(tmp_path / "all.npz", arrays, compressed=compressed)
        loaded = S.load_npz(path)
        assert list(loaded) == list(arrays)
        for key, value in arrays.items():
            assert loaded[key].dtype == value.dtype and loaded[key].shape == value.shape, key
            np.testing.assert_array_equal(loaded[key], value)
        assert loaded["fortran"].flags.f_contiguous
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, np.ones(3), version=(2, 0))
    with zipfile.ZipFile(tmp_path / "v2.npz", "w") as zf:
        zf.writestr("W.npy", buffer.getvalue())
    np.testing.assert_array_equal(S.load_npz(tmp_path / "v2.npz")["W"], np.ones(3))


def test_headers_are_readable_without_the_data(tmp_path):
    path = S.save_npz(tmp_path / "w.npz", {"W": np.ones((3, 2), np.float32), "n": np.array(4)})
    with S.NpzReader(path) as npz:
        assert npz.keys() == ["W", "n"]
        assert npz.headers["W"] == S.NpyHeader((3, 2), np.dtype(np.float32), False, 24)
        np.testing.assert_array_equal(npz.read("n"), 4)
        with pytest.raises(KeyError, match=r"has no array 'x'; it holds \['W', 'n'\]"):
            npz.read("x")


def test_parameters_of_other_frameworks_still_load(tmp_path):
    # DeZero writes np.savez_compressed with '/'-joined keys; NumPy's own writer is what the
    # reader must accept.
    path = tmp_path / "dezero.npz"
    W = np.random.default_rng(0).normal(size=(3, 2))
    np.savez_compressed(path, W=W, b=np.zeros(2))
    model = L.Linear(2, in_size=3)
    model.load_weights(path)
    np.testing.assert_allclose(model.W.data, W.astype(np.float32))
    p = Parameter(np.zeros(2))
    assert p.data.dtype == np.float64


def test_loading_never_leaves_a_file_open(tmp_path):
    path = tmp_path / "w.npz"
    path.write_bytes(b"PK garbage")
    fds = len(os.listdir("/proc/self/fd")) if os.path.isdir("/proc/self/fd") else None
    for _ in range(20):
        with pytest.raises(S.CorruptFileError):
            S.load_npz(path)
    if fds is not None:
        assert len(os.listdir("/proc/self/fd")) == fds


def test_a_directory_entry_hiding_the_next_is_found(tmp_path):
    # Found by the property tests: one damaged comment length in the zip directory made the
    # next entry part of a comment, and NumPy/zipfile loaded two of three arrays.
    path = tmp_path / "w.npz"
    S.save_npz(path, {"a": np.ones(2), "b": np.ones(3), "c": np.ones(1)})
    data = bytearray(path.read_bytes())
    entries = [i for i in range(len(data)) if data[i:i + 4] == b"PK\x01\x02"]
    last_entry_size = data.index(b"PK\x05\x06") - entries[2]
    struct.pack_into("<H", data, entries[1] + 32, last_entry_size)  # entry 2's comment length
    path.write_bytes(bytes(data))
    with zipfile.ZipFile(path) as zf:
        assert len(zf.infolist()) == 2  # what zipfile alone sees
    with pytest.raises(S.CorruptFileError, match=r"w.npz' is damaged: its directory holds 2 "
                                                 r"members but its end record counts 3"):
        S.load_npz(path)


# -- the receiver's shapes, and the file's own size, bound what is read --------------------
def test_load_npz_checks_expected_shapes_and_dtypes_on_the_headers(bomb):
    errors = []

    def load():
        try:
            S.load_npz(bomb, expected={"W": np.empty((3, 2), np.float32)})
        except ShapeError as e:
            errors.append(e)

    peak = _peak_bytes(load)
    (error,) = errors
    assert str(error) == (f"load_npz: {str(bomb)!r}, array 'W': has shape (268435456,) "
                          "(float64, 2.0 GiB declared) in the file, expected (3, 2) (float32); "
                          "no data was read")
    assert peak < 4 * MiB, f"{peak / MiB:.1f} MiB allocated"


def test_expected_arrays_are_exempt_from_the_bound_and_others_are_not(tmp_path, monkeypatch):
    monkeypatch.setattr(S, "INFLATION_ALLOWANCE", MiB)
    path = S.save_npz(tmp_path / "zeros.npz", {"W": np.zeros((512, 1024)), "b": np.ones(3)})
    size = os.path.getsize(path)
    assert size < 20_000  # 4 MiB of zeros: far more than 100 times the file
    with pytest.raises(S.CorruptFileError, match=r"zeros.npz' declares 4.0 MiB of arrays "
                       r"\(4194584 bytes; 4.0 MiB in 'W', float64 \(512, 1024\)\) in a file "
                       r"of .* KiB; .*: 1.0 MiB here. Nothing was read"):
        S.load_npz(path)
    # Expected by shape: bounded by the caller's own array, so it loads.
    loaded = S.load_npz(path, expected={"W": np.empty((512, 1024), np.float32)})
    np.testing.assert_array_equal(loaded["W"], np.zeros((512, 1024)))
    np.testing.assert_array_equal(loaded["b"], np.ones(3))
    assert S.load_npz(path, max_bytes=5 * MiB)["W"].shape == (512, 1024)  # raised by hand
    monkeypatch.setattr(S, "MAX_INFLATION", 1000)  # read at each call
    assert S.load_npz(path)["W"].shape == (512, 1024)


def test_expected_dtype_is_checked_on_the_header(tmp_path):
    path = S.save_npz(tmp_path / "t.npz", {"W": np.array([["a", "b"]] * 3)})
    with pytest.raises(DTypeError, match=r"t.npz', array 'W': is a <U1 array in the file, "
                                         r"expected numbers convertible to float32 \(shape "
                                         r"\(3, 2\)\); no data was read"):
        S.load_npz(path, expected={"W": np.empty((3, 2), np.float32)})
    # float64 into a float32 receiver converts (same kind), as load_weights allows.
    S.save_npz(path, {"W": np.ones((3, 2))})
    assert S.load_npz(path, expected={"W": np.empty((3, 2), np.float32)})["W"].dtype == np.float64


def test_load_state_expected_tree_names_the_member_and_the_receivers_name(tmp_path):
    path = S.save_state(tmp_path / "s.npz", {"model": {"l0/b": np.zeros(7, np.float32)},
                                             "steps": [np.arange(3)]})
    expected = {"model": {"l0/b": np.empty(10, np.float32)}, "steps": [None]}
    with pytest.raises(ShapeError) as info:
        S.load_state(path, expected=expected)
    assert str(info.value) == (f"load_state: {str(path)!r}, array 'model/l0/b': 'l0/b' has "
                               "shape (7,) (float32, 28 bytes declared) in the file, expected "
                               "(10,) (float32); no data was read")
    expected["model"]["l0/b"] = np.empty(7, np.float32)
    state = S.load_state(path, expected=expected)
    np.testing.assert_array_equal(state["steps"][0], np.arange(3))
    # A key that save_state had to make unique is ambiguous: it expects nothing.
    assert S._expected_arrays({"a/b": np.empty(1), "a": {"b": np.empty(2)}}) == {}


def _bombed_state_file(path, keys_and_arrays, bomb_key, bomb_shape):
    """A save_state file whose member ``bomb_key`` is replaced by zeros of ``bomb_shape``."""
    arrays = {}
    skeleton = S._split_tree(keys_and_arrays, arrays, "")
    members = []
    for key, array in arrays.items():
        if key == bomb_key:
            members.append((f"{key}.npy", *_zeros_bomb(bomb_shape)))
        else:
            members.append(_plain_member(f"{key}.npy", array))
    members.append(_plain_member("__tree__.npy", np.array(json.dumps(skeleton))))
    _write_zip(path, members)
    return path


def test_optimizer_load_state_dict_from_a_file_checks_the_headers_first(tmp_path):
    model = L.Linear(2, in_size=3)
    opt = O.Adam().setup(model)
    model.W.grad = Variable(np.ones((3, 2), np.float32))
    model.b.grad = Variable(np.ones(2, np.float32))
    opt.update()
    path = S.save_state(tmp_path / "opt.npz", opt.state_dict())
    fresh = O.Adam().setup(model)
    fresh.load_state_dict(path)  # from the file: source is the path
    np.testing.assert_array_equal(fresh.state[model.W]["m"], opt.state[model.W]["m"])
    assert fresh.t == opt.t == 1

    bombed = _bombed_state_file(tmp_path / "bomb.npz", opt.state_dict(), "params/0/state/m",
                                (2**25,))
    assert bombed.stat().st_size < MiB
    errors = []

    def load():
        try:
            fresh.load_state_dict(bombed)
        except ShapeError as e:
            errors.append(e)

    peak = _peak_bytes(load)
    (error,) = errors
    assert str(error) == (f"Adam.load_state_dict: {str(bombed)!r}, array 'params/0/state/m': "
                          "'m' has shape (33554432,) (float64, 256.0 MiB declared) in the "
                          "file, expected (3, 2) (float32); no data was read")
    assert peak < 2 * MiB, f"{peak / MiB:.1f} MiB allocated"
    np.testing.assert_array_equal(fresh.state[model.W]["m"], opt.state[model.W]["m"])  # kept
