"""``Variable``: an ndarray plus the links that make it a node of the graph."""

from __future__ import annotations

import operator
from typing import TYPE_CHECKING, Any, TypeAlias

import numpy as np

from zerograd.backend import as_cupy, as_numpy, cupy_module

_REPR_INDENT = "\n" + " " * 9

# The write clock: a process-wide count of in-place writes through ``Variable.data`` (its one
# element is the latest value). A Variable written in place records the clock's new value as
# its ``_version``; a Function records the clock's value when it ran (``Function._stamp``).
# Backward then knows an input was changed after the forward pass when its ``_version`` is
# larger than the stamp, and when no write happened at all since (the clock still equals the
# stamp, the usual case) it pays one comparison per function. A list, so that function.py and
# engine.py read the live value without a module-attribute lookup.
_write_clock = [0]


def is_array(data) -> bool:
    """True for a NumPy ndarray or (when CuPy is installed) a CuPy ndarray."""
    if isinstance(data, np.ndarray):
        return True
    if type(data).__module__.split(".")[0] != "cupy":
        return False
    cp = cupy_module()
    return cp is not None and isinstance(data, cp.ndarray)


# The ufuncs behind Variable's operators: (method when the Variable is the first operand,
# method when it is the second). An ndarray's operators call these ufuncs, so `ndarray + v`
# arrives in Variable.__array_ufunc__ as np.add(ndarray, v) and goes on to v.__radd__.
_UFUNC_OPERATORS = {
    np.add: ("__add__", "__radd__"),
    np.subtract: ("__sub__", "__rsub__"),
    np.multiply: ("__mul__", "__rmul__"),
    np.true_divide: ("__truediv__", "__rtruediv__"),  # np.divide is the same ufunc
    np.power: ("__pow__", "__rpow__"),
    np.matmul: ("__matmul__", "__rmatmul__"),
    # A comparison with the operands swapped is the mirrored comparison.
    np.less: ("__lt__", "__gt__"),
    np.less_equal: ("__le__", "__ge__"),
    np.greater: ("__gt__", "__lt__"),
    np.greater_equal: ("__ge__", "__le__"),
    np.equal: ("__eq__", "__eq__"),
    np.not_equal: ("__ne__", "__ne__"),
    # One operand.
    np.negative: ("__neg__",),
    np.absolute: ("__abs__",),
}


def _ufunc_name(ufunc, method: str) -> str:
    """'add' for np.add(...), 'add.reduce' for np.add.reduce(...)."""
    return ufunc.__name__ if method == "__call__" else f"{ufunc.__name__}.{method}"


if TYPE_CHECKING:
    # What an operator accepts on the other side: a Variable, an array or a scalar.
    Operand: TypeAlias = "Variable | np.ndarray | float | int"


