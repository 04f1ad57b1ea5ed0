"""Recurrent layers: stateful cells (``RNN``, ``LSTM``, ``GRU``) and whole-sequence layers
(``RNNSeq``, ``LSTMSeq``, ``GRUSeq``) with several layers and both directions.

Cells (DeZero's API): call once per time step with x (N, D); the layer keeps its state in
``self.h`` (and ``self.c``) until ``reset_state()``. Truncated BPTT is DeZero's loop: after
``loss.backward()``, ``loss.unchain_backward()`` cuts the graph behind the carried state.

Every cell holds Linear sub-layers under DeZero's names, and one fused op per step
(:mod:`zerograd.ops.recurrent`) computes with their weights:

==========  ==========================================  ================================
layer       sub-layers (each a ``Linear``)              fused step reads
==========  ==========================================  ================================
``RNN``     ``x2h`` (D, H), ``h2h`` (H, H) no bias      ``x2h.W``, ``h2h.W``, ``x2h.b``
``LSTM``    ``x2f x2i x2o x2u`` (D, H) each;            ``[x2f.W | x2i.W | x2o.W | x2u.W]``
            ``h2f h2i h2o h2u`` (H, H) each, no bias    and likewise the biases and h2*
``GRU``     ``x2h`` (D, 3H), ``h2h`` (H, 3H) r, z, n    ``x2h.W, h2h.W, x2h.b, h2h.b``
==========  ==========================================  ================================

So DeZero's weight files (keys ``rnn/x2h/W``, ``lstm/x2f/b``, ...) load as they are, and a
sub-layer set or replaced by hand (``lstm.x2f = L.Linear(...)``) is the one computed with.

The LSTM's fused step wants ``[x2f.W | x2i.W | x2o.W | x2u.W]`` as one (D, 4H) array. Rather
than concatenating eight matrices at every step, the layer stores them that way: each gate's
``W`` (and ``b``) is a view of a column block of one fused array, so an optimizer's in-place
update of ``x2f.W`` is an update of the fused array. One ``fused_weights`` node per graph
hands the fused arrays to the steps and splits their gradient back into the eight
Parameters. Anything that rebinds a gate's array (``x2f.W.data = ...``, ``load_weights``, a
new sub-layer, ``to_gpu``, a copy) is noticed at the next call, which copies the numbers into
new fused arrays. Attributes the fused step would not read are refused: a Parameter or Layer
under another name, a Linear subclass with its own ``forward``, a bias on ``h2*``.

Initial weights are drawn as DeZero draws them, Linear by Linear and in DeZero's order (with
a lazy input size: the RNN's ``h2h`` at the second call, the first with a hidden state), so a
script seeded with ``np.random.seed`` starts from the same numbers and draws the same numbers
after.
"""

from __future__ import annotations

import os
import types
from collections.abc import Mapping
from typing import Any

import numpy as np
from numpy.typing import DTypeLike

from zerograd import functions as F
from zerograd._config import Config, _state
from zerograd.backend import get_array_module
from zerograd.core.function import Function, as_variable
from zerograd.core.variable import Parameter, Variable
from zerograd.errors import ShapeError
from zerograd.nn.init import InitializerLike
from zerograd.nn.layer import Layer
from zerograd.nn.linear import Linear
from zerograd.ops import recurrent as R
from zerograd.serialization import load_npz

__all__ = ["RNN", "LSTM", "GRU", "RNNSeq", "LSTMSeq", "GRUSeq"]


def _as_input(x: Any, dtype: np.dtype) -> Any:
    """A plain float array in the layer's dtype (SinCurve's float64 data must not turn every
    weight gradient into float64); Variables pass through untouched."""
    if isinstance(x, Variable):
        return x
    if x.dtype != dtype:
        return x.astype(dtype)
    return x


