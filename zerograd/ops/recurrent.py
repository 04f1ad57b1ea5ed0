"""Recurrent cells as fused ops: one graph node per time step, or one per whole sequence.

A recurrent network at batch 1 is all Python overhead: DeZero's LSTM step is about twenty ops
(eight Linear layers, four activations, the cell update). Here one op computes every gate from
one matrix product per side and returns the new state, and its backward is a handful of NumPy
calls on raw arrays.

Cell ops (one time step, differentiable to any order):

- ``lstm_cell(x, h, c, Wx, Wh, b) -> (h_new, c_new)``, gates in the order (f, i, o, u);
- ``gru_cell(x, h, Wx, Wh, bx, bh) -> h_new``, gates (r, z, n), PyTorch's formulation;
- ``rnn_cell(x, h, Wx, Wh, b) -> h_new``, Elman with tanh.

Their backward is a Grad node (``LSTMCellGrad``, ``GRUCellGrad``, ``RNNCellGrad``, Chainer's
``LSTMGrad`` design): its forward is the raw-array kernel of the step's gradients (fast, one
node), its backward the next order on Variables: the products are bilinear and the gates'
elementwise part is differentiated by hand, so every order is exact and nothing branches on
whether the graph is being recorded.

Sequence ops (a whole (N, T, .) batch in one node; first-order only):

- ``lstm_sequence(xw, h0, c0, Wh, b=None) -> (y, h_T, c_T)``;
- ``gru_sequence(xw, h0, Wh, bh) -> (y, h_T)``;
- ``rnn_sequence(xw, h0, Wh) -> (y, h_T)``;

where ``xw = x @ Wx + b`` is the input projection of every step, computed beforehand by one
batched matrix product (the LSTM takes its b as an input of its own instead, added inside
each step: the LSTMSeq layer passes ``xw = x @ Wx``). The loop over time runs inside forward
and (reversed) inside backward. They declare ``first_order_only``, so the engine raises
``GraphError`` naming the op when ``create_graph=True`` reaches one: for higher-order
gradients run the cell ops step by step (the layers' ``fused=False``).

Per-gate parameters as one array (any order):

- ``fused_weights(layout, *parts) -> arrays``: DeZero's LSTM has one Linear per gate
  (``x2f.W``, ``x2i.W``, ...); the layer keeps those weights as column blocks of one array,
  and this op hands the whole array to the fused step without a copy, its backward cutting
  the gradient back into the blocks.
"""

from __future__ import annotations

import math

import numpy as np

import zerograd._fast as fast
from zerograd.backend import get_array_module
from zerograd.core.broadcast import broadcast_to
from zerograd.core.function import Function
from zerograd.core.variable import Variable
from zerograd.errors import DTypeError, GraphError, ShapeError
from zerograd.ops._grad_slots import in_slots, plus
from zerograd.ops._operands import constant
from zerograd.ops._special import sigmoid_
from zerograd.ops.activation import sigmoid
from zerograd.ops.elementwise import TanhGrad, tanh
from zerograd.ops.linalg import matmul
from zerograd.ops.shape import concat, split

__all__ = ["lstm_cell", "gru_cell", "rnn_cell", "lstm_sequence", "gru_sequence",
           "rnn_sequence", "fused_weights", "LSTMCell", "GRUCell", "RNNCell", "LSTMSequence",
           "GRUSequence", "RNNSequence", "FusedWeights", "RNNCellGrad", "LSTMCellGrad",
           "GRUCellGrad"]


# -- raw-array kernels shared by the cell and the sequence ops ------------------------------
def _data(v):
    return None if v is None else v.data


def _outer(a, d):
    """a^T d for a (N, K) and d (N, G): the weight gradient of one step. For N = 1 a
    broadcast product, several times faster than BLAS's rank-1 matrix product, or the
    compiled one (``zerograd._fast.recurrent.outer_row``), faster still from 1024
    elements; both make the same products."""
    if a.shape[0] != 1:
        return a.T @ d
    xp = get_array_module(d)
    if a.shape[1] * d.shape[1] < fast.THRESHOLDS["outer_row"][0]:
        return xp.multiply(a.T, d)  # below the kernel's range: no buffer, no dispatch
    dtype = d.dtype if a.dtype == d.dtype else xp.result_type(a, d)
    out = xp.empty((a.shape[1], d.shape[1]), dtype=dtype)
    if fast.use("outer_row", out, a, d):
        from zerograd._fast import recurrent as fast_recurrent  # imports numba (see below)

        return fast_recurrent.outer_row(a, d, out)
    return xp.multiply(a.T, d, out=out)


def _project(x, W):
    """x W for x (N, D): with D = 1 (one input feature, as SinCurve) a broadcast product,
    which is several times faster than BLAS for a rank-1 matrix product."""
    if x.shape[1] == 1:
        return x * W
    return x @ W


def _lstm_step(gates, c_prev):
    """Activate ``gates`` (N, 4H pre-activations, overwritten) and update the cell.

    Returns (h, c, tanh(c)); ``gates`` then holds the activations f, i, o, u.
    """
    if fast.use("lstm_step", c_prev, gates):
        # One compiled call instead of a dozen NumPy calls on small arrays (small states
        # only: see zerograd._fast.THRESHOLDS); it imports numba, so only here.
        from zerograd._fast import recurrent as fast_recurrent

        return fast_recurrent.lstm_step(gates, c_prev)
    H = gates.shape[1] // 4
    sigmoid_(gates[:, :3 * H])
    u = gates[:, 3 * H:]
    np.tanh(u, out=u)
    c = gates[:, :H] * c_prev
    c += gates[:, H:2 * H] * u
    tanh_c = np.tanh(c)
    return gates[:, 2 * H:3 * H] * tanh_c, c, tanh_c


def _lstm_step_grad(act, c_prev, tanh_c, gh, gc):
    """Pre-activation gradients (N, 4H) and dL/dc_prev of one LSTM step.

    act: the activations (f, i, o, u); gh, gc: dL/dh, dL/dc of the step's outputs (either may
    be None, meaning zero).
    """
    if fast.use("lstm_step_grad", c_prev, act, tanh_c, *(g for g in (gh, gc) if g is not None)):
        from zerograd._fast import recurrent as fast_recurrent  # imports numba (see above)

        return fast_recurrent.lstm_step_grad(act, c_prev, tanh_c, gh, gc)
    H = act.shape[1] // 4
    f, i, o, u = act[:, :H], act[:, H:2 * H], act[:, 2 * H:3 * H], act[:, 3 * H:]
    d = np.empty_like(act)
    if gh is not None:
        np.multiply(gh, tanh_c, out=d[:, 2 * H:3 * H])  # dL/do
        gct = tanh_c * tanh_c
        np.subtract(1, gct, out=gct)
        gct *= o
        gct *= gh
        if gc is not None:
            gct += gc
    else:
        d[:, 2 * H:3 * H] = 0
        gct = gc
    np.multiply(gct, c_prev, out=d[:, :H])  # dL/df
    np.multiply(gct, u, out=d[:, H:2 * H])  # dL/di
    np.multiply(gct, i, out=d[:, 3 * H:])  # dL/du
    # Through the activations: sigmoid' = s (1 - s), tanh' = 1 - u^2.
    s = act[:, :3 * H]
    slope = 1 - s
    slope *= s
    d[:, :3 * H] *= slope
    d[:, 3 * H:] *= 1 - u * u
    return d, gct * f


def _gru_step(gx, hw, h_prev):
    """One GRU step from gx = x Wx + bx and hw = h Wh + bh (both (N, 3H), gates r, z, n).

    Returns (h, rz, n) where rz holds the activations r, z and n the candidate.
    """
    H = h_prev.shape[1]
    rz = gx[:, :2 * H] + hw[:, :2 * H]
    sigmoid_(rz)
    n = rz[:, :H] * hw[:, 2 * H:]
    n += gx[:, 2 * H:]
    np.tanh(n, out=n)
    h = h_prev - n
    h *= rz[:, H:]
    h += n
    return h, rz, n


