"""The fused backward nodes of the engine's hottest ops give every order as before.

``Sin.backward`` runs one ``SinGrad`` node (gy cos(x)) instead of a ``Cos`` and a ``Mul``,
``Pow.backward`` one ``PowGrad`` node (gy * x * 2 for a square) instead of a Pow, a
MulConstant and a Mul, and ``MulConstant.backward`` calls ``MulConstant`` directly instead of
going through the ``*`` operator (benchmarks/instr_engine.py measures what each saves). A
first-order pass runs none of them: it takes each op's ``backward_arrays``
(tests/core/test_backward_arrays.py).
Pinned here: the derivatives of every order are those of the unfused formulas, bit for bit
where the ops are the same ones in the same order, the nodes that run, and the in-place
check.
"""

from __future__ import annotations

import numpy as np
import pytest

import zerograd.functions as F
from zerograd import Function, Variable
from zerograd.errors import InPlaceError
from zerograd.ops.arithmetic import MulConstant, PowGrad
from zerograd.ops.elementwise import SinGrad
from zerograd.utils import gradient_check


class UnfusedSin(Function):
    """sin with the backward it had before SinGrad: gy * cos(x), a Cos and a Mul node."""

    retain_inputs = (0,)
    retain_outputs = ()

    def forward(self, x):
        return np.sin(x)

    def backward(self, gy):
        (x,) = self.inputs
        return gy * F.cos(x)


class UnfusedMulConstant(Function):
    """x * c with the backward it had before: gy * c through the operator."""

    retain_inputs = ()
    retain_outputs = ()

    def __init__(self, c) -> None:
        self.c = c

    def forward(self, x):
        return x * self.c

    def backward(self, gy):
        return gy * self.c


def _derivatives(fn, x0: np.ndarray, order: int) -> list:
    """[d^k/dx^k sum(w * fn(x)) for k = 1..order] with create_graph=True throughout; the
    list ends with None at the first derivative that is zero (no gradient reaches x)."""
    w = np.linspace(0.5, 1.5, x0.size).reshape(x0.shape).astype(x0.dtype)
    x = Variable(x0.copy())
    y = F.sum(fn(x) * w)
    results: list = []
    for _ in range(order):
        x.cleargrad()
        y.backward(create_graph=True)
        g = x.grad
        if g is None:
            return results + [None]
        results.append(g.data.copy())
        y = F.sum(g * w)
    return results


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sin_derivatives_are_the_unfused_ones_bit_for_bit(dtype):
    x0 = np.linspace(-2.0, 3.0, 7).astype(dtype)
    fused = _derivatives(lambda x: F.sin(x) * 1.5, x0, 4)
    unfused = _derivatives(lambda x: UnfusedSin()(x) * 1.5, x0, 4)
    for k, (a, b) in enumerate(zip(fused, unfused, strict=True), start=1):
        assert a.dtype == dtype, k
        np.testing.assert_array_equal(a, b, err_msg=f"order {k}")


def test_sin_derivatives_match_torch():
    torch = pytest.importorskip("torch")
    x0 = np.linspace(-2.0, 3.0, 7)
    ours = _derivatives(F.sin, x0, 4)
    w = torch.tensor(np.linspace(0.5, 1.5, 7))
    t = torch.tensor(x0, requires_grad=True)
    y = (torch.sin(t) * w).sum()
    for k, a in enumerate(ours, start=1):
        (g,) = torch.autograd.grad(y, t, create_graph=True)
        np.testing.assert_allclose(a, g.detach().numpy(), rtol=1e-12, atol=1e-12,
                                   err_msg=f"order {k}")
        y = (g * w).sum()
    # sin, cos, -sin, -cos, sin: the fourth derivative is sin again (times w once per order).
    np.testing.assert_allclose(ours[3], np.sin(x0) * np.linspace(0.5, 1.5, 7) ** 4,
                               rtol=1e-12)


@pytest.mark.parametrize("c", [2.5, -3, 0.5 + 1j])
def test_mul_constant_derivatives_are_the_unfused_ones(c):
    x0 = np.linspace(-1.0, 1.0, 5)
    if isinstance(c, complex):
        x0 = x0.astype(np.complex128)
    fused = _derivatives(lambda x: F.sin(x) * c * x, x0, 3)
    unfused = _derivatives(lambda x: UnfusedMulConstant(c)(UnfusedSin()(x)) * x, x0, 3)
    for k, (a, b) in enumerate(zip(fused, unfused, strict=True), start=1):
        np.testing.assert_array_equal(a, b, err_msg=f"order {k}")


