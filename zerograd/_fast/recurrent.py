"""The recurrent ops' elementwise parts as compiled loops (numba), beside ``ops/recurrent.py``.

At batch 1 an LSTM step's gate arithmetic is a dozen NumPy calls on arrays of a few hundred
elements: the calls, not the arithmetic, cost the time. Here it is one call each way.
Contracts are those of ops/recurrent.py's ``_lstm_step`` and ``_lstm_step_grad``; gate
order (f, i, o, u), sigmoid for f, i, o and tanh for u.

Values: the backward does the NumPy path's multiplications and additions in its order
(bitwise equal); the forward uses libm's exp and tanh where NumPy uses its own SIMD ones, so
it agrees to a few units in the last place.

The whole-sequence ops have their own loops: :func:`lstm_sequence_forward` and
:func:`lstm_sequence_backward` (``LSTMSequence``), :func:`gru_sequence_forward` and
:func:`gru_sequence_backward` (``GRUSequence``). At (N, H) = (32, 128) a step's elementwise
work is a few thousand elements, where a scalar libm exp or tanh costs 5-10x NumPy's SIMD
one. In float64 (and in the GRU's loops) NumPy keeps the exp and the tanh calls and the
compiled loops do everything between them (the input projection's add, the sigmoid's +1
and reciprocal, the cell update, the whole step gradient): those forwards are bitwise the
NumPy path's, and so is the GRU's backward, which computes the NumPy path's factors in its
order. In float32 the LSTM's forward step after its product is one compiled call with a
sigmoid and a tanh of its own that LLVM vectorises (``_lstm_step_f32``): within 3 ulp of
the exactly rounded values, a few ulp from NumPy's; it took 14.7 -> 10.4 ms off a
(32, 64, 128) forward on an AVX2-only CPU, where NumPy's float32 exp and tanh are slow
(docs/performance.md). The backward reads whatever activations the forward saved, so it is
the step kernel's arithmetic either way.
"""

from __future__ import annotations

import math

import numpy as np

from zerograd._fast._numba import kernel
from zerograd._fast.elementwise import _exp_constants, _exp_nonpositive, _muladd

__all__ = ["lstm_step", "lstm_step_grad", "outer_row", "lstm_sequence_forward",
           "lstm_sequence_backward", "gru_sequence_forward", "gru_sequence_backward"]


@kernel
def _lstm_forward(gates, c_prev, one, h, c, tanh_c):
    N, G = gates.shape
    H = G // 4
    for n in range(N):
        for k in range(3 * H):  # f, i, o: sigmoid, as 1 / (1 + e^-a) (inf -> 0 is right)
            gates[n, k] = one / (one + math.exp(-gates[n, k]))
        for k in range(3 * H, G):
            gates[n, k] = math.tanh(gates[n, k])
        for k in range(H):
            value = gates[n, k] * c_prev[n, k]
            value += gates[n, H + k] * gates[n, 3 * H + k]
            c[n, k] = value
            t = math.tanh(value)
            tanh_c[n, k] = t
            h[n, k] = gates[n, 2 * H + k] * t


def lstm_step(gates, c_prev):
    """Activate ``gates`` (N, 4H pre-activations, overwritten with f, i, o, u) and update the
    cell: returns (h, c, tanh(c)), each (N, H)."""
    if gates.dtype not in (np.float32, np.float64) or c_prev.dtype != gates.dtype:
        raise TypeError(f"zerograd._fast.lstm_step: gates and c_prev must be float32 or "
                        f"float64 of one dtype, got {gates.dtype} {gates.shape} and "
                        f"{c_prev.dtype} {c_prev.shape}")
    N, H = gates.shape[0], gates.shape[1] // 4
    h, c, tanh_c = (np.empty((N, H), dtype=gates.dtype) for _ in range(3))
    _lstm_forward(gates, np.ascontiguousarray(c_prev), gates.dtype.type(1), h, c, tanh_c)
    return h, c, tanh_c


