"""The differentiation protocol of the fused ops (Chainer's Grad nodes).

A fused op's backward calls a Grad Function whose forward is the raw-array kernel and whose
backward gives the next order; nothing branches on the graph-recording flag. Checked here:

* third derivatives of the fused normalization, loss and convolution ops against PyTorch
  (directional: <d^k L / dx^k, u> for random u, every differentiable input at once);
* the first-order gradients are those of the Grad node's kernel, with and without
  ``create_graph`` (one formula, both ways);
* what one node hands another is passed explicitly (conv's patches) and dropped after use;
* no op module reads the graph-recording flag (forward is told, when it asks);
* the layout rules: the op modules import each other without a cycle and without imports
  inside functions; the sigmoid kernel is shared and accurate.
"""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import numpy as np
import pytest

import zerograd
import zerograd.functions as F
from zerograd import Variable, test_mode
from zerograd.core.function import Function
from zerograd.errors import ShapeError
from zerograd.ops import _special, conv, loss, normalization

OPS_DIR = Path(zerograd.__file__).parent / "ops"


# -- higher orders against PyTorch -------------------------------------------------------
def _directional_derivatives(fn, arrays, order: int, seed: int = 0):
    """[[<d^k L/dx_i^k ...>], ...]: the gradients of L_0 = <w, fn(x)>, then of
    L_k = sum_i <g_i, u_i> for k = 1..order-1, for every input, in zerograd."""
    rng = np.random.default_rng(seed)
    xs = [Variable(a) for a in arrays]
    y = fn(*xs)
    L = (y * rng.standard_normal(y.shape)).sum()
    results = []
    for _ in range(order):
        for x in xs:
            x.cleargrad()
        L.backward(create_graph=True)
        grads = [x.grad for x in xs]
        results.append([np.zeros(a.shape) if g is None else g.data.copy()
                        for g, a in zip(grads, arrays)])
        directions = [rng.standard_normal(a.shape) for a in arrays]  # as in the torch twin
        terms = [(g * u).sum() for g, u in zip(grads, directions)
                 if g is not None and g.creator is not None]
        if not terms:  # every gradient is constant: the next orders are all zero
            results += [[np.zeros(a.shape) for a in arrays]] * (order - len(results))
            break
        L = terms[0]
        for term in terms[1:]:
            L = L + term
    return results


def _directional_derivatives_torch(fn, arrays, order: int, seed: int = 0):
    import torch

    rng = np.random.default_rng(seed)
    ts = [torch.tensor(a, requires_grad=True) for a in arrays]
    y = fn(*ts)
    L = (y * torch.tensor(rng.standard_normal(tuple(y.shape)))).sum()
    results = []
    for _ in range(order):
        if not L.requires_grad:  # every gradient was constant
            results.append([np.zeros(a.shape) for a in arrays])
            continue
        grads = torch.autograd.grad(L, ts, create_graph=True, allow_unused=True)
        grads = [torch.zeros_like(t) if g is None else g for g, t in zip(grads, ts)]
        results.append([g.detach().numpy().copy() for g in grads])
        directions = [torch.tensor(rng.standard_normal(a.shape)) for a in arrays]
        L = sum((g * u).sum() for g, u in zip(grads, directions))
    return results


def _rand(*shape, low=-2.0, high=2.0, seed=0):
    return np.random.default_rng(seed + len(shape)).uniform(low, high, shape)


LABELS = np.array([2, 0, 1, 2])


