"""The ops that call compiled kernels (GELU, the embedding scatter, the LSTM cell steps,
2x2 max pooling):
the op spec harness passes on both paths, each dispatched op equals the NumPy path, and the
dispatch decides as documented (thresholds, dtypes, non-NumPy arrays, the switch)."""

import numpy as np
import pytest

import zerograd
import zerograd._fast as fast
import zerograd.functions as F
from tests.fast._kernels import check_spec_on_path, count_calls
from tests.ops.specs import activation, indexing, pooling, recurrent
from zerograd.ops import activation as ops_activation
from zerograd.ops import indexing as ops_indexing
from zerograd.ops import recurrent as ops_recurrent

pytest.importorskip("numba")

from zerograd._fast import elementwise as fast_elementwise  # noqa: E402
from zerograd._fast import indexing as fast_indexing  # noqa: E402
from zerograd._fast import pooling as fast_pooling  # noqa: E402
from zerograd._fast import recurrent as fast_recurrent  # noqa: E402

# The specs of every op whose kernels dispatch.
WIRED = ({"gelu"}, {"get_item_repeated_rows", "get_item_ids_2d", "get_item_ids_axis1",
                    "get_item_ids_unique", "take", "take_axis", "embed_id", "embed_id_squared"},
         {"lstm_cell", "lstm_sequence", "lstm_sequence_reverse", "lstm_sequence_bias",
          "lstm_sequence_bias_reverse", "gru_sequence", "gru_sequence_reverse"},
         {"pooling_squared", "max_pool2d", "pooling"})
SPECS = [s for module, names in zip((activation, indexing, recurrent, pooling), WIRED)
         for s in module.SPECS if s.name in names]
KERNELS = {"gelu": (fast_elementwise, ("gelu", "gelu_grad")),
           "scatter_rows": (fast_indexing, ("scatter_rows",)),
           "lstm_step": (fast_recurrent, ("lstm_step",)),
           "lstm_step_grad": (fast_recurrent, ("lstm_step_grad",)),
           "outer_row": (fast_recurrent, ("outer_row",)),
           "lstm_sequence": (fast_recurrent, ("lstm_sequence_forward", "lstm_sequence_backward")),
           "gru_sequence": (fast_recurrent, ("gru_sequence_forward", "gru_sequence_backward")),
           "max_pool_2x2": (fast_pooling, ("max_pool_2x2", "max_pool_2x2_backward"))}


pytestmark = pytest.mark.usefixtures("kernels_on")


@pytest.fixture
def counted(monkeypatch):
    """Counts the calls of every wired kernel: {kernel function name: calls}."""
    return count_calls(monkeypatch, KERNELS.values())


@pytest.mark.parametrize("setting", ["1", "0"])
@pytest.mark.parametrize("spec", SPECS, ids=str)
def test_op_harness_on_both_paths(spec, setting, monkeypatch, counted):
    check_spec_on_path(spec, setting, monkeypatch)
    if setting == "0":
        assert counted == {}
    elif spec.name not in ("get_item_ids_unique", "pooling"):
        # Distinct ids are one assignment and 3x3 pooling with padding has no compiled
        # kernel: those run NumPy on both settings.
        assert counted, f"{spec.name}: no compiled kernel ran under ZEROGRAD_FAST=1"
        if spec.name.endswith(("sequence", "sequence_reverse")):  # the op's own loops
            kind = spec.name.split("_")[0]
            assert set(counted) == {f"{kind}_sequence_forward", f"{kind}_sequence_backward"}


def test_the_harness_covers_every_wired_spec():
    assert {s.name for s in SPECS} == set().union(*WIRED)


def _both_paths(fn):
    """fn() with the compiled kernels (every size), then on the NumPy path."""
    saved = fast.THRESHOLDS
    fast.THRESHOLDS = {name: (0, None) for name in saved}
    try:
        compiled = fn()
    finally:
        fast.THRESHOLDS = saved
    with fast.numpy_only():
        reference = fn()
    return compiled, reference


