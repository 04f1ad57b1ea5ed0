"""Recurrent layers: stateful cells (``RNN``, ``LSTM``, ``GRU``) and whole-sequence layers
(``RNNSeq``, ``LSTMSeq``, ``GRUSeq``) with several layers and both directions.

Cells (DeZero's API): call once per time step with x (N, D); the layer keeps its state in
``self.h`` (and ``self.c``) until ``reset_state()``. Truncated BPTT is DeZero's loop: after
``loss.backward()``, ``loss.unchain_backward()`` cuts the graph behind the carried state.

Every cell holds two Linear sub-layers whose weights feed one fused op per step
(:mod:`zerograd.ops.recurrent`):

==========  ================  =================  ===============================
layer       ``x2h.W``         ``h2h.W``          biases
==========  ================  =================  ===============================
``RNN``     (D, H)            (H, H)             ``x2h.b`` (H,)
``LSTM``    (D, 4H) f,i,o,u   (H, 4H) f,i,o,u    ``x2h.b`` (4H,)
``GRU``     (D, 3H) r,z,n     (H, 3H) r,z,n      ``x2h.b``, ``h2h.b`` (3H,) each
==========  ================  =================  ===============================

``RNN`` keeps DeZero's parameter names, so DeZero's RNN weight files load as they are.
DeZero's ``LSTM`` has eight Linear layers ``x2f, x2i, x2o, x2u`` (with bias) and ``h2f, h2i,
h2o, h2u`` (without); ours holds the same numbers side by side: ``x2h.W = [x2f.W | x2i.W |
x2o.W | x2u.W]``, ``x2h.b`` likewise, ``h2h.W = [h2f.W | ... | h2u.W]``.
``LSTM.load_dezero_weights`` does that concatenation. The initial weights are drawn as
DeZero draws them, block by block and in the same order, so a script seeded with
``np.random.seed`` starts from the same numbers.
"""

from __future__ import annotations

import os

import numpy as np

from zerograd import functions as F
from zerograd._config import Config
from zerograd.backend import get_array_module
from zerograd.core.function import as_variable
from zerograd.core.variable import Variable
from zerograd.errors import ShapeError
from zerograd.nn.layer import Layer
from zerograd.nn.linear import Linear
from zerograd.ops import recurrent as R
from zerograd.serialization import load_npz

__all__ = ["RNN", "LSTM", "GRU", "RNNSeq", "LSTMSeq", "GRUSeq"]


def _as_input(x, dtype):
    """A plain float array in the layer's dtype (SinCurve's float64 data must not turn every
    weight gradient into float64); Variables pass through untouched."""
    if isinstance(x, Variable):
        return x
    if x.dtype != dtype:
        return x.astype(dtype)
    return x


def _fill(linear: Linear, in_size: int, blocks: int, xp=np) -> None:
    """Draw ``linear.W`` as ``blocks`` (in_size, H) matrices side by side, each as DeZero draws
    one Linear weight, in order."""
    H = linear.out_size // blocks
    parts = [linear.initializer((in_size, H), linear.dtype, fan_in=in_size, fan_out=H)
             for _ in range(blocks)]
    W = parts[0] if blocks == 1 else np.concatenate(parts, axis=1)
    linear.in_size = int(in_size)
    linear.W.data = W if xp is np else xp.asarray(W)


def _unchain_sibling(h, c) -> None:
    """Cut c's creator when h's was cut: both come out of one fused op, but only h feeds the
    loss, so ``loss.unchain_backward()`` cuts h and leaves c linked to the last step of the
    previous chunk (the next backward would run one step too far back)."""
    if h is not None and c is not None and h.creator is None and c.creator is not None:
        c.unchain()


def _unchain_if_cut_behind(state) -> None:
    """Cut a final state of a fused sequence op when ``unchain_backward()`` cut the op's
    inputs (it reached the op through a sibling output, y). The op's first input, the input
    projection, always has a creator unless it was cut."""
    op = state.creator
    if op is not None and op.inputs is not None and op.inputs[0].creator is None:
        state.unchain()