def _torch_cases():
    import torch.nn.functional as TF

    mean, var = np.array([0.1, -0.2, 0.3]), np.array([0.5, 1.5, 2.0])

    def bn_test(x, g, b):
        with test_mode():
            return F.batch_norm(x, g, b, mean.copy(), var.copy())

    return {
        "batch_norm": (
            lambda x, g, b: F.batch_norm(x, g, b, np.zeros(3), np.ones(3)),
            lambda x, g, b: TF.batch_norm(x, None, None, g, b, training=True, eps=2e-5),
            [_rand(4, 3, 2, 2), _rand(3, low=0.5, high=1.5), _rand(3, seed=1)]),
        "batch_norm_test_mode": (
            bn_test,
            lambda x, g, b: TF.batch_norm(x, _t(mean), _t(var), g, b, training=False,
                                          eps=2e-5),
            [_rand(4, 3), _rand(3, low=0.5, high=1.5), _rand(3, seed=1)]),
        "layer_norm": (
            lambda x, g, b: F.layer_norm(x, g, b),
            lambda x, g, b: TF.layer_norm(x, (5,), g, b, eps=1e-5),
            [_rand(3, 5), _rand(5, low=0.5, high=1.5), _rand(5, seed=1)]),
        "group_norm": (
            lambda x, g, b: F.group_norm(x, 2, g, b),
            lambda x, g, b: TF.group_norm(x, 2, g, b, eps=1e-5),
            [_rand(2, 4, 3), _rand(4, low=0.5, high=1.5), _rand(4, seed=1)]),
        "softmax_cross_entropy": (
            lambda x: F.softmax_cross_entropy(x, LABELS),
            lambda x: TF.cross_entropy(x, _t(LABELS)),
            [_rand(4, 3, low=-3, high=3)]),
        "conv2d": (
            lambda x, W, b: F.conv2d(x, W, b, stride=1, pad=1),
            lambda x, W, b: TF.conv2d(x, W, b, stride=1, padding=1),
            [_rand(2, 3, 5, 5), _rand(4, 3, 3, 3, seed=2), _rand(4, seed=3)]),
    }


def _t(a):
    import torch

    return torch.tensor(a)


# PyTorch's third derivatives of batch_norm (training) and layer_norm in x disagree with
# central differences of its own (and zerograd's) second derivatives by O(1) (torch 2.13,
# float64); zerograd's agree to 1e-10. Those two are checked against differences below.
TORCH_THIRD_ORDER_OFF = {"batch_norm", "layer_norm"}


@pytest.mark.torch
@pytest.mark.parametrize("name", ["batch_norm", "batch_norm_test_mode", "layer_norm",
                                  "group_norm", "softmax_cross_entropy", "conv2d"])
def test_third_order_matches_torch(name):
    pytest.importorskip("torch")
    ours, theirs, arrays = _torch_cases()[name]
    order = 2 if name in TORCH_THIRD_ORDER_OFF else 3
    got = _directional_derivatives(ours, arrays, order)
    expected = _directional_derivatives_torch(theirs, arrays, order)
    for order, (g_orders, e_orders) in enumerate(zip(got, expected), start=1):
        for i, (g, e) in enumerate(zip(g_orders, e_orders)):
            np.testing.assert_allclose(g, e, rtol=1e-8, atol=1e-10,
                                       err_msg=f"{name}: order {order}, input {i}")


@pytest.mark.torch
@pytest.mark.parametrize("name", sorted(TORCH_THIRD_ORDER_OFF))
def test_third_order_of_batch_and_layer_norm_matches_central_differences(name):
    pytest.importorskip("torch")  # (only for the shared case table)
    ours, _, arrays = _torch_cases()[name]
    third = _directional_derivatives(ours, arrays, 3)[2]

    def second_order_objective(perturbed):
        """L_2 = sum_i <d^2 L / dx_i^2 ..., u_i>, the function the third order differentiates."""
        rng = np.random.default_rng(0)  # replays the directions of _directional_derivatives
        shape = ours(*[Variable(a) for a in perturbed]).shape
        rng.standard_normal(shape)
        for a in arrays:
            rng.standard_normal(a.shape)
        directions = [rng.standard_normal(a.shape) for a in arrays]
        second = _directional_derivatives(ours, perturbed, 2)[1]
        return sum((g * u).sum() for g, u in zip(second, directions))

    eps = 1e-5
    for i, a in enumerate(arrays):
        numeric = np.zeros(a.shape)
        for index in np.ndindex(a.shape):
            plus, minus = [b.copy() for b in arrays], [b.copy() for b in arrays]
            plus[i][index] += eps
            minus[i][index] -= eps
            numeric[index] = (second_order_objective(plus)
                              - second_order_objective(minus)) / (2 * eps)
        np.testing.assert_allclose(third[i], numeric, rtol=1e-6, atol=1e-8,
                                   err_msg=f"{name}: third order, input {i}")


