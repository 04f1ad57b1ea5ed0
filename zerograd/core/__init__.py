"""The autodiff core: Variable, Function and the backward engine."""

from zerograd.core.function import Function, as_array, as_variable
from zerograd.core.variable import Parameter, Variable

__all__ = ["Variable", "Parameter", "Function", "as_array", "as_variable"]
