"""``Variable``: an ndarray plus the links that make it a node of the graph."""

from __future__ import annotations

import numpy as np

from zerograd.backend import as_cupy, as_numpy, cupy_module

_REPR_INDENT = "\n" + " " * 9


def is_array(data) -> bool:
    """True for a NumPy ndarray or (when CuPy is installed) a CuPy ndarray."""
    if isinstance(data, np.ndarray):
        return True
    if type(data).__module__.split(".")[0] != "cupy":
        return False
    cp = cupy_module()
    return cp is not None and isinstance(data, cp.ndarray)


class Variable:
    """A node of the computational graph that holds an array.

    Attributes (DeZero's): ``data`` (the ndarray, or None), ``name``, ``grad`` (a Variable
    once ``backward`` reached this node), ``creator`` (the Function that produced it, None
    for a leaf) and ``generation`` (its depth, used to order backward). zerograd adds
    ``requires_grad``: False for constants that ops wrapped from plain arrays and scalars and
    for results computed without a graph, so that backward never computes their gradients.
    """

    __slots__ = ("data", "name", "grad", "creator", "generation", "requires_grad", "__weakref__")
    # An ndarray on the left of an operator defers to Variable's reflected method.
    __array_priority__ = 200
    __array_ufunc__ = None

    def __init__(self, data, name: str | None = None, requires_grad: bool = True) -> None:
        if data is not None and not is_array(data):
            raise TypeError(
                f"Variable: data must be a NumPy/CuPy ndarray or None, got {type(data).__name__}"
                f" ({data!r:.60}); wrap it first, e.g. Variable(np.array(...))"
            )
        self.data = data
        self.name = name
        self.grad = None
        self.creator = None
        self.generation = 0
        self.requires_grad = requires_grad

    # -- the array's facts --------------------------------------------------------------
    @property
    def shape(self) -> tuple:
        return self.data.shape

    @property
    def ndim(self) -> int:
        return self.data.ndim

    @property
    def size(self) -> int:
        return self.data.size

    @property
    def dtype(self):
        return self.data.dtype

    def __len__(self) -> int:
        return len(self.data)

    def __repr__(self) -> str:
        if self.data is None:
            return "variable(None)"
        return "variable(" + str(self.data).replace("\n", _REPR_INDENT) + ")"

    def __array__(self, dtype=None, copy=None):
        # Lets np.asarray / matplotlib read a Variable (a NumPy copy for CuPy data).
        a = as_numpy(self.data)
        return a if dtype is None else a.astype(dtype, copy=False)

    def __bool__(self) -> bool:
        return bool(self.data)

    def item(self):
        """The single element as a Python scalar."""
        return self.data.item()

    # -- graph links ---------------------------------------------------------------------
    def set_creator(self, func) -> None:
        self.creator = func
        self.generation = func.generation + 1

    def cleargrad(self) -> None:
        self.grad = None

    zero_grad = cleargrad

    def unchain(self) -> None:
        """Cut the link to the creator: this Variable becomes a leaf."""
        self.creator = None

    def unchain_backward(self) -> None:
        """Cut every creator link behind this Variable (truncated BPTT), iteratively."""
        if self.creator is None:
            return
        funcs = [self.creator]
        seen = {id(self.creator)}
        while funcs:
            f = funcs.pop()
            # Sibling outputs of a multi-output op (an LSTM step's c next to its h) are cut
            # too, or a later backward through them would reach the op again.
            for ref in f.outputs or ():
                sibling = ref()
                if sibling is not None and sibling is not self:
                    sibling.unchain()
            for x in f.inputs or ():
                if x.creator is not None:
                    if id(x.creator) not in seen:
                        seen.add(id(x.creator))
                        funcs.append(x.creator)
                    x.unchain()

    def detach(self) -> Variable:
        """A new leaf Variable sharing this one's data; it needs no gradient."""
        return Variable(self.data, name=self.name, requires_grad=False)

    def backward(self, retain_grad: bool = False, create_graph: bool = False,
                 retain_graph: bool = True) -> None:
        """Backpropagate from this Variable; see :func:`zerograd.core.engine.backward`."""
        from zerograd.core.engine import backward

        backward(self, retain_grad=retain_grad, create_graph=create_graph,
                 retain_graph=retain_graph)

    # -- devices ---------------------------------------------------------------------------
    def to_cpu(self) -> Variable:
        if self.data is not None:
            self.data = as_numpy(self.data)
        return self

    def to_gpu(self) -> Variable:
        if self.data is not None:
            self.data = as_cupy(self.data)
        return self


class Parameter(Variable):
    """A Variable that a Layer owns and an optimizer updates."""

    # No __slots__: subclasses get a __dict__ (layers sometimes tag parameters).
