"""Every Function of zerograd declares what its backward reads (``retain_inputs`` /
``retain_outputs``, Chainer's names), and the in-place check follows the declarations.

The engine's inference from a backward's code (core/engine.py ``_what_backward_reads``) is
left for user-defined Functions only; these tests make sure it never decides for an op of
zerograd's own.
"""

import importlib
import inspect
import pkgutil

import numpy as np
import pytest

import zerograd
import zerograd.functions as F
from zerograd import Function, Variable
from zerograd.core import engine
from zerograd.errors import InPlaceError
from zerograd.ops.linalg import Einsum
from zerograd.ops.reduction import ProductOfOthers

# Ops whose number of inputs is known only when they run declare retain_inputs in forward;
# each is checked by running it below.
DECLARED_IN_FORWARD = {"Einsum", "ProductOfOthers", "_Checkpoint"}


def zerograd_functions() -> list[type]:
    """Every Function subclass defined in the zerograd package (all its modules imported)."""
    for module in pkgutil.walk_packages(zerograd.__path__, "zerograd."):
        importlib.import_module(module.name)
    found, todo = [], [Function]
    while todo:
        for cls in todo.pop().__subclasses__():
            todo.append(cls)
            if cls.__module__.split(".")[0] == "zerograd":
                found.append(cls)
    return sorted(set(found), key=lambda c: (c.__module__, c.__name__))


FUNCTIONS = zerograd_functions()


def declared(cls: type, name: str):
    """The value of ``name`` from the first class of cls's MRO below Function that sets it."""
    for klass in cls.__mro__:
        if klass is Function:
            return None
        if name in vars(klass):
            return vars(klass)[name]
    return None


def input_arity(cls: type) -> tuple[int, bool]:
    """(the number of required inputs of cls.forward, whether it takes *args)."""
    parameters = list(inspect.signature(cls.forward).parameters.values())[1:]  # no self
    required = sum(1 for p in parameters
                   if p.kind is p.POSITIONAL_OR_KEYWORD and p.default is p.empty)
    return required, any(p.kind is p.VAR_POSITIONAL for p in parameters)


def test_the_walk_finds_the_op_families():
    names = {cls.__name__ for cls in FUNCTIONS}
    assert len(FUNCTIONS) > 120
    assert {"Add", "MatMul", "Conv2d", "LSTMSequence", "SumTo", "_Checkpoint",
            "SoftmaxCrossEntropyGrad", "ScatterAdd"} <= names


@pytest.mark.parametrize("cls", FUNCTIONS, ids=lambda c: f"{c.__module__}.{c.__name__}")
def test_every_function_declares_what_its_backward_reads(cls):
    outputs = declared(cls, "retain_outputs")
    inputs = declared(cls, "retain_inputs")
    where = f"{cls.__module__}.{cls.__name__}"
    assert isinstance(outputs, tuple), f"{where} declares no retain_outputs tuple"
    if cls.__name__ in DECLARED_IN_FORWARD:
        assert inputs is None, f"{where}: retain_inputs is set in forward, not on the class"
    else:
        assert isinstance(inputs, tuple), f"{where} declares no retain_inputs tuple"
        required, _ = input_arity(cls)
        # Valid positions: distinct, in order, and among the inputs every call has (the
        # engine indexes f.inputs with them).
        assert all(type(i) is int for i in inputs), f"{where}: {inputs}"
        assert list(inputs) == sorted(set(inputs)), f"{where}: {inputs} not sorted, distinct"
        assert all(0 <= i < required for i in inputs), (
            f"{where}: retain_inputs {inputs}, but forward takes {required} required inputs")
    # Every op has an output 0; none of zerograd's reads a later output of a multi-output op.
    assert outputs in ((), (0,)), f"{where}: retain_outputs {outputs}"
    saved = declared(cls, "saved") or ()
    assert isinstance(saved, tuple) and all(isinstance(s, str) for s in saved), where


@pytest.mark.parametrize("cls", [c for c in FUNCTIONS if c.__name__ not in DECLARED_IN_FORWARD],
                         ids=lambda c: c.__name__)
def test_the_engine_takes_the_declaration_not_the_inference(cls):
    f = object.__new__(cls)  # the class's attributes only: no constructor arguments needed
    assert engine._what_backward_reads(f) == (cls.retain_inputs, cls.retain_outputs)


def test_ops_with_any_number_of_inputs_declare_all_of_them_when_they_run():
    a, b, c = (Variable(np.full((2, 2), v)) for v in (1.0, 2.0, 3.0))
    y = F.einsum("ij,jk,kl->il", a, b, c)
    assert isinstance(y.creator, Einsum) and y.creator.retain_inputs == (0, 1, 2)
    h = ProductOfOthers(0)(a, b, c)
    assert h.creator.retain_inputs == (0, 1, 2)
    z = zerograd.checkpoint(lambda u, v: u * v, a, b)
    assert z.creator.retain_inputs == (0, 1)
    for f in (y.creator, h.creator, z.creator):
        assert engine._what_backward_reads(f) == (f.retain_inputs, ())


# -- the in-place check follows the declarations -----------------------------------------------
def _floats(*shape, seed=0):
    return np.random.default_rng(seed).uniform(0.5, 1.5, shape)


