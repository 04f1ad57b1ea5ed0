"""zerograd: a define-by-run deep-learning framework on NumPy, compatible with DeZero.

``import zerograd`` needs NumPy only, and loads just what ``Variable`` and its operators
need: the core and the ops behind ``+``, ``*``, ``@``, ``x[i]``, ``x.sum()``, ``x.T`` ....
Everything else (``zerograd.functions``, ``utils``, ``autograd``, the neural-network,
optimizer, data and training modules) is imported on first use, through the module
``__getattr__`` below, so ``zerograd.functions.relu`` and ``import zerograd.layers as L``
work as in DeZero without a program that never uses them paying for them.
"""

import importlib
import sys

import numpy as _np

if int(_np.__version__.split(".")[0]) < 2:
    # NumPy 1.x promotes Python scalars by value (no NEP 50), so float32 computations would
    # quietly turn float64 in places; say so at import instead of giving wrong dtypes later.
    raise ImportError(
        f"zerograd needs NumPy >= 2.0, found {_np.__version__}: pip install -U 'numpy>=2'"
    )

from zerograd import memory as _memory
from zerograd._config import Config, detect_anomaly, no_grad, test_mode, using_config
from zerograd.core import Function, Parameter, Variable, as_array, as_variable
from zerograd.core.dlpack import from_dlpack
from zerograd.ops.overloads import setup_variable

# DeZero's flag: False means the full core (not the stage-2 ``core_simple``) is in use.
is_simple_core = False

setup_variable()

# Keep a step's freed arrays mapped for the next step instead of faulting them in afresh
# (glibc only; ZEROGRAD_MALLOC=system leaves the allocator as it is; see zerograd/memory.py).
_memory.configure()

__version__ = "0.1.0"

# Public names that live in modules loaded on first access: name -> (module, attribute).
_LAZY = {
    "Layer": ("zerograd.layers", "Layer"),
    "Model": ("zerograd.models", "Model"),
    "Dataset": ("zerograd.datasets", "Dataset"),
    "DataLoader": ("zerograd.dataloaders", "DataLoader"),
    "SeqDataLoader": ("zerograd.dataloaders", "SeqDataLoader"),
    "seed": ("zerograd.random_state", "seed"),
    "checkpoint": ("zerograd.core.autograd", "checkpoint"),
}
_LAZY_MODULES = ("functions", "utils", "autograd", "cuda", "layers", "models", "optimizers",
                 "datasets", "dataloaders", "transforms", "functions_conv", "nn", "optim",
                 "data", "distributed", "training", "onnx")
# DeZero's ``__init__`` imports ``dezero.layers`` and friends, which also binds the package's
# own name inside it, so ``from dezero import *`` hands a program ``dezero`` itself (book code
# then calls ``dezero.no_grad()``). zerograd answers to both names.
_SELF_NAMES = ("zerograd", "dezero")


def __getattr__(name: str):
    if name in _LAZY:
        module_name, attribute = _LAZY[name]
        value = getattr(importlib.import_module(module_name), attribute)
        globals()[name] = value
        return value
    if name in _LAZY_MODULES:
        module = importlib.import_module(f"zerograd.{name}")
        globals()[name] = module
        return module
    if name in _SELF_NAMES:
        return sys.modules[__name__]
    raise AttributeError(f"module 'zerograd' has no attribute {name!r}")


# What ``from zerograd import *`` gives: every name ``from dezero import *`` gives (DeZero's
# public classes and functions, its submodules and the package under its own name), plus
# zerograd's own top-level tools: ``seed``, ``autograd``, ``checkpoint``, ``detect_anomaly``,
# ``from_dlpack``.
__all__ = [
    "Config", "DataLoader", "Dataset", "Function", "Layer", "Model", "Parameter",
    "SeqDataLoader", "Variable", "as_array", "as_variable", "autograd", "checkpoint", "core",
    "cuda", "dataloaders", "datasets", "detect_anomaly", "dezero", "from_dlpack", "functions",
    "functions_conv", "is_simple_core", "layers", "models", "no_grad", "optimizers", "seed",
    "setup_variable", "test_mode", "transforms", "using_config", "utils", "zerograd",
]
