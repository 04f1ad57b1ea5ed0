"""Backward semantics: ordering, accumulation, freeing, higher order, constants, dtypes."""

import re

import numpy as np
import pytest

import zerograd.functions as F
from zerograd import Function, Variable, no_grad
from zerograd.core.broadcast import can_sum_to
from zerograd.errors import DTypeError, GraphError, ShapeError


class Recorder(Function):
    """Identity that logs its backward calls (to observe the engine's visiting order)."""

    log: list = []

    def __init__(self, tag):
        self.tag = tag

    def forward(self, x):
        return x.copy()

    def backward(self, gy):
        Recorder.log.append(self.tag)
        return gy


def test_diamond_is_processed_once_in_generation_order():
    Recorder.log = []
    x = Variable(np.array(2.0))
    a = Recorder("a")(x)
    b = Recorder("b")(a ** 2)
    c = Recorder("c")(a ** 3)
    y = Recorder("y")(b + c)
    y.backward()
    assert Recorder.log.count("a") == 1
    assert Recorder.log[0] == "y" and Recorder.log[-1] == "a"
    assert x.grad.data == pytest.approx(2 * 2.0 + 3 * 2.0 ** 2)


def test_visiting_order_is_deterministic():
    def run():
        Recorder.log = []
        x = Variable(np.array(1.0))
        branches = [Recorder(i)(x * (i + 1)) for i in range(20)]
        total = branches[0]
        for b in branches[1:]:
            total = total + b
        total.backward()
        return list(Recorder.log)

    assert run() == run()


def test_chain_of_100000_ops_backprops_without_recursion_error():
    x = Variable(np.array(1.0))
    y = x
    for _ in range(100_000):
        y = y * 1.0
    y.backward()
    assert x.grad.data == 1.0


def test_wide_graph_gradient():
    x = Variable(np.array(3.0))
    n = 2000
    y = F.square(x)
    for _ in range(n - 1):
        y = y + F.square(x)
    y.backward()
    assert x.grad.data == 2 * 3.0 * n


def test_output_and_intermediate_grads_are_freed_by_default():
    x = Variable(np.array(1.0))
    a = F.square(x)
    y = F.exp(a)
    y.backward()
    assert y.grad is None and a.grad is None
    assert x.grad is not None


def test_retain_grad_keeps_intermediate_grads():
    x = Variable(np.array(1.0))
    a = F.square(x)
    y = F.exp(a)
    y.backward(retain_grad=True)
    assert y.grad.data == 1.0
    assert a.grad.data == pytest.approx(np.e)


def test_grads_accumulate_across_backward_calls_until_cleared():
    x = Variable(np.array(3.0))
    y = x * x
    y.backward()
    y.backward()
    assert x.grad.data == 12.0
    x.cleargrad()
    assert x.grad is None


def test_create_graph_records_gradient_graph_only_on_request():
    x = Variable(np.array(2.0))
    (x ** 3).backward()
    assert x.grad.creator is None
    x.cleargrad()
    (x ** 3).backward(create_graph=True)
    assert x.grad.creator is not None


def test_broadcast_gradients_are_summed_to_input_shapes():
    x = Variable(np.array([1.0, 2.0, 3.0]))
    w = Variable(np.ones((4, 1, 3)))
    b = Variable(np.array(0.5))
    y = x * w + b
    y.backward()
    assert x.grad.shape == (3,) and np.all(x.grad.data == 4.0)
    assert w.grad.shape == (4, 1, 3)
    np.testing.assert_array_equal(w.grad.data[0, 0], [1.0, 2.0, 3.0])
    assert b.grad.shape == () and b.grad.data == 12.0


def test_non_scalar_output_is_seeded_with_ones():
    x = Variable(np.array([1.0, 2.0]))
    y = x * x
    y.backward()
    np.testing.assert_array_equal(x.grad.data, [2.0, 4.0])


def test_custom_seed_gradient():
    x = Variable(np.array([1.0, 2.0]))
    y = x * 3.0
    y.grad = Variable(np.array([10.0, 100.0]))
    y.backward()
    np.testing.assert_array_equal(x.grad.data, [30.0, 300.0])