TOLERANCE = {np.float32: 2e-6, np.float64: 1e-14}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("layout", ["contiguous", "transposed", "strided"])
def test_gelu_matches_the_numpy_path(dtype, layout, counted):
    base = np.random.default_rng(0).uniform(-6, 6, (37, 41)).astype(dtype)
    data = {"contiguous": base, "transposed": base.T, "strided": base[::2, 1::3]}[layout]

    def run():
        x = zerograd.Variable(data)
        y = F.gelu(x)
        gy = np.cos(np.arange(y.size, dtype=dtype)).reshape(y.shape)
        (gx,) = zerograd.autograd.grad(F.sum(y * gy), [x], create_graph=True)
        (ggx,) = zerograd.autograd.grad(F.sum(gx), [x])  # GELUGrad's own backward
        return y.data, gx.data, ggx.data

    compiled, reference = _both_paths(run)
    assert counted["gelu"] == 1 and counted["gelu_grad"] == 1
    for a, b in zip(compiled, reference):
        assert a.dtype == dtype and a.shape == data.shape
        np.testing.assert_allclose(a, b, rtol=TOLERANCE[dtype], atol=TOLERANCE[dtype])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("layout", ["contiguous", "strided"])
def test_embedding_backward_matches_the_numpy_path_bitwise(dtype, layout, counted):
    rng = np.random.default_rng(1)
    ids = rng.integers(-50, 50, size=(30, 7))  # repeats, and negative ids
    table = rng.standard_normal((50, 24)).astype(dtype)
    gy = rng.standard_normal((30, 7, 48)).astype(dtype)
    gy = gy[..., ::2] if layout == "strided" else np.ascontiguousarray(gy[..., :24])

    def run():
        W = zerograd.Parameter(table)
        F.sum(F.get_item(W, ids) * gy).backward()
        return W.grad.data

    compiled, reference = _both_paths(run)
    assert counted["scatter_rows"] == 1
    assert compiled.dtype == dtype
    np.testing.assert_array_equal(compiled, reference)


def test_embedding_backward_along_an_inner_axis(counted):
    rng = np.random.default_rng(2)
    ids = rng.integers(0, 6, size=40)
    x = rng.standard_normal((3, 6, 5))
    gy = rng.standard_normal((3, 40, 5))

    def run():
        v = zerograd.Variable(x)
        F.sum(F.get_item(v, (slice(None), ids)) * gy).backward()
        return v.grad.data

    compiled, reference = _both_paths(run)
    assert counted["scatter_rows"] == 1
    np.testing.assert_array_equal(compiled, reference)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("N, H", [(1, 7), (3, 10)])
def test_lstm_cell_matches_the_numpy_path(dtype, N, H, counted):
    rng = np.random.default_rng(3)
    D = 5
    values = [rng.standard_normal(s).astype(dtype) * 0.7
              for s in ((N, D), (N, H), (N, H), (D, 4 * H), (H, 4 * H), (4 * H,))]
    values[4] = np.asfortranarray(values[4])  # a non-contiguous weight

    def run():
        x, h, c, Wx, Wh, b = (zerograd.Parameter(v.copy()) for v in values)
        h1, c1 = F.lstm_cell(x, h, c, Wx, Wh, b)
        h2, c2 = F.lstm_cell(x, h1, c1, Wx, Wh, b)  # two steps: gc flows into the first
        F.sum(h2 * h2 + c2).backward()
        return [h2.data, c2.data] + [p.grad.data for p in (x, h, c, Wx, Wh, b)]

    compiled, reference = _both_paths(run)
    assert counted["lstm_step"] == 2 and counted["lstm_step_grad"] == 2
    # At batch 1 the weight gradients are outer products: x^T d and h^T d of both steps.
    assert counted.get("outer_row", 0) == (4 if N == 1 else 0)
    # The forward kernel calls libm's exp and tanh (NumPy its SIMD ones): a few ulp apart.
    for a, b in zip(compiled, reference):
        assert a.dtype == dtype
        np.testing.assert_allclose(a, b, rtol=20 * TOLERANCE[dtype], atol=TOLERANCE[dtype])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("upstream", ["y", "all", "y[:, ::2]"])