# -- one formula with and without create_graph -------------------------------------------
@pytest.mark.parametrize("fn", [
    lambda x, g, b: F.batch_norm(x, g, b, None, None),
    lambda x, g, b: F.layer_norm(x, g[:4], b[:4]),
], ids=["batch_norm", "layer_norm"])
def test_first_order_is_the_same_with_and_without_create_graph(fn):
    x = _rand(3, 4)
    g = _rand(4, low=0.5, high=1.5)
    b = _rand(4, seed=1)
    grads = []
    for create_graph in (False, True):
        vs = [Variable(a) for a in (x, g, b)]
        (fn(*vs) * np.arange(12.0).reshape(3, 4)).sum().backward(create_graph=create_graph)
        grads.append([v.grad.data for v in vs])
    for plain, recorded in zip(*grads):
        np.testing.assert_allclose(plain, recorded, rtol=1e-13, atol=1e-13)


def test_batch_norm_backward_is_one_grad_node_with_three_outputs():
    x, g, b = Variable(_rand(5, 3)), Variable(_rand(3)), Variable(_rand(3))
    y = F.batch_norm(x, g, b, None, None)
    (y * y).sum().backward(create_graph=True)
    assert isinstance(x.grad.creator, normalization.BatchNormGrad)
    assert g.grad.creator is x.grad.creator  # (gx, ggamma, gbeta) come from one node
    assert b.grad.creator is x.grad.creator


def test_softmax_cross_entropy_backward_is_its_grad_node():
    x = Variable(_rand(4, 3))
    F.softmax_cross_entropy(x, LABELS).backward(create_graph=True)
    assert isinstance(x.grad.creator, loss.SoftmaxCrossEntropyGrad)
    p = np.exp(x.data) / np.exp(x.data).sum(axis=1, keepdims=True)
    p[np.arange(4), LABELS] -= 1
    np.testing.assert_allclose(x.grad.data, p / 4, rtol=1e-13)


def test_grad_nodes_recompute_their_statistics_when_none_are_handed_over():
    """Built on their own (as their backward builds them), the Grad nodes compute from x."""
    x, gy = _rand(3, 4), _rand(3, 4, seed=5)
    axes = (1,)
    handed = normalization.StandardizeGrad(axes, 1e-5, None)(x, gy).data
    xhat, _, _, s = normalization._standardize_array(x, axes, 1e-5)
    given = normalization.StandardizeGrad(axes, 1e-5, (xhat, s))(x, gy).data
    np.testing.assert_allclose(handed, given, rtol=1e-14)
    t = np.array([0, 3, 1])
    gx = loss.SoftmaxCrossEntropyGrad(t)(x, np.array(1.0)).data
    p = np.exp(x) / np.exp(x).sum(axis=1, keepdims=True)
    p[np.arange(3), t] -= 1
    np.testing.assert_allclose(gx, p / 3, rtol=1e-13)


# -- state passed explicitly ---------------------------------------------------------------
def test_conv2d_hands_its_patches_to_the_weight_gradient_and_drops_them():
    x = _rand(2, 3, 6, 6)
    W = Variable(_rand(4, 3, 3, 3, seed=1))
    y = F.conv2d(x, W, pad=1)
    f = y.creator
    assert f.needs_input_grad == (False, True) and f.patches is not None and f.patches[0] is x
    y.sum().backward()
    assert f.patches is None  # used once
    expected = W.grad.data.copy()
    W.cleargrad()
    y.sum().backward()  # a second backward recomputes the patches: same gradient
    np.testing.assert_allclose(W.grad.data, expected, rtol=1e-13)