def test_a_seed_gradient_of_another_shape_is_refused_naming_both_shapes():
    # Before, the first op's backward met it (a Linear: matmul's core-dimension error).
    x = Variable(np.ones((4, 3), np.float32))
    W = Variable(np.ones((3, 2), np.float32))
    y = F.linear(x, W)
    y.name = "logits"
    y.grad = Variable(np.ones((4, 5), np.float32))
    with pytest.raises(ShapeError, match=re.escape(
            'backward: the output named "logits" has shape (4, 2) but its gradient '
            "(output.grad) has shape (4, 5); they must be equal")):
        y.backward()
    assert x.grad is None and W.grad is None  # nothing was propagated
    y.grad = Variable(np.ones((4, 2), np.float32))
    y.backward()
    np.testing.assert_array_equal(W.grad.data, np.full((3, 2), 4.0))


def test_backward_on_a_leaf_sets_its_own_gradient_to_ones():
    # PyTorch does the same for a leaf; DeZero raises AttributeError here.
    x = Variable(np.ones((2, 3), dtype=np.float32))
    x.backward()
    assert x.grad.dtype == np.float32 and x.grad.creator is None
    np.testing.assert_array_equal(x.grad.data, np.ones((2, 3)))
    x.grad = Variable(np.full((2, 3), 5.0, dtype=np.float32))
    x.backward()  # a gradient already there is the seed, kept as it is
    np.testing.assert_array_equal(x.grad.data, np.full((2, 3), 5.0))


def test_no_grad_records_nothing():
    x = Variable(np.array(2.0))
    with no_grad():
        y = x * x
    assert y.creator is None and not y.requires_grad
    y.backward()  # nothing behind it: only its own gradient
    assert y.grad.data == 1.0 and x.grad is None


def test_constants_get_no_gradient_work():
    calls = []

    class Spy(Function):
        def forward(self, a, b):
            return a * b

        def backward(self, gy):
            calls.append((self.needs_grad(0), self.needs_grad(1)))
            a, b = self.inputs
            return gy * b, (gy * a if self.needs_grad(1) else None)

    x = Variable(np.array([1.0, 2.0]))
    y = Spy()(x, np.array([3.0, 4.0]))
    y.backward()
    assert calls == [(True, False)]
    np.testing.assert_array_equal(x.grad.data, [3.0, 4.0])


def test_op_on_constants_only_records_no_graph():
    y = F.sin(np.array(1.0))
    assert isinstance(y, Variable) and y.creator is None


def test_retain_graph_false_frees_inputs_during_backward():
    x = Variable(np.array(2.0))
    a = F.exp(x)
    y = F.square(a)
    f = y.creator
    y.backward(retain_graph=False)
    assert f.inputs is None
    assert x.grad.data == pytest.approx(2 * np.exp(4.0))


def test_unchain_backward_cuts_every_link():
    x = Variable(np.array(1.0))
    a = x * 2.0
    b = a * 3.0
    y = b + a
    y.unchain_backward()
    assert a.creator is None and b.creator is None
    assert y.creator is not None  # y itself keeps its creator (DeZero semantics)


def test_detach_shares_data_without_graph():
    x = Variable(np.array([1.0, 2.0]))
    y = x * 2.0
    d = y.detach()
    assert d.data is y.data and d.creator is None and not d.requires_grad


def test_multi_output_function_with_unused_output():
    class SplitHalves(Function):
        def forward(self, x):
            return x[:2].copy(), x[2:].copy()

        def backward(self, g0, g1):
            z0 = g0.data if g0 is not None else np.zeros(2)
            z1 = g1.data if g1 is not None else np.zeros(2)
            return Variable(np.concatenate([z0, z1]))

    x = Variable(np.arange(4.0))
    a, b = SplitHalves()(x)
    del b
    (a * 5.0).backward()
    np.testing.assert_array_equal(x.grad.data, [5.0, 5.0, 0.0, 0.0])


def test_backward_returning_wrong_number_of_grads_is_reported():
    class Broken(Function):
        def forward(self, a, b):
            return a + b

        def backward(self, gy):
            return gy

    x = Variable(np.array(1.0))
    y = Broken()(x, x)
    with pytest.raises(GraphError, match="Broken.backward returned 1 gradient"):
        y.backward()


class TestDtypes:
    def test_python_scalars_are_weak(self):
        x = Variable(np.ones(3, dtype=np.float32))
        for y in (x * 2.0, 2.0 * x, x + 1, 1 - x, x / 3.0, 3.0 / x, x ** 2, -x, x - 0.5):
            assert y.dtype == np.float32

    def test_numpy_scalars_are_weak_too(self):
        x = Variable(np.ones(3, dtype=np.float32))
        assert (x * np.sqrt(2.0)).dtype == np.float32
        assert (x ** np.float64(2)).dtype == np.float32

    def test_float32_gradients_stay_float32(self):
        x = Variable(np.ones((2, 3), dtype=np.float32))
        w = Variable(np.ones((3, 4), dtype=np.float32))
        y = F.sum(F.tanh(x @ w) * 0.5 + 1.0)
        y.backward()
        assert x.grad.dtype == np.float32 and w.grad.dtype == np.float32

    def test_int_variable_with_float_scalar_promotes_like_numpy(self):
        x = Variable(np.arange(3))
        assert (x * 2.5).dtype == np.float64
        assert (x * 2).dtype == x.dtype

    def test_arrays_follow_numpy_promotion(self):
        x = Variable(np.ones(2, dtype=np.float32))
        assert (x * np.ones(2)).dtype == np.float64