def _fill(linear: Linear, in_size: int, blocks: int, xp: types.ModuleType = np) -> None:
    """Draw ``linear.W`` as ``blocks`` (in_size, H) matrices side by side, each as DeZero draws
    one Linear weight, in order."""
    H = linear.out_size // blocks
    parts = [linear.initializer((in_size, H), linear.dtype, fan_in=in_size, fan_out=H)
             for _ in range(blocks)]
    W = parts[0] if blocks == 1 else np.concatenate(parts, axis=1)
    linear.in_size = int(in_size)
    linear.W.data = W if xp is np else xp.asarray(W)


class _Cell(Layer):
    """Shared plumbing of the cells: DeZero-named Linear sub-layers, lazy sizes, state.

    Subclasses name their sub-layers (``x_names`` read the input, ``h_names`` the hidden
    state, in DeZero's definition order) and give ``_weights(x, need_h)``: what the fused step
    reads, drawing any weights still missing.
    """

    x_names: tuple[str, ...] = ("x2h",)
    h_names: tuple[str, ...] = ("h2h",)
    blocks = 1  # (in, H) blocks per sub-layer, each drawn as DeZero draws one Linear
    h2h_bias = False
    _sublayer_names = frozenset(x_names + h_names)
    h: Variable | None  # the carried hidden state (None: zeros, the first step)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._sublayer_names = frozenset(cls.x_names + cls.h_names)

    def __init__(self, hidden_size: int, in_size: int | None = None,
                 dtype: DTypeLike = np.float32, initializer: InitializerLike = None) -> None:
        super().__init__()
        self.hidden_size = H = int(hidden_size)
        self._in_size = None if in_size is None else int(in_size)
        self.dtype = np.dtype(dtype)
        for name in self.x_names:
            setattr(self, name, Linear(self.blocks * H, dtype=dtype, initializer=initializer))
        for name in self.h_names:
            setattr(self, name, Linear(self.blocks * H, nobias=not self.h2h_bias, dtype=dtype,
                                       initializer=initializer))
        self._draw_initial_weights()
        self.reset_state()

    # -- sub-layers: only the ones the fused step reads ----------------------------------
    def __setattr__(self, name: str, value: Any) -> None:
        if name in self._sublayer_names:
            self._check_sublayer(name, value)
        elif isinstance(value, (Parameter, Layer)):
            cls = type(self).__name__
            raise AttributeError(
                f"{cls}: cannot add the {type(value).__name__} {name!r}: the fused step reads "
                f"only the sub-layers {', '.join(self.x_names + self.h_names)}, so "
                f"{name!r} would be ignored (assign one of those to transplant weights)")
        super().__setattr__(name, value)

    def _check_sublayer(self, name: str, value: Any) -> None:
        cls = type(self).__name__
        if not isinstance(value, Linear) or type(value).forward is not Linear.forward:
            raise TypeError(
                f"{cls}.{name} must be a Linear (the fused step reads its W and b and never "
                f"calls it, so a layer with its own forward would be ignored); got "
                f"{type(value).__name__}")
        width = self.blocks * self.hidden_size
        if value.out_size != width:
            raise ShapeError(f"{cls}.{name}: got a Linear with out_size={value.out_size}; "
                             f"this layer needs out_size={width} (hidden_size="
                             f"{self.hidden_size})")
        if name in self.h_names:
            self._check_h_bias(name, value)

    def _check_h_bias(self, name: str, linear: Linear) -> None:
        if not self.h2h_bias and linear.b is not None:
            raise ShapeError(
                f"{type(self).__name__}.{name} must have no bias (Linear(hidden_size, "
                f"nobias=True), as in DeZero): the fused step adds one bias per gate, the "
                f"x-side one (DeZero would add {name}'s only from the second step on), so its "
                f"bias of shape {tuple(linear.b.shape)} would be ignored")

    # -- sizes and initial weights -------------------------------------------------------
    @property
    def in_size(self) -> int | None:
        """The input size: read from the x-side weights once they exist (drawn, set by hand
        or loaded), else the size given at construction (None: the first call's)."""
        first = self.__dict__.get(self.x_names[0])
        W = None if first is None else first.W.data
        return self._in_size if W is None else int(W.shape[0])

    @in_size.setter
    def in_size(self, value: int | None) -> None:
        self._in_size = None if value is None else int(value)

    def _draw_initial_weights(self) -> None:
        """DeZero's Linear draws its W at construction when its input size is known."""
        if self._in_size is not None:
            self._draw(self.x_names, self._in_size)
            self._draw(self.h_names, self.hidden_size)

    def _draw(self, names: tuple[str, ...], in_size: int, xp: types.ModuleType = np) -> None:
        """Draw the weights of the sub-layers ``names`` that have none, in order."""
        for name in names:
            linear = self.__dict__[name]
            if linear.W.data is None:
                _fill(linear, in_size, self.blocks, xp)

    def _draw_missing(self, x: Any, need_h: bool) -> None:
        """At a call: the x-side weights still missing (sized by x), then the h-side ones if
        this step uses them."""
        xp = get_array_module(x)
        self._draw(self.x_names, x.shape[-1], xp)
        if need_h:
            self._draw(self.h_names, self.hidden_size, xp)

    # -- calling ----------------------------------------------------------------------------
    def _prepare(self, x: Any) -> Any:
        """x in the layer's dtype, (N, D), with a batch size that fits the carried state."""
        x = _as_input(x, self.dtype)
        if x.ndim != 2:
            raise ShapeError(f"{type(self).__name__}: x must be (N, in_size), got {x.dtype} "
                             f"{tuple(x.shape)}; call the cell once per time step (for a whole "
                             f"(N, T, D) batch use {type(self).__name__}Seq)")
        if self.h is not None and x.shape[0] != self.h.shape[0]:
            raise ShapeError(
                f"{type(self).__name__}: x {x.dtype} {tuple(x.shape)} has batch size "
                f"{x.shape[0]}, the carried state {tuple(self.h.shape)} has {self.h.shape[0]}; "
                "call reset_state() before a batch of another size")
        return x

    def reset_state(self) -> None:
        """Forget the carried state: the next call starts from zeros (DeZero's first step)."""
        self.h = None

    def set_state(self, h: Variable | np.ndarray | None) -> None:
        """Start the next step from ``h`` (N, hidden_size)."""
        self.h = None if h is None else as_variable(h)

    def extra_repr(self) -> str:
        return f"hidden_size={self.hidden_size}, in_size={self.in_size}"


