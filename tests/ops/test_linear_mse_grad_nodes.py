"""The Grad nodes of linear and mean_squared_error (``LinearGrad``, ``MeanSquaredErrorGrad``).

``Linear.backward`` runs one ``LinearGrad`` node for a 2-D x (gx, gW, gb) instead of two
Transposes, two MatMuls and a SumTo; ``MeanSquaredError.backward`` one
``MeanSquaredErrorGrad`` instead of a Sub, a Mul and a MulConstant. Pinned here: the first
derivatives are the unfused ones bit for bit; the higher ones are MSE's bit for bit against
a constant target and linear's to rounding (gy's three terms are summed in the node); both
nodes pass central differences as ops of their own; they are the only nodes that run
without create_graph; and second derivatives match PyTorch.
"""

from __future__ import annotations

import numpy as np
import pytest

import zerograd
import zerograd.functions as F
from zerograd import Function, Variable
from zerograd.ops.linalg import LinearGrad
from zerograd.ops.loss import MeanSquaredErrorGrad
from zerograd.utils import gradient_check


class UnfusedLinear(Function):
    """linear with the backward it had before LinearGrad (2-D x, bias (out,))."""

    retain_inputs = (0, 1)
    retain_outputs = ()

    def forward(self, x, W, b=None):
        y = x @ W
        return y if b is None else y + b

    def backward(self, gy):
        x, W = self.inputs[0], self.inputs[1]
        gx = F.matmul(gy, F.transpose(W)) if x.requires_grad else None
        gW = F.matmul(F.transpose(x), gy) if W.requires_grad else None
        if len(self.inputs) == 2:
            return gx, gW
        b = self.inputs[2]
        return gx, gW, (F.sum_to(gy, b.shape) if b.requires_grad else None)


class UnfusedMeanSquaredError(Function):
    """mean_squared_error with the backward it had before MeanSquaredErrorGrad."""

    retain_inputs = (0, 1)
    retain_outputs = ()

    def forward(self, x0, x1):
        diff = x0 - x1
        self.batch = len(diff)
        return (diff * diff).sum() / diff.dtype.type(self.batch)

    def backward(self, gy):
        x0, x1 = self.inputs
        gx0 = gy * (x0 - x1) * (2.0 / self.batch)
        return gx0, (-gx0 if x1.requires_grad else None)


def _linear_case(dtype, rng_seed=0):
    rng = np.random.default_rng(rng_seed)
    x = rng.standard_normal((5, 4)).astype(dtype)
    W = rng.standard_normal((4, 3)).astype(dtype)
    b = rng.standard_normal(3).astype(dtype)
    gy = rng.standard_normal((5, 3)).astype(dtype)
    return x, W, b, gy


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("with_bias", [True, False])
@pytest.mark.parametrize("x_is_constant", [True, False])
def test_linear_first_derivatives_are_the_unfused_ones_bit_for_bit(dtype, with_bias,
                                                                   x_is_constant):
    x0, W0, b0, gy = _linear_case(dtype)

    def grads(op):
        x = x0 if x_is_constant else Variable(x0)
        W, b = Variable(W0), Variable(b0)
        args = (x, W, b) if with_bias else (x, W)
        wrt = [a for a in args if isinstance(a, Variable)]
        return zerograd.autograd.grad(op()(*args), wrt, grad_outputs=gy)

    fused = grads(zerograd.ops.linalg.Linear)
    unfused = grads(UnfusedLinear)
    assert len(fused) == len(unfused) == 1 + with_bias + (not x_is_constant)
    for a, b in zip(fused, unfused, strict=True):
        assert a.dtype == dtype
        np.testing.assert_array_equal(a.data, b.data)


def _second_order(op, x0, W0, b0):
    """d/d(x, W, b) of h = sum(gx^2) + sum(gW^2) + sum(gb * gb * 3), where (gx, gW, gb) are
    the first derivatives of sum(sin(linear(x, W, b)))."""
    x, W, b = Variable(x0), Variable(W0), Variable(b0)
    y = F.sum(F.sin(op()(x, W, b)))
    gx, gW, gb = zerograd.autograd.grad(y, [x, W, b], create_graph=True)
    h = F.sum(gx * gx) + F.sum(gW * gW) + F.sum(gb * gb * 3.0)
    return [g.data for g in zerograd.autograd.grad(h, [x, W, b])]


def test_linear_second_derivatives_agree_with_the_unfused_ones():
    x0, W0, b0, _ = _linear_case(np.float64, 1)
    fused = _second_order(zerograd.ops.linalg.Linear, x0, W0, b0)
    unfused = _second_order(UnfusedLinear, x0, W0, b0)
    for name, a, b in zip("xWb", fused, unfused, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-13, err_msg=name)


def test_linear_second_derivatives_match_torch():
    torch = pytest.importorskip("torch")
    x0, W0, b0, _ = _linear_case(np.float64, 2)
    ours = _second_order(zerograd.ops.linalg.Linear, x0, W0, b0)
    x, W, b = (torch.tensor(a, requires_grad=True) for a in (x0, W0, b0))
    y = torch.sin(x @ W + b).sum()
    gx, gW, gb = torch.autograd.grad(y, [x, W, b], create_graph=True)
    h = (gx * gx).sum() + (gW * gW).sum() + (gb * gb * 3.0).sum()
    theirs = torch.autograd.grad(h, [x, W, b])
    for name, a, t in zip("xWb", ours, theirs, strict=True):
        np.testing.assert_allclose(a, t.numpy(), rtol=1e-12, atol=1e-12, err_msg=name)