def test_conv2d_keeps_no_patches_when_nothing_will_use_them():
    x, W = _rand(2, 3, 6, 6), _rand(4, 3, 3, 3, seed=1)
    with zerograd.no_grad():
        f = F.conv2d(Variable(x), Variable(W)).creator
    assert f is None  # nothing recorded
    frozen = F.conv2d(Variable(x), Variable(W, requires_grad=False)).creator
    assert frozen.needs_input_grad == (True, False) and frozen.patches is None  # W needs none
    f = F.conv2d(x, Variable(W, requires_grad=False), Variable(np.ones(4))).creator
    assert f.needs_input_grad == (False, False, True) and f.patches is None  # only b's
    with zerograd.no_grad():
        op = conv.Conv2d(1, 0)
        op(Variable(x), Variable(W))
    assert op.needs_input_grad == (False, False) and op.patches is None


def test_conv2d_built_directly_is_told_it_records_as_the_wrapper_is():
    # DeZero's way, Conv2d(...)(x, W): forward learns from the call, not from a flag.
    x, W = _rand(2, 3, 6, 6), Variable(_rand(4, 3, 3, 3, seed=1))
    op = conv.Conv2d(1, 1)
    y = op(x, W)
    assert op.needs_input_grad == (False, True) and op.patches is not None
    y.sum().backward()
    expected = W.grad.data.copy()
    W.cleargrad()
    F.conv2d(x, W, pad=1).sum().backward()
    np.testing.assert_array_equal(W.grad.data, expected)


def test_needs_input_grad_is_set_only_for_ops_that_ask():
    y = F.exp(Variable(_rand(3)))
    assert "needs_input_grad" not in vars(y.creator)


def test_conv2dgradw_takes_dezeros_conv_argument_and_the_explicit_form():
    x = _rand(2, 3, 6, 6)
    W = _rand(4, 3, 3, 3, seed=1)
    gy = _rand(2, 4, 3, 3, seed=2)
    y = F.conv2d(Variable(x), Variable(W), stride=2, pad=1)
    by_conv = conv.Conv2DGradW(y.creator)(x, gy).data  # DeZero's Conv2DGradW(conv)
    explicit = conv.Conv2DGradW(kernel=(3, 3), geometry=y.creator.geometry)(x, gy).data
    xpad = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    naive = np.zeros_like(W)
    for i in range(3):
        for j in range(3):
            naive[:, :, i, j] = np.einsum("nohw,nchw->oc", gy, xpad[:, :, i:i + 5:2, j:j + 5:2])
    np.testing.assert_allclose(by_conv, naive, rtol=1e-12)
    np.testing.assert_allclose(explicit, naive, rtol=1e-12)
    with pytest.raises(ValueError, match=r"Conv2DGradW: pass the conv op .*kernel="):
        conv.Conv2DGradW()


@pytest.mark.parametrize("gy_shape, message", [
    ((2, 4, 2, 3), r"maps x to gy of shape \(2, 4, 3, 3\)"),  # another size
    ((1, 4, 3, 3), r"maps x to gy of shape \(2, 4, 3, 3\)"),  # another batch
    ((2, 4, 3), r"must be 4-D"),
])
def test_conv2dgradw_refuses_a_gy_that_the_convolution_of_x_does_not_make(gy_shape, message):
    """A gy of another size would pair output pixels with the wrong patches: a weight
    gradient of the right shape, silently wrong, before this check."""
    x = _rand(2, 3, 6, 6)
    y = F.conv2d(Variable(x), Variable(_rand(4, 3, 3, 3, seed=1)), stride=2, pad=1)
    with pytest.raises(ShapeError, match="Conv2DGradW: .*" + message):
        conv.Conv2DGradW(y.creator)(x, _rand(*gy_shape, seed=2))


# -- no op reads the graph-recording flag ----------------------------------------------------
def _function_classes():
    import importlib

    for path in sorted(OPS_DIR.glob("*.py")):
        module = importlib.import_module(f"zerograd.ops.{path.stem}")
        for obj in vars(module).values():
            if (inspect.isclass(obj) and issubclass(obj, Function)
                    and obj.__module__ == module.__name__):
                yield obj