class _Cell(Layer):
    """Shared plumbing of the cells: lazy input size, state, checks."""

    gates = 1
    h2h_bias = False

    def __init__(self, hidden_size: int, in_size: int | None = None, dtype=np.float32,
                 initializer=None) -> None:
        super().__init__()
        self.hidden_size = H = int(hidden_size)
        self.in_size = None if in_size is None else int(in_size)
        self.dtype = np.dtype(dtype)
        G = self.gates
        self.x2h = Linear(G * H, dtype=dtype, initializer=initializer)
        self.h2h = Linear(G * H, nobias=not self.h2h_bias, dtype=dtype, initializer=initializer)
        self._init_weights()
        self.reset_state()

    def _init_weights(self) -> None:
        if self.in_size is not None:
            _fill(self.x2h, self.in_size, self.gates)
            _fill(self.h2h, self.hidden_size, self.gates)

    def _lazy_init(self, x) -> None:
        """At the first call: the input size from x, and the weights not drawn yet."""
        if x.ndim != 2:
            raise ShapeError(f"{type(self).__name__}: x must be (N, in_size), got {x.dtype} "
                             f"{tuple(x.shape)}; call the cell once per time step (for a whole "
                             f"(N, T, D) batch use {type(self).__name__}Seq)")
        xp = get_array_module(x)
        self.in_size = x.shape[1]
        _fill(self.x2h, self.in_size, self.gates, xp)
        if self.h2h.W.data is None:
            _fill(self.h2h, self.hidden_size, self.gates, xp)

    def _prepare(self, x):
        """x in the layer's dtype, the weights drawn, and a batch that fits the state."""
        x = _as_input(x, self.dtype)
        if self.x2h.W.data is None:
            self._lazy_init(x)
        if self.h is not None and x.ndim == 2 and x.shape[0] != self.h.shape[0]:
            raise ShapeError(
                f"{type(self).__name__}: x {x.dtype} {tuple(x.shape)} has batch size "
                f"{x.shape[0]}, the carried state {tuple(self.h.shape)} has {self.h.shape[0]}; "
                "call reset_state() before a batch of another size")
        return x

    def reset_state(self) -> None:
        """Forget the carried state: the next call starts from zeros (DeZero's first step)."""
        self.h = None

    def set_state(self, h) -> None:
        """Start the next step from ``h`` (N, hidden_size)."""
        self.h = None if h is None else as_variable(h)

    def extra_repr(self) -> str:
        return f"hidden_size={self.hidden_size}, in_size={self.in_size}"


class RNN(_Cell):
    """Elman RNN cell (DeZero's ``L.RNN``): h' = tanh(x2h(x) + h2h(h)); the first step after
    ``reset_state()`` is tanh(x2h(x)). x: (N, D) -> h': (N, hidden_size).

    Unlike DeZero's, ``h2h`` is (hidden_size, hidden_size) whatever ``in_size`` is (DeZero sized
    it (in_size, hidden_size), which fails at the second step when they differ).
    """

    def forward(self, x) -> Variable:
        x = self._prepare(x)
        self.h = h = R.rnn_cell(x, self.h, self.x2h.W, self.h2h.W, self.x2h.b)
        return h