def _gru_step_grad(rz, n, hn, h_prev, g):
    """(dL/dgx, dL/dhw, the direct part of dL/dh_prev) of one GRU step; hn = (h Wh + bh)_n."""
    H = n.shape[1]
    r, z = rz[:, :H], rz[:, H:]
    N = g.shape[0]
    xp = get_array_module(g)
    dgx = xp.empty((N, 3 * H), dtype=g.dtype)
    dhw = xp.empty((N, 3 * H), dtype=g.dtype)
    dn = 1 - z
    dn *= g
    dn *= 1 - n * n  # through tanh: the candidate's pre-activation gradient
    dgx[:, 2 * H:] = dn
    np.multiply(dn, r, out=dhw[:, 2 * H:])
    dr = dn * hn
    dr *= r * (1 - r)
    dgx[:, :H] = dr
    dz = h_prev - n
    dz *= g
    dz *= z * (1 - z)
    dgx[:, H:2 * H] = dz
    dhw[:, :2 * H] = dgx[:, :2 * H]
    return dgx, dhw, g * z


# -- checks ------------------------------------------------------------------------------
def _check(op: str, gates: int, x, h, Wx, Wh, biases=(), c=None, projected: bool = False,
           bias_names=("b",)):
    """Shapes and dtypes of a cell's inputs; the message labels every input and its shape."""
    H = Wh.shape[0] if Wh.ndim == 2 else -1
    G = gates * H
    ok = (Wh.ndim == 2 and Wh.shape[1] == G and h.ndim == 2 and h.shape[1] == H
          and all(b.shape == (G,) for b in biases))
    if projected:
        ok = ok and x.ndim == 3 and x.shape[2] == G and h.shape[0] == x.shape[0]
    else:
        ok = (ok and x.ndim == 2 and Wx.ndim == 2 and Wx.shape == (x.shape[1], G)
              and h.shape[0] == x.shape[0])
    if c is not None:
        ok = ok and c.shape == h.shape
    floats = True
    for a in (x, h, c, Wx, Wh, *biases):  # (a loop: this runs at every step of a cell)
        if a is not None and a.dtype.kind != "f":
            floats = False
    if ok and floats:
        return
    if projected:
        named = [("xw", x, "(N, T, G*H)"), ("h0", h, "(N, H)"), ("c0", c, "(N, H)")]
    else:
        named = [("x", x, "(N, D)"), ("h", h, "(N, H)"), ("c", c, "(N, H)"),
                 ("Wx", Wx, "(D, G*H)")]
    named += [("Wh", Wh, "(H, G*H)")] + [(n, b, "(G*H,)") for n, b in zip(bias_names, biases)]
    named = [(n, a, e) for n, a, e in named if a is not None]
    got = ", ".join(f"{n} {a.dtype} {tuple(a.shape)}" for n, a, _ in named)
    if not ok:
        expected = ", ".join(f"{n} {e}" for n, _, e in named)
        raise ShapeError(f"{op}: got {got}; expected {expected} with G = {gates} gate(s), "
                         f"H the hidden size")
    raise DTypeError(f"{op}: every input must be floating point, got {got}")


# -- LSTM ----------------------------------------------------------------------------------
class LSTMCell(Function):
    """One LSTM step, all gates from one product per side (Hochreiter & Schmidhuber, 1997).

    a = x Wx + h Wh + b, split into (f, i, o, u); f, i, o = sigmoid(.), u = tanh(.);
    c' = f * c + i * u;  h' = o * tanh(c'). Backward: :class:`LSTMCellGrad`, any order.
    """

    retain_inputs = (0, 1, 2, 3, 4, 5)
    retain_outputs = ()

    saved = ("act", "tanh_c")  # released with the graph (Function.release)

    def forward(self, x, h, c, Wx, Wh, b):
        _check("lstm_cell", 4, x, h, Wx, Wh, (b,), c=c)
        gates = _project(x, Wx)
        gates += h @ Wh
        gates += b
        h_new, c_new, self.tanh_c = _lstm_step(gates, c)
        self.act = gates
        return h_new, c_new

    def backward(self, gh, gc):
        needs = tuple(v.requires_grad for v in self.inputs)
        x, h, c = self.inputs[:3]
        # An output nobody used has no gradient: zeros, so that the Grad node's inputs are
        # always arrays (a step's c' is unused at the last step, its h' when only c' flows).
        gh = constant(np.zeros_like(self.tanh_c)) if gh is None else gh
        gc = constant(np.zeros_like(self.tanh_c)) if gc is None else gc
        grad = LSTMCellGrad(needs, (self.act, self.tanh_c))
        return in_slots(needs, grad(*self.inputs, gh, gc))

    def to_onnx(self, g, x, h, c, Wx, Wh, b):
        v = self.inputs[0]
        h = _onnx_state(g, h, self.inputs[1], v)
        c = _onnx_state(g, c, self.inputs[2], v)
        gates = g.op("Add", g.op("Add", g.op("MatMul", x, Wx), g.op("MatMul", h, Wh)), b)
        f, i, o, u = _onnx_split(g, gates, self.inputs[4].shape[0], 4)
        f, i, o, u = g.op("Sigmoid", f), g.op("Sigmoid", i), g.op("Sigmoid", o), g.op("Tanh", u)
        c_new = g.op("Add", g.op("Mul", f, c), g.op("Mul", i, u))
        return g.op("Mul", o, g.op("Tanh", c_new)), c_new


class LSTMCellGrad(Function):
    """The gradients (gx, gh, gc, gWx, gWh, gb) of one LSTM step from inputs
    (x, h, c, Wx, Wh, b, gh', gc'), the upstream gradients last; only those whose flag in
    ``needs`` is set.

    Forward, on raw arrays: the pre-activation gradients
    d = [gct c f(1-f), gct u i(1-i), gh' t o(1-o), gct i (1-u^2)], gct = gh' o (1-t^2) + gc',
    t = tanh(c'), then gc = gct f and the products gx = d Wx^T, gh = d Wh^T, gWx = x^T d,
    gWh = h^T d, gb = sum_n d. ``state``: (activations, tanh(c')) from the forward pass, or
    None (recomputed). Backward: the products are bilinear (as in :class:`RNNCellGrad`);
    the elementwise part is differentiated by hand below, on Variables, so every order is
    exact.
    """

    retain_inputs = (0, 1, 2, 3, 4, 5, 6, 7)  # the step is rebuilt as a graph of all of them
    retain_outputs = ()
    saved = ("state",)  # released with the graph (Function.release)

    def __init__(self, needs: tuple, state: tuple | None = None) -> None:
        self.needs = needs
        self.state = state

    def forward(self, x, h, c, Wx, Wh, b, gh, gc):
        if self.state is None:
            gates = _project(x, Wx)
            gates += h @ Wh
            gates += b
            _, _, tanh_c = _lstm_step(gates, c)
            act = gates
        else:
            act, tanh_c = self.state
            self.state = None  # used once: the backward works from the inputs
        d, gc_prev = _lstm_step_grad(act, c, tanh_c, gh, gc)
        need_x, need_h, need_c, need_Wx, need_Wh, need_b = self.needs
        grads = []
        if need_x:
            grads.append(d @ Wx.T)
        if need_h:
            grads.append(d @ Wh.T)
        if need_c:
            grads.append(gc_prev)
        if need_Wx:
            grads.append(_outer(x, d))
        if need_Wh:
            grads.append(_outer(h, d))
        if need_b:
            grads.append(d.sum(axis=0))
        return tuple(grads)

    def backward(self, *ggs):
        x, h, c, Wx, Wh, b, gh, gc = self.inputs
        ggx, ggh, ggc, ggWx, ggWh, ggb = in_slots(self.needs, ggs)
        # The step again, as a graph of the inputs.
        f, i, o, u = split(matmul(x, Wx) + matmul(h, Wh) + b, 4, axis=1)
        f, i, o, u = sigmoid(f), sigmoid(i), sigmoid(o), tanh(u)
        t = tanh(f * c + i * u)
        sf, si, so, su = f * (1 - f), i * (1 - i), o * (1 - o), 1 - u * u  # the slopes
        st = 1 - t * t
        gct = gh * o * st + gc
        d = concat([gct * c * sf, gct * u * si, gh * t * so, gct * i * su], axis=1)
        # The products: the gradient reaching d (dd), and their direct terms.
        g_x = g_h = g_Wx = g_Wh = dd = None
        if ggx is not None:
            dd = plus(dd, matmul(ggx, Wx))
            g_Wx = matmul(ggx.T, d)
        if ggh is not None:
            dd = plus(dd, matmul(ggh, Wh))
            g_Wh = matmul(ggh.T, d)
        if ggWx is not None:
            dd = plus(dd, matmul(x, ggWx))
            g_x = matmul(d, ggWx.T)
        if ggWh is not None:
            dd = plus(dd, matmul(h, ggWh))
            g_h = matmul(d, ggWh.T)
        if ggb is not None:
            dd = plus(dd, broadcast_to(ggb, d.shape))
        if dd is None and ggc is None:
            return g_x, g_h, None, g_Wx, g_Wh, None, None, None
        zero = 0.0 * t  # a zero of the right shape where one cotangent is missing
        df, di, do, du = split(dd, 4, axis=1) if dd is not None else (zero,) * 4
        dc = zero if ggc is None else ggc  # the cotangent of gc = gct f
        # The elementwise part: d and gc as functions of (f, i, o, u, t, c, gh', gc').
        g_gct = df * c * sf + di * u * si + du * i * su + dc * f
        g_gh = g_gct * o * st + do * t * so
        g_gc = g_gct
        g_t = g_gct * gh * o * t * -2.0 + do * gh * so
        g_o = g_gct * gh * st + do * gh * t * (1 - o * 2)
        g_cnew = g_t * st  # through t = tanh(c')
        g_f = g_cnew * c + df * gct * c * (1 - f * 2) + dc * gct
        g_i = g_cnew * u + di * gct * u * (1 - i * 2) + du * gct * su
        g_u = g_cnew * i + di * gct * si
        g_c = g_cnew * f + df * gct * sf
        # Through the activations to the pre-activations a = x Wx + h Wh + b.
        ga = concat([g_f * sf, g_i * si, g_o * so,
                     g_u * su + du * gct * i * u * su * -2.0], axis=1)
        g_x = plus(g_x, matmul(ga, Wx.T)) if self.needs_grad(0) else None
        g_h = plus(g_h, matmul(ga, Wh.T)) if self.needs_grad(1) else None
        g_Wx = plus(g_Wx, matmul(x.T, ga)) if self.needs_grad(3) else None
        g_Wh = plus(g_Wh, matmul(h.T, ga)) if self.needs_grad(4) else None
        g_b = ga.sum(axis=0) if self.needs_grad(5) else None
        return g_x, g_h, g_c, g_Wx, g_Wh, g_b, g_gh, g_gc