class TestOperators:
    def test_ndarray_on_the_left_returns_variable(self):
        x = Variable(np.array([1.0, 2.0]))
        a = np.array([10.0, 20.0])
        for y, expected in ((a + x, [11, 22]), (a - x, [9, 18]), (a * x, [10, 40]),
                            (a / x, [10, 10])):
            assert isinstance(y, Variable)
            np.testing.assert_array_equal(y.data, expected)

    def test_matmul_operator_both_sides(self):
        x = Variable(np.ones((2, 3)))
        w = np.ones((3, 4))
        assert isinstance(x @ w, Variable) and (x @ w).shape == (2, 4)
        assert isinstance(np.ones((5, 2)) @ x, Variable)

    def test_getitem(self):
        x = Variable(np.arange(6.0).reshape(2, 3))
        y = x[1]
        np.testing.assert_array_equal(y.data, [3.0, 4.0, 5.0])
        y.backward()
        np.testing.assert_array_equal(x.grad.data, [[0, 0, 0], [1, 1, 1]])

    def test_pow_and_neg(self):
        x = Variable(np.array(3.0))
        y = -x ** 2
        y.backward()
        assert y.data == -9.0 and x.grad.data == -6.0


def test_backward_through_an_intermediate_whose_data_was_freed():
    # DeZero's linear_simple frees the product's data (t.data = None) to save memory.
    x = Variable(np.ones((2, 3)))
    w = Variable(np.ones((3, 4)))
    t = F.matmul(x, w)
    y = t + 1.0
    t.data = None
    F.sum(y).backward()
    np.testing.assert_array_equal(w.grad.data, np.full((3, 4), 2.0))


def test_float64_constant_does_not_promote_float32_gradients():
    w = Variable(np.ones((3,), dtype=np.float32))
    target = np.array([1.0, 2.0, 3.0])  # float64, e.g. a dataset's labels
    loss = F.sum((w * 2.0 - target) ** 2)
    assert loss.dtype == np.float64  # the value follows NumPy's promotion...
    loss.backward()
    assert w.grad.dtype == np.float32  # ...but the parameter's gradient keeps its dtype
    np.testing.assert_allclose(w.grad.data, [4.0, 0.0, -4.0])


def test_gradient_cast_is_differentiable():
    x = Variable(np.array([1.5], dtype=np.float32))
    y = F.sum(x ** 3 * np.array([2.0]))
    y.backward(create_graph=True)
    gx = x.grad
    assert gx.dtype == np.float32
    x.cleargrad()
    gx.backward()
    assert x.grad.dtype == np.float32 and x.grad.data[0] == pytest.approx(18.0)


def test_unchain_backward_cuts_sibling_outputs_of_multi_output_ops():
    class Twins(Function):
        def forward(self, x):
            return x * 2, x * 3

        def backward(self, g0, g1):
            total = 0
            if g0 is not None:
                total = total + g0 * 2
            if g1 is not None:
                total = total + g1 * 3
            return total

    x = Variable(np.array(1.0))
    h, c = Twins()(x * 1.0)
    loss = h * 5.0
    loss.unchain_backward()
    assert c.creator is None and h.creator is None