@pytest.mark.parametrize("bias", [True, False])
def test_lstm_sequence_matches_the_numpy_path(dtype, reverse, upstream, bias, counted,
                                             monkeypatch):
    """The sequence op runs its compiled loops once each way; the forward equals the NumPy
    path's bitwise in float64 and to a few ulp in float32 (its own sigmoid and tanh there),
    the gradients to a few ulp (the NumPy path's step gradient multiplies factors
    precomputed for all steps, in another order)."""
    rng = np.random.default_rng(5)
    N, T, H = 3, 6, 5
    values = [rng.standard_normal(s).astype(dtype) * 0.7
              for s in ((N, T, 4 * H), (N, H), (N, H), (H, 4 * H), (4 * H,))]
    weights = [rng.standard_normal(s).astype(dtype) for s in ((N, T, H), (N, H), (N, H))]

    def run():
        xw, h0, c0, Wh, b = (zerograd.Parameter(v.copy()) for v in values)
        y, h, c = F.lstm_sequence(xw, h0, c0, Wh, b if bias else None, reverse=reverse)
        loss = F.sum(y * weights[0])
        if upstream == "all":  # the final state's gradients too (gh, gc at the last step)
            loss = loss + F.sum(h * weights[1]) + F.sum(c * weights[2])
        elif upstream == "y[:, ::2]":  # gy strided, zero at every other step
            loss = F.sum(y[:, ::2] * weights[0][:, ::2])
        loss.backward()
        grads = [p.grad.data for p in (xw, h0, c0, Wh) + ((b,) if bias else ())]
        assert bias or b.grad is None
        return [y.data, h.data, c.data] + grads

    compiled, reference = _both_paths(run)
    assert counted == {"lstm_sequence_forward": 1, "lstm_sequence_backward": 1}
    for a, b in zip(compiled[:3], reference[:3]):
        if dtype == np.float64:
            np.testing.assert_array_equal(a, b)
        else:
            np.testing.assert_allclose(a, b, rtol=20 * TOLERANCE[dtype], atol=TOLERANCE[dtype])
    for a, b in zip(compiled[3:], reference[3:]):
        assert a.dtype == dtype
        np.testing.assert_allclose(a, b, rtol=20 * TOLERANCE[dtype], atol=TOLERANCE[dtype])


def test_lstm_sequence_follows_the_dispatch(monkeypatch, counted):
    """At the shipped thresholds the loops run for any state (float32); float16 and
    ZEROGRAD_FAST=0 keep the NumPy path. With a float32 xw and a float64 Wh the forward
    runs NumPy (its inputs differ in dtype) and the backward the compiled loop (what it
    reads, the saved activations and the state, is all float64)."""
    for dtype, Wh_dtype, setting, calls in ((np.float32, np.float32, "auto", (1, 1)),
                                            (np.float16, np.float16, "auto", (0, 0)),
                                            (np.float32, np.float64, "auto", (0, 1)),
                                            (np.float32, np.float32, "0", (0, 0))):
        monkeypatch.setenv("ZEROGRAD_FAST", setting)
        counted.clear()
        xw = zerograd.Parameter(np.full((2, 4, 8), 0.1, dtype=dtype))
        Wh = np.full((2, 8), 0.2, dtype=Wh_dtype)
        y, _, _ = F.lstm_sequence(xw, None, None, Wh)
        F.sum(y).backward()
        expected = dict(zip(("lstm_sequence_forward", "lstm_sequence_backward"), calls))
        assert {k: counted.get(k, 0) for k in expected} == expected, (dtype, Wh_dtype, setting)
        assert counted.get("lstm_step_grad", 0) == 0
        assert xw.grad.shape == (2, 4, 8)
        assert xw.grad.dtype == dtype  # the engine casts a gradient to its input's dtype


def test_lstm_sequence_threshold_edges(monkeypatch, counted):
    """The cell state's size N*H decides, both ends of the range included."""
    monkeypatch.setitem(fast.THRESHOLDS, "lstm_sequence", (6, 12))
    for N, H, runs in ((1, 5, False), (2, 3, True), (3, 4, True), (13, 1, False)):
        counted.clear()
        xw = zerograd.Parameter(np.full((N, 3, 4 * H), 0.1, dtype=np.float32))
        y, _, _ = F.lstm_sequence(xw, None, None, np.full((H, 4 * H), 0.2, np.float32))
        F.sum(y).backward()
        assert counted.get("lstm_sequence_forward", 0) == runs, (N, H)
        assert counted.get("lstm_sequence_backward", 0) == runs, (N, H)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("upstream", ["y", "all", "h only", "y[:, ::2]"])
def test_gru_sequence_matches_the_numpy_path_bitwise(dtype, reverse, upstream, counted):
    """GRUSequence's compiled loops compute the NumPy path's factors in its order: values
    and every gradient are equal bitwise."""
    rng = np.random.default_rng(6)
    N, T, H = 3, 6, 5
    values = [rng.standard_normal(s).astype(dtype) * 1.5
              for s in ((N, T, 3 * H), (N, H), (H, 3 * H), (3 * H,))]
    weights = [rng.standard_normal(s).astype(dtype) for s in ((N, T, H), (N, H))]

    def run():
        xw, h0, Wh, bh = (zerograd.Parameter(v.copy()) for v in values)
        y, h = F.gru_sequence(xw, h0, Wh, bh, reverse=reverse)
        loss = {"y": lambda: F.sum(y * weights[0]),
                "all": lambda: F.sum(y * weights[0]) + F.sum(h * weights[1]),
                "h only": lambda: F.sum(h * weights[1]),
                "y[:, ::2]": lambda: F.sum(y[:, ::2] * weights[0][:, ::2])}[upstream]()
        loss.backward()
        return [y.data, h.data] + [p.grad.data for p in (xw, h0, Wh, bh)]

    compiled, reference = _both_paths(run)
    assert counted == {"gru_sequence_forward": 1, "gru_sequence_backward": 1}
    for a, b in zip(compiled, reference):
        assert a.dtype == dtype
        np.testing.assert_array_equal(a, b)


