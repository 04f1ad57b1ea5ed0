"""Semantics of the convolution and pooling family beyond the op specs: output sizes,
options, DeZero's layouts and names, adjointness of im2col/col2im, higher-order gradients,
errors, and the DeZero bugs zerograd fixes (6: third-order conv gradients, 7: non-square
average pooling)."""

import numpy as np
import pytest

import zerograd.functions as F
import zerograd.functions_conv as FC
from zerograd import Variable
from zerograd.errors import DTypeError, ShapeError
from zerograd.ops.conv import col2im_array, im2col_array

rng = np.random.default_rng(0)


def randn(*shape, dtype=np.float64):
    return rng.standard_normal(shape).astype(dtype)


# -- output sizes and options ----------------------------------------------------------------
@pytest.mark.parametrize("H, K, S, P, D, expected", [
    (32, 3, 1, 1, 1, 32), (28, 3, 1, 0, 1, 26), (7, 3, 2, 1, 1, 4), (8, 3, 2, 1, 1, 4),
    (9, 3, 1, 2, 2, 9), (10, 2, 3, 0, 1, 3), (5, 5, 1, 0, 1, 1), (6, 3, 1, 0, 3, 0),
])
def test_conv2d_output_size(H, K, S, P, D, expected):
    x, W = randn(1, 2, H, H + 1), randn(3, 2, K, K)
    if expected < 1:
        with pytest.raises(ShapeError, match="conv2d"):
            F.conv2d(x, W, stride=S, pad=P, dilation=D)
        return
    y = F.conv2d(x, W, stride=S, pad=P, dilation=D)
    expected_w = (H + 1 + 2 * P - D * (K - 1) - 1) // S + 1
    assert y.shape == (1, 3, expected, expected_w)