@kernel
def _lstm_backward(act, c_prev, tanh_c, gh, gc, has_gh, has_gc, one, d, gc_prev):
    N, G = act.shape
    H = G // 4
    for n in range(N):
        for k in range(H):
            f = act[n, k]
            i = act[n, H + k]
            o = act[n, 2 * H + k]
            u = act[n, 3 * H + k]
            t = tanh_c[n, k]
            if has_gh:
                g = gh[n, k]
                d_o = g * t
                gct = ((one - t * t) * o) * g
                if has_gc:
                    gct += gc[n, k]
            else:
                d_o = t - t  # dL/do = 0 (t is finite)
                gct = gc[n, k]
            # Through the activations: sigmoid' = (1 - s) s, tanh' = 1 - u^2.
            d[n, k] = (gct * c_prev[n, k]) * ((one - f) * f)
            d[n, H + k] = (gct * u) * ((one - i) * i)
            d[n, 2 * H + k] = d_o * ((one - o) * o)
            d[n, 3 * H + k] = (gct * i) * (one - u * u)
            gc_prev[n, k] = gct * f


def lstm_step_grad(act, c_prev, tanh_c, gh, gc, out=None):
    """(d, dL/dc_prev): the pre-activation gradients (N, 4H) of one step and the cell
    state's gradient, from the activations ``act`` (f, i, o, u) and tanh(c); ``gh``, ``gc``
    (dL/dh, dL/dc) may be None (zero), not both. ``out``: an (N, 4H) array of act's dtype,
    any strides, to write d into (the sequence op's slice of every step's gradients)."""
    if gh is None and gc is None:
        raise ValueError("zerograd._fast.lstm_step_grad: gh and gc cannot both be None")
    dtype = act.dtype
    N, H = act.shape[0], act.shape[1] // 4
    if out is not None and (out.shape != act.shape or out.dtype != dtype):
        raise ValueError(f"zerograd._fast.lstm_step_grad: out must be {dtype} {act.shape} "
                         f"like act, got {out.dtype} {out.shape}")
    empty = np.zeros((N, H), dtype=dtype)
    d = np.empty_like(act) if out is None else out
    gc_prev = np.empty((N, H), dtype=dtype)
    _lstm_backward(act, np.ascontiguousarray(c_prev), tanh_c,
                   empty if gh is None else np.ascontiguousarray(gh, dtype=dtype),
                   empty if gc is None else np.ascontiguousarray(gc, dtype=dtype),
                   gh is not None, gc is not None, dtype.type(1), d, gc_prev)
    return d, gc_prev


@kernel
def _outer_row(a, b, out):
    for i in range(a.shape[0]):
        a_i = a[i]
        for j in range(b.shape[0]):
            out[i, j] = a_i * b[j]


def outer_row(a, b, out):
    """``out`` (K, G) = a^T b for a (1, K) and b (1, G), any strides: the weight gradient
    of one step at batch 1, where NumPy's broadcast product ``a.T * b`` makes an inner loop
    per row (at (100, 400) float32: 1.8 against 7.5 us; the products are the same ones, so
    the values are bitwise NumPy's). Returns ``out``."""
    if not (a.dtype == b.dtype == out.dtype) or a.dtype not in (np.float32, np.float64):
        raise TypeError(f"zerograd._fast.outer_row: a, b and out must be float32 or float64 "
                        f"of one dtype, got {a.dtype}, {b.dtype} and {out.dtype}")
    if a.shape[0] != 1 or b.shape[0] != 1 or out.shape != (a.shape[1], b.shape[1]):
        raise ValueError(f"zerograd._fast.outer_row: expected a (1, K), b (1, G) and out "
                         f"(K, G), got {a.shape}, {b.shape} and {out.shape}")
    _outer_row(a[0], b[0], out)
    return out


# -- the whole-sequence op: loops over one step's (N, 4H) block, called once a step ---------
# Time-major arrays (act, cs, tanh_c: (T, N, .)) are indexed [t, n, k], batch-major ones (xw,
# gy, d: (N, T, .)) [n, t, k]: one compiled signature per dtype, no slicing in Python.
@kernel
def _gates_in(act, xw, b, t):
    """act[t] = (act[t] + xw[:, t]) + b, the sigmoid gates' block negated (NumPy's exp then
    gives e^-a)."""
    N, G = act.shape[1], act.shape[2]
    H = G // 4
    for n in range(N):
        a = act[t, n]
        x = xw[n, t]
        for k in range(3 * H):
            a[k] = -((a[k] + x[k]) + b[k])
        for k in range(3 * H, G):
            a[k] = (a[k] + x[k]) + b[k]


