"""Derivatives at the points where they are not defined: the conventions zerograd chose.

Each convention is stated in the op's docstring and in docs/functions-elementwise.md, and
agrees with PyTorch (checked at the end when torch is installed).
"""

import warnings

import numpy as np
import pytest

import zerograd.functions as F
from zerograd import Variable


def grad_at(fn, values, dtype=np.float64):
    x = Variable(np.asarray(values, dtype=dtype))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # sqrt'(0) divides by zero
        fn(x).sum().backward()
    assert x.grad.dtype == dtype
    return x.grad.data


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_relu_derivative_at_zero_is_zero(dtype):
    np.testing.assert_array_equal(grad_at(F.relu, [-1.0, 0.0, 1.0], dtype), [0, 0, 1])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_abs_derivative_at_zero_is_zero(dtype):
    np.testing.assert_array_equal(grad_at(F.abs, [-2.0, 0.0, 3.0], dtype), [-1, 0, 1])
    np.testing.assert_array_equal(grad_at(lambda v: abs(v), [-0.0, 0.0], dtype), [0, 0])


def test_sqrt_derivative_at_zero_is_inf():
    g = grad_at(F.sqrt, [0.0, 4.0])
    assert g[0] == np.inf
    assert g[1] == 0.25


@pytest.mark.parametrize("slope", [0.2, 0.01, 1.5])
def test_leaky_relu_derivative_at_zero_is_the_slope(slope):
    g = grad_at(lambda v: F.leaky_relu(v, slope), [-1.0, 0.0, 1.0])
    np.testing.assert_allclose(g, [slope, slope, 1.0])


def test_elu_and_selu_derivative_at_zero_is_the_left_limit():
    np.testing.assert_allclose(grad_at(lambda v: F.elu(v, alpha=0.5), [0.0]), [0.5])
    alpha, scale = 1.6732632423543772, 1.0507009873554805
    np.testing.assert_allclose(grad_at(F.selu, [0.0, 1.0]), [alpha * scale, scale])


def test_hard_sigmoid_derivative_at_its_corners_is_zero():
    g = grad_at(F.hard_sigmoid, [-3.0, -2.0, 0.0, 3.0, 4.0])
    np.testing.assert_allclose(g, [0, 1 / 6, 1 / 6, 0, 0])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_maximum_and_minimum_ties_split_the_gradient(dtype):
    for op in (F.maximum, F.minimum):
        x0 = Variable(np.array([1.0, 2.0, 3.0], dtype=dtype))
        x1 = Variable(np.array([2.0, 2.0, 2.0], dtype=dtype))
        op(x0, x1).sum().backward()
        expected0 = [0, 0.5, 1] if op is F.maximum else [1, 0.5, 0]
        np.testing.assert_array_equal(x0.grad.data, expected0)
        np.testing.assert_array_equal(x0.grad.data + x1.grad.data, [1, 1, 1])
        assert x0.grad.dtype == dtype and x1.grad.dtype == dtype


def test_maximum_tie_with_a_broadcast_scalar_sums_the_halves():
    x = Variable(np.array([0.0, 0.0, 1.0]))
    c = Variable(np.array(0.0))
    F.maximum(x, c).sum().backward()
    np.testing.assert_array_equal(x.grad.data, [0.5, 0.5, 1.0])
    assert c.grad.data == 1.0 and c.grad.shape == ()


def test_clip_passes_the_gradient_on_the_closed_interval():
    g = grad_at(lambda v: F.clip(v, -1.0, 1.0), [-2.0, -1.0, 0.0, 1.0, 2.0])
    np.testing.assert_array_equal(g, [0, 1, 1, 1, 0])


def test_clip_with_variable_bounds_routes_each_gradient_once():
    x = Variable(np.array([-2.0, -1.0, 0.0, 1.0, 2.0, 0.5]))
    lo = Variable(np.array([-1.0, -1.0, -1.0, -1.0, -1.0, 2.0]))
    hi = Variable(np.array([1.0, 1.0, 1.0, 1.0, 1.0, 1.0]))  # the last lo > hi: y = hi
    y = F.clip(x, lo, hi)
    np.testing.assert_array_equal(y.data, [-1, -1, 0, 1, 1, 1])
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.data, [0, 1, 1, 1, 0, 0])
    np.testing.assert_array_equal(lo.grad.data, [1, 0, 0, 0, 0, 0])
    np.testing.assert_array_equal(hi.grad.data, [0, 0, 0, 0, 1, 1])


def test_clip_keeps_dezero_signature_and_float32():
    x = Variable(np.array([0.5, 2.0], np.float32))
    y = F.clip(x, np.float64(1e-15), 1.0)  # a NumPy float64 bound must not upcast
    assert y.dtype == np.float32
    y = F.clip(x, 0.0, None)
    np.testing.assert_array_equal(y.data, [0.5, 2.0])


