"""The small CNN's compiled kernels as the ops call them: ReLU (forward and its Grad node)
and conv2d/deconv2d with compact patch matrices (zerograd._fast.relu, zerograd._fast.im2col).

The op spec harness passes on both paths (forward, gradients, second order, dtypes); each
op equals the NumPy path (bitwise where the arithmetic is the same: ReLU, the patch copies
and their scatter-add; to rounding where a product has a different column count); the
dispatch follows the thresholds; third-order conv derivatives stay exact."""

import dataclasses

import numpy as np
import pytest

import zerograd
import zerograd._fast as fast
import zerograd.functions as F
from tests.fast._kernels import check_spec_on_path, count_calls, every_size
from tests.ops.harness import (
    check_double_backward,
)
from tests.ops.specs import activation, conv
from zerograd import Variable
from zerograd.ops import _im2col as I
from zerograd.ops import activation as ops_activation

pytest.importorskip("numba")

from zerograd._fast import im2col as fast_im2col  # noqa: E402
from zerograd._fast import relu as fast_relu  # noqa: E402

KERNELS = {fast_relu: ("relu", "relu_grad"),
           fast_im2col: ("conv_patches", "conv_patches_adjoint")}
# conv2d_simple, im2col and col2im are built from DeZero's im2col, which has no kernel here.
NOT_WIRED = {"conv2d_simple", "im2col", "im2col_patches", "col2im", "col2im_patches"}
SPECS = ([s for s in activation.SPECS if s.name == "relu"]
         + [s for s in conv.SPECS if s.name not in NOT_WIRED])


pytestmark = pytest.mark.usefixtures("kernels_on")


@pytest.fixture
def counted(monkeypatch):
    """Counts the calls of the kernels: {kernel function name: calls}."""
    return count_calls(monkeypatch, KERNELS.items())


@pytest.mark.parametrize("setting", ["1", "0"])
@pytest.mark.parametrize("spec", SPECS, ids=str)
def test_op_harness_on_both_paths(spec, setting, monkeypatch, counted):
    check_spec_on_path(spec, setting, monkeypatch, zero_d=True)
    if setting == "0":
        assert counted == {}
    else:
        assert counted, f"{spec.name}: no compiled kernel ran under ZEROGRAD_FAST=1"


@pytest.mark.parametrize("setting", ["1", "0"])
def test_relu_second_order_on_both_paths(setting, monkeypatch, counted):
    # relu'' = 0 away from the kink: ReLUGrad's own backward is ReLUGrad (for gy) and
    # nothing for y, which the harness checks against central differences.
    monkeypatch.setenv("ZEROGRAD_FAST", setting)
    every_size(monkeypatch)
    spec = next(s for s in activation.SPECS if s.name == "relu")
    check_double_backward(dataclasses.replace(spec, double_backward=True))
    assert ("relu_grad" in counted) == (setting == "1")


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


def _layouts(a):
    """a in C order, as the NCHW view of a channel-major array, transposed in its last two
    axes, and as a strided slice (every other element of the last axis)."""
    wide = np.repeat(a, 2, axis=-1)
    wide[..., 1::2] = -7.0
    out = {"contiguous": a, "strided": wide[..., ::2]}
    if a.ndim == 4:
        out["channel_major"] = np.ascontiguousarray(a.transpose(1, 0, 2, 3)).transpose(1, 0,
                                                                                        2, 3)
    if a.ndim >= 2:
        out["transposed"] = np.ascontiguousarray(np.swapaxes(a, -1, -2)).swapaxes(-1, -2)
    return out


# Every value class the comparison must keep: signed zeros, NaN, infinities, ties at 0.
SPECIALS = [0.0, -0.0, np.nan, np.inf, -np.inf, 1e-30, -1e-30, 2.5, -2.5]