class TestGradientShapes:
    """A gradient must be its input's shape or a broadcast of it; the engine sums it back."""

    def _op_returning(self, make_gradient):
        class Custom(Function):
            def forward(self, x):
                return x * 2

            def backward(self, gy):
                return make_gradient(gy)

        return Custom()

    def test_gradient_that_cannot_be_summed_to_the_input_raises_naming_op_shapes_input(self):
        x = Variable(np.ones(3), name="x")
        y = self._op_returning(lambda gy: Variable(np.ones(4)))(x)
        with pytest.raises(ShapeError) as info:
            y.backward()
        message = str(info.value)
        assert message.startswith("Custom.backward returned a gradient of shape (4,)")
        assert 'input 0 named "x" (float64 (3,))' in message
        assert x.grad is None

    def test_position_of_an_unnamed_second_input_is_given(self):
        class Mul2(Function):
            def forward(self, a, b):
                return a * b

            def backward(self, gy):
                return gy, Variable(np.ones((2, 5)))

        a, b = Variable(np.ones((2, 3))), Variable(np.ones((2, 3)))
        with pytest.raises(ShapeError, match=r"\(2, 5\) for input 1 \(float64 \(2, 3\)\)"):
            Mul2()(a, b).backward()

    @pytest.mark.parametrize("x_shape, g_shape", [((3,), (3, 2)), ((3,), (2,)),
                                                  ((1, 3), (3,)), ((2, 3), (2, 1))])
    def test_shapes_that_broadcasting_cannot_produce_are_refused(self, x_shape, g_shape):
        # (1, 3) from (3,) would be fewer axes; (2, 1) for (2, 3) would be a broadcast of
        # the gradient, not of the input.
        x = Variable(np.ones(x_shape))
        y = self._op_returning(lambda gy: Variable(np.ones(g_shape)))(x)
        with pytest.raises(ShapeError, match=re.escape(f"shape {g_shape} for input 0 "
                                                       f"(float64 {x_shape})")):
            y.backward()

    def test_broadcast_gradients_are_still_summed(self):
        x = Variable(np.ones((1, 3)))
        y = self._op_returning(lambda gy: Variable(np.full((4, 2, 3), 0.5)))(x)
        y.backward()
        assert x.grad.shape == (1, 3)
        np.testing.assert_array_equal(x.grad.data, np.full((1, 3), 4.0))

    def test_sum_to_refuses_shapes_that_do_not_broadcast(self):
        with pytest.raises(ShapeError, match=r"sum_to: cannot sum shape \(2, 3\) to \(4,\)"):
            F.sum_to(Variable(np.ones((2, 3))), (4,))
        with pytest.raises(ShapeError, match=r"sum_to: cannot sum shape \(3,\) to \(1, 3\)"):
            F.sum_to(Variable(np.ones(3)), (1, 3))
        np.testing.assert_array_equal(F.sum_to(Variable(np.ones((2, 3))), (1, 3)).data,
                                      [[2.0, 2.0, 2.0]])

    def test_can_sum_to_follows_numpy_broadcasting(self):
        for shape, target in [((2, 3), (3,)), ((2, 3), (1, 3)), ((2, 3), ()), ((4, 2, 3), (2, 1)),
                              ((0, 3), (1, 3))]:
            assert can_sum_to(shape, target)
            assert np.broadcast_shapes(shape, target) == shape
        for shape, target in [((2, 3), (4,)), ((3,), (1, 3)), ((2, 3), (2,)), ((), (1,))]:
            assert not can_sum_to(shape, target)


class TestBackwardContract:
    """What a custom backward may return, and the clear errors when it breaks the rules."""

    def _op(self, backward):
        class Custom(Function):
            def forward(self, x):
                return x * 2

        Custom.backward = lambda self, gy: backward(gy)
        return Custom()

    def test_ndarray_gradient_is_accepted_as_in_dezero(self):
        # DeZero's early steps write backward on arrays; genuine DeZero stores what it gets.
        x = Variable(np.array([1.0, 2.0]))
        y = self._op(lambda gy: gy.data * 2)(x)
        (y * 3.0).backward()
        assert type(x.grad) is Variable and x.grad.creator is None
        np.testing.assert_array_equal(x.grad.data, [6.0, 6.0])

    def test_numpy_scalar_gradient_of_a_0d_input_is_accepted(self):
        x = Variable(np.array(1.5))
        self._op(lambda gy: np.float64(2.0) * gy.data[()])(x).backward()
        assert type(x.grad.data) is np.ndarray and x.grad.data == 2.0

    @pytest.mark.parametrize("returned, shown", [(2.0, "a float (2.0)"), ("g", "a str ('g')")])
    def test_python_scalar_or_other_object_is_refused_naming_the_op(self, returned, shown):
        x = Variable(np.ones(3))
        y = self._op(lambda gy: returned)(x)
        with pytest.raises(GraphError, match=re.escape(f"Custom.backward returned {shown} as "
                                                       "the gradient of input 0")):
            y.backward()

    def test_list_is_refused_with_a_hint_to_return_a_tuple(self):
        x = Variable(np.ones(3))
        y = self._op(lambda gy: [gy])(x)
        with pytest.raises(GraphError, match=r"returned a list.*several gradients go in a tuple"):
            y.backward()

    def test_backward_twice_after_retain_graph_false_names_the_op(self):
        x = Variable(np.ones(3))
        y = F.sin(F.exp(x))
        y.backward(retain_graph=False)
        with pytest.raises(GraphError, match=r"backward reached Sin.*retain_graph=False.*"
                                             r"retain_graph=True"):
            y.backward()

    def test_forward_returning_a_list_or_a_variable_is_refused_naming_the_op(self):
        class Pair(Function):
            def forward(self, x):
                return [x, x]

        class Wrapped(Function):
            def forward(self, x):
                return Variable(x)

        with pytest.raises(DTypeError, match=r"Pair\.forward returned a list.*tuple"):
            Pair()(Variable(np.ones(2)))
        with pytest.raises(DTypeError, match=r"Wrapped\.forward returned a Variable.*raw arrays"):
            Wrapped()(Variable(np.ones(2)))
        with pytest.raises(DTypeError, match=r"Wrapped\.forward returned a Variable"):
            with no_grad():
                Wrapped()(Variable(np.ones(2)))

    def test_forward_returning_a_python_scalar_becomes_a_0d_array_as_in_dezero(self):
        class Total(Function):
            def forward(self, x):
                return float(x.sum())

            def backward(self, gy):
                return gy * np.ones(self.inputs[0].shape)

        x = Variable(np.array([1.0, 2.0]))
        y = Total()(x)
        assert type(y.data) is np.ndarray and y.data.shape == () and y.data == 3.0
        y.backward()
        np.testing.assert_array_equal(x.grad.data, [1.0, 1.0])


