"""``Function``: the base class of every differentiable op.

``forward`` works on raw arrays; ``backward`` works on Variables, so that running it with
graph recording on (``create_graph=True``) yields higher-order derivatives for free.
"""

from __future__ import annotations

import weakref

import numpy as np

from zerograd._config import _state
from zerograd.core.variable import Variable, is_array
from zerograd.errors import DTypeError, ShapeError, ZerogradError, describe


def as_array(x, array_module=np):
    """``x`` as an array: scalars become 0-d arrays, arrays pass through unchanged."""
    if np.isscalar(x):
        return array_module.array(x)
    return x


def as_variable(obj) -> Variable:
    """``obj`` itself if it is a Variable, else a new Variable wrapping it."""
    if isinstance(obj, Variable):
        return obj
    return Variable(obj)


def _constant(x, op: Function, position: int) -> Variable:
    """Wrap a non-Variable input of an op as a Variable that needs no gradient."""
    if is_array(x):
        return Variable(x, requires_grad=False)
    if isinstance(x, (int, float, complex, np.generic)) and not isinstance(x, bool):
        return Variable(np.asarray(x), requires_grad=False)
    raise DTypeError(
        f"{op.name}: input {position} is a {type(x).__name__}; expected a Variable, an ndarray "
        f"or a scalar"
    )


class Function:
    """Base class of ops. Subclasses define ``forward(*arrays)`` and ``backward(*gys)``.

    After a call that recorded the graph, ``inputs`` holds the input Variables (strongly),
    ``outputs`` weak references to the outputs, and ``generation`` the op's depth.
    """

    generation = 0
    inputs = None
    outputs = None

    def __call__(self, *inputs):
        inputs = [x if isinstance(x, Variable) else _constant(x, self, i)
                  for i, x in enumerate(inputs)]
        xs = [x.data for x in inputs]
        try:
            ys = self.forward(*xs)
        except ZerogradError:
            raise
        except ValueError as e:
            raise ShapeError(f"{self.name}: {e} (inputs: {describe(xs)})") from e
        except TypeError as e:
            raise DTypeError(f"{self.name}: {e} (inputs: {describe(xs)})") from e
        if not isinstance(ys, tuple):
            ys = (ys,)

        record = False
        if _state.enable_backprop:
            for x in inputs:
                if x.requires_grad:
                    record = True
                    break
        if record:
            generation = max([x.generation for x in inputs])
            self.generation = generation
            self.inputs = inputs
            outputs = []
            for y in ys:
                out = Variable(y if is_array(y) else as_array(y))
                out.creator = self
                out.generation = generation + 1
                outputs.append(out)
            self.outputs = [weakref.ref(out) for out in outputs]
        else:
            outputs = [Variable(y if is_array(y) else as_array(y), requires_grad=False)
                       for y in ys]
        return outputs if len(outputs) > 1 else outputs[0]

    @property
    def name(self) -> str:
        return type(self).__name__

    def forward(self, *xs):
        raise NotImplementedError(f"{self.name}.forward is not implemented")

    def backward(self, *gys):
        raise NotImplementedError(f"{self.name}.backward is not implemented")

    # Helpers for backward implementations -------------------------------------------
    def needs_grad(self, index: int) -> bool:
        """Whether input ``index`` wants a gradient (lets ops skip costly, unused work)."""
        return self.inputs[index].requires_grad

    @property
    def output(self) -> Variable:
        """The (single) output, for ops whose backward is written in terms of it."""
        return self.outputs[0]()