class RNN(_Cell):
    """Elman RNN cell (DeZero's ``L.RNN``): h' = tanh(x2h(x) + h2h(h)); the first step after
    ``reset_state()`` is tanh(x2h(x)). x: (N, D) -> h': (N, hidden_size).

    Sub-layers ``x2h`` (Linear D -> H) and ``h2h`` (Linear H -> H, no bias), as in DeZero.
    With a lazy input size ``x2h`` is drawn at the first call and ``h2h`` at the second (the
    first that has a hidden state), DeZero's order. Unlike DeZero's, ``h2h`` is
    (hidden_size, hidden_size) whatever ``in_size`` is (DeZero sized it (in_size,
    hidden_size), which fails at the second step when they differ).
    """

    x2h: Linear
    h2h: Linear

    def _weights(self, x: Any, need_h: bool = True) -> tuple[Parameter, Parameter | None,
                                                              Parameter | None]:
        x2h, h2h = self.x2h, self.h2h
        if x2h.W.data is None or (need_h and h2h.W.data is None):
            self._draw_missing(x, need_h)
        if h2h.b is not None:
            self._check_h_bias("h2h", h2h)
        return x2h.W, (h2h.W if need_h else None), x2h.b

    def forward(self, x: Variable | np.ndarray) -> Variable:
        x = self._prepare(x)
        h = self.h
        Wx, Wh, b = self._weights(x, need_h=h is not None)
        # A plain dict write: the state is no sub-layer, and this is the hot path.
        self.__dict__["h"] = h = R.rnn_cell(x, h, Wx, Wh, b)
        return h


