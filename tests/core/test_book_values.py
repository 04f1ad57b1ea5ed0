"""The book's known values: the numbers DeZero's steps print must come out of zerograd."""

import numpy as np
import pytest

import zerograd.functions as F
from zerograd import Variable


def test_square_exp_square_gradient():
    x = Variable(np.array(0.5))
    y = F.square(F.exp(F.square(x)))
    y.backward()
    assert x.grad.data == pytest.approx(3.297442541400256, rel=1e-15)


def test_reused_variable_accumulates():
    x = Variable(np.array(3.0))
    y = F.add(x, x)
    y.backward()
    assert x.grad.data == 2.0
    x.cleargrad()
    y = F.add(F.add(x, x), x)
    y.backward()
    assert x.grad.data == 3.0


def test_sum_of_squares_gradient():
    x = Variable(np.array(2.0))
    y = Variable(np.array(3.0))
    z = x ** 2 + y ** 2
    z.backward()
    assert (x.grad.data, y.grad.data) == (4.0, 6.0)


def f_quartic(x):
    return x ** 4 - 2 * x ** 2


def test_second_derivative_of_quartic():
    x = Variable(np.array(2.0))
    y = f_quartic(x)
    y.backward(create_graph=True)
    assert x.grad.data == 24.0
    gx = x.grad
    x.cleargrad()
    gx.backward()
    assert x.grad.data == 44.0


def test_newton_method_converges_to_one():
    x = Variable(np.array(2.0))
    history = []
    for _ in range(10):
        y = f_quartic(x)
        x.cleargrad()
        y.backward(create_graph=True)
        gx = x.grad
        x.cleargrad()
        gx.backward()
        gx2 = x.grad
        x.data = x.data - gx.data / gx2.data
        history.append(float(x.data))
    # The book prints 2.0, 1.4545..., 1.1510..., 1.0253..., 1.0009..., 1.0000...
    assert history[0] == pytest.approx(1.4545454545454546)
    assert history[1] == pytest.approx(1.1510467893775467)
    assert abs(history[5] - 1.0) < 1e-9
    assert history[-1] == 1.0


def _nth_derivatives(f, x0: np.ndarray, n: int) -> list[np.ndarray]:
    x = Variable(x0)
    y = f(x)
    values = []
    for _ in range(n):
        x.cleargrad()
        y.backward(create_graph=True)
        y = x.grad
        values.append(y.data.copy())
    return values


def test_nth_derivatives_of_sin():
    x0 = np.linspace(-4, 4, 9)
    expected = [np.cos(x0), -np.sin(x0), -np.cos(x0), np.sin(x0)] * 2
    for got, want in zip(_nth_derivatives(F.sin, x0, 8), expected):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


def test_nth_derivatives_of_tanh():
    x0 = np.linspace(-2, 2, 9)
    t = np.tanh(x0)
    expected = [
        1 - t ** 2,
        -2 * t * (1 - t ** 2),
        -2 * (1 - t ** 2) * (1 - 3 * t ** 2),
        8 * t * (1 - t ** 2) * (2 - 3 * t ** 2),
        8 * (1 - t ** 2) * (15 * t ** 4 - 15 * t ** 2 + 2),
    ]
    for got, want in zip(_nth_derivatives(F.tanh, x0, 5), expected):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)


def test_double_backprop_beyond_hessians():
    # Step 36: z = gx^3 + y with gx = dy/dx of y = x^2, at x = 2: dz/dx = 100.
    x = Variable(np.array(2.0))
    y = x ** 2
    y.backward(create_graph=True)
    gx = x.grad
    x.cleargrad()
    z = gx ** 3 + y
    z.backward()
    assert x.grad.data == 100.0


def test_rosenbrock_gradient():
    x0 = Variable(np.array(0.0))
    x1 = Variable(np.array(2.0))
    y = 100 * (x1 - x0 ** 2) ** 2 + (x0 - 1) ** 2
    y.backward()
    assert (x0.grad.data, x1.grad.data) == (-2.0, 400.0)


def test_goldstein_price_gradient():
    x = Variable(np.array(1.0))
    y = Variable(np.array(1.0))
    a = 1 + (x + y + 1) ** 2 * (19 - 14 * x + 3 * x ** 2 - 14 * y + 6 * x * y + 3 * y ** 2)
    b = 30 + (2 * x - 3 * y) ** 2 * (18 - 32 * x + 12 * x ** 2 + 48 * y - 36 * x * y + 27 * y ** 2)
    z = a * b
    z.backward()
    assert (x.grad.data, y.grad.data) == (-5376.0, 8064.0)


def _derivatives_by_repeated_backward(Variable, f, x0: float, n: int) -> list:
    """The book's step 34 loop: x.grad, then backward from it again, n times. Stops (with
    None) where the derivative is a constant that no longer depends on x."""
    x = Variable(np.array(x0))
    f(x).backward(create_graph=True)
    values = []
    for _ in range(n):
        gx = x.grad
        values.append(None if gx is None else float(gx.data))
        if gx is None:
            break
        x.cleargrad()
        gx.backward(create_graph=True)
    return values


def test_grad_of_grad_of_a_linear_function_is_none_as_in_dezero():
    # y = 3x: dy/dx = 3 is a constant recorded without a creator; backward from it must not
    # raise, and the second derivative (zero) is None.
    x = Variable(np.array(2.0))
    y = 3 * x
    y.backward(create_graph=True)
    gx = x.grad
    assert float(gx) == 3.0 and gx.creator is None
    x.cleargrad()
    gx.backward()
    assert x.grad is None
    assert gx.grad is not None and float(gx.grad) == 1.0  # only its own seed


POLYNOMIALS = [
    ("3x", lambda x: 3 * x),
    ("x^2", lambda x: x ** 2),
    ("x^3", lambda x: x ** 3),
    ("x*x*x", lambda x: x * x * x),
    ("x^4-2x^2", lambda x: x ** 4 - 2 * x ** 2),
]


@pytest.mark.parametrize("name, f", POLYNOMIALS, ids=[p[0] for p in POLYNOMIALS])
def test_repeated_higher_order_derivatives_match_dezero_and_end_in_none(name, f):
    import numpy

    if not hasattr(numpy, "int"):
        numpy.int = int  # dezero 0.0.13's transforms module still uses the removed alias
    dezero = pytest.importorskip("dezero")
    theirs = _derivatives_by_repeated_backward(dezero.Variable, f, 2.0, 6)
    ours = _derivatives_by_repeated_backward(Variable, f, 2.0, 6)
    # DeZero keeps constants in the graph and goes on with zeros (0.0, -0.0) where zerograd
    # stops with None; every non-zero derivative is the same number.
    assert ours[-1] is None or len(ours) == 6
    for i, value in enumerate(ours):
        if value is None:
            assert all(t in (None, 0.0) for t in theirs[i:])
        else:
            assert value == theirs[i]
    nonzero = [t for t in theirs if t not in (None, 0.0)]
    assert [v for v in ours if v is not None] == nonzero