class LSTM(_Cell):
    """LSTM cell (DeZero's ``L.LSTM``), one fused op per step:

    [f, i, o, u] = x2h(x) + h2h(h);  f, i, o = sigmoid(.), u = tanh(.);
    c' = f * c + i * u;  h' = o * tanh(c').  x: (N, D) -> h': (N, hidden_size).

    The state is ``self.h`` and ``self.c`` (None after ``reset_state()``: zeros). The fused
    op is differentiable to any order.
    """

    gates = 4

    def _init_weights(self) -> None:
        # DeZero draws x2f..x2u (when in_size is given) and then h2f..h2u at construction;
        # with a lazy in_size the x-side weights come at the first call.
        if self.in_size is not None:
            _fill(self.x2h, self.in_size, 4)
        _fill(self.h2h, self.hidden_size, 4)

    def reset_state(self) -> None:
        self.h = None
        self.c = None

    def set_state(self, h, c=None) -> None:
        """Start the next step from (h, c), each (N, hidden_size) (c None: zeros)."""
        self.h = None if h is None else as_variable(h)
        self.c = None if c is None else as_variable(c)

    def forward(self, x) -> Variable:
        x = self._prepare(x)
        _unchain_sibling(self.h, self.c)
        self.h, self.c = R.lstm_cell(x, self.h, self.c, self.x2h.W, self.h2h.W, self.x2h.b)
        return self.h

    def load_dezero_weights(self, source, prefix: str = "") -> None:
        """Load DeZero ``L.LSTM`` weights: an .npz path (from DeZero's ``save_weights``) or a
        dict of arrays with keys ``{prefix}x2f/W``, ``{prefix}x2f/b``, ..., ``{prefix}h2u/W``.

        ``prefix`` selects the LSTM inside a model, e.g. ``"rnn/"``.
        """
        if isinstance(source, (str, os.PathLike)):
            source = load_npz(source)
        try:
            Wx = np.concatenate([source[f"{prefix}x2{g}/W"] for g in "fiou"], axis=1)
            b = np.concatenate([source[f"{prefix}x2{g}/b"] for g in "fiou"])
            Wh = np.concatenate([source[f"{prefix}h2{g}/W"] for g in "fiou"], axis=1)
        except KeyError as e:
            raise KeyError(f"LSTM.load_dezero_weights: no entry {e} among "
                           f"{sorted(source)[:12]}; give prefix='...' for a nested LSTM") from None
        H = self.hidden_size
        if Wh.shape != (H, 4 * H) or Wx.shape[1] != 4 * H:
            raise ShapeError(f"LSTM.load_dezero_weights: hidden size {Wh.shape[0]} in the "
                             f"weights, {H} in the layer")
        xp = get_array_module(self.h2h.W.data) if self.h2h.W.data is not None else np
        self.x2h.W.data = xp.asarray(Wx, dtype=self.dtype)
        self.x2h.in_size = self.in_size = Wx.shape[0]
        self.x2h.b.data = xp.asarray(b, dtype=self.dtype)
        self.h2h.W.data = xp.asarray(Wh, dtype=self.dtype)


class GRU(_Cell):
    """GRU cell (Cho et al., 2014) with PyTorch's equations, one fused op per step:

    r = sigmoid(x2h(x)_r + h2h(h)_r), z = sigmoid(x2h(x)_z + h2h(h)_z),
    n = tanh(x2h(x)_n + r * h2h(h)_n), h' = (1 - z) * n + z * h.
    x: (N, D) -> h': (N, hidden_size). Both Linears have biases (PyTorch's b_ih, b_hh).
    """

    gates = 3
    h2h_bias = True

    def forward(self, x) -> Variable:
        x = self._prepare(x)
        self.h = h = R.gru_cell(x, self.h, self.x2h.W, self.h2h.W, self.x2h.b, self.h2h.b)
        return h