def test_no_op_reads_the_graph_recording_flag_in_forward_or_backward():
    offenders = []
    for cls in _function_classes():
        for name, method in vars(cls).items():
            if callable(method) and "enable_backprop" in inspect.getsource(method):
                offenders.append(f"{cls.__module__}.{cls.__name__}.{name}")
    assert offenders == []


def test_no_op_module_reads_the_recording_flag_at_all():
    # Not even a public wrapper: a forward that needs to know whether the call records
    # asks for it (forward_needs_input_grad), as conv2d does for its patches.
    readers = [path.name for path in sorted(OPS_DIR.glob("*.py"))
               if "enable_backprop" in path.read_text() or "_state" in path.read_text()
               and "from zerograd._config import" in path.read_text()]
    assert readers == []


# -- layout ----------------------------------------------------------------------------------
def _zerograd_imports(tree: ast.Module):
    """(module-level imports, imports inside functions) of zerograd.ops modules."""
    top, inner = set(), []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith(
                "zerograd.ops"):
            names = ([f"{node.module}.{a.name}" for a in node.names]
                     if node.module == "zerograd.ops" else [node.module])
            target = top if node.col_offset == 0 else inner
            if target is top:
                top.update(names)
            else:
                inner.extend(names)
    return top, inner


def test_op_modules_import_each_other_without_a_cycle_or_a_late_import():
    graph = {}
    for path in OPS_DIR.glob("*.py"):
        top, inner = _zerograd_imports(ast.parse(path.read_text()))
        assert inner == [], f"{path.name} imports {inner} inside a function"
        graph[f"zerograd.ops.{path.stem}"] = {m for m in top if m != f"zerograd.ops.{path.stem}"}
    state: dict = {}

    def visit(module, chain):
        if state.get(module) == "done":
            return
        assert state.get(module) != "open", f"import cycle: {' -> '.join(chain + [module])}"
        state[module] = "open"
        for dep in graph.get(module, ()):
            visit(dep, chain + [module])
        state[module] = "done"

    for module in graph:
        visit(module, [])
    assert "zerograd.ops.indexing" not in graph["zerograd.ops.shape"]
    assert "zerograd.ops.reduction" not in graph["zerograd.ops.shape"]


def test_one_sigmoid_kernel_accurate_in_the_tail_and_in_place():
    x = np.array([-40.0, -1.0, 0.0, 2.0, 800.0, -800.0])
    with np.errstate(over="ignore"):
        expected = 1 / (1 + np.exp(-x))  # exp(800) = inf: sigmoid(-800) rounds to 0
    np.testing.assert_allclose(_special.sigmoid_array(x), expected, rtol=1e-15)
    assert _special.sigmoid_array(x)[0] == pytest.approx(4.248354255291589e-18, rel=1e-14)
    block = x.reshape(2, 3).copy()
    view = block[:, 1:]  # strided, in place
    _special.sigmoid_(view)
    np.testing.assert_allclose(block[:, 1:], expected.reshape(2, 3)[:, 1:], rtol=1e-15)
    assert _special.sigmoid_array(np.float32(-3.0) * np.ones(2, np.float32)).dtype == np.float32
    np.testing.assert_allclose(F.sigmoid(np.array(-40.0)).data, expected[0], rtol=1e-14)


# -- first-order-only ops: one error from the engine ---------------------------------------
@pytest.mark.parametrize("op, gates", [(F.lstm_sequence, 4), (F.gru_sequence, 3),
                                        (F.rnn_sequence, 1)])
def test_first_order_only_ops_raise_one_clear_error_under_create_graph(op, gates):
    Wh = Variable(_rand(2, 2 * gates))
    args = (_rand(2, 3, 2 * gates), None) + ((None,) if op is F.lstm_sequence else ())
    y = op(*args, Wh)[0]
    f = y.creator
    assert type(f).first_order_only
    with pytest.raises(zerograd.errors.GraphError,
                       match=rf"^{f.name} has first-order gradients only .*create_graph=True"
                             r".*fused=False"):
        (y * y).sum().backward(create_graph=True)
    Wh.cleargrad()
    y = op(*args, Wh)[0]
    y.sum().backward()  # first order is fine
    assert Wh.grad is not None and Wh.grad.shape == Wh.shape


