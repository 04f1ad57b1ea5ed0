"""The MLP training step's arithmetic: what ``Linear``, ``LinearGrad`` and ``MatMul`` hand
BLAS, the bias forms of ``linear``, the nodes of Linear's backward, and one SGD step equal
to the same step written in plain NumPy (so a change of the ops' fast paths cannot change a
result)."""

import contextlib

import numpy as np
import pytest

import zerograd
import zerograd._fast as fast
import zerograd.functions as F
from zerograd import Variable, optimizers
from zerograd.models import MLP
from zerograd.ops import linalg, shape


def _layout(a) -> str:
    return "C" if a.flags.c_contiguous else "F" if a.flags.f_contiguous else "strided"


@pytest.fixture
def products(monkeypatch):
    """Every matrix product's operands: [(shape, layout, dtype, operand), ...] per call."""
    seen = []
    for cls in (linalg.MatMul, linalg.Linear):
        original = cls.forward

        def forward(self, x, W, *rest, _original=original):
            seen.append([(a.shape, _layout(a), a.dtype, a) for a in (x, W)])
            return _original(self, x, W, *rest)

        monkeypatch.setattr(cls, "forward", forward)
    original_grad = linalg.LinearGrad.forward

    def grad_forward(self, x, W, gy):  # its products, as MatMul would have seen them
        if self.wants[0]:
            seen.append([(a.shape, _layout(a), a.dtype, a) for a in (gy, W.T)])
        if self.wants[1]:
            seen.append([(a.shape, _layout(a), a.dtype, a) for a in (x.T, gy)])
        return original_grad(self, x, W, gy)

    monkeypatch.setattr(linalg.LinearGrad, "forward", grad_forward)
    return seen


def _step(model, optimizer, x, t):
    loss = F.softmax_cross_entropy(model(x), t)
    model.cleargrads()
    loss.backward()
    optimizer.update()


def test_the_step_hands_blas_views_and_no_copies(products):
    """Forward x @ W; backward gy @ W.T and h.T @ gy, the transposes F-ordered views of W
    and of the layer's input (no copy before a product), float32 throughout; no input
    gradient for the input batch. benchmarks/bench_mlp.py's floor times these products."""
    np.random.seed(0)
    model = MLP((30, 20, 10), activation=F.relu)
    optimizer = optimizers.SGD(lr=0.1).setup(model)
    x = np.random.default_rng(0).random((8, 40), dtype=np.float32)
    _step(model, optimizer, x, np.arange(8) % 10)
    summary = [[(s, layout) for s, layout, _, _ in call] for call in products]
    assert summary == [
        [((8, 40), "C"), ((40, 30), "C")],  # forward
        [((8, 30), "C"), ((30, 20), "C")],
        [((8, 20), "C"), ((20, 10), "C")],
        [((8, 10), "C"), ((10, 20), "F")],  # layer 3: gx = gy @ W.T
        [((20, 8), "F"), ((8, 10), "C")],  # gW = h.T @ gy
        [((8, 20), "C"), ((20, 30), "F")],
        [((30, 8), "F"), ((8, 20), "C")],
        [((40, 8), "F"), ((8, 30), "C")],  # layer 1: gW only (x is a constant)
    ]
    assert all(dtype == np.float32 for call in products for _, _, dtype, _ in call)
    weights = [layer.W.data for layer in model.layers]
    assert np.shares_memory(products[3][1][3], weights[2])  # W.T is a view of W
    assert np.shares_memory(products[7][0][3], x)  # x.T is a view of the batch


@pytest.mark.parametrize("b_shape, b_dtype", [((5,), np.float32), ((1, 5), np.float32),
                                              ((5,), np.float64), ((4, 5), np.float32)])
def test_every_bias_form_gives_numpy_values(b_shape, b_dtype):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 3)).astype(np.float32)
    W = rng.standard_normal((3, 5)).astype(np.float32)
    b = rng.standard_normal(b_shape).astype(b_dtype)
    y = F.linear(x, W, b)
    expected = x @ W + b
    assert y.dtype == expected.dtype and y.shape == expected.shape
    np.testing.assert_array_equal(y.data, expected)


def test_a_bias_that_does_not_broadcast_names_the_shapes():
    with pytest.raises(zerograd.errors.ShapeError, match=r"b float32 \(3,\).*\(4, 5\)"):
        F.linear(np.ones((4, 3), np.float32), np.ones((3, 5), np.float32),
                 np.ones(3, np.float32))


@pytest.fixture
def reshapes(monkeypatch):
    calls = []
    original = shape.Reshape.forward

    def forward(self, x):
        calls.append(x.shape)
        return original(self, x)

    monkeypatch.setattr(shape.Reshape, "forward", forward)
    return calls


def test_backward_of_a_matrix_input_reshapes_nothing(reshapes):
    rng = np.random.default_rng(0)
    x = zerograd.Variable(rng.standard_normal((6, 4)).astype(np.float32))
    W = zerograd.Variable(rng.standard_normal((4, 3)).astype(np.float32))
    b = zerograd.Variable(rng.standard_normal(3).astype(np.float32))
    gy = rng.standard_normal((6, 3)).astype(np.float32)
    gx, gW, gb = zerograd.autograd.grad(F.linear(x, W, b), [x, W, b], grad_outputs=gy)
    assert reshapes == []
    np.testing.assert_array_equal(gx.data, gy @ W.data.T)
    np.testing.assert_array_equal(gW.data, x.data.T @ gy)
    np.testing.assert_array_equal(gb.data, gy.sum(axis=0))