@kernel
def _cell_update(act, c_prev, cs, t, one):
    """f, i, o <- 1 / (1 + e^-a) from act[t]'s e^-a; cs[t] = f c_prev + i u (u: tanh'd)."""
    N, G = act.shape[1], act.shape[2]
    H = G // 4
    for n in range(N):
        a = act[t, n]
        for k in range(3 * H):
            a[k] = one / (a[k] + one)
        c = cs[t, n]
        p = c_prev[n]
        for k in range(H):
            value = a[k] * p[k]
            value += a[H + k] * a[3 * H + k]
            c[k] = value


# -- float32: a whole step's elementwise work in one vectorised loop ---------------------------
# NumPy's float32 exp and tanh cost 3.8 and 7.4 ns an element on an AVX2-only CPU (the AMD
# machine of docs/performance.md), most of a (32, 128) step. These are written out so that
# LLVM vectorises the loops they sit in (numba has no vector math library): e^a for a <= 0
# from _fast/elementwise.py, the sigmoid and tanh from it for any sign. Against the exactly
# rounded values: sigmoid and tanh within 3 ulp, 99% of values within 1 (NumPy's: 3 and 1),
# checked densely in tests/fast/test_recurrent.py. The polynomials use fused multiply-adds
# where the CPU has them (``_muladd``): the step work of a (32, 64, 128) forward, 5.2 -> 4.3 ms.
_E32 = _exp_constants(np.dtype(np.float32))
_F = np.float32
# tanh's odd Taylor coefficients up to x^11, for |x| < 1/4 (the next term is below 3e-10
# of x there), where (1 - e) / (1 + e) would cancel.
_T3, _T5, _T7, _T9, _T11 = (_F(-1 / 3), _F(2 / 15), _F(-17 / 315), _F(62 / 2835),
                            _F(-1382 / 155925))


@kernel
def _exp_f32(a):
    return _exp_nonpositive(a, _E32[0], _E32[1], _E32[2], _E32[3], _E32[4], _E32[5])


@kernel
def _sigmoid_f32(v):
    """1 / (1 + e^-v) from e = e^-|v| (no overflow): 1 / (1 + e) for v >= 0, e / (1 + e)
    below (0 for v < -87.3, where the NumPy path gives a subnormal)."""
    e = _exp_f32(-abs(v))
    s = _F(1) / (_F(1) + e)
    return s if v >= _F(0) else e * s


@kernel
def _tanh_f32(v):
    """(1 - e) / (1 + e), e = e^-2|v|, with v's sign; the Taylor polynomial below 1/4."""
    a = abs(v)
    e = _exp_f32(_F(-2) * a)
    t = (_F(1) - e) / (_F(1) + e)
    a2 = a * a
    poly = _muladd(_muladd(_muladd(_muladd(_T11, a2, _T9), a2, _T7), a2, _T5), a2, _T3)
    small = _muladd(a * a2, poly, a)  # a (1 + a^2 poly), rounded once at the end
    return math.copysign(small if a < _F(0.25) else t, v)  # -0.0 stays -0.0