def test_a_users_first_order_only_function_is_refused_the_same_way():
    class Cube(Function):
        first_order_only = True

        def forward(self, x):
            return x ** 3

        def backward(self, gy):
            return gy.data * 3 * self.inputs[0].data ** 2

    x = Variable(np.array(2.0))
    Cube()(x).backward()
    assert float(x.grad.data) == 12.0
    with pytest.raises(zerograd.errors.GraphError, match=r"^Cube has first-order gradients "
                                                         r"only .*Use ops without that limit"):
        Cube()(x).backward(create_graph=True)


# -- what a backward keeps is declared and released --------------------------------------
def _graph_functions(y):
    seen, stack = [], [y.creator]
    while stack:
        f = stack.pop()
        if f is None or any(f is g for g in seen):
            continue
        seen.append(f)
        stack.extend(x.creator for x in f.inputs)
    return seen


@pytest.mark.parametrize("build", [
    lambda x: F.softmax_cross_entropy(F.batch_norm(x, np.ones(4), np.zeros(4), None, None),
                                      np.array([0, 1, 2, 3, 0])),
    lambda x: F.sum(F.layer_norm(x) * F.conv2d(F.reshape(x, (5, 1, 2, 2)),
                                               Variable(_rand(3, 1, 2, 2)), pad=1).sum()),
    lambda x: F.sum(F.rnn_sequence(F.reshape(x, (5, 2, 2)), None, Variable(_rand(2, 2)))[0]),
], ids=["batch_norm+softmax_cross_entropy", "layer_norm+conv2d", "rnn_sequence"])
def test_retain_graph_false_releases_every_saved_activation(build):
    x = Variable(_rand(5, 4))
    y = build(x)
    functions = _graph_functions(y)
    saved = [(f, name) for f in functions for name in f.saved]
    assert saved, "the graph has ops that save activations"
    assert all(getattr(f, name) is not None for f, name in saved
               if not isinstance(f, conv.Conv2d))  # (conv keeps small patches only)
    y.backward(retain_graph=False)
    # y still holds its creator and the ops behind it are reachable from the test's list:
    # each has let go of its inputs and of everything its forward saved.
    assert all(f.inputs is None for f in functions)
    assert [(type(f).__name__, name) for f, name in saved if getattr(f, name) is not None] == []
    assert x.grad is not None


def test_declared_saved_attributes_are_attributes_the_op_sets():
    for cls in _function_classes():
        for name in cls.saved:
            assert isinstance(name, str) and name.isidentifier(), (cls, name)
        if cls.retain_inputs is not None:
            assert all(isinstance(i, int) for i in cls.retain_inputs), cls


# -- RNNCell's Grad node against PyTorch ---------------------------------------------------
@pytest.mark.torch
def test_rnn_cell_third_order_matches_torch():
    pytest.importorskip("torch")
    import torch

    arrays = [_rand(3, 2), _rand(3, 4, seed=1), _rand(2, 4, seed=2), _rand(4, 4, seed=3),
              _rand(4, seed=4)]
    ours = _directional_derivatives(F.rnn_cell, arrays, 3)
    theirs = _directional_derivatives_torch(
        lambda x, h, Wx, Wh, b: torch.tanh(x @ Wx + h @ Wh + b), arrays, 3)
    for order, (g_orders, e_orders) in enumerate(zip(ours, theirs), start=1):
        for i, (g, e) in enumerate(zip(g_orders, e_orders)):
            np.testing.assert_allclose(g, e, rtol=1e-9, atol=1e-11,
                                       err_msg=f"rnn_cell: order {order}, input {i}")


def test_rnn_cell_skips_the_gradients_nobody_needs():
    x, h = _rand(3, 2), Variable(_rand(3, 4, seed=1))  # x: data, no gradient
    Wx, Wh = Variable(_rand(2, 4, seed=2)), Variable(_rand(4, 4, seed=3))
    y = F.rnn_cell(x, h, Wx, Wh, None)
    (y * y).sum().backward(create_graph=True)
    node = Wx.grad.creator
    assert node.needs == (False, True, True, True, False)
    assert len(node.outputs) == 3  # gh, gWx, gWh only