def test_sin_first_order_backward_runs_no_node_and_the_next_order_one_sin_grad():
    # Without create_graph the gradient comes from Sin.backward_arrays (no node at all);
    # with it, from one SinGrad node, whose output is what x.grad receives.
    ran = []
    original = SinGrad.forward

    def spy(self, x, gy):
        ran.append(type(self).__name__)
        return original(self, x, gy)

    x = Variable(np.array([0.3, 1.2]))
    SinGrad.forward = spy
    try:
        F.sin(x).backward()
        assert ran == []
        np.testing.assert_array_equal(x.grad.data, np.cos(x.data))
        assert x.grad.creator is None  # not recorded: no create_graph
        x.cleargrad()
        F.sin(x).backward(create_graph=True)
    finally:
        SinGrad.forward = original
    assert ran == ["SinGrad"]
    np.testing.assert_array_equal(x.grad.data, np.cos(x.data))


def test_sin_grad_records_under_create_graph_and_checks_its_gradients():
    x = Variable(np.array([0.3, 1.2]))
    y = F.sin(x)
    y.backward(create_graph=True)
    assert type(x.grad.creator) is SinGrad
    # SinGrad as an op of its own: both of its inputs' gradients, against central differences.
    gradient_check(lambda a, g: SinGrad()(a, g), Variable(np.array([0.3, -1.1, 2.0])),
                   Variable(np.array([0.7, 1.5, -0.4])))


def test_sin_grad_only_computes_the_gradients_its_inputs_want():
    x = Variable(np.array([0.3, 1.2]))
    gy = Variable(np.array([2.0, -1.0]), requires_grad=False)
    gx = SinGrad()(x, gy)
    F.sum(gx).backward()
    np.testing.assert_array_equal(x.grad.data, np.ones(2) * gy.data * -np.sin(x.data))
    assert gy.grad is None


def test_an_input_of_sin_changed_in_place_is_still_caught():
    x = Variable(np.array([0.3, 1.2]), name="x")
    y = F.sin(x)
    x.data += 1.0
    with pytest.raises(InPlaceError, match='Sin\'s backward needs input 0 named "x"'):
        y.backward()


def test_sin_grad_reads_both_inputs_for_the_next_order():
    # Under create_graph the SinGrad node keeps x and gy; a write to x between the passes is
    # an error in the second backward, naming SinGrad.
    x = Variable(np.array([0.3, 1.2]), name="x")
    F.sin(x).backward(create_graph=True)
    g = x.grad
    x.data *= 2.0
    with pytest.raises(InPlaceError, match="SinGrad's backward needs input 0"):
        g.backward()


def test_mul_constant_backward_is_one_mul_constant_node():
    x = Variable(np.array([1.0, 2.0], dtype=np.float32))
    y = x * 3.0
    gy = x * 0.5  # a recorded gradient, as under create_graph
    gx = y.creator.backward(gy)
    assert type(gx.creator) is MulConstant and gx.creator.c == 3.0
    assert gx.creator.inputs[0] is gy and gx.dtype == np.float32
    np.testing.assert_array_equal(gx.data, np.array([1.5, 3.0], np.float32))


# -- pow ------------------------------------------------------------------------------------
class UnfusedPow(Function):
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


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("c", [2, 3, 4, 1, 0.5, 2.5, -1.5])
def test_pow_derivatives_are_the_unfused_ones_bit_for_bit(c, dtype):
    x = np.random.default_rng(0).uniform(0.5, 2.0, (3, 4)).astype(dtype)
    fused = _derivatives(lambda v: F.pow(v, c), x, 4)
    unfused = _derivatives(lambda v: UnfusedPow(c)(v), x, 4)
    assert len(fused) == len(unfused)
    for a, b in zip(fused, unfused):
        assert (a is None and b is None) or (a.dtype == dtype and np.array_equal(a, b))


def test_the_pow_derivatives_are_right():
    x = np.array([0.5, 1.5, 2.0])
    w = np.linspace(0.5, 1.5, 3)  # _derivatives' weights, one factor per order
    d1, d2, d3 = _derivatives(lambda v: F.pow(v, 3), x, 3)
    np.testing.assert_allclose(d1, 3 * x ** 2 * w, rtol=1e-15)
    np.testing.assert_allclose(d2, 6 * x * w ** 2, rtol=1e-15)
    np.testing.assert_allclose(d3, 6 * w ** 3, rtol=1e-15)
    assert _derivatives(lambda v: F.pow(v, 2), x, 3)[2] is None  # d3 x**2 = 0: no gradient


def test_a_backward_of_a_square_is_one_node():
    x = Variable(np.array(1.5))
    y = x ** 2
    y.backward(create_graph=True)
    assert type(x.grad.creator) is PowGrad
    assert x.grad.creator.inputs[0] is x and float(x.grad.data) == 3.0


def test_pow_with_an_array_exponent_keeps_its_shape_rule():
    x = Variable(np.array([[1.0, 2.0], [3.0, 4.0]]))
    c = np.array([2.0, 3.0])
    F.sum(F.pow(x, c)).backward()
    np.testing.assert_allclose(x.grad.data, c * x.data ** (c - 1), rtol=1e-15)