def _zeros_state(x, H: int, dtype) -> np.ndarray:
    xp = get_array_module(x)
    return xp.zeros((x.shape[0], H), dtype=dtype)


def lstm_cell(x, h, c, Wx, Wh, b=None) -> tuple[Variable, Variable]:
    """One LSTM step: returns (h', c').

    a = x Wx + h Wh + b = [a_f, a_i, a_o, a_u];  f, i, o = sigmoid(a_f, a_i, a_o),
    u = tanh(a_u);  c' = f * c + i * u;  h' = o * tanh(c').

    x: (N, D), h and c: (N, H) (None means zeros, DeZero's first step), Wx: (D, 4H),
    Wh: (H, 4H), b: (4H,) or None -> h', c': (N, H). Differentiable to any order.
    """
    H = Wh.shape[0]
    dtype = Wh.dtype
    if h is None:
        h = _zeros_state(x, H, dtype)
    if c is None:
        c = _zeros_state(x, H, dtype)
    if b is None:
        b = get_array_module(Wh).zeros(4 * H, dtype=dtype)
    return tuple(LSTMCell()(x, h, c, Wx, Wh, b))


# -- GRU -----------------------------------------------------------------------------------
class GRUCell(Function):
    """One GRU step in PyTorch's formulation (Cho et al., 2014; reset applied after Wh).

    gx = x Wx + bx, gh = h Wh + bh, each split into (r, z, n) parts;
    r = sigmoid(gx_r + gh_r), z = sigmoid(gx_z + gh_z), n = tanh(gx_n + r * gh_n);
    h' = (1 - z) * n + z * h. Backward: :class:`GRUCellGrad`, any order.
    """

    retain_inputs = (0, 1, 2, 3, 4, 5)
    retain_outputs = ()
    saved = ("rz", "n", "hn")  # released with the graph (Function.release)

    def forward(self, x, h, Wx, Wh, bx, bh):
        _check("gru_cell", 3, x, h, Wx, Wh, (bx, bh), bias_names=("bx", "bh"))
        gx = _project(x, Wx)
        gx += bx
        hw = h @ Wh
        hw += bh
        h_new, self.rz, self.n = _gru_step(gx, hw, h)
        self.hn = hw[:, 2 * h.shape[1]:]
        return h_new

    def backward(self, g):
        needs = tuple(v.requires_grad for v in self.inputs)
        grad = GRUCellGrad(needs, (self.rz, self.n, self.hn))
        return in_slots(needs, grad(*self.inputs, g))

    def to_onnx(self, g, x, h, Wx, Wh, bx, bh):
        h = _onnx_state(g, h, self.inputs[1], self.inputs[0])
        H = self.inputs[3].shape[0]
        xr, xz, xn = _onnx_split(g, g.op("Add", g.op("MatMul", x, Wx), bx), H, 3)
        hr, hz, hn = _onnx_split(g, g.op("Add", g.op("MatMul", h, Wh), bh), H, 3)
        r, z = g.op("Sigmoid", g.op("Add", xr, hr)), g.op("Sigmoid", g.op("Add", xz, hz))
        n = g.op("Tanh", g.op("Add", g.op("Mul", r, hn), xn))  # the reset gate after Wh
        return g.op("Add", g.op("Mul", g.op("Sub", h, n), z), n)  # (1 - z) n + z h


