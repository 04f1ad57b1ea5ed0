"""Convolution and pooling against PyTorch in float64: values and every input's gradient.

Skipped when torch is not installed. PyTorch's conv_transpose2d takes its weight as
(C_in, C_out/groups, KH, KW), the same layout as zerograd's (and DeZero's) deconv2d.
"""

import numpy as np
import pytest

import zerograd.functions as F
from zerograd import Variable

torch = pytest.importorskip("torch")
TF = torch.nn.functional
pytestmark = pytest.mark.torch


def _compare(zg_fn, torch_fn, arrays, rtol=1e-10, atol=1e-12):
    """Run both on the same float64 inputs with a random upstream gradient; compare."""
    zg_inputs = [Variable(a) for a in arrays]
    y = zg_fn(*zg_inputs)
    t_inputs = [torch.tensor(a, requires_grad=True) for a in arrays]
    yt = torch_fn(*t_inputs)
    assert y.shape == tuple(yt.shape)
    np.testing.assert_allclose(y.data, yt.detach().numpy(), rtol=rtol, atol=atol)
    gy = np.random.default_rng(7).standard_normal(y.shape)
    (y * gy).sum().backward()
    yt.backward(torch.tensor(gy))
    for i, (v, t) in enumerate(zip(zg_inputs, t_inputs)):
        np.testing.assert_allclose(v.grad.data, t.grad.numpy(), rtol=rtol, atol=atol,
                                   err_msg=f"gradient of input {i}")


def _randn(*shape, seed=0):
    return np.random.default_rng(seed + sum(shape)).standard_normal(shape)


CONV_CASES = [  # x shape, W shape, stride, pad, dilation, groups
    ((2, 3, 8, 8), (4, 3, 3, 3), 1, 1, 1, 1),
    ((2, 3, 9, 7), (5, 3, 3, 2), (2, 1), (1, 0), 1, 1),
    ((1, 4, 10, 9), (6, 2, 3, 3), 2, 2, 2, 2),
    ((2, 6, 7, 7), (6, 1, 3, 3), 1, 1, 1, 6),  # depthwise
    ((3, 2, 5, 6), (3, 2, 1, 1), 3, 0, 1, 1),
    ((2, 3, 5, 5), (4, 3, 1, 2), 1, (1, 2), 1, 1),  # pad > kernel reach: gx by scatter-add
    ((2, 2, 6, 6), (2, 2, 3, 3), 1, 2, 2, 1),  # stride 1: gx as a flipped convolution
    ((2, 1, 6, 5), (8, 1, 2, 2), 1, 1, 1, 1),  # stride 1, few input channels
]


@pytest.mark.parametrize("x_shape, w_shape, stride, pad, dilation, groups", CONV_CASES)
def test_conv2d(x_shape, w_shape, stride, pad, dilation, groups):
    arrays = [_randn(*x_shape), _randn(*w_shape), _randn(w_shape[0])]
    _compare(lambda x, W, b: F.conv2d(x, W, b, stride, pad, dilation=dilation, groups=groups),
             lambda x, W, b: TF.conv2d(x, W, b, stride, pad, dilation, groups), arrays)


DECONV_CASES = [  # x shape, W shape, stride, pad, dilation, groups, output_padding
    ((2, 3, 4, 4), (3, 2, 3, 3), 1, 0, 1, 1, 0),
    ((2, 3, 4, 5), (3, 4, 3, 3), 2, 1, 1, 1, 1),
    ((1, 4, 3, 3), (4, 3, 2, 3), (2, 3), (0, 1), 2, 2, (1, 2)),
]


@pytest.mark.parametrize("x_shape, w_shape, stride, pad, dilation, groups, output_padding",
                         DECONV_CASES)