@kernel
def _lstm_step_f32(act, xw, b, c_prev, cs, tanh_c, hs, t):
    """A forward step after its product (in act[t]): the gates f, i, o = sigmoid and
    u = tanh of (act[t] + xw[:, t]) + b, c = f c_prev + i u, tanh(c), h = o tanh(c), each written
    where the NumPy loop writes it. The additions and products are the NumPy path's in its
    order; only the sigmoids and tanhs are computed differently."""
    N, G = act.shape[1], act.shape[2]
    H = G // 4
    for n in range(N):
        # Each loop runs from 0 over views of its own blocks: a loop over a[3H:4H] indexed
        # from 3H ran 3.6x slower (LLVM left it scalar), and one loop touching all five
        # arrays of the cell update is not vectorised either.
        s = act[t, n, :3 * H]
        x = xw[n, t]
        for k in range(3 * H):
            s[k] = _sigmoid_f32((s[k] + x[k]) + b[k])
        u = act[t, n, 3 * H:]
        xu = xw[n, t, 3 * H:]
        bu = b[3 * H:]
        for k in range(H):
            u[k] = _tanh_f32((u[k] + xu[k]) + bu[k])
        f, i, o = s[:H], s[H:2 * H], s[2 * H:]
        c = cs[t, n]
        p = c_prev[n]
        for k in range(H):
            value = f[k] * p[k]
            value += i[k] * u[k]
            c[k] = value
        th = tanh_c[t, n]
        for k in range(H):
            th[k] = _tanh_f32(c[k])
        h = hs[t, n]
        for k in range(H):
            h[k] = o[k] * th[k]


def lstm_sequence_forward(xw, h0, c0, Wh, b, order, act, cs, tanh_c, hs):
    """``LSTMSequence``'s forward loop: fills act (the activations f, i, o, u), cs (c),
    tanh_c and hs, each (T, N, .), for the steps in ``order`` (a range); returns (h, c) of
    the last step. xw: (N, T, 4H), any strides; h0, c0: (N, H); Wh: (H, 4H); b: (4H,); one
    float dtype throughout (the caller checked it: ``zerograd._fast.use``).

    A float32 step: the product h Wh (NumPy, into act[t]) and ``_lstm_step_f32``, two calls
    where the NumPy path makes eleven; values a few ulp from the NumPy path's (its own
    sigmoid and tanh). Another dtype: the product, ``_gates_in``, NumPy's exp over the
    sigmoid block and tanh over u, ``_cell_update``, NumPy's tanh of c and the product o
    tanh(c), five calls of NumPy's plus two compiled ones, every value the NumPy path's,
    bitwise (the same operations in the same order)."""
    H = Wh.shape[0]
    xw = np.ascontiguousarray(xw)
    b = np.ascontiguousarray(b)
    one = act.dtype.type(1)
    h, c = h0, np.ascontiguousarray(c0)
    if act.dtype == np.float32:
        for t in order:
            np.matmul(h, Wh, out=act[t])
            _lstm_step_f32(act, xw, b, c, cs, tanh_c, hs, t)
            c, h = cs[t], hs[t]
        return h, c
    # e^-a overflows to inf for a < -88: 1 / (1 + inf) = 0 is the correctly rounded sigmoid
    # there, so the warning is silenced (as on the NumPy path).
    with np.errstate(over="ignore"):
        for t in order:
            a = np.matmul(h, Wh, out=act[t])
            _gates_in(act, xw, b, t)
            s = a[:, :3 * H]
            np.exp(s, out=s)
            u = a[:, 3 * H:]
            np.tanh(u, out=u)
            _cell_update(act, c, cs, t, one)
            c = cs[t]
            h = np.multiply(a[:, 2 * H:3 * H], np.tanh(c, out=tanh_c[t]), out=hs[t])
    return h, c


@kernel
def _step_grad(act, c_prev, tanh_c, t, gy, has_gy, gh, gc, one, d):
    """One step's dL/da into d[:, t], from act[t], c_prev (N, H), tanh_c[t]; gh (dL/dh,
    gy[:, t] added in place when has_gy) and gc (dL/dc, overwritten with dL/dc_prev).

    The arithmetic of ``_lstm_backward`` in its order; the loops are split by gate so that
    each reads few arrays (LLVM vectorises them; one loop over all four gates is not)."""
    N, G = act.shape[1], act.shape[2]
    H = G // 4
    for n in range(N):
        a = act[t, n]
        dn = d[n, t]
        th = tanh_c[t, n]
        g = gh[n]
        gct = gc[n]
        p = c_prev[n]
        if has_gy:
            y = gy[n, t]
            for k in range(H):
                g[k] = g[k] + y[k]
        for k in range(H):  # the output gate; gct = ((1 - tanh(c)^2) o) gh + gc
            o = a[2 * H + k]
            dn[2 * H + k] = (g[k] * th[k]) * ((one - o) * o)
            gct[k] = ((one - th[k] * th[k]) * o) * g[k] + gct[k]
        for k in range(H):
            f = a[k]
            dn[k] = (gct[k] * p[k]) * ((one - f) * f)
        for k in range(H):
            i = a[H + k]
            u = a[3 * H + k]
            dn[H + k] = (gct[k] * u) * ((one - i) * i)
            dn[3 * H + k] = (gct[k] * i) * (one - u * u)
        for k in range(H):
            gct[k] = gct[k] * a[k]