def test_gru_sequence_follows_the_dispatch(monkeypatch, counted):
    """Any state at the shipped thresholds (float32); float16, ZEROGRAD_FAST=0 and states
    outside a narrowed range keep the NumPy path."""
    cases = ((np.float32, "auto", None, 1), (np.float16, "auto", None, 0),
             (np.float32, "0", None, 0), (np.float32, "auto", (6, 6), 1),
             (np.float32, "auto", (7, 12), 0))
    for dtype, setting, limits, calls in cases:
        monkeypatch.setenv("ZEROGRAD_FAST", setting)
        if limits is not None:
            monkeypatch.setitem(fast.THRESHOLDS, "gru_sequence", limits)
        counted.clear()
        xw = zerograd.Parameter(np.full((2, 4, 9), 0.1, dtype=dtype))
        y, _ = F.gru_sequence(xw, None, np.full((3, 9), 0.2, dtype=dtype))  # N*H = 6
        F.sum(y).backward()
        expected = {"gru_sequence_forward": calls, "gru_sequence_backward": calls}
        assert {k: counted.get(k, 0) for k in expected} == expected, (dtype, setting, limits)
        assert xw.grad.dtype == dtype and xw.grad.shape == (2, 4, 9)


def test_lstm_step_grad_with_one_upstream_gradient_missing():
    rng = np.random.default_rng(4)
    act = rng.uniform(0.1, 0.9, (2, 12))
    c, tanh_c, g = rng.standard_normal((3, 2, 3))
    for gh, gc in ((g, None), (None, g)):
        expected = fast_recurrent.lstm_step_grad(act, c, tanh_c, gh, gc)
        with fast.numpy_only():
            reference = ops_recurrent._lstm_step_grad(act, c, tanh_c, gh, gc)
        fast.THRESHOLDS, saved = dict(fast.THRESHOLDS, lstm_step_grad=(0, None)), fast.THRESHOLDS
        try:
            dispatched = ops_recurrent._lstm_step_grad(act, c, tanh_c, gh, gc)
        finally:
            fast.THRESHOLDS = saved
        for a, b, r in zip(expected, dispatched, reference):
            np.testing.assert_array_equal(a, b)
            np.testing.assert_array_equal(a, r)


# -- the dispatch decision ------------------------------------------------------------------
def test_use_follows_the_thresholds(monkeypatch):
    monkeypatch.setattr(fast, "THRESHOLDS", {"k": (100, 200)})
    for size, expected in ((99, False), (100, True), (200, True), (201, False)):
        assert fast.use("k", np.zeros(size, np.float32)) is expected, size
    monkeypatch.setattr(fast, "THRESHOLDS", {"k": (100, None)})
    assert fast.use("k", np.zeros(10**6, np.float32)) is True


def test_use_refuses_other_dtypes_mixed_dtypes_and_non_numpy_arrays(monkeypatch):
    monkeypatch.setattr(fast, "THRESHOLDS", {"k": (0, None)})
    x32, x64 = np.zeros(4, np.float32), np.zeros(4)
    assert fast.use("k", x32) and fast.use("k", x64) and fast.use("k", x32, x32)
    assert not fast.use("k", np.zeros(4, np.float16))
    assert not fast.use("k", np.zeros(4, np.int64))
    assert not fast.use("k", x32, x64)
    assert not fast.use("k", np.ma.masked_array(x32))  # an ndarray subclass
    with fast.numpy_only():
        assert not fast.use("k", x32)
    monkeypatch.setenv("ZEROGRAD_FAST", "0")
    assert not fast.use("k", x32)