@pytest.mark.torch
def test_lstm_cell_third_order_matches_torch():
    pytest.importorskip("torch")
    import torch

    H = 3
    arrays = [_rand(2, 2), _rand(2, H, seed=1), _rand(2, H, seed=5), _rand(2, 4 * H, seed=2),
              _rand(H, 4 * H, seed=3), _rand(4 * H, seed=4)]

    def torch_cell(x, h, c, Wx, Wh, b):
        f, i, o, u = torch.split(x @ Wx + h @ Wh + b, H, dim=1)
        f, i, o, u = torch.sigmoid(f), torch.sigmoid(i), torch.sigmoid(o), torch.tanh(u)
        c_new = f * c + i * u
        return torch.cat([o * torch.tanh(c_new), c_new * 0.5], dim=1)

    def ours(x, h, c, Wx, Wh, b):  # both outputs, the second weighted differently
        h_new, c_new = F.lstm_cell(x, h, c, Wx, Wh, b)
        return F.concat([h_new, c_new * 0.5], axis=1)

    got = _directional_derivatives(ours, arrays, 3)
    expected = _directional_derivatives_torch(torch_cell, arrays, 3)
    for order, (g_orders, e_orders) in enumerate(zip(got, expected), start=1):
        for i, (g, e) in enumerate(zip(g_orders, e_orders)):
            np.testing.assert_allclose(g, e, rtol=1e-9, atol=1e-11,
                                       err_msg=f"lstm_cell: order {order}, input {i}")


@pytest.mark.torch
def test_gru_cell_third_order_matches_torch():
    pytest.importorskip("torch")
    import torch

    H = 3
    arrays = [_rand(2, 2), _rand(2, H, seed=1), _rand(2, 3 * H, seed=2),
              _rand(H, 3 * H, seed=3), _rand(3 * H, seed=4), _rand(3 * H, seed=6)]

    def torch_cell(x, h, Wx, Wh, bx, bh):  # PyTorch's GRU equations
        xr, xz, xn = torch.split(x @ Wx + bx, H, dim=1)
        hr, hz, hn = torch.split(h @ Wh + bh, H, dim=1)
        r, z = torch.sigmoid(xr + hr), torch.sigmoid(xz + hz)
        n = torch.tanh(xn + r * hn)
        return (1 - z) * n + z * h

    got = _directional_derivatives(F.gru_cell, arrays, 3)
    expected = _directional_derivatives_torch(torch_cell, arrays, 3)
    for order, (g_orders, e_orders) in enumerate(zip(got, expected), start=1):
        for i, (g, e) in enumerate(zip(g_orders, e_orders)):
            np.testing.assert_allclose(g, e, rtol=1e-9, atol=1e-11,
                                       err_msg=f"gru_cell: order {order}, input {i}")


def test_lstm_cell_with_only_one_output_used_differentiates_twice():
    """c' unused: its gradient enters the Grad node as zeros; the values match the same
    step composed of elementary ops."""
    arrays = [_rand(2, 2), _rand(2, 3, seed=1), _rand(2, 3, seed=5), _rand(2, 12, seed=2),
              _rand(3, 12, seed=3)]

    def composed(x, h, c, Wx, Wh):
        f, i, o, u = F.split(F.matmul(x, Wx) + F.matmul(h, Wh), 4, axis=1)
        c_new = F.sigmoid(f) * c + F.sigmoid(i) * F.tanh(u)
        return F.sigmoid(o) * F.tanh(c_new)

    results = []
    for fn in (lambda *a: F.lstm_cell(*a)[0], composed):
        xs = [Variable(a) for a in arrays]
        y = fn(*xs)
        (y * y).sum().backward(create_graph=True)
        g = xs[0].grad
        for v in xs:
            v.cleargrad()
        (g * g).sum().backward()
        results.append([v.grad.data for v in xs])
    for fused, plain in zip(*results):
        np.testing.assert_allclose(fused, plain, rtol=1e-12, atol=1e-14)