@pytest.mark.parametrize("wants", [(True, True, True), (False, True, True),
                                   (True, False, False), (False, False, True)])
def test_linear_grad_passes_central_differences(wants):
    x0, W0, _, gy0 = _linear_case(np.float64, 3)
    assert gradient_check(lambda x, W, gy: LinearGrad(wants)(x, W, gy),
                          Variable(x0), Variable(W0), Variable(gy0))


def _calls(monkeypatch) -> list:
    """From now on, the class name of every Function called, in order."""
    ran: list = []
    original = Function.__call__

    def spy(self, *inputs):
        ran.append(type(self).__name__)
        return original(self, *inputs)

    monkeypatch.setattr(Function, "__call__", spy)
    return ran


def test_linear_backward_runs_no_node_without_create_graph_and_one_with_it(monkeypatch):
    # Without create_graph, Linear.backward_arrays runs LinearGrad's forward directly.
    x0, W0, b0, gy = _linear_case(np.float32)
    x, W, b = Variable(x0), Variable(W0), Variable(b0)
    y = F.linear(x, W, b)
    ran = _calls(monkeypatch)
    y.grad = Variable(gy)
    y.backward()
    assert ran == []
    assert x.grad.creator is None  # not recorded: no create_graph
    np.testing.assert_array_equal(b.grad.data, gy.sum(axis=0))
    first = [v.grad.data.copy() for v in (x, W, b)]
    for v in (x, W, b):
        v.cleargrad()
    y.grad = Variable(gy)
    y.backward(create_graph=True)
    assert ran == ["LinearGrad"]
    for v, g in zip((x, W, b), first):
        np.testing.assert_array_equal(v.grad.data, g)


def test_linear_of_a_batched_input_keeps_the_op_by_op_backward():
    # (..., in) inputs and other bias shapes are not LinearGrad's: checked by the op harness
    # and tests/ops/test_linear_step.py; here only that their gradient is not one node.
    x = Variable(np.ones((2, 3, 4)))
    W = Variable(np.ones((4, 2)))
    y = F.linear(x, W)
    y.backward(create_graph=True)
    assert type(W.grad.creator) is not LinearGrad


# -- mean squared error ----------------------------------------------------------------------
def _mse_derivatives(op, x0, t0, order, t_is_variable):
    """[d^k/dx^k of mse(x * x, t) for k = 1..order], with t = sin(x) when it is a Variable
    (so that x1 wants a gradient too)."""
    x = Variable(x0.copy())
    t = F.sin(x) if t_is_variable else t0
    y = op()(x * x, t)
    out = []
    for _ in range(order):
        (g,) = zerograd.autograd.grad(y, [x], create_graph=True)
        out.append(g.data.copy())
        y = F.sum(g * np.linspace(0.5, 1.5, x0.size).reshape(x0.shape).astype(x0.dtype))
    return out


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("t_is_variable", [False, True])
def test_mse_derivatives_are_the_unfused_ones_bit_for_bit(dtype, t_is_variable):
    x0 = np.linspace(-1.5, 2.0, 8).reshape(4, 2).astype(dtype)
    t0 = np.cos(x0)
    fused = _mse_derivatives(zerograd.ops.loss.MeanSquaredError, x0, t0, 4, t_is_variable)
    unfused = _mse_derivatives(UnfusedMeanSquaredError, x0, t0, 4, t_is_variable)
    for k, (a, b) in enumerate(zip(fused, unfused, strict=True), start=1):
        assert a.dtype == dtype
        if t_is_variable:  # x reaches both inputs: the engine adds its terms in another order
            np.testing.assert_allclose(a, b, rtol=1e-13 if dtype == np.float64 else 1e-5,
                                       err_msg=f"order {k}")
        else:
            np.testing.assert_array_equal(a, b, err_msg=f"order {k}")


def test_mse_second_derivative_matches_torch():
    torch = pytest.importorskip("torch")
    x0 = np.linspace(-1.5, 2.0, 8).reshape(4, 2)
    ours = _mse_derivatives(zerograd.ops.loss.MeanSquaredError, x0, None, 2, True)
    x = torch.tensor(x0, requires_grad=True)
    y = ((x * x - torch.sin(x)) ** 2).sum() / 4
    (g,) = torch.autograd.grad(y, [x], create_graph=True)
    (g2,) = torch.autograd.grad((g * torch.tensor(np.linspace(0.5, 1.5, 8).reshape(4, 2))).sum(),
                                [x])
    np.testing.assert_allclose(ours[0], g.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(ours[1], g2.numpy(), rtol=1e-12)


def test_mse_grad_passes_central_differences():
    rng = np.random.default_rng(4)
    x0, x1 = rng.standard_normal((2, 3, 2))
    gy = np.array(0.7)
    assert gradient_check(lambda a, b, g: MeanSquaredErrorGrad(2.0 / 3)(a, b, g),
                          Variable(x0), Variable(x1), Variable(gy))


def test_mse_backward_runs_no_node_without_create_graph_and_one_with_it(monkeypatch):
    x = Variable(np.array([[1.0], [2.0], [4.0]], np.float32))
    t = np.array([[0.5], [2.5], [3.0]], np.float32)
    loss = F.mean_squared_error(x, t)
    ran = _calls(monkeypatch)
    loss.backward()
    assert ran == []  # MeanSquaredError.backward_arrays: MeanSquaredErrorGrad's forward
    np.testing.assert_array_equal(x.grad.data, (x.data - t) * np.float32(2.0 / 3))
    assert x.grad.dtype == np.float32
    x.cleargrad()
    loss.backward(create_graph=True)
    assert ran == ["MeanSquaredErrorGrad"]