def test_deconv2d(x_shape, w_shape, stride, pad, dilation, groups, output_padding):
    arrays = [_randn(*x_shape), _randn(*w_shape), _randn(w_shape[1] * groups)]

    def torch_fn(x, W, b):
        return TF.conv_transpose2d(x, W, b, stride, pad, output_padding, groups, dilation)

    out_shape = torch_fn(*[torch.tensor(a) for a in arrays]).shape[2:]
    _compare(lambda x, W, b: F.deconv2d(x, W, b, stride, pad, outsize=tuple(out_shape),
                                        dilation=dilation, groups=groups), torch_fn, arrays)


@pytest.mark.parametrize("stride, pad, dilation, groups", [(1, 0, 1, 1), (2, 2, 3, 2)])
def test_conv1d(stride, pad, dilation, groups):
    arrays = [_randn(2, 4, 13), _randn(6, 4 // groups, 3), _randn(6)]
    _compare(lambda x, W, b: F.conv1d(x, W, b, stride, pad, dilation, groups),
             lambda x, W, b: TF.conv1d(x, W, b, stride, pad, dilation, groups), arrays)


POOL_CASES = [  # shape, kernel, stride, pad, ceil_mode
    ((2, 3, 8, 8), 2, 2, 0, False),
    ((2, 3, 7, 9), 3, 2, 1, False),
    ((2, 3, 7, 9), 3, 2, 1, True),
    ((1, 2, 6, 7), (3, 2), (2, 3), (1, 1), True),
    ((1, 2, 5, 5), 3, 1, 1, False),
]


@pytest.mark.parametrize("shape, kernel, stride, pad, ceil_mode", POOL_CASES)
def test_max_pooling(shape, kernel, stride, pad, ceil_mode):
    size = int(np.prod(shape))
    x = np.random.default_rng(1).permutation(size).reshape(shape) / size  # no ties
    _compare(lambda v: F.pooling(v, kernel, stride, pad, ceil_mode=ceil_mode),
             lambda t: TF.max_pool2d(t, kernel, stride, pad, ceil_mode=ceil_mode), [x])


@pytest.mark.parametrize("count_include_pad", [True, False])
@pytest.mark.parametrize("shape, kernel, stride, pad, ceil_mode", POOL_CASES)
def test_average_pooling(shape, kernel, stride, pad, ceil_mode, count_include_pad):
    _compare(lambda v: F.average_pooling(v, kernel, stride, pad, ceil_mode=ceil_mode,
                                         count_include_pad=count_include_pad),
             lambda t: TF.avg_pool2d(t, kernel, stride, pad, ceil_mode=ceil_mode,
                                     count_include_pad=count_include_pad),
             [_randn(*shape)])


@pytest.mark.parametrize("shape, output_size", [
    ((2, 3, 7, 9), (3, 4)), ((2, 3, 8, 8), 4), ((1, 2, 5, 6), 1), ((1, 2, 5, 6), (4, 5)),
    ((1, 2, 3, 3), (5, 4)),  # larger than the input: bins overlap
])
def test_adaptive_avg_pool2d(shape, output_size):
    _compare(lambda v: F.adaptive_avg_pool2d(v, output_size),
             lambda t: TF.adaptive_avg_pool2d(t, output_size), [_randn(*shape)])


def test_conv2d_second_order_matches_torch():
    """Double backward: d/dx of <d loss/d W, v> through Conv2DGradW and deconv2d."""
    x0, W0 = _randn(2, 3, 6, 6), _randn(4, 3, 3, 3)
    v = _randn(4, 3, 3, 3, seed=5)
    x, W = Variable(x0), Variable(W0)
    (F.conv2d(x, W, stride=2, pad=1) ** 2).sum().backward(create_graph=True)
    gW = W.grad
    x.cleargrad()
    (gW * v).sum().backward()
    xt, Wt = torch.tensor(x0, requires_grad=True), torch.tensor(W0, requires_grad=True)
    (gWt,) = torch.autograd.grad((TF.conv2d(xt, Wt, None, 2, 1) ** 2).sum(), Wt,
                                 create_graph=True)
    (gxt,) = torch.autograd.grad((gWt * torch.tensor(v)).sum(), xt)
    np.testing.assert_allclose(x.grad.data, gxt.numpy(), rtol=1e-10, atol=1e-12)