class GRUCellGrad(Function):
    """The gradients (gx, gh, gWx, gWh, gbx, gbh) of one GRU step from inputs
    (x, h, Wx, Wh, bx, bh, g = dL/dh'); only those whose flag in ``needs`` is set.

    Forward, on raw arrays: dn = g (1-z)(1-n^2), dr = dn hn r(1-r), dz = g (h-n) z(1-z);
    the input side's pre-activation gradient is [dr, dz, dn], the hidden side's
    [dr, dz, dn r]; then gx = dgx Wx^T, gh = dhw Wh^T + g z, gWx = x^T dgx, gWh = h^T dhw,
    gbx, gbh their sums over the batch. ``state``: (r|z, n, hn) from the forward pass, or
    None (recomputed). Backward: the products are bilinear; the elementwise part is
    differentiated by hand below, on Variables, so every order is exact.
    """

    retain_inputs = (0, 1, 2, 3, 4, 5, 6)  # the step is rebuilt as a graph of all of them
    retain_outputs = ()
    saved = ("state",)  # released with the graph (Function.release)

    def __init__(self, needs: tuple, state: tuple | None = None) -> None:
        self.needs = needs
        self.state = state

    def forward(self, x, h, Wx, Wh, bx, bh, g):
        if self.state is None:
            gx = _project(x, Wx)
            gx += bx
            hw = h @ Wh
            hw += bh
            _, rz, n = _gru_step(gx, hw, h)
            hn = hw[:, 2 * h.shape[1]:]
        else:
            rz, n, hn = self.state
            self.state = None  # used once: the backward works from the inputs
        dgx, dhw, gh_direct = _gru_step_grad(rz, n, hn, h, g)
        need_x, need_h, need_Wx, need_Wh, need_bx, need_bh = self.needs
        grads = []
        if need_x:
            grads.append(dgx @ Wx.T)
        if need_h:
            gh = dhw @ Wh.T
            gh += gh_direct
            grads.append(gh)
        if need_Wx:
            grads.append(_outer(x, dgx))
        if need_Wh:
            grads.append(_outer(h, dhw))
        if need_bx:
            grads.append(dgx.sum(axis=0))
        if need_bh:
            grads.append(dhw.sum(axis=0))
        return tuple(grads)

    def backward(self, *ggs):
        x, h, Wx, Wh, bx, bh, g = self.inputs
        ggx, ggh, ggWx, ggWh, ggbx, ggbh = in_slots(self.needs, ggs)
        # The step again, as a graph of the inputs.
        xr, xz, xn = split(matmul(x, Wx) + bx, 3, axis=1)
        hr, hz, hn = split(matmul(h, Wh) + bh, 3, axis=1)
        r, z = sigmoid(xr + hr), sigmoid(xz + hz)
        n = tanh(xn + r * hn)
        sr, sz, sn = r * (1 - r), z * (1 - z), 1 - n * n  # the slopes
        dn = g * (1 - z) * sn
        dr = dn * hn * sr
        dz = g * (h - n) * sz
        dgx = concat([dr, dz, dn], axis=1)
        dhw = concat([dr, dz, dn * r], axis=1)
        # The products: the gradients reaching dgx and dhw, and their direct terms.
        g_x = g_h = g_Wx = g_Wh = d_gx = d_hw = g_g = g_z = None
        if ggx is not None:  # gx = dgx Wx^T
            d_gx = plus(d_gx, matmul(ggx, Wx))
            g_Wx = matmul(ggx.T, dgx)
        if ggh is not None:  # gh = dhw Wh^T + g z
            d_hw = plus(d_hw, matmul(ggh, Wh))
            g_Wh = matmul(ggh.T, dhw)
            g_g = ggh * z
            g_z = ggh * g
        if ggWx is not None:  # gWx = x^T dgx
            d_gx = plus(d_gx, matmul(x, ggWx))
            g_x = matmul(dgx, ggWx.T)
        if ggWh is not None:  # gWh = h^T dhw
            d_hw = plus(d_hw, matmul(h, ggWh))
            g_h = matmul(dhw, ggWh.T)
        if ggbx is not None:
            d_gx = plus(d_gx, broadcast_to(ggbx, dgx.shape))
        if ggbh is not None:
            d_hw = plus(d_hw, broadcast_to(ggbh, dhw.shape))
        zero = 0.0 * n  # a zero of the right shape where one cotangent is missing
        d_xr, d_xz, d_xn = split(d_gx, 3, axis=1) if d_gx is not None else (zero,) * 3
        d_hr, d_hz, d_hnr = split(d_hw, 3, axis=1) if d_hw is not None else (zero,) * 3
        # The elementwise part: dr, dz, dn (and dn r) as functions of r, z, n, hn, h, g.
        d_dr, d_dz = d_xr + d_hr, d_xz + d_hz
        d_dn = d_xn + d_hnr * r + d_dr * hn * sr
        g_g = plus(g_g, d_dn * (1 - z) * sn + d_dz * (h - n) * sz)
        g_z = plus(g_z, -(d_dn * g * sn) + d_dz * g * (h - n) * (1 - z * 2))
        g_n = d_dn * g * (1 - z) * n * -2.0 - d_dz * g * sz
        g_hn = d_dr * dn * sr
        g_r = d_hnr * dn + d_dr * dn * hn * (1 - r * 2)
        g_h = plus(g_h, d_dz * g * sz)  # h in dz
        # Through the activations: n = tanh(xn + r hn), r and z sigmoids.
        g_pre_n = g_n * sn
        g_r = g_r + g_pre_n * hn
        g_hn = g_hn + g_pre_n * r
        g_pre_r, g_pre_z = g_r * sr, g_z * sz
        ga_x = concat([g_pre_r, g_pre_z, g_pre_n], axis=1)  # reaching x Wx + bx
        ga_h = concat([g_pre_r, g_pre_z, g_hn], axis=1)  # reaching h Wh + bh
        return (
            plus(g_x, matmul(ga_x, Wx.T)) if self.needs_grad(0) else None,
            plus(g_h, matmul(ga_h, Wh.T)) if self.needs_grad(1) else None,
            plus(g_Wx, matmul(x.T, ga_x)) if self.needs_grad(2) else None,
            plus(g_Wh, matmul(h.T, ga_h)) if self.needs_grad(3) else None,
            ga_x.sum(axis=0) if self.needs_grad(4) else None,
            ga_h.sum(axis=0) if self.needs_grad(5) else None,
            g_g if self.needs_grad(6) else None,
        )


def gru_cell(x, h, Wx, Wh, bx=None, bh=None) -> Variable:
    """One GRU step (PyTorch's equations, gate order r, z, n): returns h'.

    r = sigmoid(x Wx_r + bx_r + h Wh_r + bh_r), z likewise,
    n = tanh(x Wx_n + bx_n + r * (h Wh_n + bh_n)), h' = (1 - z) * n + z * h.

    x: (N, D), h: (N, H) or None (zeros), Wx: (D, 3H), Wh: (H, 3H), bx, bh: (3H,) or None
    -> h': (N, H). Differentiable to any order.
    """
    H = Wh.shape[0]
    dtype = Wh.dtype
    xp = get_array_module(Wh)
    if h is None:
        h = _zeros_state(x, H, dtype)
    bx = xp.zeros(3 * H, dtype=dtype) if bx is None else bx
    bh = xp.zeros(3 * H, dtype=dtype) if bh is None else bh
    return GRUCell()(x, h, Wx, Wh, bx, bh)


# -- Elman RNN -------------------------------------------------------------------------------
class RNNCell(Function):
    """One Elman step: h' = tanh(x Wx + h Wh + b); dh'/da = 1 - h'^2 (keeps its output).

    Backward: :class:`RNNCellGrad`, differentiable to any order.
    """

    retain_inputs = (0, 1, 2, 3)  # x, h, Wx, Wh; never b
    retain_outputs = (0,)

    def forward(self, x, h, Wx, Wh, b):
        _check("rnn_cell", 1, x, h, Wx, Wh, (b,))
        a = _project(x, Wx)
        a += h @ Wh
        a += b
        return np.tanh(a, out=a)

    def backward(self, g):
        needs = tuple(v.requires_grad for v in self.inputs)
        x, h, Wx, Wh, _ = self.inputs
        grads = RNNCellGrad(needs)(x, h, Wx, Wh, self.output, g)
        return in_slots(needs, grads)

    def to_onnx(self, g, x, h, Wx, Wh, b):
        h = _onnx_state(g, h, self.inputs[1], self.inputs[0])
        return g.op("Tanh", g.op("Add", g.op("Add", g.op("MatMul", x, Wx),
                                              g.op("MatMul", h, Wh)), b))


class RNNCellGrad(Function):
    """The gradients (gx, gh, gWx, gWh, gb) of h' = tanh(x Wx + h Wh + b), from inputs
    (x, h, Wx, Wh, y = h', g = dL/dh'); only those whose flag in ``needs`` is set.

    Forward, on raw arrays: d = g (1 - y^2), then gx = d Wx^T, gh = d Wh^T, gWx = x^T d,
    gWh = h^T d, gb = sum_n d. Backward: every output is bilinear in d and one input, and
    d = TanhGrad(y, g), so the next order is a few products and a TanhGrad.
    """

    retain_inputs = (0, 1, 2, 3, 4, 5)
    retain_outputs = ()

    def __init__(self, needs: tuple) -> None:
        self.needs = needs

    def forward(self, x, h, Wx, Wh, y, g):
        d = y * y
        np.subtract(1, d, out=d)
        d *= g
        need_x, need_h, need_Wx, need_Wh, need_b = self.needs
        grads = []
        if need_x:
            grads.append(d @ Wx.T)
        if need_h:
            grads.append(d @ Wh.T)
        if need_Wx:
            grads.append(_outer(x, d))
        if need_Wh:
            grads.append(_outer(h, d))
        if need_b:
            grads.append(d.sum(axis=0))
        return tuple(grads)

    def backward(self, *ggs):
        x, h, Wx, Wh, y, g = self.inputs
        ggx, ggh, ggWx, ggWh, ggb = in_slots(self.needs, ggs)
        d = TanhGrad()(y, g)
        g_x = g_h = g_Wx = g_Wh = dd = None  # dd: the gradient reaching d
        if ggx is not None:  # gx = d Wx^T
            dd = plus(dd, matmul(ggx, Wx))
            g_Wx = matmul(ggx.T, d)
        if ggh is not None:  # gh = d Wh^T
            dd = plus(dd, matmul(ggh, Wh))
            g_Wh = matmul(ggh.T, d)
        if ggWx is not None:  # gWx = x^T d
            dd = plus(dd, matmul(x, ggWx))
            g_x = matmul(d, ggWx.T)
        if ggWh is not None:  # gWh = h^T d
            dd = plus(dd, matmul(h, ggWh))
            g_h = matmul(d, ggWh.T)
        if ggb is not None:  # gb = sum_n d
            dd = plus(dd, broadcast_to(ggb, d.shape))
        g_y = g_g = None
        if dd is not None:  # d = g (1 - y^2)
            g_y = dd * g * y * -2.0 if self.needs_grad(4) else None
            g_g = TanhGrad()(y, dd) if self.needs_grad(5) else None
        return g_x, g_h, g_Wx, g_Wh, g_y, g_g