def _case_mul():
    x0, x1 = Variable(_floats(3), name="x0"), Variable(_floats(3, seed=1), name="x1")
    return F.sum(x0 * x1), [x0, x1]


def _case_add():
    x0, x1 = Variable(_floats(3), name="x0"), Variable(_floats(3, seed=1), name="x1")
    return F.sum(x0 + x1), [x0, x1]


def _case_linear():
    x, W, b = (Variable(_floats(2, 3), name="x"), Variable(_floats(3, 4, seed=1), name="W"),
               Variable(_floats(4, seed=2), name="b"))
    return F.sum(F.linear(x, W, b)), [x, W, b]


def _case_exp():
    x = Variable(_floats(3), name="x")
    return F.sum(F.exp(x)), [x]


def _case_relu():
    x = Variable(_floats(3) - 1.0, name="x")
    return F.sum(F.relu(x)), [x]


def _case_einsum():
    a, b, c = (Variable(_floats(2, 2, seed=s), name=n) for s, n in enumerate("abc"))
    return F.sum(F.einsum("ij,jk,kl->il", a, b, c)), [a, b, c]


def _case_rnn_sequence():
    xw, h0, Wh = (Variable(_floats(2, 3, 4), name="xw"), Variable(_floats(2, 4, seed=1),
                  name="h0"), Variable(_floats(4, 4, seed=2) * 0.1, name="Wh"))
    y, _ = F.rnn_sequence(xw, h0, Wh)
    return F.sum(y), [xw, h0, Wh]


def _case_checkpoint():
    x, w = Variable(_floats(3), name="x"), Variable(_floats(3, seed=1), name="w")
    return F.sum(zerograd.checkpoint(lambda a, b: F.sin(a) * b, x, w)), [x, w]


# (case, input changed in place, the op named in the error or None for no error)
CASES = [
    (_case_mul, 1, "Mul"),
    (_case_add, 0, None),
    (_case_linear, 1, "Linear"),
    (_case_linear, 2, None),  # Linear reads only the bias's shape
    (_case_exp, 0, None),  # exp's backward reads its output, not its input
    (_case_relu, 0, None),  # so does relu's
    (_case_einsum, 2, "Einsum"),  # declared in forward, for three operands
    (_case_rnn_sequence, 0, None),  # xw's values live on in the op's saved activations
    (_case_rnn_sequence, 1, "RNNSequence"),
    (_case_checkpoint, 1, "checkpoint"),
]


@pytest.mark.parametrize(("case", "changed", "op"), CASES,
                         ids=[f"{c.__name__[6:]}-{i}" for c, i, _ in CASES])
def test_in_place_check_follows_the_declarations(case, changed, op):
    loss, inputs = case()
    x = inputs[changed]
    x.data += 1.0
    if op is not None:
        # (The position is the op's: checkpoint's node orders its boundary its own way.)
        with pytest.raises(InPlaceError, match=rf"{op}\S*'s backward needs input \d+ "
                                               rf'named "{x.name}"'):
            loss.backward()
        return
    # No error, and the gradient is that of the values the forward pass used: compare with
    # a fresh run of the case on the original values.
    loss.backward()
    fresh_loss, fresh = case()
    fresh_loss.backward()
    for got, want in zip(inputs, fresh):
        np.testing.assert_allclose(got.grad.data, want.grad.data, rtol=1e-12)


def test_an_output_the_backward_reads_is_checked_too():
    x = Variable(_floats(3))
    y = F.exp(x)
    loss = F.sum(y * 2.0)
    y.data *= 3.0
    with pytest.raises(InPlaceError, match=r"Exp's backward needs its output 0"):
        loss.backward()


def test_a_user_function_without_declarations_still_gets_the_inference():
    class Scale(Function):  # DeZero style: no declarations
        def forward(self, x, s):
            return x * s

        def backward(self, gy):
            x, s = self.inputs
            return gy * s, gy * x

    x, s = Variable(_floats(2), name="x"), Variable(_floats(2, seed=1), name="s")
    loss = F.sum(Scale()(x, s))
    assert engine._what_backward_reads(loss.creator.inputs[0].creator) == (True, ())
    s.data += 1.0
    with pytest.raises(InPlaceError, match=r'Scale\'s backward needs input 1 named "s"'):
        loss.backward()


def test_what_forward_saves_for_backward_is_released_with_the_graph():
    x = Variable(_floats(2, 3))
    updates = Variable(_floats(2, 3, seed=1))
    y = F.scatter_add(x, np.array([[0, 1, 2], [2, 1, 0]]), updates, axis=1)
    node = y.creator
    assert node.positions is not None
    w = Variable(_floats(3))
    z = zerograd.checkpoint(lambda a: F.sin(a) * 2.0, w)
    segment = z.creator
    assert segment.args is not None
    (F.sum(y) + F.sum(z)).backward(retain_graph=False)
    assert node.positions is None and node.inputs is None
    assert segment.args is None and segment.inputs is None
    np.testing.assert_allclose(updates.grad.data, np.ones((2, 3)))
    np.testing.assert_allclose(w.grad.data, 2.0 * np.cos(w.data), rtol=1e-12)