def test_conv2d_non_square_kernel_stride_pad_match_per_axis_formula():
    x, W = randn(2, 3, 9, 8), randn(4, 3, 3, 2)
    y = F.conv2d(x, W, stride=(2, 3), pad=(1, 0))
    assert y.shape == (2, 4, (9 + 2 - 3) // 2 + 1, (8 - 2) // 3 + 1)


def test_conv2d_accepts_numpy_ints_and_lists_for_pairs():
    x, W = randn(1, 2, 5, 5), randn(3, 2, 3, 3)
    expected = F.conv2d(x, W, stride=1, pad=1).data
    got = F.conv2d(x, W, stride=np.int64(1), pad=[1, 1]).data
    np.testing.assert_array_equal(got, expected)


def test_groups_equal_separate_convolutions_concatenated():
    x, W = randn(2, 4, 6, 6), randn(6, 2, 3, 3)
    y = F.conv2d(x, W, pad=1, groups=2).data
    first = F.conv2d(x[:, :2], W[:3], pad=1).data
    second = F.conv2d(x[:, 2:], W[3:], pad=1).data
    np.testing.assert_allclose(y, np.concatenate([first, second], axis=1), rtol=1e-12)


def test_dilated_kernel_equals_zero_stuffed_kernel():
    x, W = randn(1, 2, 9, 9), randn(3, 2, 3, 3)
    stuffed = np.zeros((3, 2, 5, 5))
    stuffed[:, :, ::2, ::2] = W
    np.testing.assert_allclose(F.conv2d(x, W, pad=1, dilation=2).data,
                               F.conv2d(x, stuffed, pad=1).data, rtol=1e-12)


def test_conv2d_simple_and_conv1d_agree_with_conv2d():
    x, W, b = randn(2, 3, 6, 5), randn(4, 3, 3, 2), randn(4)
    np.testing.assert_allclose(F.conv2d_simple(x, W, b, stride=2, pad=1).data,
                               F.conv2d(x, W, b, stride=2, pad=1).data, rtol=1e-12)
    x1, W1 = randn(2, 3, 10), randn(4, 3, 3)
    y1 = F.conv1d(x1, W1, b, stride=2, pad=1, dilation=2)
    y2 = F.conv2d(x1[:, :, None], W1[:, :, None], b, stride=(1, 2), pad=(0, 1),
                  dilation=(1, 2))
    assert y1.shape == (2, 4, 4)
    np.testing.assert_allclose(y1.data, y2.data[:, :, 0], rtol=1e-12)


def test_deconv2d_is_the_transpose_of_conv2d():
    """<conv2d(x, W), y> == <x, deconv2d(y, W)> for every stride, pad, dilation, groups."""
    for stride, pad, dilation, groups in [(1, 0, 1, 1), (2, 1, 1, 1), (3, 2, 2, 2)]:
        x, W = randn(2, 4, 11, 10), randn(6, 4 // groups, 3, 2)
        y = F.conv2d(x, W, stride=stride, pad=pad, dilation=dilation, groups=groups).data
        c = randn(*y.shape)
        back = F.deconv2d(c, W, stride=stride, pad=pad, outsize=x.shape[2:],
                          dilation=dilation, groups=groups).data
        assert back.shape == x.shape
        np.testing.assert_allclose(np.sum(y * c), np.sum(x * back), rtol=1e-10)


def test_deconv2d_output_size_and_outsize():
    x, W = randn(1, 3, 4, 5), randn(3, 2, 3, 3)
    assert F.deconv2d(x, W, stride=2, pad=1).shape == (1, 2, 7, 9)  # s(H-1) + k - 2p
    assert F.deconv2d(x, W, stride=2, pad=1, outsize=(8, 10)).shape == (1, 2, 8, 10)
    with pytest.raises(ShapeError, match="outsize"):
        F.deconv2d(x, W, stride=2, pad=1, outsize=(9, 10))


def test_deconv2d_outsize_only_appends_rows_and_columns():
    x, W = randn(1, 2, 3, 3), randn(2, 2, 3, 3)
    small = F.deconv2d(x, W, stride=2, pad=1).data
    large = F.deconv2d(x, W, stride=2, pad=1, outsize=(6, 6)).data
    np.testing.assert_allclose(large[:, :, :5, :5], small, rtol=1e-12)


def test_conv2d_output_is_a_channel_major_view_that_behaves_like_any_array():
    """y is laid out (OC, N, H, W) in memory (one matrix product for the whole batch; with
    stride 1 each row also carries the padded width's spare columns)."""
    x, W = randn(2, 3, 4, 5), randn(4, 3, 3, 3)
    y = F.conv2d(x, W, pad=1)
    assert y.data.strides[1] > y.data.strides[0] > y.data.strides[2] > y.data.strides[3]
    assert F.conv2d(x, W, stride=2).data.transpose(1, 0, 2, 3).flags.c_contiguous
    expected = F.conv2d(x, W, pad=1).data.copy()
    np.testing.assert_array_equal(F.reshape(y, (2, -1)).data, expected.reshape(2, -1))
    np.testing.assert_array_equal((y * 2).data, expected * 2)


# -- im2col / col2im ---------------------------------------------------------------------------
def test_im2col_shapes_follow_dezero():
    x = randn(2, 3, 7, 6)
    assert im2col_array(x, 3, 2, 1, to_matrix=False).shape == (2, 3, 3, 3, 4, 3)
    assert im2col_array(x, 3, 2, 1).shape == (2 * 4 * 3, 3 * 9)
    assert F.im2col(x, (2, 3), 1, 0).shape == (2 * 6 * 4, 3 * 6)


def test_im2col_matrix_rows_are_patches_in_n_oh_ow_order():
    x = np.arange(2 * 2 * 4 * 4, dtype=np.float64).reshape(2, 2, 4, 4)
    col = im2col_array(x, 2, 2, 0)
    # row (n=1, oh=1, ow=0) holds channel 0's then channel 1's 2x2 patch at (2, 0)
    expected = np.concatenate([x[1, 0, 2:4, 0:2].ravel(), x[1, 1, 2:4, 0:2].ravel()])
    np.testing.assert_array_equal(col[1 * 4 + 1 * 2 + 0], expected)


def test_im2col_array_returns_a_fresh_array():
    x = randn(1, 1, 3, 3)
    col = im2col_array(x, 1, 1, 0, to_matrix=False)
    col[...] = 0.0
    assert np.all(x != 0.0)


@pytest.mark.parametrize("kernel, stride, pad, dilation, to_matrix", [
    (3, 1, 1, 1, True), (3, 2, 1, 1, False), ((2, 3), (2, 1), (1, 0), 1, True),
    (3, 1, 2, 2, False), (2, 3, 0, 1, True),
])
def test_im2col_and_col2im_are_adjoint(kernel, stride, pad, dilation, to_matrix):
    """<im2col(x), c> == <x, col2im(c)>: col2im is exactly im2col's transpose."""
    x = randn(2, 3, 7, 8)
    col = im2col_array(x, kernel, stride, pad, to_matrix, dilation=dilation)
    c = randn(*col.shape)
    back = col2im_array(c, x.shape, kernel, stride, pad, to_matrix, dilation=dilation)
    assert back.shape == x.shape
    np.testing.assert_allclose(np.sum(col * c), np.sum(x * back), rtol=1e-10)


def test_col2im_counts_overlaps():
    ones = im2col_array(np.ones((1, 1, 4, 4)), 3, 1, 1)
    counts = col2im_array(ones, (1, 1, 4, 4), 3, 1, 1)
    # interior pixels are covered by 9 windows, corners by 4 (padding is not counted)
    assert counts[0, 0, 1, 1] == 9 and counts[0, 0, 0, 0] == 4 and counts[0, 0, 0, 1] == 6


def test_im2col_variable_gradient_is_col2im():
    x = Variable(randn(1, 2, 4, 4))
    col = F.im2col(x, 3, 1, 1)
    col.backward()
    expected = col2im_array(np.ones(col.shape), x.shape, 3, 1, 1)
    np.testing.assert_allclose(x.grad.data, expected)


# -- higher-order gradients ----------------------------------------------------------------------
def _third_order_check(op, x_shape, w_shape, **kwargs):
    """d/dW <d/dx <d/dW L, v>, u> for L = sum(op(x, W)^2 * w) against central differences."""
    x0, W0 = randn(*x_shape), randn(*w_shape)
    y_shape = op(x0, W0, **kwargs).shape
    weight, v, u, direction = randn(*y_shape), randn(*w_shape), randn(*x_shape), randn(*w_shape)

    def second(W_data, keep_graph):
        x, W = Variable(x0), Variable(W_data)
        loss = (op(x, W, **kwargs) ** 2 * weight).sum()
        loss.backward(create_graph=True)
        gW = W.grad
        x.cleargrad()
        W.cleargrad()
        (gW * v).sum().backward(create_graph=True)
        return (x.grad * u).sum(), W

    total, W = second(W0, True)
    W.cleargrad()
    total.backward(create_graph=True)
    analytic = float(np.sum(W.grad.data * direction))
    eps = 1e-5
    plus = float(second(W0 + eps * direction, False)[0].data)
    minus = float(second(W0 - eps * direction, False)[0].data)
    numeric = (plus - minus) / (2 * eps)
    assert np.isclose(analytic, numeric, rtol=1e-5, atol=1e-7), (analytic, numeric)
    assert analytic != 0.0


def test_conv2d_third_order_gradient():
    """DeZero bug 6: Conv2DGradW.backward used a weakref and raised TypeError."""
    _third_order_check(F.conv2d, (2, 2, 5, 4), (3, 2, 3, 2), stride=2, pad=1)


def test_conv2d_third_order_gradient_with_groups_and_dilation():
    _third_order_check(F.conv2d, (1, 4, 6, 6), (4, 2, 2, 2), pad=1, dilation=2, groups=2)


def test_deconv2d_third_order_gradient():
    _third_order_check(F.deconv2d, (2, 2, 3, 3), (2, 3, 3, 3), stride=2, pad=1)


def test_conv2d_gradients_skip_constant_inputs():
    x, W, b = randn(2, 3, 5, 5), Variable(randn(4, 3, 3, 3)), Variable(randn(4))
    y = F.conv2d(x, W, b, pad=1)  # x is a plain array: the input batch, no gradient wanted
    y.backward()
    expected = F.conv2d(Variable(x), Variable(W.data), Variable(b.data), pad=1)
    expected.backward()
    assert W.grad.shape == W.shape and b.grad.shape == (4,)
    np.testing.assert_allclose(b.grad.data, np.full(4, 2 * 5 * 5.0))
    creator = expected.creator
    assert isinstance(creator, FC.Conv2d)


def test_max_pooling_gradient_goes_to_the_first_maximum_only():
    x = Variable(np.array([[[[1.0, 3.0], [3.0, 2.0]]]]))
    y = F.pooling(x, 2, 2)
    y.backward()
    assert y.data.item() == 3.0
    np.testing.assert_array_equal(x.grad.data, [[[[0.0, 1.0], [0.0, 0.0]]]])


def test_max_pooling_second_order_uses_the_stored_argmax():
    """d/dgy of the scatter is the gather at the same argmax (Pooling2DWithIndexes)."""
    x = Variable(randn(1, 2, 4, 4))
    gy = Variable(randn(1, 2, 2, 2))
    y = F.pooling(x, 2, 2)
    (y * gy).sum().backward(create_graph=True)
    gx = x.grad
    probe = randn(*x.shape)
    gy.cleargrad()
    (gx * probe).sum().backward()
    # gather of the probe at the argmax == pooling's choice applied to the probe
    indexes = y.creator.indexes.reshape(1, 2, 2, 2)
    windows = probe.reshape(1, 2, 2, 2, 2, 2).transpose(0, 1, 2, 4, 3, 5).reshape(1, 2, 2, 2, 4)
    expected = np.take_along_axis(windows, indexes[..., None].astype(np.intp), -1)[..., 0]
    np.testing.assert_allclose(gy.grad.data, expected)


# -- pooling semantics -------------------------------------------------------------------------
def test_max_pooling_pads_with_minus_infinity():
    x = -1.0 - np.abs(randn(1, 1, 3, 3))
    y = F.pooling(x, 3, 1, 1)
    assert np.all(y.data < 0)  # zero padding would make every window's max 0
    np.testing.assert_allclose(y.data[0, 0, 0, 0], x[0, 0, :2, :2].max())


def test_average_pooling_counts_padding_as_zeros():
    y = F.average_pooling(np.ones((1, 1, 2, 2)), 2, 1, 1)
    np.testing.assert_allclose(y.data[0, 0], [[0.25, 0.5, 0.25], [0.5, 1.0, 0.5],
                                              [0.25, 0.5, 0.25]])
    z = F.average_pooling(np.ones((1, 1, 2, 2)), 2, 1, 1, count_include_pad=False)
    np.testing.assert_allclose(z.data, np.ones((1, 1, 3, 3)))


def test_average_pooling_non_square_kernel():
    """DeZero bug 7: AveragePooling swapped KH and KW in backward."""
    x = Variable(np.arange(2 * 6, dtype=np.float64).reshape(1, 1, 2, 6))
    y = F.average_pooling(x, (2, 3), (2, 3))
    np.testing.assert_allclose(y.data, [[[[(0 + 1 + 2 + 6 + 7 + 8) / 6,
                                           (3 + 4 + 5 + 9 + 10 + 11) / 6]]]])
    y.backward()
    np.testing.assert_allclose(x.grad.data, np.full((1, 1, 2, 6), 1 / 6))


@pytest.mark.parametrize("H, K, S, P, floor_size, ceil_size", [
    (6, 3, 2, 0, 2, 3), (7, 3, 2, 1, 4, 4), (5, 2, 2, 0, 2, 3), (6, 2, 2, 1, 4, 4),
])
def test_ceil_mode_output_sizes(H, K, S, P, floor_size, ceil_size):
    x = randn(1, 1, H, H)
    for fn in (F.pooling, F.average_pooling):
        assert fn(x, K, S, P).shape[2] == floor_size
        assert fn(x, K, S, P, ceil_mode=True).shape[2] == ceil_size


@pytest.mark.parametrize("fn", [F.pooling, F.average_pooling])
def test_pooling_of_channel_major_input_matches_contiguous(fn):
    """conv2d returns channel-major views; pooling's gradient keeps that layout."""
    data = randn(3, 4, 7, 6)
    channel_major = np.ascontiguousarray(data.transpose(1, 0, 2, 3)).transpose(1, 0, 2, 3)
    results = []
    for array in (data, channel_major):
        x = Variable(array)
        y = fn(x, 3, 2, 1, ceil_mode=True)
        (y * np.arange(y.size).reshape(y.shape)).sum().backward()
        results.append((y.data, x.grad.data))
    np.testing.assert_array_equal(results[0][0], results[1][0])
    np.testing.assert_array_equal(results[0][1], results[1][1])
    assert results[1][1].strides[1] > results[1][1].strides[0]


def test_max_pooling_gradient_is_zero_outside_every_window():
    x = Variable(randn(2, 3, 5, 5))
    F.pooling(x, 2, 2).backward()  # windows cover rows/columns 0-3 only
    assert np.all(x.grad.data[:, :, 4, :] == 0) and np.all(x.grad.data[:, :, :, 4] == 0)
    np.testing.assert_array_equal(x.grad.data[:, :, :4, :4].reshape(2, 3, 2, 2, 2, 2)
                                  .sum(axis=(3, 5)), np.ones((2, 3, 2, 2)))


def test_max_pool2d_defaults_stride_to_kernel_size():
    x = randn(2, 3, 6, 6)
    np.testing.assert_array_equal(F.max_pool2d(x, 2).data, F.pooling(x, 2, 2).data)
    assert F.pooling(x, 2).shape == (2, 3, 5, 5)  # DeZero's default stride is 1


def test_adaptive_avg_pool2d():
    x = randn(2, 3, 5, 7)
    np.testing.assert_allclose(F.adaptive_avg_pool2d(x, 1).data,
                               x.mean(axis=(2, 3), keepdims=True), rtol=1e-12, atol=1e-15)
    y = F.adaptive_avg_pool2d(x, (2, 3)).data
    np.testing.assert_allclose(y[:, :, 0, 0], x[:, :, 0:3, 0:3].mean(axis=(2, 3)))
    np.testing.assert_allclose(y[:, :, 1, 2], x[:, :, 2:5, 4:7].mean(axis=(2, 3)))
    assert F.adaptive_avg_pool2d(x, (None, 2)).shape == (2, 3, 5, 2)
    np.testing.assert_allclose(F.adaptive_avg_pool2d(x, (5, 7)).data, x)


def test_float32_stays_float32_through_the_family():
    x = Variable(randn(2, 4, 6, 6, dtype=np.float32))
    W = Variable(randn(4, 2, 3, 3, dtype=np.float32))
    b = Variable(randn(4, dtype=np.float32))
    y = F.conv2d(x, W, b, pad=1, groups=2)
    y = F.pooling(y, 2, 2)
    y = F.deconv2d(y, Variable(randn(4, 2, 2, 2, dtype=np.float32)), stride=2)
    y = F.average_pooling(y, 3, 1, 1, ceil_mode=True, count_include_pad=False)
    y = F.adaptive_avg_pool2d(y, (4, 5))
    assert y.dtype == np.float32
    y.backward()
    for v in (x, W, b):
        assert v.grad.dtype == np.float32


def test_scratch_buffers_are_per_thread():
    """Temporaries live in per-thread scratch buffers: concurrent convolutions agree with
    serial ones."""
    import threading

    cases = [(randn(4, 3, 9, 9, dtype=np.float32), randn(5, 3, 3, 3, dtype=np.float32))
             for _ in range(2)]

    def grads(x_data, w_data):
        x, W = Variable(x_data), Variable(w_data)
        (F.conv2d(x, W, pad=1) ** 2).sum().backward()
        return x.grad.data.copy(), W.grad.data.copy()

    expected = [grads(*case) for case in cases]
    results = [[], []]

    def worker(i):
        for _ in range(20):
            results[i].append(grads(*cases[i]))

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i in range(2):
        for gx, gW in results[i]:
            np.testing.assert_allclose(gx, expected[i][0], rtol=1e-5, atol=1e-5)
            np.testing.assert_allclose(gW, expected[i][1], rtol=1e-5, atol=1e-5)


# -- errors ------------------------------------------------------------------------------------
def test_errors_name_the_op_and_the_shapes():
    x, W = randn(2, 3, 5, 5), randn(4, 2, 3, 3)
    with pytest.raises(ShapeError, match=r"conv2d.*\(4, 2, 3, 3\).*\(2, 3, 5, 5\)"):
        F.conv2d(x, W)
    with pytest.raises(ShapeError, match="conv2d.*4-D"):
        F.conv2d(randn(3, 5, 5), randn(4, 3, 3, 3))
    with pytest.raises(ShapeError, match=r"conv2d: b has shape \(3,\)"):
        F.conv2d(x, randn(4, 3, 3, 3), randn(3))
    with pytest.raises(ShapeError, match="does not fit"):
        F.conv2d(randn(1, 3, 2, 2), randn(4, 3, 3, 3))
    with pytest.raises(DTypeError, match="conv2d: x must be a floating-point"):
        F.conv2d(np.ones((1, 3, 5, 5), dtype=np.int64), randn(4, 3, 3, 3))
    with pytest.raises(ShapeError, match="deconv2d"):
        F.deconv2d(x, randn(4, 2, 3, 3))
    with pytest.raises(ShapeError, match="conv1d.*3-D"):
        F.conv1d(x, W)
    with pytest.raises(ShapeError, match="pooling.*4-D"):
        F.pooling(randn(3, 4, 4), 2)
    with pytest.raises(DTypeError, match="average_pooling"):
        F.average_pooling(np.ones((1, 1, 4, 4), dtype=np.int32), 2)
    with pytest.raises(ShapeError, match="col2im"):
        col2im_array(randn(5, 27), (1, 3, 4, 4), 3, 1, 1)


def test_functions_conv_has_dezeros_names():
    dezero_names = ["conv2d", "deconv2d", "conv2d_simple", "pooling", "pooling_simple",
                    "average_pooling", "im2col", "col2im", "im2col_array", "col2im_array",
                    "Conv2d", "Deconv2d", "Conv2DGradW", "Pooling", "Pooling2DGrad",
                    "Pooling2DWithIndexes", "AveragePooling", "Im2col", "Col2im"]
    for name in dezero_names:
        assert hasattr(FC, name), name
    for name in ["conv2d", "deconv2d", "conv2d_simple", "im2col", "col2im", "pooling_simple",
                 "pooling", "average_pooling"]:
        assert getattr(F, name) is getattr(FC, name)


# -- empty batches and bad hyper-parameters ---------------------------------------------------
@pytest.mark.parametrize("options", [{"pad": 1}, {"stride": 2}, {"dilation": 2, "pad": 2},
                                     {"groups": 2}])
def test_conv2d_of_an_empty_batch_is_an_empty_output_with_zero_weight_gradients(options):
    """PyTorch's rule: batch 0 gives (0, OC, OH, OW); gW and gb are 0, gx is empty."""
    torch = pytest.importorskip("torch")
    groups = options.get("groups", 1)
    x = Variable(np.zeros((0, 4, 7, 6), np.float32))
    W = Variable(randn(6, 4 // groups, 3, 3, dtype=np.float32))
    b = Variable(np.ones(6, np.float32))
    y = F.conv2d(x, W, b, **options)
    torch_options = {"padding": options.get("pad", 0), "stride": options.get("stride", 1),
                     "dilation": options.get("dilation", 1), "groups": groups}
    expected = torch.conv2d(torch.zeros(0, 4, 7, 6), torch.tensor(W.data), **torch_options)
    assert y.shape == tuple(expected.shape) and y.dtype == np.float32
    (y * y).sum().backward(create_graph=True)
    assert x.grad.shape == x.shape
    np.testing.assert_array_equal(W.grad.data, np.zeros(W.shape))
    np.testing.assert_array_equal(b.grad.data, np.zeros(6))
    assert W.grad.dtype == np.float32
    gW = W.grad
    W.cleargrad()
    gW.sum().backward()  # second order through the empty batch
    np.testing.assert_array_equal(W.grad.data, np.zeros(W.shape))


def test_deconv2d_conv1d_im2col_of_an_empty_batch():
    y = F.deconv2d(Variable(np.zeros((0, 3, 5, 5))), Variable(randn(3, 4, 3, 3)), stride=2)
    assert y.shape == (0, 4, 11, 11)
    assert F.conv1d(np.zeros((0, 3, 5)), np.ones((4, 3, 3))).shape == (0, 4, 3)
    assert F.conv2d_simple(np.zeros((0, 3, 5, 5)), np.ones((4, 3, 3, 3))).shape == (0, 4, 3, 3)
    assert F.im2col(np.zeros((0, 3, 5, 5)), 3).shape == (0, 27)


@pytest.mark.parametrize("fn, match", [
    (lambda: F.conv2d(np.zeros((1, 3, 5, 5)), np.ones((4, 3, 3, 3)), stride=0),
     r"conv2d: stride must be >= 1 in both directions, got stride=\(0, 0\)"),
    (lambda: F.conv2d(np.zeros((1, 3, 5, 5)), np.ones((4, 3, 3, 3)), pad=(0, -1)),
     r"conv2d: pad must be >= 0 in both directions, got pad=\(0, -1\)"),
    (lambda: F.deconv2d(np.zeros((1, 3, 5, 5)), np.ones((3, 4, 3, 3)), dilation=0),
     r"deconv2d: dilation must be >= 1 in both directions, got dilation=\(0, 0\)"),
    (lambda: F.conv2d(np.zeros((1, 4, 5, 5)), np.ones((4, 2, 3, 3)), groups=0),
     r"conv2d: groups must be a positive int, got 0"),
])
def test_bad_convolution_hyper_parameters_name_the_op_and_the_value(fn, match):
    with pytest.raises(ValueError, match=match):
        fn()


@pytest.mark.parametrize("fn, match", [
    (lambda: F.im2col(np.ones((1, 2, 4, 4)), 0),
     r"^im2col: kernel must be >= 1 in both directions, got kernel=\(0, 0\)"),
    (lambda: F.im2col(np.ones((1, 2, 4, 4)), 2, stride=(1, 0)),
     r"^im2col: stride must be >= 1 in both directions, got stride=\(1, 0\)"),
    (lambda: F.col2im(np.zeros((9, 8)), (1, 2, 4, 4), 2, stride=0),
     r"^col2im: stride must be >= 1 in both directions, got stride=\(0, 0\)"),
    (lambda: im2col_array(np.ones((1, 2, 4, 4)), (2, 2), (0, 0), (0, 0)),
     r"^im2col: stride must be >= 1"),  # was a ZeroDivisionError in the output size
])
def test_im2col_col2im_refuse_empty_kernels_and_zero_strides(fn, match):
    with pytest.raises(ValueError, match=match):
        fn()