# -- whole sequences --------------------------------------------------------------------------
class _Seq(Layer):
    cell_class: type = _Cell

    def __init__(self, hidden_size: int, in_size: int | None = None, num_layers: int = 1,
                 bidirectional: bool = False, dropout: float = 0.0, stateful: bool = False,
                 fused: bool = True, dtype=np.float32, initializer=None) -> None:
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
        self.cells = []
        for k in range(self.num_layers):
            size = in_size if k == 0 else self.hidden_size * directions
            for suffix in ("", "_reverse")[:directions]:
                cell = self.cell_class(hidden_size, in_size=size, dtype=dtype,
                                       initializer=initializer)
                setattr(self, f"l{k}{suffix}", cell)
                self.cells.append(cell)
        self.reset_state()

    @property
    def num_directions(self) -> int:
        return 2 if self.bidirectional else 1

    def reset_state(self) -> None:
        """Forget the state carried between calls (``stateful=True``) and the final state."""
        self._final: list | None = None

    # -- state plumbing -------------------------------------------------------------------
    def _initial_states(self, state, N: int) -> list:
        """One state per cell (a tuple (h, c) for LSTM, h otherwise; None = zeros)."""
        n_cells = len(self.cells)
        if state is None:
            if self.stateful and self._final is not None:
                for final in self._final:
                    parts = final if isinstance(final, tuple) else (final,)
                    if self.fused:
                        for part in parts:
                            _unchain_if_cut_behind(part)
                    elif len(parts) == 2:
                        _unchain_sibling(*parts)
                return list(self._final)
            return [None] * n_cells
        parts = state if isinstance(state, tuple) else (state,)
        expected = (n_cells, N, self.hidden_size)
        for part in parts:
            if tuple(part.shape) != expected:
                raise ShapeError(
                    f"{type(self).__name__}: initial state {part.dtype} {tuple(part.shape)}; "
                    f"expected (num_layers * num_directions, N, hidden_size) = {expected}")
        parts = [as_variable(p) for p in parts]
        per_cell = [tuple(p[k] for p in parts) for k in range(n_cells)]
        return [s if len(s) > 1 else s[0] for s in per_cell]

    def _stacked_final(self, index: int):
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
    def __call__(self, x, state=None) -> Variable:
        # Layer.__call__ takes positional inputs only; this accepts state=... by keyword.
        return super().__call__(x, state)

    def forward(self, x, state=None) -> Variable:
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
        for k in range(self.num_layers):
            if k > 0 and self.dropout > 0 and self.training and Config.train:
                x = F.dropout(x, self.dropout)
            outputs = []
            for d in range(directions):
                index = k * directions + d
                cell = self.cells[index]
                if cell.x2h.W.data is None:
                    cell._lazy_init((x.data if isinstance(x, Variable) else x)[:, 0])
                run = self._run_fused if self.fused else self._run_steps
                y, final = run(cell, x, states[index], reverse=d == 1)
                outputs.append(y)
                finals.append(final)
            x = outputs[0] if directions == 1 else F.concat(outputs, axis=2)
        self._final = finals
        return x

    def _run_steps(self, cell, x, state, reverse: bool):
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

    def _run_fused(self, cell, x, state, reverse: bool):
        xw = F.linear(x, cell.x2h.W, cell.x2h.b)
        return R.rnn_sequence(xw, state, cell.h2h.W, reverse=reverse)


class LSTMSeq(_Seq):
    """An LSTM over whole sequences: x (N, T, D) -> y (N, T, num_directions * H).

    Same options as :class:`RNNSeq`; sub-layers are :class:`LSTM` cells. ``state`` is a tuple
    (h0, c0); the final state is ``h_n`` and ``c_n``.
    """

    cell_class = LSTM

    def _run_fused(self, cell, x, state, reverse: bool):
        h0, c0 = (None, None) if state is None else state
        xw = F.linear(x, cell.x2h.W, cell.x2h.b)
        y, h, c = R.lstm_sequence(xw, h0, c0, cell.h2h.W, reverse=reverse)
        return y, (h, c)

    @property
    def c_n(self) -> Variable | None:
        """The cell state after the last call, shaped like ``h_n``."""
        return self._stacked_final(1)

    def _initial_states(self, state, N: int) -> list:
        if state is not None and not isinstance(state, tuple):
            raise TypeError("LSTMSeq: state must be a tuple (h0, c0) of arrays shaped "
                            "(num_layers * num_directions, N, hidden_size)")
        return super()._initial_states(state, N)


class GRUSeq(_Seq):
    """A GRU over whole sequences: x (N, T, D) -> y (N, T, num_directions * H).

    Same options as :class:`RNNSeq`; sub-layers are :class:`GRU` cells.
    """

    cell_class = GRU

    def _run_fused(self, cell, x, state, reverse: bool):
        xw = F.linear(x, cell.x2h.W, cell.x2h.b)
        return R.gru_sequence(xw, state, cell.h2h.W, cell.h2h.b, reverse=reverse)
