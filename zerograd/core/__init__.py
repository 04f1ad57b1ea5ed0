"""The autodiff core: Variable, Function and the backward engine.

DeZero's ``dezero.core`` also holds the config switches and the arithmetic ops (``Add``,
``mul``, ``setup_variable`` ...), and programs import them from there
(``from dezero.core import Function, Config``). zerograd keeps the ops in ``zerograd.ops``,
above the core, so this package finds those names on first access instead of importing the
ops (which import the core) at import time. ``zerograd.core.autograd`` (the functional API
and, under it, the engine's second entry point) is loaded on first use too.
"""

import importlib

from zerograd._config import Config, detect_anomaly, no_grad, test_mode, using_config
from zerograd.core.function import Function, as_array, as_variable
from zerograd.core.hooks import RemovableHandle
from zerograd.core.variable import Parameter, Variable

# DeZero's dezero.core names that live above the core: name -> module.
_FROM_OPS = {
    **dict.fromkeys(["Add", "Sub", "Mul", "Div", "Neg", "Pow", "add", "sub", "rsub", "mul",
                     "div", "rdiv", "neg", "pow"], "zerograd.ops.arithmetic"),
    "setup_variable": "zerograd.ops.overloads",
}


def __getattr__(name: str):
    if name in _FROM_OPS:
        value = getattr(importlib.import_module(_FROM_OPS[name]), name)
        globals()[name] = value
        return value
    if name == "autograd":  # the functional API and the engine under it: on first use
        return importlib.import_module("zerograd.core.autograd")
    raise AttributeError(f"module 'zerograd.core' has no attribute {name!r}")


__all__ = ["Variable", "Parameter", "Function", "as_array", "as_variable", "Config", "no_grad",
           "test_mode", "using_config", "detect_anomaly", "autograd", "RemovableHandle",
           *_FROM_OPS]