class Variable:
    """A node of the computational graph that holds an array.

    Attributes (DeZero's): ``data`` (the ndarray, or None), ``name``, ``grad`` (a Variable
    once ``backward`` reached this node), ``creator`` (the Function that produced it, None
    for a leaf) and ``generation`` (its depth, used to order backward). zerograd adds
    ``requires_grad``: False for constants that ops wrapped from plain arrays and scalars and
    for results computed without a graph, so that backward never computes their gradients.

    The array lives in the slot ``_data``; ``data`` is a property so that an in-place write
    through it (``x.data -= lr * g``) is counted (see ``_write_clock`` and docs/engine.md,
    "In-place safety"). The core reads ``_data`` directly on its hot paths.
    """

    # _version: the write clock's value at this Variable's last in-place write through
    # ``data``; never set (read as 0) for a Variable that was never written in place.
    __slots__ = ("_data", "name", "grad", "creator", "generation", "requires_grad", "_version",
                 "__weakref__")
    # Legacy NumPy dispatch (array-likes without __array_ufunc__, CuPy's operators): an array
    # on the left of an operator defers to Variable's reflected method.
    __array_priority__ = 200

    def __init__(self, data, name: str | None = None, requires_grad: bool = True) -> None:
        if data is not None and not is_array(data):
            raise TypeError(
                f"Variable: data must be a NumPy/CuPy ndarray or None, got {type(data).__name__}"
                f" ({data!r:.60}); wrap it first, e.g. Variable(np.array(...))"
            )
        self._data = data
        self.name = name
        self.grad: Variable | None = None
        self.creator = None
        self.generation = 0
        self.requires_grad = requires_grad

    # -- the array ------------------------------------------------------------------------
    def _set_data(self, value) -> None:
        # `x.data -= v` reads the array, updates it in place and assigns the same object back:
        # that is how an in-place write shows itself here. A different array (`x.data = new`)
        # is a rebinding, not counted: library code rebinds to equal values (fused weights'
        # views, linear_simple's freed product), which only a full comparison could tell
        # from a change. docs/engine.md lists what is and is not detected.
        if value is not None and value is self._data:
            clock = _write_clock
            clock[0] += 1
            self._version = clock[0]
        self._data = value

    # The getter is C code (attrgetter), so reading ``x.data`` costs little over the slot.
    data = property(operator.attrgetter("_data"), _set_data,
                    doc="The ndarray (NumPy or CuPy), or None.")

    @property
    def shape(self) -> tuple:
        return self._data.shape

    @property
    def ndim(self) -> int:
        return self._data.ndim

    @property
    def size(self) -> int:
        return self._data.size

    @property
    def dtype(self):
        return self._data.dtype

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

    # -- DLPack: the array to another framework without a copy (zerograd.from_dlpack is the
    # other direction, core/dlpack.py) ------------------------------------------------------
    def __dlpack__(self, *, stream=None, max_version=None, dl_device=None, copy=None):
        """The array as a DLPack capsule over the same memory (``torch.from_dlpack(v)``,
        ``cupy.from_dlpack(v)``, ``np.from_dlpack(v)``); the arguments are the protocol's,
        passed on to the NumPy or CuPy array. Only the array goes, never the graph, and a
        write through the consumer's view is outside zerograd's in-place check."""
        data = self._exported_array("__dlpack__")
        if copy is not True and any(s < 0 for s in data.strides):
            # DLPack allows negative strides, but PyTorch 2.x aborts the whole process (a C++
            # exception) on such a capsule: refuse here, where the error can still be read.
            raise BufferError(
                f"Variable.__dlpack__: the array ({data.dtype} {tuple(data.shape)}) has "
                f"negative strides {tuple(data.strides)} (a reversed view such as x[::-1]), "
                "which some consumers (PyTorch) cannot take. Share a contiguous copy "
                "(Variable(xp.ascontiguousarray(v.data))) or ask for a copy (copy=True)"
            )
        # Only what the consumer asked for is passed on: an older producer (CuPy before 13)
        # takes `stream` alone, and a consumer that meets its TypeError retries that way, as
        # the protocol prescribes.
        asked = {"stream": stream, "max_version": max_version, "dl_device": dl_device,
                 "copy": copy}
        return data.__dlpack__(**{k: v for k, v in asked.items() if v is not None})

    def __dlpack_device__(self) -> tuple:
        """(DLPack device type, device id) of the array: (1, 0) for NumPy, (2, n) on GPU n."""
        return self._exported_array("__dlpack_device__").__dlpack_device__()

    def _exported_array(self, method: str):
        if self._data is None:
            raise BufferError(
                f"Variable.{method}: this Variable{f' named {self.name!r}' if self.name else ''}"
                " holds no array (data is None, e.g. an intermediate freed to save memory); "
                "there is nothing to share"
            )
        return self._data

    def __bool__(self) -> bool:
        return bool(self.data)

    def item(self):
        """The single element as a Python scalar."""
        return self.data.item()

    # -- a one-element Variable as a Python number (as a 0-d ndarray or a PyTorch tensor) --
    def _only_element(self, caller: str):
        """The single element of ``data`` as a Python scalar, or NumPy's TypeError naming
        the shape. Any one-element shape converts ((), (1,), (1, 1)...), as in PyTorch."""
        data = self.data
        if data is None or data.size != 1:
            shape = None if data is None else tuple(data.shape)
            raise TypeError(
                f"{caller}: only one-element Variables can be converted to Python scalars; "
                f"this one has shape {shape}"
            )
        return data.item()

    def __float__(self) -> float:
        return float(self._only_element("float()"))

    def __int__(self) -> int:
        return int(self._only_element("int()"))

    def __complex__(self) -> complex:
        return complex(self._only_element("complex()"))

    def __index__(self) -> int:
        # NumPy's rule: only a 0-d integer array is an index. A one-element 1-d Variable must
        # not be one, or NumPy would index arr[v] with a scalar and drop an axis (a batch of
        # one label), and a float index must fail.
        data = self.data
        if data is None or data.ndim != 0 or data.dtype.kind not in "iu":
            described = None if data is None else f"{data.dtype} {tuple(data.shape)}"
            raise TypeError(
                "operator.index(): only integer 0-d Variables can be converted to an index; "
                f"this one is {described}"
            )
        return operator.index(data.item())

    def __round__(self, ndigits: int | None = None):
        # Python's rule for numbers: round(v) is an int, round(v, n) a float.
        return round(self._only_element("round()"), ndigits)

    def __format__(self, format_spec: str) -> str:
        # f"{v}" prints like print(v); f"{loss:.4f}" formats the number inside.
        if not format_spec:
            return str(self)
        return format(self._only_element(f"format(Variable, {format_spec!r})"), format_spec)

    # -- NumPy ufuncs that meet a Variable (NEP 13) ------------------------------------------
    def __array_ufunc__(self, ufunc, method: str, *inputs, **kwargs):
        """NumPy calls this for any ufunc with a Variable among its operands.

        - With an output array (``out=``, which is how ``ndarray -= Variable`` arrives, and
          ``ufunc.at``) the caller wants numbers written into that array: the ufunc runs on
          the Variables' data and the array is updated in place. Book steps 28-29 write
          ``x.data -= lr * x.grad`` with ``grad`` a Variable; ``x.data`` stays an ndarray.
        - A ufunc that is one of Variable's operators (``ndarray + Variable`` calls
          ``np.add``) goes to that operator, reflected when the Variable is on the right:
          the result is a Variable recorded in the graph.
        - Any other ufunc (``np.exp(v)``) raises TypeError: it would drop the graph.
        """
        if method == "__call__" and not kwargs:  # first: the path of `ndarray + Variable`
            names = _UFUNC_OPERATORS.get(ufunc)
            if names is not None:
                if len(inputs) == 1:
                    return getattr(inputs[0], names[0])()
                x0, x1 = inputs
                if isinstance(x0, Variable):
                    return getattr(x0, names[0])(x1)
                return getattr(x1, names[1])(x0)
        out = kwargs.get("out")
        if out is not None or method == "at":
            for o in out or ():
                if isinstance(o, Variable):
                    raise TypeError(
                        f"np.{_ufunc_name(ufunc, method)}: out= cannot be a Variable; write "
                        "into its array instead (out=v.data)"
                    )
            arrays = [x.data if isinstance(x, Variable) else x for x in inputs]
            return getattr(ufunc, method)(*arrays, **kwargs)
        types = ", ".join(type(x).__name__ for x in inputs)
        raise TypeError(
            f"np.{_ufunc_name(ufunc, method)} was given a Variable (operands: {types}); NumPy "
            "ufuncs do not record the graph. Use the zerograd function (zerograd.functions) "
            "or an operator to differentiate through it, or pass v.data to compute plain "
            "numbers"
        )

    # -- copies (copy.copy, copy.deepcopy, pickle) -------------------------------------------
    def __getstate__(self) -> tuple:
        # Python's own layout for a slotted object: (instance __dict__ or None, slot values).
        # The graph links are left out: a creator's weak references point at the original
        # outputs, so backward through a copy that kept them would read the original's grads
        # (or dead references). A copy is therefore a leaf. PyTorch refuses to deep-copy a
        # non-leaf tensor instead, but a model that carries state (an LSTM's h and c) must
        # still copy and pickle.
        slots = {"data": self.data, "name": self.name, "grad": self.grad,
                 "requires_grad": self.requires_grad}
        return (getattr(self, "__dict__", None) or None, slots)

    def __setstate__(self, state: tuple) -> None:
        instance_dict, slots = state
        self._data = slots["data"]
        self.name = slots.get("name")
        self.grad = slots.get("grad")
        self.requires_grad = slots.get("requires_grad", True)
        self.creator = None
        self.generation = 0
        if instance_dict:  # a Parameter's (or a user subclass's) own attributes
            self.__dict__.update(instance_dict)

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

    def register_hook(self, hook):
        """Call ``hook(grad)`` with this Variable's gradient whenever a backward pass (or
        ``zerograd.autograd.grad``) has computed all of it; a non-None return replaces the
        gradient. Returns a handle whose ``remove()`` unregisters the hook. As in PyTorch: on
        an intermediate the hook sees the gradient before it flows on to the creator; on a
        leaf, the gradient of this pass before it is added to ``.grad``."""
        from zerograd.core.hooks import register_gradient_hook

        return register_gradient_hook(self, hook)

    # -- devices ---------------------------------------------------------------------------
    # A move between devices keeps the numbers, so it is not an in-place write (``_data``).
    def to_cpu(self) -> Variable:
        if self._data is not None:
            self._data = as_numpy(self._data)
        return self

    def to_gpu(self) -> Variable:
        if self._data is not None:
            self._data = as_cupy(self._data)
        return self


    # The operators and array-like methods that zerograd.ops.overloads installs on Variable
    # at import time (DeZero's setup_variable), declared for type checkers; nothing here runs.
    if TYPE_CHECKING:
        def __add__(self, other: Operand) -> Variable: ...
        def __radd__(self, other: Operand) -> Variable: ...
        def __sub__(self, other: Operand) -> Variable: ...
        def __rsub__(self, other: Operand) -> Variable: ...
        def __mul__(self, other: Operand) -> Variable: ...
        def __rmul__(self, other: Operand) -> Variable: ...
        def __truediv__(self, other: Operand) -> Variable: ...
        def __rtruediv__(self, other: Operand) -> Variable: ...
        def __neg__(self) -> Variable: ...
        def __pow__(self, exponent: Operand) -> Variable: ...
        def __rpow__(self, base: Operand) -> Variable: ...
        def __matmul__(self, other: Operand) -> Variable: ...
        def __rmatmul__(self, other: Operand) -> Variable: ...
        def __getitem__(self, slices: Any) -> Variable: ...
        def __abs__(self) -> Variable: ...
        # Comparisons give boolean ndarrays (no graph), as DeZero's do.
        def __lt__(self, other: Operand) -> Any: ...
        def __le__(self, other: Operand) -> Any: ...
        def __gt__(self, other: Operand) -> Any: ...
        def __ge__(self, other: Operand) -> Any: ...
        def __eq__(self, other: object) -> Any: ...
        def __ne__(self, other: object) -> Any: ...
        def matmul(self, other: Operand) -> Variable: ...
        def dot(self, other: Operand) -> Variable: ...
        def reshape(self, *shape: Any) -> Variable: ...
        def transpose(self, *axes: Any) -> Variable: ...
        @property
        def T(self) -> Variable: ...
        def sum(self, axis: Any = None, keepdims: bool = False) -> Variable: ...
        def max(self, axis: Any = None, keepdims: bool = False) -> Variable: ...
        def min(self, axis: Any = None, keepdims: bool = False) -> Variable: ...
        def mean(self, axis: Any = None, keepdims: bool = False) -> Variable: ...
        def flatten(self) -> Variable: ...
        def squeeze(self, axis: Any = None) -> Variable: ...


class Parameter(Variable):
    """A Variable that a Layer owns and an optimizer updates."""

    # No __slots__: subclasses get a __dict__ (layers sometimes tag parameters).
