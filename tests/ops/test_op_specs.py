"""Runs every op spec through the harness, and checks that no public op lacks a spec."""

import importlib
import pkgutil

import numpy as np
import pytest

import zerograd.functions as F
from tests.ops import specs as specs_package
from tests.ops.harness import (
    check_backward_arrays,
    check_double_backward,
    check_dtype_and_grad_shapes,
    check_forward,
    check_grad,
    check_zero_d,
    graph_functions,
)

SPECS = []
NOT_DIFFERENTIABLE: set[str] = set()
for module_info in pkgutil.iter_modules(specs_package.__path__):
    module = importlib.import_module(f"{specs_package.__name__}.{module_info.name}")
    SPECS.extend(module.SPECS)
    NOT_DIFFERENTIABLE |= set(getattr(module, "NOT_DIFFERENTIABLE", ()))


@pytest.mark.parametrize("spec", SPECS, ids=str)
def test_forward_matches_numpy(spec):
    check_forward(spec)


@pytest.mark.parametrize("spec", SPECS, ids=str)
def test_grad_matches_central_differences(spec):
    check_grad(spec)


@pytest.mark.parametrize("spec", SPECS, ids=str)
def test_backward_arrays_matches_backward(spec):
    check_backward_arrays(spec)


def _op_classes_with_backward_arrays() -> set:
    """Every Function subclass in zerograd that defines a backward_arrays."""
    from zerograd import Function

    found, todo = set(), list(Function.__subclasses__())
    while todo:
        cls = todo.pop()
        todo.extend(cls.__subclasses__())
        if cls.__module__.startswith("zerograd.") and cls.__dict__.get("backward_arrays"):
            found.add(cls)
    return found


def test_every_backward_arrays_is_checked_by_a_spec():
    """An op given a backward_arrays appears in some spec's graph, so that
    test_backward_arrays_matches_backward compares it with its backward."""
    from tests.ops.harness import _as_list, _call, _diff_args, make_inputs

    checked = set()
    for spec in SPECS:
        arrays = make_inputs(spec, spec.shapes[0], np.float64)
        y, _ = _call(spec, arrays, _diff_args(spec, arrays))
        checked |= {type(f) for f in graph_functions(_as_list(y))}
    missing = sorted(c.__name__ for c in _op_classes_with_backward_arrays() - checked)
    assert not missing, f"ops with a backward_arrays that no spec runs: {missing}"


@pytest.mark.parametrize("spec", [s for s in SPECS if s.double_backward], ids=str)
def test_second_derivative(spec):
    check_double_backward(spec)


@pytest.mark.parametrize("spec", SPECS, ids=str)
def test_float32_stays_float32_and_grads_fit_inputs(spec):
    check_dtype_and_grad_shapes(spec)


# Ops refusing 0-d inputs with a raw Python error: the recurrent cells index
# ``Wh.shape[0]`` before any shape check. Strict, so an entry must go once its error is a
# clear one.
ZERO_D_RAW_ERRORS = {"lstm_cell", "gru_cell", "rnn_cell", "lstm_sequence",
                     "lstm_sequence_reverse", "lstm_sequence_bias",
                     "lstm_sequence_bias_reverse", "gru_sequence", "gru_sequence_reverse",
                     "rnn_sequence", "rnn_sequence_reverse"}


def _zero_d_param(spec):
    if spec.name not in ZERO_D_RAW_ERRORS:
        return spec
    reason = "a 0-d input reaches a raw IndexError, not an error naming the op"
    return pytest.param(spec, marks=pytest.mark.xfail(strict=True, reason=reason))


@pytest.mark.parametrize("spec", [_zero_d_param(s) for s in SPECS], ids=str)
def test_zero_d_inputs_to_second_order(spec):
    check_zero_d(spec)


def test_spec_names_are_unique():
    names = [s.name for s in SPECS]
    assert len(names) == len(set(names)), sorted(n for n in names if names.count(n) > 1)


def test_every_public_function_has_a_spec():
    """An op added to zerograd.functions without a spec (or an explicit exemption) fails."""
    covered = {name for s in SPECS for name in s.covered_names} | NOT_DIFFERENTIABLE
    public = {name for name in F.__all__ if name[0].islower()}
    missing = sorted(public - covered)
    assert not missing, f"functions without an OpSpec in tests/ops/specs/: {missing}"


def test_functions_modules_expose_what_dezeros_import_but_star_import_gives_ops_only():
    """DeZero's functions modules import Variable, as_variable, cuda ... at their top level,
    so ``F.Variable`` works there; these are attributes here too, outside ``__all__``."""
    import zerograd
    import zerograd.functions_conv as FC

    assert F.Variable is zerograd.Variable and F.Function is zerograd.Function
    assert F.as_variable is FC.as_variable and F.cuda is zerograd.cuda is FC.cuda
    assert F.as_array(1.0).shape == () and F.utils is zerograd.utils
    assert FC.linear is F.linear and FC.broadcast_to is F.broadcast_to
    assert not {"Variable", "as_array", "cuda", "utils"} & set(F.__all__)
