"""zerograd: a define-by-run deep-learning framework on NumPy, compatible with DeZero."""

from zerograd._config import Config, no_grad, test_mode, using_config
from zerograd.core import Function, Parameter, Variable, as_array, as_variable
from zerograd.ops.overloads import setup_variable

# DeZero's flag: False means the full core (not the stage-2 ``core_simple``) is in use.
is_simple_core = False

setup_variable()

from zerograd import cuda, functions, utils  # noqa: E402

__version__ = "0.1.0"

__all__ = [
    "Config", "Function", "Parameter", "Variable", "as_array", "as_variable", "cuda",
    "functions", "is_simple_core", "no_grad", "setup_variable", "test_mode", "using_config",
    "utils",
]