# -- ONNX lowerings: shared pieces ------------------------------------------------------------
def _onnx_state(g, name: str, v: Variable, x: Variable) -> str:
    """The ONNX value of a cell's state input ``v`` (value ``name``), for input ``x``.

    A step from no state (``h=None``: after ``reset_state()``) gets a constant zero array of
    the example's batch size; under a dynamic batch it becomes zeros of the runtime batch
    size. Any other state is the value it is.
    """
    if (g.dynamic_batch and v.creator is None and not v.requires_grad
            and not g.is_batched(v) and v.ndim == 2 and not v.data.any()):
        shape = g.op("Concat", g.batch_dim(x), g.constant([v.shape[1]]), axis=0)
        return g.op("ConstantOfShape", shape, value=np.zeros(1, dtype=v.dtype))
    return name


def _onnx_split(g, a: str, H: int, gates: int) -> tuple:
    """The ``gates`` column blocks of width H of the (N, gates*H) value ``a``."""
    return g.op("Split", a, g.constant([H] * gates), axis=1, outputs=gates)


def _onnx_gate_rows(H: int, order: list) -> np.ndarray:
    """The indices that take a (.., gates*H) value's gate blocks of width H into ONNX's
    order (``order``: this op's gate block at each ONNX position)."""
    return np.concatenate([np.arange(H) + k * H for k in order])