def lstm_sequence_backward(act, cs, tanh_c, c0, Wh_T, gy, gh, gc, order, d):
    """``LSTMSequence``'s backward loop: every step's dL/da into d (N, T, 4H), from the
    forward's act, cs, tanh_c (T, N, .) and c0; returns (dL/dh0, dL/dc0).

    gy: dL/dy (N, T, H), any strides, or None; gh, gc: dL/dh_T, dL/dc_T (N, H) or None
    (zero); neither is written. Wh_T: Wh^T, (4H, H). ``order``: the forward's steps (a
    range), run backwards here. A step is one compiled call and the product dL/da Wh^T,
    written into the dL/dh buffer that the next step's call reads."""
    T, N, G = act.shape
    dtype = act.dtype
    gh = np.zeros((N, G // 4), dtype=dtype) if gh is None else np.array(gh, dtype=dtype)
    gc = np.zeros((N, G // 4), dtype=dtype) if gc is None else np.array(gc, dtype=dtype)
    has_gy = gy is not None
    gy = gh[:, None] if gy is None else gy  # any 3-d array of the dtype (not read)
    c0 = np.ascontiguousarray(c0)
    one = dtype.type(1)
    steps = list(order)
    for j in range(len(steps) - 1, -1, -1):
        t = steps[j]
        c_prev = c0 if j == 0 else cs[steps[j - 1]]
        _step_grad(act, c_prev, tanh_c, t, gy, has_gy, gh, gc, one, d)
        np.matmul(d[:, t], Wh_T, out=gh)
    return gh, gc


# -- GRUSequence: gates (r, z, n), PyTorch's formulation (ops/recurrent.py) ------------------
@kernel
def _gru_gates_in(hw, bh, xw, t, rz, hn):
    """rz[t] = -(xw[:, t] + (h Wh + bh)) for r, z (negated for NumPy's exp); hn[t] = the n
    gate's h Wh + bh. hw: this step's h Wh (N, 3H)."""
    N, G = hw.shape
    H = G // 3
    for n in range(N):
        a = hw[n]
        x = xw[n, t]
        out = rz[t, n]
        for k in range(2 * H):
            out[k] = -(x[k] + (a[k] + bh[k]))
        keep = hn[t, n]
        for k in range(H):
            keep[k] = a[2 * H + k] + bh[2 * H + k]


@kernel
def _gru_candidate_in(rz, hn, xw, t, one, n_all):
    """r, z <- 1 / (1 + e^-a) from rz[t]'s e^-a; n_all[t] = r hn + the n gate's xw (the
    candidate before its tanh)."""
    N, G2 = rz.shape[1], rz.shape[2]
    H = G2 // 2
    for n in range(N):
        s = rz[t, n]
        for k in range(2 * H):
            s[k] = one / (s[k] + one)
        x = xw[n, t]
        h = hn[t, n]
        out = n_all[t, n]
        for k in range(H):
            out[k] = s[k] * h[k] + x[2 * H + k]


@kernel
def _gru_state(h_prev, n_all, rz, t, hs):
    """hs[t] = (h_prev - n) z + n."""
    N, H = h_prev.shape
    for n in range(N):
        c = n_all[t, n]
        z = rz[t, n]
        p = h_prev[n]
        out = hs[t, n]
        for k in range(H):
            out[k] = (p[k] - c[k]) * z[H + k] + c[k]


def gru_sequence_forward(xw, h0, Wh, bh, order, rz, n_all, hn, hs):
    """``GRUSequence``'s forward loop: fills rz (the activations r, z), n_all (the candidate
    n), hn (h Wh + bh of the n gate) and hs, each (T, N, .), for the steps in ``order``;
    returns h of the last step. xw: (N, T, 3H), any strides; h0: (N, H); Wh: (H, 3H); bh:
    (3H,); one float dtype throughout (the caller checked it).

    A step: the product h Wh, ``_gru_gates_in``, NumPy's exp over r and z,
    ``_gru_candidate_in``, NumPy's tanh of n, ``_gru_state``: six calls where the NumPy path
    makes thirteen, and bitwise its values."""
    N, G = xw.shape[0], xw.shape[2]
    xw = np.ascontiguousarray(xw)
    bh = np.ascontiguousarray(bh)
    hw = np.empty((N, G), dtype=rz.dtype)
    one = rz.dtype.type(1)
    h = np.ascontiguousarray(h0)
    with np.errstate(over="ignore"):  # e^-a = inf: sigmoid 0, correctly rounded
        for t in order:
            np.matmul(h, Wh, out=hw)
            _gru_gates_in(hw, bh, xw, t, rz, hn)
            np.exp(rz[t], out=rz[t])
            _gru_candidate_in(rz, hn, xw, t, one, n_all)
            np.tanh(n_all[t], out=n_all[t])
            _gru_state(h, n_all, rz, t, hs)
            h = hs[t]
    return h


@kernel
def _gru_step_grad(rz, n_all, hn, h_prev, t, gy, has_gy, rec, gz, one, dgx, dhw):
    """One step's gradients: g = (rec + gz) + gy[:, t] (rec: the previous step's dL/da Wh^T
    or dL/dh_T, gz: its g z), then dgx[t] = dL/d(xw's gates), dhw[t] = dL/d(h Wh + bh),
    and gz <- g z for the next step. The NumPy path's factors, in its order."""
    N, G2 = rz.shape[1], rz.shape[2]
    H = G2 // 2
    for n in range(N):
        s = rz[t, n]
        c = n_all[t, n]
        w = hn[t, n]
        p = h_prev[n]
        a = rec[n]
        b = gz[n]
        x = dgx[t, n]
        d = dhw[t, n]
        if has_gy:
            y = gy[n, t]
            for k in range(H):
                a[k] = (a[k] + b[k]) + y[k]
        else:
            for k in range(H):
                a[k] = a[k] + b[k]
        for k in range(H):  # g is now in a
            r = s[k]
            z = s[H + k]
            dn = a[k] * ((one - z) * (one - c[k] * c[k]))
            x[2 * H + k] = dn
            x[k] = dn * ((r * (one - r)) * w[k])
            x[H + k] = a[k] * ((p[k] - c[k]) * (z * (one - z)))
            d[k] = x[k]
            d[H + k] = x[H + k]
            d[2 * H + k] = dn * r
            b[k] = a[k] * z


def gru_sequence_backward(rz, n_all, hn, hs, h0, Wh_T, gy, gh, order, dgx, dhw):
    """``GRUSequence``'s backward loop: every step's dL/d(xw) into dgx and dL/d(h Wh + bh)
    into dhw (both (T, N, 3H)), from the forward's rz, n_all, hn, hs and h0; returns dL/dh0.
    gy: dL/dy (N, T, H), any strides, or None; gh: dL/dh_T or None (zero), not written."""
    T, N, G2 = rz.shape
    H = G2 // 2
    dtype = rz.dtype
    rec = np.zeros((N, H), dtype=dtype) if gh is None else np.array(gh, dtype=dtype)
    gz = np.zeros((N, H), dtype=dtype)
    has_gy = gy is not None
    gy = rec[:, None] if gy is None else gy  # any 3-d array of the dtype (not read)
    h0 = np.ascontiguousarray(h0)
    one = dtype.type(1)
    steps = list(order)
    for j in range(len(steps) - 1, -1, -1):
        t = steps[j]
        h_prev = h0 if j == 0 else hs[steps[j - 1]]
        _gru_step_grad(rz, n_all, hn, h_prev, t, gy, has_gy, rec, gz, one, dgx, dhw)
        np.matmul(dhw[t], Wh_T, out=rec)
    rec += gz
    return rec