def _with_specials(shape, dtype, seed=0):
    a = np.random.default_rng(seed).standard_normal(shape).astype(dtype)
    flat = a.reshape(-1)
    flat[:len(SPECIALS)] = SPECIALS
    return a


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("layout", ["contiguous", "strided", "channel_major", "transposed"])
@pytest.mark.filterwarnings("ignore:invalid value encountered in multiply")  # inf * 0
def test_relu_and_its_backward_match_the_numpy_path_bitwise(dtype, layout, counted):
    x = _layouts(_with_specials((3, 4, 5, 6), dtype))[layout]
    gy = _layouts(_with_specials((3, 4, 5, 6), dtype, seed=1))["channel_major"]

    def run():
        v = Variable(x)
        y = F.relu(v)
        y.grad = Variable(gy)  # the seed, in another layout than y for most layouts
        y.backward()
        return y.data, v.grad.data

    (y, gx), (y_ref, gx_ref) = _both_paths(run)
    assert counted == {"relu": 1, "relu_grad": 1}
    assert y.dtype == gx.dtype == dtype
    for got, want in ((y, y_ref), (gx, gx_ref)):
        np.testing.assert_array_equal(got, want)
        assert np.array_equal(np.signbit(got), np.signbit(want))  # -0.0 kept as NumPy does
    assert y.strides == y_ref.strides  # x's layout, as NumPy keeps it
    assert gx.strides == gy.strides  # gy's layout (NumPy's for y and gy laid out alike)


def test_relu_kernels_keep_the_layout_and_refuse_mismatched_arrays():
    x = _layouts(np.arange(-60.0, 60.0).reshape(2, 3, 4, 5).astype(np.float32))
    y = fast_relu.relu(x["channel_major"])
    assert y.transpose(1, 0, 2, 3).flags.c_contiguous
    np.testing.assert_array_equal(y, np.maximum(x["contiguous"], 0))
    with pytest.raises(TypeError, match=r"relu_grad: y and gy must have one shape and dtype, "
                                        r"got y float32 \(2, 3, 4, 5\) and gy float64"):
        fast_relu.relu_grad(y, np.ones(y.shape))


def test_relu_follows_the_threshold(monkeypatch, counted):
    low = fast.THRESHOLDS["relu"][0]
    assert low == 4096
    for size, compiled in ((low - 1, False), (low, True)):
        counted.clear()
        x = Variable(np.linspace(-1, 1, size).astype(np.float32))
        F.sum(F.relu(x)).backward()
        assert ("relu" in counted) == compiled and ("relu_grad" in counted) == compiled
    with fast.numpy_only():
        counted.clear()
        F.relu(Variable(np.ones(low, np.float32)))
        assert counted == {}


def test_relu_backward_is_one_grad_node():
    x = Variable(np.array([-1.0, 2.0, 3.0]))
    y = F.relu(x)
    y.backward(create_graph=True)
    assert type(x.grad.creator) is ops_activation.ReLUGrad
    np.testing.assert_array_equal(x.grad.data, [0.0, 1.0, 1.0])
    gx = x.grad
    x.cleargrad()
    gx.backward()  # d/dx of relu'(x) = 0: the second derivative is no gradient at all
    assert x.grad is None


# (N, C, H, W, OC, kernel, stride, pad, dilation, groups): the CNN's two convolutions, a
# "same" dilated one, strides, groups, one image, one channel.
CONV_CASES = [
    (4, 1, 12, 12, 6, (3, 3), 1, 1, 1, 1),
    (4, 5, 7, 7, 8, (3, 3), 1, 1, 1, 1),
    (2, 4, 9, 8, 4, (3, 3), 1, 2, 2, 2),
    (3, 4, 9, 7, 6, (3, 2), (2, 1), (1, 0), 1, 2),
    (1, 3, 6, 6, 5, (3, 3), 1, 1, 1, 1),
    (2, 2, 8, 5, 3, (2, 3), 1, 0, 1, 1),
]
TOLERANCE = {np.float32: 1e-5, np.float64: 1e-12}