class _PackedGates:
    """An LSTM's gate weights stored fused: ``Wx`` (D, 4H), ``b`` (4H,), ``Wh`` (H, 4H), and
    ``views``: (sub-layer name, its W, its b) with the arrays the sub-layers must still hold
    (views of the blocks) for the fused arrays to be their numbers."""

    __slots__ = ("Wx", "b", "Wh", "views", "layout", "parameters", "joined")

    def __init__(self, Wx: Any, b: Any, Wh: Any, views: tuple[tuple[str, Any, Any], ...],
                 layout: list[tuple[Any, list[int]]], parameters: list[Parameter]) -> None:
        self.Wx, self.b, self.Wh = Wx, b, Wh
        self.views = views
        self.layout = layout
        self.parameters = parameters
        # (FusedWeights node, its output Variables) of the current graph
        self.joined: tuple[Function | None, tuple[Variable, Variable, Variable]] | None = None


class LSTM(_Cell):
    """LSTM cell (DeZero's ``L.LSTM``), one fused op per step:

    f = sigmoid(x2f(x) + h2f(h)), i = sigmoid(x2i(x) + h2i(h)), o = sigmoid(x2o(x) + h2o(h)),
    u = tanh(x2u(x) + h2u(h));  c' = f * c + i * u;  h' = o * tanh(c').
    x: (N, D) -> h': (N, hidden_size).

    DeZero's sub-layers: ``x2f, x2i, x2o, x2u`` (Linear D -> H) and ``h2f, h2i, h2o, h2u``
    (Linear H -> H, no bias); the h-side weights are drawn at construction, the x-side ones
    then too when ``in_size`` is given, else at the first call. The state is ``self.h`` and
    ``self.c`` (None after ``reset_state()``: zeros). The fused op is differentiable to any
    order.
    """

    x_names = ("x2f", "x2i", "x2o", "x2u")
    h_names = ("h2f", "h2i", "h2o", "h2u")
    c: Variable | None  # the carried cell state
    _packed: _PackedGates | None

    def __init__(self, hidden_size: int, in_size: int | None = None,
                 dtype: DTypeLike = np.float32, initializer: InitializerLike = None) -> None:
        object.__setattr__(self, "_packed", None)
        super().__init__(hidden_size, in_size, dtype=dtype, initializer=initializer)

    def _draw_initial_weights(self) -> None:
        # DeZero builds x2f..x2u (drawing them when in_size is given), then h2f..h2u, whose
        # input size, hidden_size, is always known.
        if self._in_size is not None:
            self._draw(self.x_names, self._in_size)
        self._draw(self.h_names, self.hidden_size)

    def __getstate__(self) -> dict[str, Any]:
        # A copy's arrays are no views of each other: its next call packs them afresh.
        state = super().__getstate__()
        state["_packed"] = None
        return state

    # -- the fused arrays ----------------------------------------------------------------
    def _intact(self) -> bool:
        """Whether every gate's W and b are still the views into the fused arrays."""
        packed = self._packed
        if packed is None:
            return False
        layers = self.__dict__
        for name, W, b in packed.views:
            linear = layers[name]
            if linear.W.data is not W:
                return False
            bias = linear.b
            if (None if bias is None else bias.data) is not b:
                return False
        return True

    def _pack(self) -> _PackedGates:
        """Copy the gates' weights into new fused arrays and make each gate's W and b views
        of its blocks. (New arrays, not the old ones overwritten: a graph recorded before may
        still need the old numbers for its backward.)"""
        H = self.hidden_size
        cls = type(self).__name__
        x_side = [self.__dict__[name] for name in self.x_names]
        h_side = [self.__dict__[name] for name in self.h_names]
        sizes = {name: tuple(linear.W.data.shape)
                 for name, linear in zip(self.x_names + self.h_names, x_side + h_side)}
        D = sizes[self.x_names[0]][0]
        expected = {name: (D, H) for name in self.x_names}
        expected.update({name: (H, H) for name in self.h_names})
        wrong = [f"{name}.W {sizes[name]}" for name in sizes if sizes[name] != expected[name]]
        for name, linear in zip(self.x_names, x_side):
            if linear.b is not None and tuple(linear.b.shape) != (H,):
                wrong.append(f"{name}.b {tuple(linear.b.shape)}")
        if wrong:
            raise ShapeError(
                f"{cls}: the gate weights do not fit together: {', '.join(wrong)}; expected "
                f"x2f.W .. x2u.W ({D}, {H}) (in_size, hidden_size), their b ({H},), "
                f"h2f.W .. h2u.W ({H}, {H})")
        for name, linear in zip(self.h_names, h_side):
            self._check_h_bias(name, linear)
        xp = get_array_module(h_side[0].W.data)
        Wx = xp.empty((D, 4 * H), dtype=self.dtype)
        Wh = xp.empty((H, 4 * H), dtype=self.dtype)
        b = xp.zeros(4 * H, dtype=self.dtype)  # a gate without a bias adds zeros
        views: list[tuple[str, Any, Any]] = []
        parameters: dict[str, list[Parameter]] = {"Wx": [], "b": [], "Wh": []}
        positions: dict[str, list[int]] = {"Wx": [], "b": [], "Wh": []}
        for k, (name, linear) in enumerate(zip(self.x_names + self.h_names, x_side + h_side)):
            gate = k % 4
            block = slice(gate * H, (gate + 1) * H)
            fused = Wx if k < 4 else Wh
            fused[:, block] = linear.W.data
            linear.W.data = fused[:, block]
            parameters["Wx" if k < 4 else "Wh"].append(linear.W)
            positions["Wx" if k < 4 else "Wh"].append(gate)
            b_view = None
            if linear.b is not None:  # only x-side gates have one
                b[block] = linear.b.data
                linear.b.data = b_view = b[block]
                parameters["b"].append(linear.b)
                positions["b"].append(gate)
            if k < 4:
                linear.in_size = D
            views.append((name, linear.W.data, b_view))
        order = ("Wx", "b", "Wh")
        layout = [(fused, positions[key]) for key, fused in zip(order, (Wx, b, Wh))]
        flat = [p for key in order for p in parameters[key]]
        packed = _PackedGates(Wx, b, Wh, tuple(views), layout, flat)
        object.__setattr__(self, "_packed", packed)
        return packed

    def _weights(self, x: Any, need_h: bool = True) -> tuple[Any, Any, Any]:
        """(Wx, Wh, b) for the fused step: Variables of one ``fused_weights`` node, made once
        per graph (again after ``unchain_backward()`` cut it, or when a gate was rebound);
        the arrays themselves when no graph is recorded."""
        packed = self._packed
        if packed is None or not self._intact():
            self._draw_missing(x, need_h=True)
            packed = self._pack()
        if not _state.enable_backprop:  # nothing is recorded: the arrays themselves serve
            return packed.Wx, packed.Wh, packed.b
        joined = packed.joined
        if joined is not None:
            node, (Wx, b, Wh) = joined
            if (node is not None and node.inputs is not None and Wx.creator is node
                    and b.creator is node and Wh.creator is node):
                return Wx, Wh, b
        Wx, b, Wh = R.fused_weights(packed.layout, 4, *packed.parameters)
        packed.joined = (Wx.creator, (Wx, b, Wh))
        return Wx, Wh, b

    # -- state and stepping --------------------------------------------------------------
    def reset_state(self) -> None:
        self.h = None
        self.c = None

    def set_state(self, h: Variable | np.ndarray | None,
                  c: Variable | np.ndarray | None = None) -> None:
        """Start the next step from (h, c), each (N, hidden_size) (c None: zeros)."""
        self.h = None if h is None else as_variable(h)
        self.c = None if c is None else as_variable(c)

    def forward(self, x: Variable | np.ndarray) -> Variable:
        x = self._prepare(x)
        Wx, Wh, b = self._weights(x)
        # (``unchain_backward()`` cuts c too, the sibling of the h it reached: one op made both.)
        # Plain dict writes: the state is no sub-layer, and this is the hot path.
        state = self.__dict__
        state["h"], state["c"] = R.lstm_cell(x, self.h, self.c, Wx, Wh, b)
        return state["h"]

    def load_dezero_weights(self, source: str | os.PathLike | Mapping[str, np.ndarray],
                            prefix: str = "") -> None:
        """Load DeZero ``L.LSTM`` weights: an .npz path (from DeZero's ``save_weights``) or a
        dict of arrays with keys ``{prefix}x2f/W``, ``{prefix}x2f/b``, ..., ``{prefix}h2u/W``.

        ``prefix`` selects the LSTM inside a model, e.g. ``"rnn/"``. (DeZero's keys are this
        layer's own, so ``model.load_weights(path)`` reads a DeZero model's file directly.)
        """
        where = repr(os.fspath(source)) if isinstance(source, (str, os.PathLike)) else "dict"
        if isinstance(source, (str, os.PathLike)):
            source = load_npz(source)
        state = {key[len(prefix):]: value for key, value in source.items()
                 if key.startswith(prefix)}
        if f"{self.x_names[0]}/W" not in state:
            raise KeyError(f"LSTM.load_dezero_weights: no entry {prefix}x2f/W in {where} "
                           f"among {sorted(source)[:12]}; give prefix='...' for a nested LSTM")
        self.load_state_dict(state, strict=False, source=where)


