"""The names of DeZero's stage-2 core (``dezero.core_simple``), so the book's steps 23-32 import.

zerograd has one core; this module offers its stage-2 subset under the old module name.
"""

from zerograd._config import Config, no_grad, using_config
from zerograd.core.function import Function, as_array, as_variable
from zerograd.core.variable import Variable
from zerograd.ops.arithmetic import (
    Add,
    Div,
    Mul,
    Neg,
    Pow,
    Sub,
    add,
    div,
    mul,
    neg,
    pow,
    rdiv,
    rsub,
    sub,
)
from zerograd.ops.overloads import setup_variable

__all__ = [
    "Config", "Variable", "Function", "using_config", "no_grad", "as_array", "as_variable",
    "setup_variable", "Add", "Mul", "Neg", "Sub", "Div", "Pow",
    "add", "mul", "neg", "sub", "rsub", "div", "rdiv", "pow",
]