@pytest.mark.parametrize("case", CONV_CASES, ids=str)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("layout", ["contiguous", "channel_major", "strided"])
def test_conv2d_and_its_gradients_match_the_numpy_path(case, dtype, layout, counted):
    N, C, H, W, OC, kernel, stride, pad, dilation, groups = case
    rng = np.random.default_rng(0)
    x = _layouts(rng.standard_normal((N, C, H, W)).astype(dtype))[layout]
    Wt = rng.standard_normal((OC, C // groups) + kernel).astype(dtype)
    b = rng.standard_normal(OC).astype(dtype)

    def run():
        xv, Wv, bv = Variable(x), Variable(Wt), Variable(b)
        y = F.conv2d(xv, Wv, bv, stride, pad, dilation=dilation, groups=groups)
        gy = np.cos(np.arange(y.size, dtype=dtype)).reshape(y.shape)
        y.grad = Variable(gy)
        y.backward()
        return y.data, xv.grad.data, Wv.grad.data, bv.grad.data

    compiled, reference = _both_paths(run)
    p, d, s = I.pair(pad), I.pair(dilation), I.pair(stride)
    # The patch kernels copy long runs: stride 1, and one channel, one image or a
    # channel-major x (a contiguous or strided x with several of each stays on NumPy).
    long_runs = s == (1, 1) and (C == 1 or N == 1 or layout == "channel_major")
    assert (counted.get("conv_patches", 0) >= 1) == long_runs
    as_flipped_conv = (s == (1, 1) and OC <= C
                       and all(p[a] <= d[a] * (kernel[a] - 1) for a in range(2)))
    assert counted.get("conv_patches_adjoint", 0) == (0 if as_flipped_conv else 1)
    for name, got, want in zip(("y", "gx", "gW", "gb"), compiled, reference):
        assert got.shape == want.shape and got.dtype == dtype, name
        scale = max(1.0, float(np.abs(want).max()))
        np.testing.assert_allclose(got, want, rtol=0, atol=TOLERANCE[dtype] * scale,
                                   err_msg=name)


def test_conv2d_keeps_compact_patches_for_the_weight_gradient(monkeypatch, counted):
    every_size(monkeypatch)
    # x channel-major (as a pooled activation is), so that its patches are compiled.
    x = Variable(_layouts(np.random.default_rng(1).standard_normal((2, 3, 6, 6)))
                 ["channel_major"])
    W = Variable(np.random.default_rng(2).standard_normal((4, 3, 3, 3)))
    y = F.conv2d(x, W, pad=1)
    kept_x, col = y.creator.patches
    assert kept_x is x.data and col.shape == (1, 27, 2 * 6 * 6)  # compact: 6 columns a row
    F.sum(y * y).backward()
    assert counted["conv_patches"] == 1  # forward's patches served the weight gradient
    with fast.numpy_only():
        gW = zerograd.autograd.grad(F.sum(F.conv2d(x, W, pad=1) ** 2), [W])[0]
    np.testing.assert_allclose(W.grad.data, gW.data, rtol=1e-12)


def test_conv2d_gradient_from_numpy_path_patches(monkeypatch):
    # Forward on the NumPy path keeps whole-row patches; a weight gradient computed later
    # with the kernels on reads their layout from their shape.
    x = Variable(np.random.default_rng(3).standard_normal((2, 8, 5, 5)))
    W = Variable(np.random.default_rng(4).standard_normal((4, 8, 3, 3)))
    with fast.numpy_only():
        y = F.conv2d(x, W, pad=1)
        reference = zerograd.autograd.grad(F.sum(F.conv2d(x, W, pad=1) * 2), [W])[0].data
    assert y.creator.patches[1].shape[2] == 2 * 5 * 7  # whole padded rows
    every_size(monkeypatch)
    F.sum(y * 2).backward()
    np.testing.assert_allclose(W.grad.data, reference, rtol=1e-12)


def test_conv_patches_are_on_by_default_from_4096_elements(counted, monkeypatch):
    assert fast.THRESHOLDS["conv_patches"] == (4096, None)
    geo = I.Geometry(1, 1, 1, 1)
    for shape, compiled in (((1, 1, 4, 1023), False), ((1, 1, 4, 1024), True)):
        counted.clear()
        geo.patches(np.ones(shape, np.float32), (3, 3), shape[2:], wide=False)
        assert ("conv_patches" in counted) == compiled
    # Turned off, the whole-row NumPy patches are built at every size.
    monkeypatch.setitem(fast.THRESHOLDS, "conv_patches", (fast.NEVER, None))
    counted.clear()
    geo.patches(np.ones((1, 1, 64, 64), np.float32), (3, 3), (64, 64), wide=False)
    assert "conv_patches" not in counted


@pytest.mark.parametrize("case", [(2, 3, 6, 5, (3, 3), (1, 1), (1, 1), (1, 1), 1),
                                  (1, 4, 7, 7, (5, 5), (1, 1), (4, 4), (2, 2), 2),
                                  (3, 1, 5, 6, (3, 1), (1, 1), (1, 0), (1, 1), 1),
                                  (2, 2, 4, 4, (3, 3), (1, 1), (1, 1), (1, 1), 2)], ids=str)
@pytest.mark.parametrize("layout", ["contiguous", "channel_major"])
def test_same_convolutions_long_runs_are_bitwise_the_numpy_path(case, layout):
    # "Same" stride-1 geometries take the long-run kernels: one image or one channel or a
    # channel-major x; every other layout the per-row kernels. Both copy exactly.
    N, C, H, W, kernel, stride, pad, dilation, groups = case
    x = _layouts(np.random.default_rng(5).standard_normal((N, C, H, W)))[layout]
    geo = I.Geometry(stride, pad, dilation, groups)
    with fast.numpy_only():
        ref = geo.patches(x, kernel, (H, W), ones_row=True, wide=False)
    col = fast_im2col.conv_patches(x, kernel, stride, pad, dilation, groups, (H, W), W, True)
    np.testing.assert_array_equal(col, ref)
    gcol = np.random.default_rng(6).standard_normal(ref[:, :-1].shape)
    col6 = gcol.reshape(C, kernel[0], kernel[1], N, H, W).transpose(3, 0, 1, 2, 4, 5)
    want = I.crop_image(I.scatter_windows(col6, (H + 2 * pad[0], W + 2 * pad[1]), stride,
                                          dilation), pad[0], pad[1], (H, W))
    kept = gcol.copy()
    got = fast_im2col.conv_patches_adjoint(gcol, N, C, kernel, stride, pad, dilation, groups,
                                           (H, W), (H, W), W)
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(gcol, kept)  # col is left alone unless overwrite_col
    got = fast_im2col.conv_patches_adjoint(gcol, N, C, kernel, stride, pad, dilation, groups,
                                           (H, W), (H, W), W, overwrite_col=True)
    np.testing.assert_array_equal(got, want)


def test_third_order_conv2d_on_the_compiled_path(monkeypatch):
    # The third-order check of tests/ops/test_grad_nodes.py against PyTorch, kernels on.
    pytest.importorskip("torch")
    from tests.ops import test_grad_nodes

    every_size(monkeypatch)
    test_grad_nodes.test_third_order_matches_torch("conv2d")


def _blasable(a) -> bool:
    """NumPy hands a matrix to BLAS without a copy when one of its last two axes has unit
    stride and the other a stride of at least that axis's length (C or F order, or rows
    of a wider matrix)."""
    item = a.itemsize
    s0, s1 = a.strides[-2:]
    rows, cols = a.shape[-2:]
    return (s1 == item and s0 >= cols * item) or (s0 == item and s1 >= rows * item)


def test_the_cnn_step_hands_blas_every_operand_without_a_copy(monkeypatch):
    # Every product of the small CNN's convolutions on the compiled path: no operand that
    # NumPy would copy before calling BLAS (checked on each matrix of a stack).
    every_size(monkeypatch)
    operands = []
    for name in ("xp_matmul", "scratch_product"):
        original = getattr(I, name)

        def spy(a, b, *rest, _original=original):
            operands.extend((a, b))
            return _original(a, b, *rest)

        monkeypatch.setattr(I, name, spy)
    rng = np.random.default_rng(7)
    x = rng.random((8, 1, 12, 12))
    params = [Variable(rng.standard_normal(s) * 0.3) for s in
              ((16, 1, 3, 3), (16,), (32, 16, 3, 3), (32,))]
    h = F.pooling(F.relu(F.conv2d(x, params[0], params[1], 1, 1)), 2, 2)
    h = F.pooling(F.relu(F.conv2d(h, params[2], params[3], 1, 1)), 2, 2)
    F.sum(h * h).backward()
    # two forwards, conv2's weight gradient, one input gradient (conv1's weight gradient,
    # 9 patch rows, is the compiled rows_by_rows: tests/fast/test_products.py)
    assert len(operands) == 8
    assert all(_blasable(a) for a in operands), [(a.shape, a.strides) for a in operands
                                                 if not _blasable(a)]