class GRU(_Cell):
    """GRU cell (Cho et al., 2014) with PyTorch's equations, one fused op per step:

    r = sigmoid(x2h(x)_r + h2h(h)_r), z = sigmoid(x2h(x)_z + h2h(h)_z),
    n = tanh(x2h(x)_n + r * h2h(h)_n), h' = (1 - z) * n + z * h.
    x: (N, D) -> h': (N, hidden_size). Sub-layers ``x2h`` (Linear D -> 3H) and ``h2h``
    (Linear H -> 3H), both with biases (PyTorch's b_ih, b_hh); DeZero has no GRU, so this
    layout is zerograd's own. Both are drawn at the first call with a lazy input size.
    """

    blocks = 3
    h2h_bias = True
    x2h: Linear
    h2h: Linear

    def _weights(self, x: Any, need_h: bool = True) -> tuple[Parameter, Parameter,
                                                              Parameter | None, Parameter | None]:
        x2h, h2h = self.x2h, self.h2h
        if x2h.W.data is None or h2h.W.data is None:
            self._draw_missing(x, need_h=True)
        return x2h.W, h2h.W, x2h.b, h2h.b

    def forward(self, x: Variable | np.ndarray) -> Variable:
        x = self._prepare(x)
        Wx, Wh, bx, bh = self._weights(x)
        self.__dict__["h"] = h = R.gru_cell(x, self.h, Wx, Wh, bx, bh)
        return h


