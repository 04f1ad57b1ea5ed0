"""Elementwise math: square, exp, log, sin, cos, tanh. x: any shape -> same shape."""

from __future__ import annotations

import numpy as np

from zerograd.core.function import Function
from zerograd.core.variable import Variable

__all__ = ["square", "exp", "log", "sin", "cos", "tanh",
           "Square", "Exp", "Log", "Sin", "Cos", "Tanh"]


class Square(Function):
    """y = x ** 2; dy/dx = 2x."""

    def forward(self, x):
        return x * x

    def backward(self, gy):
        (x,) = self.inputs
        return gy * x * 2


class Exp(Function):
    """y = exp(x); dy/dx = y (keeps its output, not its input)."""

    def forward(self, x):
        return np.exp(x)

    def backward(self, gy):
        return gy * self.output


class Log(Function):
    """y = log(x) (natural); dy/dx = 1 / x. log(0) = -inf, as NumPy."""

    def forward(self, x):
        return np.log(x)

    def backward(self, gy):
        (x,) = self.inputs
        return gy / x


class Sin(Function):
    """y = sin(x); dy/dx = cos(x)."""

    def forward(self, x):
        return np.sin(x)

    def backward(self, gy):
        (x,) = self.inputs
        return gy * cos(x)


class Cos(Function):
    """y = cos(x); dy/dx = -sin(x)."""

    def forward(self, x):
        return np.cos(x)

    def backward(self, gy):
        (x,) = self.inputs
        return gy * -sin(x)


class Tanh(Function):
    """y = tanh(x); dy/dx = 1 - y^2 (keeps its output)."""

    def forward(self, x):
        return np.tanh(x)

    def backward(self, gy):
        y = self.output
        return gy * (1 - y * y)


def square(x) -> Variable:
    """x ** 2, elementwise."""
    return Square()(x)


def exp(x) -> Variable:
    """e ** x, elementwise."""
    return Exp()(x)


def log(x) -> Variable:
    """Natural logarithm, elementwise."""
    return Log()(x)


def sin(x) -> Variable:
    """Sine (radians), elementwise."""
    return Sin()(x)


def cos(x) -> Variable:
    """Cosine (radians), elementwise."""
    return Cos()(x)


def tanh(x) -> Variable:
    """Hyperbolic tangent, elementwise."""
    return Tanh()(x)
