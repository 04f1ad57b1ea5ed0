"""PowGrad: pow's backward as one node, every order bit for bit the unfused graph's."""

from __future__ import annotations

import numpy as np
import pytest

import zerograd
import zerograd.functions as F
from zerograd import Variable
from zerograd.ops.arithmetic import PowGrad


class UnfusedPow(zerograd.Function):
    """pow as it was before PowGrad: its backward written with Pow, MulConstant and Mul."""

    retain_inputs = (0,)
    retain_outputs = ()

    def __init__(self, c) -> None:
        self.c = c

    def forward(self, x):
        return x ** self.c

    def backward(self, gy):
        (x,) = self.inputs
        if isinstance(self.c, (int, float)) and self.c == 2:
            return gy * x * 2
        return gy * (UnfusedPow(self.c - 1)(x) * self.c)


def _derivatives(make, x, orders: int):
    xv = Variable(x.copy())
    g, out = make(xv), []
    for _ in range(orders):
        xv.cleargrad()
        F.sum(g).backward(create_graph=True)
        g = xv.grad
        out.append(None if g is None else g.data.copy())
        if g is None:
            break
    return out


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("c", [2, 3, 4, 1, 0.5, 2.5, -1.5])
def test_every_order_is_the_unfused_graphs_bit_for_bit(c, dtype):
    x = np.random.default_rng(0).uniform(0.5, 2.0, (3, 4)).astype(dtype)
    fused = _derivatives(lambda v: F.pow(v, c), x, 4)
    unfused = _derivatives(lambda v: UnfusedPow(c)(v), x, 4)
    assert len(fused) == len(unfused)
    for a, b in zip(fused, unfused):
        assert (a is None and b is None) or (a.dtype == dtype and np.array_equal(a, b))


def test_the_derivatives_are_right():
    x = np.array([0.5, 1.5, 2.0])
    d1, d2, d3 = _derivatives(lambda v: F.pow(v, 3), x, 3)
    np.testing.assert_allclose(d1, 3 * x ** 2, rtol=1e-15)
    np.testing.assert_allclose(d2, 6 * x, rtol=1e-15)
    np.testing.assert_allclose(d3, np.full(3, 6.0), rtol=1e-15)
    assert _derivatives(lambda v: F.pow(v, 2), x, 3)[2] is None  # d3 x**2 = 0: no gradient


def test_a_backward_of_a_square_is_one_node():
    x = Variable(np.array(1.5))
    y = x ** 2
    y.backward(create_graph=True)
    assert type(x.grad.creator) is PowGrad
    assert x.grad.creator.inputs[0] is x and float(x.grad.data) == 3.0


def test_an_array_exponent_keeps_its_shape_rule():
    x = Variable(np.array([[1.0, 2.0], [3.0, 4.0]]))
    c = np.array([2.0, 3.0])
    F.sum(F.pow(x, c)).backward()
    np.testing.assert_allclose(x.grad.data, c * x.data ** (c - 1), rtol=1e-15)