def test_the_thresholds_pick_the_path(monkeypatch, counted):
    """At the shipped thresholds: an array one element below the lowest size runs NumPy, one
    at it the kernel; the LSTM forward kernel stops above its highest size."""
    low = fast.THRESHOLDS["gelu"][0]
    for size, calls in ((low - 1, 0), (low, 1)):
        F.gelu(zerograd.Variable(np.linspace(-3, 3, size, dtype=np.float32)))
        assert counted.get("gelu", 0) == calls, size
    low = fast.THRESHOLDS["scatter_rows"][0]
    ids = np.zeros(low // 8, dtype=np.int64)  # all repeated
    for rows, calls in ((low // 8 - 1, 0), (low // 8, 1)):
        gy = np.ones((rows, 8))
        out = ops_indexing._scatter_rows((3, 8), 0, ids[:rows], gy)
        np.testing.assert_array_equal(out, [[rows] * 8, [0] * 8, [0] * 8])
        assert counted.get("scatter_rows", 0) == calls, rows
    high = fast.THRESHOLDS["lstm_step"][1]
    for H, calls in ((high, 1), (high + 1, 1)):
        ops_recurrent._lstm_step(np.zeros((1, 4 * H)), np.zeros((1, H)))
        assert counted.get("lstm_step", 0) == calls, H


def test_a_cells_weight_gradient_at_batch_1_is_compiled_from_1024_elements(counted):
    low = fast.THRESHOLDS["outer_row"][0]
    assert low == 1024
    rng = np.random.default_rng(5)
    for K, calls in ((low // 64 - 1, 0), (low // 64, 1)):
        counted.clear()
        a = rng.standard_normal((1, K)).astype(np.float32)
        d = rng.standard_normal((1, 64)).astype(np.float32)
        out = ops_recurrent._outer(a, d)
        assert counted.get("outer_row", 0) == calls, K
        np.testing.assert_array_equal(out, a.T * d)  # the same products either way
        assert out.dtype == np.float32
    counted.clear()
    a64 = rng.standard_normal((1, 32))  # float64 against float32: NumPy promotes
    out = ops_recurrent._outer(a64, d)
    assert counted == {} and out.dtype == np.float64
    np.testing.assert_array_equal(out, a64.T * d)


def test_gelu_on_the_numpy_path_when_switched_off(monkeypatch, counted):
    monkeypatch.setenv("ZEROGRAD_FAST", "0")
    x = np.linspace(-3, 3, 5000)
    y = ops_activation.GELU()(zerograd.Variable(x)).data
    assert counted == {}
    with fast.numpy_only():
        np.testing.assert_array_equal(y, ops_activation.GELU()(zerograd.Variable(x)).data)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(3, 4, 8, 10), (2, 3, 7, 9)])  # even, and odd (floor)
@pytest.mark.parametrize("layout", ["nchw", "channel_major", "strided"])
def test_max_pooling_2x2_matches_the_numpy_path_bitwise(dtype, shape, layout, counted):
    rng = np.random.default_rng(5)
    base = np.maximum(rng.standard_normal(shape), 0).astype(dtype)  # ReLU'd: many ties at 0
    data = {"nchw": base,
            "channel_major": np.ascontiguousarray(base.transpose(1, 0, 2, 3)).transpose(
                1, 0, 2, 3),
            "strided": np.repeat(base, 2, axis=3)[..., ::2]}[layout]
    gy = rng.standard_normal((shape[0], shape[1], shape[2] // 2, shape[3] // 2)).astype(dtype)

    def run():
        x = zerograd.Variable(data)
        y = F.max_pool2d(x, 2)
        (gx,) = zerograd.autograd.grad(F.sum(y * y * gy), [x], create_graph=True)
        (ggx,) = zerograd.autograd.grad(F.sum(gx * gx), [x])  # through the argmax gather
        return y.data, gx.data, ggx.data

    compiled, reference = _both_paths(run)
    assert counted["max_pool_2x2"] == 1 and counted["max_pool_2x2_backward"] >= 1
    for a, b in zip(compiled, reference):
        assert a.dtype == dtype and a.shape == b.shape
        np.testing.assert_array_equal(a, b)


def test_small_ops_never_import_numba():
    """Below the thresholds the ops run NumPy without asking numba anything, so a script of
    small arrays pays no numba import (0.3 s) even with numba installed."""
    import subprocess
    import sys
    from pathlib import Path

    code = ("import sys, numpy as np, zerograd, zerograd.functions as F\n"
            "x = zerograd.Variable(np.linspace(-2, 2, 12).reshape(1, 3, 2, 2))\n"
            "F.sum(F.gelu(x) + F.max_pool2d(x, 2).reshape(1, 3, 1, 1)).backward()\n"
            "W = zerograd.Parameter(np.ones((4, 3)))\n"
            "F.sum(F.embed_id(np.array([1, 1, 2]), W)).backward()\n"
            "print('numba' in sys.modules)")
    root = Path(__file__).resolve().parents[2]
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=root, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"
