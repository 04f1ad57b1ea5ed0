"""0-d inputs: where NumPy hands back scalars (``x > 0`` is a ``np.bool_``), not arrays.

The op harness runs every spec on 0-d inputs (``check_zero_d``); these are the cases that
were broken, with values checked against PyTorch where it is installed.
"""

import numpy as np
import pytest

import zerograd.functions as F
from zerograd import Variable
from zerograd.errors import ShapeError

torch = pytest.importorskip("torch")


def _second_derivative_through_tanh(f, x0: float) -> tuple[float, float]:
    """(d/dx, d2/dx2) of tanh(f(x)) at a 0-d x, by double backward."""
    x = Variable(np.array(x0))
    F.tanh(f(x)).backward(create_graph=True)
    gx = x.grad
    x.cleargrad()
    gx.backward()
    return float(gx.data), float(x.grad.data)


def _torch_second_derivative_through_tanh(f, x0: float) -> tuple[float, float]:
    x = torch.tensor(x0, dtype=torch.float64, requires_grad=True)
    (gx,) = torch.autograd.grad(torch.tanh(f(x)), x, create_graph=True)
    (ggx,) = torch.autograd.grad(gx, x)
    return float(gx.detach()), float(ggx)


@pytest.mark.parametrize("name, ours, theirs", [
    ("relu", F.relu, torch.relu),
    ("clip", lambda x: F.clip(x, -0.5, 0.5), lambda x: torch.clamp(x, -0.5, 0.5)),
    # torch's hardsigmoid has no double backward; the same function composed:
    ("hard_sigmoid", F.hard_sigmoid, lambda x: torch.clamp(x / 6 + 0.5, 0, 1)),
    ("leaky_relu", F.leaky_relu, lambda x: torch.nn.functional.leaky_relu(x, 0.2)),
])
@pytest.mark.parametrize("x0", [0.3, -0.2])
def test_double_backward_of_piecewise_linear_op_on_0d_input(name, ours, theirs, x0):
    got = _second_derivative_through_tanh(ours, x0)
    expected = _torch_second_derivative_through_tanh(theirs, x0)
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-15, err_msg=name)


def test_numpy_bool_operand_is_a_mask_not_a_constant():
    """``gy * np.True_`` (a 0-d mask) differentiates like ``gy * bool_array``."""
    x = Variable(np.array(1.5))
    y = x * x * np.True_ + x * np.False_
    y.backward(create_graph=True)
    gx = x.grad
    assert float(gx.data) == 3.0
    x.cleargrad()
    gx.backward()
    assert float(x.grad.data) == 2.0


@pytest.mark.parametrize("axis", [0, -1, None, (0,)])
@pytest.mark.parametrize("name", ["softmax", "log_softmax", "logsumexp"])
def test_softmax_family_treats_0d_input_as_one_element(name, axis):
    """PyTorch's rule: a 0-d input has one element along axis 0 (or -1)."""
    x = Variable(np.array(2.5, np.float32))
    y = getattr(F, name)(x, axis=axis)
    y.backward()
    t = torch.tensor(2.5, requires_grad=True)
    dim = 0 if axis is None or isinstance(axis, tuple) else axis
    ty = getattr(torch, name)(t, dim)
    ty.backward()
    assert y.shape == () and y.dtype == np.float32
    assert float(y.data) == pytest.approx(float(ty))
    assert float(x.grad.data) == pytest.approx(float(t.grad))


def test_softmax_simple_on_0d_input_is_one():
    x = Variable(np.array(-3.0))
    y = F.softmax_simple(x, axis=-1)
    y.backward()
    assert (float(y.data), float(x.grad.data)) == (1.0, 0.0)


@pytest.mark.parametrize("name", ["softmax", "softmax_simple", "log_softmax", "logsumexp"])
def test_softmax_family_refuses_other_axes_on_0d_input(name):
    with pytest.raises(ShapeError, match=rf"{name}: axis 1 is out of range for a 0-d input "
                                         r"\(shape \(\)\).*0, -1 or None"):
        getattr(F, name)(Variable(np.array(1.0)))  # DeZero's default axis=1


@pytest.mark.parametrize("name", ["sum", "prod", "max", "min"])
@pytest.mark.parametrize("axis", [0, -1])
def test_reductions_over_axis_0_of_a_0d_input(name, axis):
    """NumPy's sum/prod/max/min reduce a 0-d array's one element for axis=0 (or -1); the
    gradient follows (prod's used to fail in backward)."""
    x = Variable(np.array(1.5))
    y = getattr(F, name)(x, axis=axis)
    y.backward(create_graph=True)
    assert float(y.data) == 1.5 and y.shape == ()
    assert float(x.grad.data) == 1.0


@pytest.mark.parametrize("name", ["mean", "var", "std"])
def test_mean_var_std_over_axis_0_of_a_0d_input_name_the_op(name):
    """NumPy's mean/var/std refuse axis=0 on 0-d; the error names the op and the shape."""
    with pytest.raises(ShapeError, match=rf"{name.capitalize()}: axis 0 is out of bounds .*\(\)"):
        getattr(F, name)(Variable(np.array(1.5)), axis=0)


def test_var_with_ddof_1_of_a_0d_input_names_the_degrees_of_freedom():
    with pytest.raises(ShapeError, match=r"var: ddof=1 leaves 0 degrees of freedom"):
        F.var(Variable(np.array(1.0)), ddof=1)


def test_pad_of_a_0d_input_is_refused_by_name():
    with pytest.raises(ShapeError, match=r"pad: x is 0-d \(shape \(\)\), so it has no axis"):
        F.pad(Variable(np.array(1.0)), 1, mode="edge")


@pytest.mark.parametrize("fn, match", [
    (lambda x: F.conv2d_simple(x, np.ones((1, 1, 1, 1))), r"conv2d_simple: x must be 4-D"),
    (lambda x: F.pooling_simple(x, 2), r"pooling_simple: x must be 4-D"),
    (lambda x: F.tensordot(x, x), r"tensordot: axes=2 .* a has shape \(\) and b \(\)"),
])
def test_0d_input_to_an_op_needing_axes_names_the_op(fn, match):
    with pytest.raises(ShapeError, match=match):
        fn(Variable(np.array(1.0)))