def _onnx_bias(g, b: str, b_v: Variable, order: list, recurrent: bool) -> str:
    """ONNX's B (1, 2G) = [Wb, Rb] for an op bias ``b`` (value name; ``b_v`` its Variable,
    (G,)): b in ONNX's gate order on the recurrent side (Rb) if ``recurrent``, else on the
    input side (Wb), zeros on the other (both are added to every step's pre-activations)."""
    G = b_v.shape[0]
    gathered = g.op("Gather", b, g.constant(_onnx_gate_rows(G // len(order), order)), axis=0)
    zeros = g.constant(np.zeros(G), dtype=b_v.dtype)
    halves = (zeros, gathered) if recurrent else (gathered, zeros)
    return g.unsqueeze(g.op("Concat", *halves, axis=0), [0])


def _onnx_recurrence(g, op_type: str, node: LSTMSequence | GRUSequence | RNNSequence,
                     xw: str, states: list, Wh: str, order: list, bias: str | None = None,
                     **attributes) -> tuple:
    """One ONNX LSTM/GRU/RNN node for a sequence op: (y (N, T, H), final states (N, H)).

    ONNX's recurrent ops project the inputs themselves (X W^T); here the projections xw are
    computed already, so W is the permutation matrix that takes them into ONNX's gate order
    (``order``: this op's gate block at each ONNX position), exact products by 1 and 0, and
    R is Wh^T with its rows in that order. ``states``: (value name, Variable) per initial
    state; a zero constant (no state given) is left out, ONNX's zeros.
    """
    Wh_v = node.inputs[3 if op_type == "LSTM" else 2]
    H = Wh_v.shape[0]
    rows = _onnx_gate_rows(H, order)
    G = len(rows)
    W = np.zeros((1, G, G), dtype=Wh_v.dtype)
    W[0, np.arange(G), rows] = 1
    X = g.op("Transpose", xw, perm=[1, 0, 2])  # (T, N, G): ONNX's time-major layout
    R = g.unsqueeze(g.op("Gather", g.op("Transpose", Wh), g.constant(rows), axis=0), [0])
    initial = []
    for name, v in states:
        zero = v.creator is None and not v.requires_grad and not v.data.any()
        initial.append(None if zero else g.unsqueeze(name, [0]))
    outputs = g.op(op_type, X, g.constant(W, dtype=W.dtype), R, bias, None, *initial,
                   outputs=1 + len(states), hidden_size=H,
                   direction="reverse" if node.reverse else "forward", **attributes)
    y = g.op("Transpose", g.squeeze(outputs[0], [1]), perm=[1, 0, 2])  # (T, 1, N, H) -> (N, T, H)
    return (y,) + tuple(g.squeeze(s, [0]) for s in outputs[1:])


def rnn_cell(x, h, Wx, Wh, b=None) -> Variable:
    """One Elman RNN step: h' = tanh(x Wx + h Wh + b).

    x: (N, D), h: (N, H) or None (zeros: DeZero's first step tanh(x Wx + b)), Wx: (D, H),
    Wh: (H, H), or None when h is None (the first step has no recurrent term, and DeZero's
    lazy ``h2h`` has no weights yet then), b: (H,) or None -> h': (N, H). Differentiable to
    any order.
    """
    H = Wx.shape[1]
    dtype = Wx.dtype
    xp = get_array_module(Wx)
    if h is None:
        h = _zeros_state(x, H, dtype)
        if Wh is None:
            Wh = xp.zeros((H, H), dtype=dtype)
    elif Wh is None:
        raise ShapeError(f"rnn_cell: h {h.dtype} {tuple(h.shape)} is given but Wh is None; "
                         "only the first step (h None) may leave out the recurrent weight")
    if b is None:
        b = xp.zeros(H, dtype=dtype)
    return RNNCell()(x, h, Wx, Wh, b)


# -- per-gate parameters seen as one fused array -----------------------------------------
class FusedWeights(Function):
    """Parameters that are column blocks of fused arrays, given as those arrays (no copy).

    A fused recurrent step computes every gate with one matrix product, so it needs the gates'
    weights side by side: ``Wx = [W_f | W_i | W_o | W_u]``. DeZero's LSTM keeps them as eight
    Linear layers instead (``x2f.W``, ``x2i.W``, ...), and programs and weight files use those
    names. The layer reconciles the two by storing each gate's weight as a view of one
    column block of the fused array; this op then makes the fused arrays Variables of the
    graph: its outputs are the fused arrays themselves (the inputs are views into them, so
    whatever updates a gate's parameter in place updates the fused array too), and its
    backward cuts each output's gradient into the blocks, one per input Parameter.

    ``layout``: for each output, (fused array, positions): the array, and for each input that
    belongs to it, in order, the index of its block among ``blocks`` equal blocks along the
    last axis. A block left out (a gate without a bias) keeps its numbers, gets no gradient.
    """

    retain_inputs = ()  # only the layout it keeps
    retain_outputs = ()

    def __init__(self, layout, blocks: int) -> None:
        self.layout = layout
        self.blocks = blocks

    def forward(self, *parts):
        k = 0
        for fused, positions in self.layout:
            for position in positions:
                part = parts[k]
                k += 1
                if part.base is not fused:
                    raise GraphError(
                        f"fused_weights: input {k - 1} ({part.dtype} {tuple(part.shape)}) is not "
                        f"a view of the fused array {fused.dtype} {tuple(fused.shape)} it is "
                        f"block {position} of; the layer must rebuild the fused arrays")
        return tuple(fused for fused, _ in self.layout)

    def backward(self, *gys):
        gxs = []
        for (_, positions), gy in zip(self.layout, gys):
            if gy is None or not positions:
                gxs.extend([None] * len(positions))
                continue
            pieces = split(gy, self.blocks, axis=-1)
            gxs.extend(pieces[position] for position in positions)
        return tuple(gxs)

    def to_onnx(self, g, *parts):
        # Each fused array is its blocks side by side: the parameters' values, and a block
        # no parameter holds (a gate without a bias) as the constant it is.
        outputs, k = [], 0
        for fused, positions in self.layout:
            width = fused.shape[-1] // self.blocks
            held = dict(zip(positions, parts[k:k + len(positions)]))
            k += len(positions)
            blocks = [held[j] if j in held else
                      g.constant(fused[..., j * width:(j + 1) * width], dtype=fused.dtype)
                      for j in range(self.blocks)]
            outputs.append(g.op("Concat", *blocks, axis=-1))
        return tuple(outputs)


def fused_weights(layout, blocks: int, *parts) -> list[Variable]:
    """The fused arrays of ``layout`` as Variables whose gradients flow to ``parts``.

    layout: [(fused, positions), ...] (see :class:`FusedWeights`); blocks: how many equal
    column blocks each fused array has (4 for an LSTM); parts: the Parameters that are views
    of the blocks, in layout order -> one Variable per fused array, sharing its memory.
    Differentiable to any order.
    """
    count = sum(len(positions) for _, positions in layout)
    if len(parts) != count:
        raise ShapeError(f"fused_weights: the layout names {count} block(s), got {len(parts)} "
                         "input(s)")
    outputs = FusedWeights(layout, blocks)(*parts)
    return list(outputs) if isinstance(outputs, (list, tuple)) else [outputs]


# -- whole sequences -----------------------------------------------------------------------
_FUSED_FALSE = ("Build the layer with fused=False, which runs the cell ops step by step and "
                "supports higher-order gradients")

def _time_order(T: int, reverse: bool) -> range:
    return range(T - 1, -1, -1) if reverse else range(T)


def _previous(states, first, reverse: bool):
    """(T, N, H) time-major: the state each step started from (``first`` for the first step
    processed, which is t = T - 1 when ``reverse``)."""
    xp = get_array_module(states)
    if states.shape[0] == 0:
        return states
    if reverse:
        return xp.concatenate([states[1:], first[None]], axis=0)
    return xp.concatenate([first[None], states[:-1]], axis=0)


def _rows(a):
    """a (..., K) as one (rows, K) matrix: every step's row of every batch row, for a
    weight gradient that sums them in one product (a count, not -1, so that K = 0 works)."""
    return a.reshape(math.prod(a.shape[:-1]), a.shape[-1])


def _lstm_sequence_step_grad(act, c_prev, tanh_c):
    """The NumPy step gradient of :class:`LSTMSequence`: ``step_grad(t, gh, gc, out) ->
    (d, dL/dc_prev)`` of step t (act, c_prev, tanh_c: (T, N, .), every step's), as
    ``zerograd._fast.recurrent.lstm_step_grad`` computes it, from factors computed here once
    for all steps.

    dL/da = [gct c_prev, gct u, gh tanh(c), gct i] * (the activations' slopes) with
    gct = gc + gh o (1 - tanh(c)^2): everything but gh and gc is known before the loop, so
    each step is five NumPy calls instead of the fifteen of ``_lstm_step_grad``.
    """
    H = act.shape[2] // 4
    slope = 1 - act[..., :3 * H]
    slope *= act[..., :3 * H]
    factors = np.empty_like(act)
    np.multiply(c_prev, slope[..., :H], out=factors[..., :H])
    np.multiply(act[..., 3 * H:], slope[..., H:2 * H], out=factors[..., H:2 * H])
    np.multiply(tanh_c, slope[..., 2 * H:], out=factors[..., 2 * H:3 * H])
    u_slope = act[..., 3 * H:] * act[..., 3 * H:]
    np.subtract(1, u_slope, out=u_slope)
    np.multiply(act[..., H:2 * H], u_slope, out=factors[..., 3 * H:])
    to_c = tanh_c * tanh_c
    np.subtract(1, to_c, out=to_c)
    to_c *= act[..., 2 * H:3 * H]
    del slope, u_slope

    def step_grad(t, gh, gc, out):
        gct = gh * to_c[t]
        if gc is not None:
            gct += gc
        f = factors[t]
        # Three gates' blocks take gct, the output gate's gh: one call over the four blocks
        # as an (N, 4, H) view, then the output gate's block again.
        N = gct.shape[0]
        np.multiply(gct[:, None], f.reshape(N, 4, H), out=out.reshape(N, 4, H))
        np.multiply(gh, f[:, 2 * H:3 * H], out=out[:, 2 * H:3 * H])
        return out, np.multiply(gct, act[t, :, :H], out=gct)

    return step_grad


class LSTMSequence(Function):
    """The LSTM recurrence over every step of a batch, from precomputed input projections.

    xw: (N, T, 4H) = x Wx, h0, c0: (N, H), Wh: (H, 4H), b: (4H,) -> y (N, T, H), h_T, c_T
    (N, H). Each step's pre-activations are (h Wh + xw[:, t]) + b: the bias is added inside
    the step rather than as a pass of its own over the whole projection, and its gradient
    is one sum of every step's. ``reverse=True`` runs from the last step to the first (y
    stays in input order).
    """

    retain_inputs = (1, 2, 3)  # h0, c0, Wh; xw lives on in the saved activations; b is not read
    retain_outputs = ()
    saved = ("act", "cs", "tanh_c", "hs")  # released with the graph (Function.release)

    first_order_only = True  # backward runs the recurrence on raw arrays
    higher_order_hint = _FUSED_FALSE

    def __init__(self, reverse: bool = False) -> None:
        self.reverse = reverse

    def forward(self, xw, h0, c0, Wh, b):
        _check("lstm_sequence", 4, xw, h0, None, Wh, (b,), c=c0, projected=True)
        N, T, G = xw.shape
        H = G // 4
        xp = get_array_module(xw)
        dtype = np.result_type(xw.dtype, h0.dtype, c0.dtype, Wh.dtype, b.dtype)
        # Time-major storage: every step writes contiguous slices, and backward can work on
        # all steps at once where the recurrence allows.
        self.act = act = xp.empty((T, N, G), dtype=dtype)
        self.cs = cs = xp.empty((T, N, H), dtype=dtype)
        self.tanh_c = tanh_c = xp.empty((T, N, H), dtype=dtype)
        self.hs = hs = xp.empty((T, N, H), dtype=dtype)
        # Each step's h @ Wh in OpenBLAS's fastest form, a row-major Wh: a column-major one
        # (Wh.T of a row-major array) took 46 against 30 us a step at (32, 128) with OpenBLAS
        # unpinned (the same 48 us pinned to Haswell). Copying it costs one product's time.
        Wh = xp.ascontiguousarray(Wh)
        if T and fast.use("lstm_sequence", c0, xw, h0, Wh, b):
            # The same loop with its elementwise work compiled (float64: between NumPy's
            # exp and tanh calls, bitwise these values; float32: with its own vectorised
            # sigmoid and tanh, a few ulp from them; see docs/performance.md). Imports numba.
            from zerograd._fast import recurrent as fast_recurrent

            h, c = fast_recurrent.lstm_sequence_forward(xw, h0, c0, Wh, b,
                                                        _time_order(T, self.reverse),
                                                        act, cs, tanh_c, hs)
            return hs.transpose(1, 0, 2).copy(), h.copy(), c.copy()
        # At (32, 128) a step's product is half its time and each NumPy call on a (32, 128)
        # block costs microseconds: the loop writes into buffers (no temporaries) and
        # inlines sigmoid_ (negate, exp, +1, reciprocal) to enter np.errstate once, not once
        # a step. (Negating the sigmoid columns of Wh and xw once, to drop the negation
        # pass, does not pay: the signed copy of xw costs what the 64 passes save.)
        product = xp.empty((N, H), dtype=dtype)  # i * u
        h, c = h0, c0
        # e^-a overflows to inf for a < -88 (float32): 1 / (1 + inf) = 0 is the correctly
        # rounded sigmoid there (see _special.sigmoid_), so the warning is silenced.
        with np.errstate(over="ignore"):
            for t in _time_order(T, self.reverse):
                a = xp.matmul(h, Wh, out=act[t])
                a += xw[:, t]
                a += b
                s = np.negative(a[:, :3 * H], out=a[:, :3 * H])  # sigmoid for f, i, o
                np.exp(s, out=s)
                s += 1
                np.reciprocal(s, out=s)
                u = np.tanh(a[:, 3 * H:], out=a[:, 3 * H:])
                c = np.multiply(a[:, :H], c, out=cs[t])
                c += np.multiply(a[:, H:2 * H], u, out=product)
                h = np.multiply(a[:, 2 * H:3 * H], np.tanh(c, out=tanh_c[t]), out=hs[t])
        y = hs.transpose(1, 0, 2).copy()
        return y, (h0 if T == 0 else h.copy()), (c0 if T == 0 else c.copy())

    def backward(self, gy, gh_last, gc_last):
        xw, h0, c0, Wh, b = self.inputs
        xp = get_array_module(xw.data)
        Wh_T = xp.ascontiguousarray(Wh.data.T)  # faster products
        gy, gh_rec, gc = _data(gy), _data(gh_last), _data(gc_last)
        T, N, G = self.act.shape
        H = G // 4
        if T == 0:  # nothing ran: the final state is the initial one
            zeros = xp.zeros((N, H), dtype=Wh.dtype)
            return (constant(xp.zeros(xw.shape, dtype=Wh.dtype)),
                    constant(zeros if gh_rec is None else gh_rec),
                    constant(zeros if gc is None else gc),
                    constant(xp.zeros(Wh.shape, dtype=Wh.dtype)),
                    constant(xp.zeros(b.shape, dtype=Wh.dtype)))
        act, tanh_c = self.act, self.tanh_c
        # Every step's dL/da, batch-major like xw: the input projection's backward (the
        # layer's linear) then reads it as one (N*T, 4H) matrix, without a copy.
        d_all = xp.empty((N, T, G), dtype=act.dtype)
        upstream = [g for g in (gy, gh_rec, gc) if g is not None]
        if fast.use("lstm_sequence", c0.data, act, tanh_c, *upstream):
            # One compiled call a step for all of its elementwise work (see
            # docs/performance.md); it imports numba, so only here.
            from zerograd._fast import recurrent as fast_recurrent

            gh_rec, gc = fast_recurrent.lstm_sequence_backward(
                act, self.cs, tanh_c, c0.data, Wh_T, gy, gh_rec, gc,
                _time_order(T, self.reverse), d_all)
        else:
            c_prev = _previous(self.cs, c0.data, self.reverse)
            step_grad = _lstm_sequence_step_grad(act, c_prev, tanh_c)
            zeros = xp.zeros((N, H), dtype=act.dtype)
            for t in reversed(_time_order(T, self.reverse)):
                if gy is None:
                    gh = zeros if gh_rec is None else gh_rec
                else:
                    gh = gy[:, t] if gh_rec is None else gh_rec + gy[:, t]
                d, gc = step_grad(t, gh, gc, d_all[:, t])
                gh_rec = d @ Wh_T
        gWh = None
        if Wh.requires_grad:  # sum over steps and batch rows of h_prev^T d: one product
            h_prev = _previous(self.hs, h0.data, self.reverse).transpose(1, 0, 2)
            gWh = _rows(h_prev).T @ _rows(d_all)
        zeros = xp.zeros(h0.shape, dtype=Wh.dtype)
        return (
            constant(d_all) if xw.requires_grad else None,
            constant(zeros if gh_rec is None else gh_rec) if h0.requires_grad else None,
            constant(zeros if gc is None else gc) if c0.requires_grad else None,
            constant(gWh) if gWh is not None else None,
            constant(_rows(d_all).sum(axis=0)) if b.requires_grad else None,
        )

    def to_onnx(self, g, xw, h0, c0, Wh, b):
        # ONNX's gate order is (i, o, f, c); this op's (f, i, o, u). b is ONNX's Wb.
        _, h0_v, c0_v, _, b_v = self.inputs
        order = [1, 2, 0, 3]
        return _onnx_recurrence(g, "LSTM", self, xw, [(h0, h0_v), (c0, c0_v)], Wh, order,
                                bias=_onnx_bias(g, b, b_v, order, recurrent=False))


def _state_or_zeros(s, xw, H: int, dtype):
    if s is not None:
        return s
    xp = get_array_module(xw)
    return xp.zeros((xw.shape[0], H), dtype=dtype)


def lstm_sequence(xw, h0, c0, Wh, b=None,
                  reverse: bool = False) -> tuple[Variable, Variable, Variable]:
    """Run an LSTM over T steps in one op: returns (y, h_T, c_T).

    xw: (N, T, 4H), the input projections x_t Wx of every step (gates f, i, o, u); h0, c0:
    (N, H) or None (zeros); Wh: (H, 4H); b: (4H,) or None (zeros), added at each step (the
    layers pass their bias here rather than in xw: one pass over the projection less) ->
    y: (N, T, H) (h_t for each t, in input order), h_T, c_T: (N, H) the state after the
    last step processed (t = 0 if reverse). First-order gradients only (see the module
    docstring).
    """
    H = Wh.shape[0]
    h0 = _state_or_zeros(h0, xw, H, Wh.dtype)
    c0 = _state_or_zeros(c0, xw, H, Wh.dtype)
    if b is None:
        b = get_array_module(Wh).zeros(4 * H, dtype=Wh.dtype)
    return tuple(LSTMSequence(reverse)(xw, h0, c0, Wh, b))


class GRUSequence(Function):
    """The GRU recurrence over a batch: xw (N, T, 3H) = x Wx + bx, h0 (N, H), Wh (H, 3H),
    bh (3H,) -> y (N, T, H), h_T (N, H)."""

    retain_inputs = (1, 2)  # h0, Wh; xw lives on in the saved activations; bh is not read
    retain_outputs = ()
    saved = ("rz", "n", "hn", "hs")  # released with the graph (Function.release)

    first_order_only = True  # backward runs the recurrence on raw arrays
    higher_order_hint = _FUSED_FALSE

    def __init__(self, reverse: bool = False) -> None:
        self.reverse = reverse

    def forward(self, xw, h0, Wh, bh):
        _check("gru_sequence", 3, xw, h0, None, Wh, (bh,), projected=True, bias_names=("bh",))
        N, T, G = xw.shape
        H = G // 3
        xp = get_array_module(xw)
        dtype = np.result_type(xw.dtype, h0.dtype, Wh.dtype, bh.dtype)
        self.rz = rz_all = xp.empty((T, N, 2 * H), dtype=dtype)
        self.n = n_all = xp.empty((T, N, H), dtype=dtype)
        self.hn = hn_all = xp.empty((T, N, H), dtype=dtype)
        self.hs = hs = xp.empty((T, N, H), dtype=dtype)
        Wh = xp.ascontiguousarray(Wh)  # OpenBLAS's fast form (see LSTMSequence.forward)
        if T and fast.use("gru_sequence", h0, xw, Wh, bh):
            # The loop with its elementwise work between NumPy's exp and tanh calls compiled
            # (bitwise these values; see docs/performance.md); imports numba.
            from zerograd._fast import recurrent as fast_recurrent

            h = fast_recurrent.gru_sequence_forward(xw, h0, Wh, bh,
                                                    _time_order(T, self.reverse),
                                                    rz_all, n_all, hn_all, hs)
            return hs.transpose(1, 0, 2).copy(), h.copy()
        h = h0
        for t in _time_order(T, self.reverse):
            hw = h @ Wh
            hw += bh
            rz = np.add(xw[:, t, :2 * H], hw[:, :2 * H], out=rz_all[t])
            sigmoid_(rz)
            hn_all[t] = hw[:, 2 * H:]
            n = np.multiply(rz[:, :H], hw[:, 2 * H:], out=n_all[t])
            n += xw[:, t, 2 * H:]
            np.tanh(n, out=n)
            h_new = np.subtract(h, n, out=hs[t])
            h_new *= rz[:, H:]
            h_new += n
            h = h_new
        return hs.transpose(1, 0, 2).copy(), (h0 if T == 0 else h.copy())

    def backward(self, gy, gh_last):
        xw, h0, Wh, bh = self.inputs
        xp = get_array_module(xw.data)
        Wh_T = xp.ascontiguousarray(Wh.data.T)  # faster products
        gy, rec = _data(gy), _data(gh_last)
        T, N, H = self.n.shape
        dgx_all = xp.empty((T, N, 3 * H), dtype=self.n.dtype)
        dhw_all = xp.empty((T, N, 3 * H), dtype=self.n.dtype)
        upstream = [g for g in (gy, rec) if g is not None]
        if T and fast.use("gru_sequence", h0.data, self.rz, *upstream):
            # One compiled call a step for its elementwise work; imports numba.
            from zerograd._fast import recurrent as fast_recurrent

            rec = fast_recurrent.gru_sequence_backward(
                self.rz, self.n, self.hn, self.hs, h0.data, Wh_T, gy, rec,
                _time_order(T, self.reverse), dgx_all, dhw_all)
            return self._gradients(dgx_all, dhw_all, rec)
        r, z, n = self.rz[..., :H], self.rz[..., H:], self.n
        # The factors that do not depend on the recurrence, for all steps at once:
        # dn = g (1 - z)(1 - n^2); dr = dn hn r (1 - r); dz = g (h_prev - n) z (1 - z).
        to_n = 1 - z
        to_n *= 1 - n * n
        to_r = r * (1 - r)
        to_r *= self.hn
        to_z = _previous(self.hs, h0.data, self.reverse) - n
        to_z *= z * (1 - z)
        zeros = xp.zeros((N, H), dtype=self.n.dtype)
        for t in reversed(_time_order(T, self.reverse)):
            if gy is None:
                g = zeros if rec is None else rec
            else:
                g = gy[:, t] if rec is None else rec + gy[:, t]
            dgx, dhw = dgx_all[t], dhw_all[t]
            dn = np.multiply(g, to_n[t], out=dgx[:, 2 * H:])
            np.multiply(dn, to_r[t], out=dgx[:, :H])
            np.multiply(g, to_z[t], out=dgx[:, H:2 * H])
            dhw[:, :2 * H] = dgx[:, :2 * H]
            np.multiply(dn, r[t], out=dhw[:, 2 * H:])
            rec = dhw @ Wh_T
            rec += g * z[t]
        return self._gradients(dgx_all, dhw_all, rec)

    def _gradients(self, dgx_all, dhw_all, rec):
        """The op's four gradients from every step's dL/d(xw) and dL/d(h Wh + bh), (T, N,
        3H), and dL/dh0 (None: zero): Wh's and bh's summed over steps and rows at once."""
        xw, h0, Wh, bh = self.inputs
        xp = get_array_module(dgx_all)
        dhw_flat = _rows(dhw_all)
        h_prev = _previous(self.hs, h0.data, self.reverse) if Wh.requires_grad else None
        zeros = xp.zeros(h0.shape, dtype=Wh.dtype)
        return (
            constant(dgx_all.transpose(1, 0, 2)) if xw.requires_grad else None,
            constant(zeros if rec is None else rec) if h0.requires_grad else None,
            constant(_rows(h_prev).T @ dhw_flat) if Wh.requires_grad else None,
            constant(dhw_flat.sum(axis=0)) if bh.requires_grad else None,
        )

    def to_onnx(self, g, xw, h0, Wh, bh):
        # ONNX's gate order is (z, r, h), this op's (r, z, n); linear_before_reset=1 is
        # PyTorch's (and this op's) GRU: the reset gate multiplies h Wh_n + bh_n. The input
        # side's bias is in xw already, so ONNX's Wb is zeros and its Rb is bh.
        order = [1, 0, 2]
        return _onnx_recurrence(g, "GRU", self, xw, [(h0, self.inputs[1])], Wh, order,
                                bias=_onnx_bias(g, bh, self.inputs[3], order, recurrent=True),
                                linear_before_reset=1)


def gru_sequence(xw, h0, Wh, bh=None, reverse: bool = False) -> tuple[Variable, Variable]:
    """Run a GRU over T steps in one op: returns (y, h_T).

    xw: (N, T, 3H) = x_t Wx + bx for every step (gates r, z, n); h0: (N, H) or None; Wh:
    (H, 3H); bh: (3H,) or None -> y: (N, T, H), h_T: (N, H). First-order gradients only.
    """
    H = Wh.shape[0]
    h0 = _state_or_zeros(h0, xw, H, Wh.dtype)
    if bh is None:
        bh = get_array_module(Wh).zeros(3 * H, dtype=Wh.dtype)
    return tuple(GRUSequence(reverse)(xw, h0, Wh, bh))


class RNNSequence(Function):
    """The Elman recurrence over a batch: xw (N, T, H) = x Wx + b, h0 (N, H), Wh (H, H)
    -> y (N, T, H), h_T (N, H)."""

    retain_inputs = (1, 2)  # h0, Wh; xw lives on in the saved hs
    retain_outputs = ()
    saved = ("hs",)  # released with the graph (Function.release)

    first_order_only = True  # backward runs the recurrence on raw arrays
    higher_order_hint = _FUSED_FALSE

    def __init__(self, reverse: bool = False) -> None:
        self.reverse = reverse

    def forward(self, xw, h0, Wh):
        _check("rnn_sequence", 1, xw, h0, None, Wh, projected=True)
        N, T, H = xw.shape
        xp = get_array_module(xw)
        self.hs = hs = xp.empty((T, N, H), dtype=np.result_type(xw.dtype, h0.dtype, Wh.dtype))
        h = h0
        for t in _time_order(T, self.reverse):
            a = xp.matmul(h, Wh, out=hs[t])
            a += xw[:, t]
            h = np.tanh(a, out=a)
        return hs.transpose(1, 0, 2).copy(), (h0 if T == 0 else h.copy())

    def backward(self, gy, gh_last):
        xw, h0, Wh = self.inputs
        xp = get_array_module(xw.data)
        Wh_T = xp.ascontiguousarray(Wh.data.T)  # faster products
        gy, rec = _data(gy), _data(gh_last)
        T, N, H = self.hs.shape
        slope = self.hs * self.hs  # tanh' = 1 - y^2, for all steps at once
        np.subtract(1, slope, out=slope)
        d_all = xp.empty((T, N, H), dtype=self.hs.dtype)
        zeros = xp.zeros((N, H), dtype=self.hs.dtype)
        for t in reversed(_time_order(T, self.reverse)):
            if gy is None:
                g = zeros if rec is None else rec
            else:
                g = gy[:, t] if rec is None else rec + gy[:, t]
            rec = np.multiply(g, slope[t], out=d_all[t]) @ Wh_T
        gWh = None
        if Wh.requires_grad:
            h_prev = _previous(self.hs, h0.data, self.reverse)
            gWh = _rows(h_prev).T @ _rows(d_all)
        zeros = xp.zeros(h0.shape, dtype=Wh.dtype)
        return (
            constant(d_all.transpose(1, 0, 2)) if xw.requires_grad else None,
            constant(zeros if rec is None else rec) if h0.requires_grad else None,
            constant(gWh) if gWh is not None else None,
        )

    def to_onnx(self, g, xw, h0, Wh):
        return _onnx_recurrence(g, "RNN", self, xw, [(h0, self.inputs[1])], Wh, order=[0])


def rnn_sequence(xw, h0, Wh, reverse: bool = False) -> tuple[Variable, Variable]:
    """Run an Elman RNN over T steps in one op: returns (y, h_T).

    xw: (N, T, H) = x_t Wx + b for every step; h0: (N, H) or None; Wh: (H, H) -> y: (N, T, H),
    h_T: (N, H). First-order gradients only.
    """
    h0 = _state_or_zeros(h0, xw, Wh.shape[0], Wh.dtype)
    return tuple(RNNSequence(reverse)(xw, h0, Wh))

