"""The shared check of ONNX export tests: export, check, run in ONNX Runtime, compare.

``check_export(model_or_fn, inputs)`` exports to a temporary file, runs
``onnx.checker.check_model`` (with shape inference) on what was written, runs the file in
onnxruntime on the example inputs and on two more random inputs (one with another batch
size when the batch is dynamic), and compares each output with zerograd's own forward
pass (``test_mode``) to ``atol``/``rtol``.

Table-driven tests describe a model as an :class:`ExportCase` and call :func:`check_case`.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

import zerograd  # noqa: E402
import zerograd.onnx  # noqa: E402
from zerograd import Variable  # noqa: E402


@dataclasses.dataclass
class ExportCase:
    """One model to export: ``build()`` returns a Layer or a function of Variables.

    input_shapes: one shape per input; inputs are drawn uniformly from [low, high) as
    ``dtype`` (float32), or as integers in [low, high) for an integer dtype. ``inputs``,
    when given, makes the example inputs itself (``inputs(rng)`` -> list of arrays).
    """

    name: str
    build: Callable[[], Any]
    input_shapes: Sequence[tuple] = ((3, 4),)
    low: float = -2.0
    high: float = 2.0
    dtype: Any = np.float32
    inputs: Callable[[np.random.Generator], list] | None = None
    opset: int | None = None
    other_batch: bool = True
    atol: float = 1e-5
    rtol: float = 1e-5

    def __str__(self) -> str:
        return self.name

    def make_inputs(self, rng: np.random.Generator) -> list:
        if self.inputs is not None:
            return list(self.inputs(rng))
        return [_draw(rng, shape, self.dtype, self.low, self.high)
                for shape in self.input_shapes]


def _draw(rng: np.random.Generator, shape: tuple, dtype: Any, low: float,
          high: float) -> np.ndarray:
    dtype = np.dtype(dtype)
    if dtype.kind in "iu":
        return rng.integers(int(low), int(high), size=shape).astype(dtype)
    if dtype.kind == "b":
        return rng.random(shape) < 0.5
    return rng.uniform(low, high, size=shape).astype(dtype)


def _like(rng: np.random.Generator, x: np.ndarray, shape: tuple) -> np.ndarray:
    """A random array of ``shape`` with x's dtype, in the range of x's own values (so a
    positive input of log stays positive, ids stay valid ids)."""
    if x.dtype.kind == "b":
        return rng.random(shape) < 0.5
    if x.size == 0:
        return np.zeros(shape, x.dtype)
    low, high = x.min(), x.max()
    if x.dtype.kind in "iu":
        return rng.integers(int(low), int(high) + 1, size=shape).astype(x.dtype)
    return rng.uniform(float(low), float(high), size=shape).astype(x.dtype)


def zerograd_outputs(model_or_fn: Any, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
    """zerograd's own outputs, in inference mode (as export traced it)."""
    with zerograd.test_mode(), zerograd.no_grad():
        result = model_or_fn(*[Variable(np.array(x)) for x in inputs])
    results = list(result) if isinstance(result, (tuple, list)) else [result]
    return [np.asarray(y.data) for y in results]


def run_onnx(path: str | os.PathLike, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
    session = ort.InferenceSession(os.fspath(path), providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]
    return session.run(None, dict(zip(names, inputs)))


def compare(expected: Sequence[np.ndarray], got: Sequence[np.ndarray], atol: float,
            rtol: float, what: str) -> None:
    assert len(expected) == len(got), f"{what}: {len(got)} outputs, expected {len(expected)}"
    for i, (e, g) in enumerate(zip(expected, got)):
        assert g.shape == e.shape, f"{what}: output {i} has shape {g.shape}, expected {e.shape}"
        assert g.dtype == e.dtype, f"{what}: output {i} is {g.dtype}, expected {e.dtype}"
        np.testing.assert_allclose(g, e, atol=atol, rtol=rtol, err_msg=f"{what}: output {i}")


def check_export(model_or_fn: Any, inputs: Any, *, other_batch: bool = True,
                 atol: float = 1e-5, rtol: float = 1e-5, seed: int = 0,
                 **export_kwargs: Any) -> Any:
    """Export, check and run ``model_or_fn`` on ``inputs`` (see the module docstring);
    returns the ModelProto read back from the file."""
    inputs = list(inputs) if isinstance(inputs, (tuple, list)) else [inputs]
    inputs = [np.asarray(x.data if isinstance(x, Variable) else x) for x in inputs]
    rng = np.random.default_rng(seed)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "model.onnx")
        zerograd.onnx.export(model_or_fn, inputs, path, **export_kwargs)
        model = onnx.load(path)
        onnx.checker.check_model(model, full_check=True)
        trials = [("example inputs", inputs),
                  ("random inputs", [_like(rng, x, x.shape) for x in inputs])]
        dynamic = export_kwargs.get("dynamic_batch", True)
        if other_batch and dynamic and inputs[0].ndim >= 1:
            batch = inputs[0].shape[0]
            trials.append((f"batch {batch + 2}", [
                _like(rng, x, (batch + 2, *x.shape[1:]) if x.ndim and x.shape[0] == batch
                      else x.shape) for x in inputs]))
        else:
            trials.append(("more random inputs",
                           [_like(rng, x, x.shape) for x in inputs]))
        for what, xs in trials:
            compare(zerograd_outputs(model_or_fn, xs), run_onnx(path, xs), atol, rtol, what)
    return model


def check_case(case: ExportCase) -> Any:
    """:func:`check_export` on the model and inputs an :class:`ExportCase` describes."""
    rng = np.random.default_rng(0)
    kwargs = {} if case.opset is None else {"opset": case.opset}
    return check_export(case.build(), case.make_inputs(rng), other_batch=case.other_batch,
                        atol=case.atol, rtol=case.rtol, **kwargs)


# -- coverage: every op of a family has a lowering or a stated reason ---------------------------
def function_classes(module: Any) -> list[type]:
    """The Function classes defined in ``module`` (not those it imports)."""
    from zerograd import Function

    return [obj for obj in vars(module).values()
            if isinstance(obj, type) and issubclass(obj, Function)
            and obj.__module__ == module.__name__]


def check_coverage(families: Sequence[Any], not_exportable: dict[str, str]) -> None:
    """Each Function class of ``families`` has a ``to_onnx`` or a reason in
    ``not_exportable``, and every name listed there is such a class without a lowering."""
    from zerograd.onnx import lowering_of

    classes = {cls.__name__: cls for module in families for cls in function_classes(module)}
    missing = [name for name, cls in classes.items()
               if lowering_of(cls) is None and name not in not_exportable]
    assert not missing, f"Function classes without to_onnx and not in NOT_EXPORTABLE: {missing}"
    for name in not_exportable:
        assert name in classes, f"NOT_EXPORTABLE names {name}, which is no op of these families"
        assert lowering_of(classes[name]) is None, f"{name} has a lowering now: remove it"