# -- whole sequences --------------------------------------------------------------------------
def _array(x: Any) -> Any:
    """The array of an (N, T, D) batch (a cell sizes its lazy weights by its last axis)."""
    return x.data if isinstance(x, Variable) else x


class _Seq(Layer):
    cell_class: type[_Cell] = _Cell

    def __init__(self, hidden_size: int, in_size: int | None = None, num_layers: int = 1,
                 bidirectional: bool = False, dropout: float = 0.0, stateful: bool = False,
                 fused: bool = True, dtype: DTypeLike = np.float32,
                 initializer: InitializerLike = None) -> None:
        super().__init__()
        if num_layers < 1:
            raise ValueError(f"{type(self).__name__}: num_layers must be >= 1, got {num_layers}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"{type(self).__name__}: dropout must be in [0, 1), got {dropout}")
        self.hidden_size = int(hidden_size)
        self.num_layers = int(num_layers)
        self.bidirectional = bool(bidirectional)
        self.dropout = float(dropout)
        self.stateful = bool(stateful)
        self.fused = bool(fused)
        self.dtype = np.dtype(dtype)
        directions = 2 if bidirectional else 1
        self._cell_names = tuple(f"l{k}{suffix}" for k in range(self.num_layers)
                                 for suffix in ("", "_reverse")[:directions])
        for name in self._cell_names:
            size = in_size if name.startswith("l0") else self.hidden_size * directions
            setattr(self, name, self.cell_class(hidden_size, in_size=size, dtype=dtype,
                                                initializer=initializer))
        self.reset_state()

    def __setattr__(self, name: str, value: Any) -> None:
        # The cells are read by name at every call, so a replaced cell is the one that runs;
        # anything else with weights would never run.
        cls = type(self).__name__
        if name in self.__dict__.get("_cell_names", ()):
            if not isinstance(value, self.cell_class):
                raise TypeError(f"{cls}.{name} must be a {self.cell_class.__name__}, got "
                                f"{type(value).__name__}")
        elif isinstance(value, (Parameter, Layer)):
            raise AttributeError(
                f"{cls}: cannot add the {type(value).__name__} {name!r}: the layer runs only "
                f"its cells {', '.join(self._cell_names)}, so {name!r} would be ignored")
        super().__setattr__(name, value)

    @property
    def cells(self) -> list[_Cell]:
        """The cells, layer by layer, forward direction first (``l0``, ``l0_reverse``, ...)."""
        return [self.__dict__[name] for name in self._cell_names]

    @property
    def num_directions(self) -> int:
        return 2 if self.bidirectional else 1

    def reset_state(self) -> None:
        """Forget the state carried between calls (``stateful=True``) and the final state."""
        self._final: list | None = None

    # -- state plumbing -------------------------------------------------------------------
    def _initial_states(self, state: Any, N: int) -> list:
        """One state per cell (a tuple (h, c) for LSTM, h otherwise; None = zeros)."""
        n_cells = len(self.cells)
        if state is None:
            if self.stateful and self._final is not None:
                # (A final state comes out of the op that made y, so unchain_backward() from a
                # loss on y cuts it too, as the sibling of an output it reached.)
                return list(self._final)
            return [None] * n_cells
        parts = state if isinstance(state, tuple) else (state,)
        expected = (n_cells, N, self.hidden_size)
        for part in parts:
            if tuple(part.shape) != expected:
                raise ShapeError(
                    f"{type(self).__name__}: initial state {part.dtype} {tuple(part.shape)}; "
                    f"expected (num_layers * num_directions, N, hidden_size) = {expected}")
        variables = [as_variable(p) for p in parts]
        per_cell = [tuple(p[k] for p in variables) for k in range(n_cells)]
        return [s if len(s) > 1 else s[0] for s in per_cell]

    def _stacked_final(self, index: int) -> Variable | None:
        if self._final is None:
            return None
        parts = [s[index] if isinstance(s, tuple) else s for s in self._final]
        return F.stack(parts, axis=0)

    @property
    def h_n(self) -> Variable | None:
        """The hidden state after the last call: (num_layers * num_directions, N, H), in
        PyTorch's order (layer by layer, forward direction first)."""
        return self._stacked_final(0)

    # -- running ----------------------------------------------------------------------------
    def __call__(self, x: Variable | np.ndarray, state: Any = None) -> Variable:
        # Layer.__call__ takes positional inputs only; this accepts state=... by keyword.
        return super().__call__(x, state)

    def forward(self, x: Variable | np.ndarray, state: Any = None) -> Variable:
        """x: (N, T, D) -> y: (N, T, num_directions * hidden_size) (the last layer's h_t).

        ``state``: the initial state, (num_layers * num_directions, N, hidden_size) (for
        ``LSTMSeq`` a tuple (h0, c0)); None starts from zeros, or from the previous call's
        final state when ``stateful=True``. The final state is kept in ``h_n`` (``c_n``).
        """
        x = _as_input(x, self.dtype)
        if x.ndim != 3:
            raise ShapeError(f"{type(self).__name__}: x must be (N, T, D), got {x.dtype} "
                             f"{tuple(x.shape)}")
        states = self._initial_states(state, x.shape[0])
        finals = []
        directions = self.num_directions
        cells = self.cells
        for k in range(self.num_layers):
            if k > 0 and self.dropout > 0 and self.training and Config.train:
                x = F.dropout(x, self.dropout)
            outputs = []
            for d in range(directions):
                index = k * directions + d
                cell = cells[index]
                run = self._run_fused if self.fused else self._run_steps
                y, final = run(cell, x, states[index], reverse=d == 1)
                outputs.append(y)
                finals.append(final)
            x = y = outputs[0] if directions == 1 else F.concat(outputs, axis=2)
        self._final = finals
        return y  # num_layers >= 1: the last layer's output

    def _run_fused(self, cell: Any, x: Any, state: Any, reverse: bool) -> tuple[Variable, Any]:
        """One layer-direction as one op over the whole sequence: (y, final state)."""
        raise NotImplementedError

    def _run_steps(self, cell: Any, x: Any, state: Any, reverse: bool) -> tuple[Variable, Any]:
        """The unfused path: one cell op per step (any order of derivatives)."""
        T = x.shape[1]
        if T == 0:
            return self._run_fused(cell, x, state, reverse)
        cell.reset_state()
        if state is not None:
            cell.set_state(*(state if isinstance(state, tuple) else (state,)))
        ys = [None] * T
        for t in (range(T - 1, -1, -1) if reverse else range(T)):
            ys[t] = cell(x[:, t])
        final = (cell.h, cell.c) if isinstance(cell, LSTM) else cell.h
        cell.reset_state()
        return F.stack(ys, axis=1), final


class RNNSeq(_Seq):
    """An Elman RNN over whole sequences: x (N, T, D) -> y (N, T, num_directions * H).

    ``num_layers`` stacked layers (``dropout`` between them while training), optionally
    ``bidirectional``. With ``fused=True`` (default) each layer-direction is one op whose
    loop over time runs in NumPy (first-order gradients); ``fused=False`` runs the cell op
    step by step (slower, differentiable to any order). Sub-layers ``l0``, ``l0_reverse``,
    ``l1``, ... are :class:`RNN` cells, named like PyTorch's ``*_l0``, ``*_l0_reverse``.
    """

    cell_class = RNN

    def _run_fused(self, cell: Any, x: Any, state: Any, reverse: bool) -> tuple[Variable, Any]:
        Wx, Wh, b = cell._weights(_array(x))
        return R.rnn_sequence(F.linear(x, Wx, b), state, Wh, reverse=reverse)


class LSTMSeq(_Seq):
    """An LSTM over whole sequences: x (N, T, D) -> y (N, T, num_directions * H).

    Same options as :class:`RNNSeq`; sub-layers are :class:`LSTM` cells. ``state`` is a tuple
    (h0, c0); the final state is ``h_n`` and ``c_n``.
    """

    cell_class = LSTM

    def _run_fused(self, cell: Any, x: Any, state: Any, reverse: bool) -> tuple[Variable, Any]:
        h0, c0 = (None, None) if state is None else state
        Wx, Wh, b = cell._weights(_array(x))
        # The bias goes to the sequence op, which adds it inside each step: one pass over
        # the (N, T, 4H) projection less, and its gradient one sum of every step's.
        y, h, c = R.lstm_sequence(F.linear(x, Wx), h0, c0, Wh, b, reverse=reverse)
        return y, (h, c)

    @property
    def c_n(self) -> Variable | None:
        """The cell state after the last call, shaped like ``h_n``."""
        return self._stacked_final(1)

    def _initial_states(self, state: Any, N: int) -> list:
        if state is not None and not isinstance(state, tuple):
            raise TypeError("LSTMSeq: state must be a tuple (h0, c0) of arrays shaped "
                            "(num_layers * num_directions, N, hidden_size)")
        return super()._initial_states(state, N)


class GRUSeq(_Seq):
    """A GRU over whole sequences: x (N, T, D) -> y (N, T, num_directions * H).

    Same options as :class:`RNNSeq`; sub-layers are :class:`GRU` cells.
    """

    cell_class = GRU

    def _run_fused(self, cell: Any, x: Any, state: Any, reverse: bool) -> tuple[Variable, Any]:
        Wx, Wh, bx, bh = cell._weights(_array(x))
        return R.gru_sequence(F.linear(x, Wx, bx), state, Wh, bh, reverse=reverse)