def test_power_conventions_at_zero():
    # d/dx x^0 = 0 everywhere, including x = 0 (not 0 * 0^-1 = nan).
    x = Variable(np.array([0.0, 2.0]))
    y = Variable(np.array([0.0, 0.0]))
    F.power(x, y).sum().backward()
    np.testing.assert_array_equal(x.grad.data, [0, 0])
    np.testing.assert_array_equal(y.grad.data, [0, np.log(2.0)])
    # d/dy 0^y = 0 for y > 0 (not 0 * log 0 = nan).
    x = Variable(np.array([0.0, 3.0]))
    y = Variable(np.array([2.0, 2.0]))
    F.power(x, y).sum().backward()
    np.testing.assert_allclose(x.grad.data, [0, 6])
    np.testing.assert_allclose(y.grad.data, [0, 9 * np.log(3.0)])


def test_where_gives_exact_zero_to_the_branch_not_taken():
    c = np.array([True, False])
    x = Variable(np.array([1.0, 1.0]))
    y = Variable(np.array([2.0, 2.0]))
    w = F.where(c, x, y)
    w.grad = Variable(np.array([np.inf, np.nan]))
    w.backward()
    np.testing.assert_array_equal(x.grad.data, [np.inf, 0])
    np.testing.assert_array_equal(y.grad.data, [0, np.nan])


def test_where_rejects_a_float_condition():
    with pytest.raises(TypeError, match="where: condition must be a boolean"):
        F.where(np.array([0.5, 1.0]), Variable(np.ones(2)), 0.0)


def test_kink_conventions_match_torch():
    torch = pytest.importorskip("torch")
    tf = torch.nn.functional
    at = np.array([-3.0, 0.0, 3.0])
    cases = [
        (F.relu, torch.relu), (F.abs, torch.abs), (F.sqrt, torch.sqrt),
        (F.leaky_relu, lambda t: tf.leaky_relu(t, 0.2)), (F.elu, tf.elu), (F.selu, tf.selu),
        (F.hard_sigmoid, tf.hardsigmoid),
        (lambda v: F.clip(v, 0.0, 3.0), lambda t: torch.clamp(t, 0.0, 3.0)),
        (lambda v: F.maximum(v, 0.0), lambda t: torch.maximum(t, torch.tensor(0.0,
                                                                              dtype=t.dtype))),
        (lambda v: F.minimum(v, 0.0), lambda t: torch.minimum(t, torch.tensor(0.0,
                                                                              dtype=t.dtype))),
    ]
    for ours, theirs in cases:
        values = np.abs(at) if ours is F.sqrt else at
        t = torch.tensor(values, requires_grad=True)
        theirs(t).sum().backward()
        np.testing.assert_allclose(grad_at(ours, values), t.grad.numpy(), rtol=1e-7)


# -- bad input: errors that name the op, the shapes and what was expected -------------------
def test_errors_name_the_op_and_the_shapes():
    from zerograd.errors import ShapeError

    x = Variable(np.ones((2, 3)))
    with pytest.raises(ShapeError, match=r"Maximum.*\(2, 3\).*\(4,\)"):
        F.maximum(x, np.ones(4))
    with pytest.raises(ShapeError, match=r"Power.*\(2, 3\).*\(4,\)"):
        F.power(x, Variable(np.ones(4)))
    with pytest.raises(ShapeError, match=r"where: condition \(2,\), x \(3,\) and y \(\)"):
        F.where(np.ones(2, bool), Variable(np.ones(3)), 0.0)
    with pytest.raises(ShapeError, match=r"Softmax: axis 2 is out of bounds.*\(2, 3\)"):
        F.softmax(x, axis=2)
    with pytest.raises(ShapeError, match=r"LogSumExp"):
        F.logsumexp(Variable(np.ones(3)), axis=1)
    with pytest.raises(ValueError, match="gelu: approximate must be 'none' or 'tanh'"):
        F.gelu(x, approximate="fast")
    with pytest.raises(TypeError, match="Sqrt: input 0 is a str"):
        F.sqrt("abc")


def test_integer_inputs_compute_in_float64():
    x = np.array([[1, 2, 3]])
    for fn in (F.sigmoid, F.softplus, F.gelu, F.silu, F.mish, F.elu, F.softmax, F.log_softmax,
               F.logsumexp, F.erf, F.erfc):
        assert fn(x).dtype == np.float64, fn.__name__
    np.testing.assert_allclose(F.softmax(x).data, F.softmax(x.astype(float)).data)