def test_retain_graph_false_keeps_gradients_of_intermediates_nobody_holds():
    """Regression: the engine kept an intermediate's gradient on the intermediate itself,
    which only its consumers' (freed) input lists kept alive, so sin(x) * cos(x) lost the
    first operand and backward crashed with an AttributeError. The pass's gradient table
    now holds each gradient until its creator ran."""
    x = Variable(np.array([1.0, 2.0]))

    def forward():
        return F.sin(x) * F.cos(x)  # no Python name holds sin(x) or cos(x)

    forward().backward(retain_graph=False)
    np.testing.assert_allclose(x.grad.data, np.cos(2 * x.data))


def test_retain_grad_twice_counts_each_pass_once():
    """backward(retain_grad=True) twice through one graph: each pass sends on only its own
    gradient (PyTorch gives 12 here; genuine DeZero sends the accumulated .grad of y on: 18)."""
    x = Variable(np.array(1.0))
    y = x * 2.0
    z = y * 3.0
    z.backward(retain_grad=True)
    assert float(y.grad.data) == 3.0 and float(x.grad.data) == 6.0
    z.backward(retain_grad=True)
    assert float(y.grad.data) == 6.0 and float(x.grad.data) == 12.0
    assert float(z.grad.data) == 1.0  # the seed, given back (not added to itself)


def test_chain_fast_path_visits_in_the_same_order_as_the_heap():
    """A function whose successor is the only pending one skips the heap; the order of a
    graph mixing chains and branches is still the generation order."""
    Recorder.log = []
    x = Variable(np.array(1.0))
    a = Recorder("a")(x)
    b = Recorder("b")(Recorder("b0")(a))          # a chain on one branch
    c = Recorder("c")(a)
    y = Recorder("y")(b * c)
    y.backward()
    # b (generation 3) before c and b0 (both 2), which tie: c was discovered first.
    assert Recorder.log == ["y", "b", "c", "b0", "a"]


def test_retain_graph_false_through_an_accumulated_recurrent_loss():
    """Regression (found with the LSTM): `loss = 0; loss += f(step)` over steps leaves each
    step's output held only by the next addition's inputs; under retain_graph=False the
    engine must keep those gradients until their creators ran, and give the same gradients
    as a backward that keeps the graph."""
    import zerograd.layers as L

    grads = []
    for retain in (True, False):
        lstm = L.LSTM(3, in_size=2)
        for name in ("x2f", "x2i", "x2o", "x2u", "h2f", "h2i", "h2o", "h2u"):
            sub = getattr(lstm, name)
            sub.W.data = np.full(sub.W.shape, 0.1, np.float32)
        loss = 0
        for t in range(3):
            loss += F.sum(lstm(np.full((1, 2), t + 1.0, np.float32)))
        loss.backward(retain_graph=retain)
        grads.append(lstm.x2f.W.grad.data.copy())
    np.testing.assert_allclose(grads[1], grads[0], rtol=1e-6)
