"""The functional API's argument handling, shared by vjp, jvp, jacobian, hessian, hvp and vhp:
a left-out v, v's parts, a non-scalar func where one is needed, and strict=True. Each error
names the function and what it was given."""

import numpy as np
import pytest

import zerograd.functions as F
from zerograd import Variable, autograd
from zerograd.core.autograd import checkpoint
from zerograd.errors import GraphError, ShapeError


def cube_sum(x):
    return F.sum(x ** 3)


@pytest.mark.parametrize("name, expected", [("vjp", 12.0), ("jvp", 12.0), ("vhp", 12.0),
                                            ("hvp", 12.0)])
def test_v_left_out_is_ones_for_a_one_element_input(name, expected):
    """d(x^3)/dx = 3x^2 = 12 and d2/dx2 = 6x = 12 at x = 2: v = 1 either way."""
    _, value = getattr(autograd, name)(cube_sum, np.array([2.0]))
    assert np.ravel(value.data).tolist() == [expected]


@pytest.mark.parametrize("name", ["jvp", "vhp", "hvp"])
def test_v_left_out_needs_a_one_element_input(name):
    with pytest.raises(ShapeError, match=rf"{name}: v can be left out only when the inputs "
                                         r"are a single one-element Variable; they have "
                                         r"shape\(s\) \(2,\)"):
        getattr(autograd, name)(cube_sum, np.ones(2))


def test_v_left_out_in_vjp_needs_a_one_element_output():
    with pytest.raises(ShapeError, match=r"vjp: v can be left out only when the outputs are a "
                                         r"single one-element Variable; they have shape\(s\) "
                                         r"\(3,\), \(\)"):
        autograd.vjp(lambda x: (x * 2.0, F.sum(x)), np.ones(3))


def test_v_counts_its_parts_per_input_or_output():
    with pytest.raises(ValueError, match=r"jvp: v has 1 part\(s\), expected 2 \(one per "
                                         r"input\)"):
        autograd.jvp(lambda a, b: a * b, (np.ones(2), np.ones(2)), np.ones(2))
    with pytest.raises(ValueError, match=r"vjp: v has 2 part\(s\), expected 1 \(one per "
                                         r"output\)"):
        autograd.vjp(lambda a: a * 2.0, np.ones(2), (np.ones(2), np.ones(2)))


@pytest.mark.parametrize("name", ["hessian", "vhp", "hvp"])
def test_second_order_functions_need_a_scalar_func(name):
    args = (np.ones(2),) if name == "hessian" else (np.ones(2), np.ones(2))
    with pytest.raises(ShapeError, match=rf"{name}: func must return a single one-element "
                                         r"Variable, got shape\(s\) \(2,\)"):
        getattr(autograd, name)(lambda x: x * 2.0, *args)


def test_strict_says_what_does_not_depend_on_what():
    two = (np.ones(2), np.ones(2))
    with pytest.raises(GraphError, match=r"vjp: the outputs do not depend on inputs\[1\] "
                                         r"\(strict=True\)"):
        autograd.vjp(lambda a, b: a * 2.0, two, np.ones(2), strict=True)
    with pytest.raises(GraphError, match=r"jvp: outputs\[1\] depends on no input "
                                         r"\(strict=True\)"):
        autograd.jvp(lambda a: (a * 2.0, Variable(np.zeros(3), requires_grad=False)),
                     np.ones(2), np.ones(2), strict=True)
    with pytest.raises(GraphError, match=r"vhp: the gradient does not depend on inputs\[0\] "
                                         r"\(strict=True\)"):
        autograd.vhp(lambda a, b: F.sum(a * 2.0 + b ** 2), two, two, strict=True)
    with pytest.raises(GraphError, match=r"jacobian: outputs\[0\] does not depend on "
                                         r"inputs\[1\] \(strict=True\)"):
        autograd.jacobian(lambda a, b: a * 2.0, two, strict=True)


def test_without_strict_the_unused_parts_are_zeros():
    two = (np.ones(2), np.ones(2))
    _, (ga, gb) = autograd.vjp(lambda a, b: a * 2.0, two, np.ones(2))
    assert ga.data.tolist() == [2.0, 2.0] and gb.data.tolist() == [0.0, 0.0]
    _, (h0, h1) = autograd.vhp(lambda a, b: F.sum(a * 2.0 + b ** 2), two, two)
    assert h0.data.tolist() == [0.0, 0.0] and h1.data.tolist() == [2.0, 2.0]


def test_checkpoint_names_itself_when_fn_returns_no_variable():
    x = Variable(np.ones(2))
    with pytest.raises(TypeError, match="checkpoint: fn returned a ndarray; it must return a "
                                        "Variable or a tuple of Variables$"):
        checkpoint(lambda a: np.ones(2), x)