def test_backward_of_a_batched_input_sums_every_leading_axis(reshapes):
    rng = np.random.default_rng(1)
    x = zerograd.Variable(rng.standard_normal((2, 6, 4)))
    W = zerograd.Variable(rng.standard_normal((4, 3)))
    b = zerograd.Variable(rng.standard_normal((1, 3)))  # not (out,): the general sum
    gy = rng.standard_normal((2, 6, 3))
    gx, gW, gb = zerograd.autograd.grad(F.linear(x, W, b), [x, W, b], grad_outputs=gy)
    assert reshapes == [(2, 6, 4), (2, 6, 3)]  # (..., in) flattened for the weight gradient
    np.testing.assert_allclose(gx.data, gy @ W.data.T, rtol=1e-12)
    np.testing.assert_allclose(gW.data, np.einsum("nti,nto->io", x.data, gy), rtol=1e-12)
    np.testing.assert_allclose(gb.data, gy.sum(axis=(0, 1))[None], rtol=1e-12)


@pytest.mark.parametrize("x_shape", [(32, 64, 32), (3, 4, 5, 32)])
@pytest.mark.parametrize("contiguous", [True, False], ids=["contiguous", "transposed"])
def test_a_batched_input_is_one_product_of_its_rows(x_shape, contiguous):
    """x (..., in) against a matrix W: one BLAS product of the stacked rows (NumPy's matmul
    would make one per leading index, 2.4 against 1.4 ms at (32, 64, 32)), bitwise that
    product, for linear and matmul alike, and for a non-contiguous x."""
    rng = np.random.default_rng(2)
    x = rng.standard_normal(x_shape).astype(np.float32)
    if not contiguous:  # the same shape as a view with permuted strides
        x = np.ascontiguousarray(np.swapaxes(x, 0, -2)).swapaxes(0, -2)
        assert not x.flags.c_contiguous
    W = rng.standard_normal((32, 48)).astype(np.float32)
    b = rng.standard_normal(48).astype(np.float32)
    rows = np.ascontiguousarray(x).reshape(-1, 32) @ W
    want = rows.reshape(*x_shape[:-1], 48)
    np.testing.assert_array_equal(F.matmul(x, W).data, want)
    np.testing.assert_array_equal(F.linear(x, W, b).data, (rows + b).reshape(want.shape))
    np.testing.assert_allclose(F.matmul(x, W).data, np.matmul(x, W), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("x_shape, W_shape", [((3, 4, 0), (0, 5)), ((0, 4, 3), (3, 5)),
                                             ((3, 0, 3), (3, 5)), ((3, 4, 3), (3, 0))])
def test_an_empty_batched_input_or_weight(x_shape, W_shape):
    """Stacking the rows of an empty x (or one with no columns) still gives NumPy's shapes,
    and the gradients are zeros of the inputs' shapes."""
    x = Variable(np.zeros(x_shape))
    W = Variable(np.zeros(W_shape))
    for y in (F.matmul(x, W), F.linear(x, W)):
        np.testing.assert_array_equal(y.data, np.matmul(x.data, W.data))
        x.cleargrad()
        W.cleargrad()
        y.backward()
        assert x.grad.shape == x_shape and not x.grad.data.any()
        assert W.grad.shape == W_shape and not W.grad.data.any()


def test_a_batched_weight_keeps_numpys_batched_product():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 5, 4))
    W = rng.standard_normal((2, 4, 3))
    np.testing.assert_array_equal(F.matmul(x, W).data, np.matmul(x, W))
    np.testing.assert_array_equal(F.matmul(x[0], W).data, np.matmul(x[0], W))


def _numpy_sgd_step(params, x, t, lr):
    """The MLP step with zerograd's order of operations, in NumPy, updating ``params``."""
    W0, b0, W1, b1, W2, b2 = params
    a0 = np.maximum(x @ W0 + b0, 0)
    a1 = np.maximum(a0 @ W1 + b1, 0)
    z = a1 @ W2 + b2
    n = len(t)
    e = np.exp(z - z.max(axis=1, keepdims=True))
    scale = np.float32(1.0) * np.float32(1.0 / n)  # d loss / d loss (1) over the batch
    gz = e * (scale / e.sum(axis=1, keepdims=True))
    gz[np.arange(n), t] -= scale
    gh1 = (gz @ W2.T) * (a1 > 0)
    gh0 = (gh1 @ W1.T) * (a0 > 0)
    grads = [x.T @ gh0, gh0.sum(axis=0), a0.T @ gh1, gh1.sum(axis=0), a1.T @ gz,
             gz.sum(axis=0)]
    for p, g in zip(params, grads):
        p += -lr * g


@pytest.mark.parametrize("path", ["kernels", "numpy"])
def test_sgd_steps_equal_the_same_steps_in_plain_numpy(path, monkeypatch):
    """Three steps of a 300-300-200-10 MLP: W0 has 90,000 elements, so the update takes the
    compiled kernel where it is on (``add_scaled``'s threshold)."""
    monkeypatch.delenv("ZEROGRAD_FAST", raising=False)
    np.random.seed(0)
    model = MLP((300, 200, 10), activation=F.relu)
    optimizer = optimizers.SGD(lr=0.1).setup(model)
    rng = np.random.default_rng(0)
    batches = [(rng.random((20, 300), dtype=np.float32), rng.integers(0, 10, 20))
               for _ in range(3)]
    model(batches[0][0])  # draws the weights
    params = [p.data.copy() for p in model.params()]
    with fast.numpy_only() if path == "numpy" else contextlib.nullcontext():
        for x, t in batches:
            _step(model, optimizer, x, t)
    for x, t in batches:
        _numpy_sgd_step(params, x, t, 0.1)
    for p, expected in zip(model.params(), params):
        assert p.data.dtype == np.float32
        np.testing.assert_array_equal(p.data, expected)  # bitwise, up to the sign of 0

