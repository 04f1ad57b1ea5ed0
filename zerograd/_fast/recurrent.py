"""The LSTM cell's elementwise part as compiled loops (numba), beside ``ops/recurrent.py``.

At batch 1 an LSTM step's gate arithmetic is a dozen NumPy calls on arrays of a few hundred
elements: the calls, not the arithmetic, cost the time. Here it is one call each way.
Contracts are those of ops/recurrent.py's ``_lstm_step`` and ``_lstm_step_grad``; gate
order (f, i, o, u), sigmoid for f, i, o and tanh for u.

Values: the backward does the NumPy path's multiplications and additions in its order
(bitwise equal); the forward uses libm's exp and tanh where NumPy uses its own SIMD ones, so
it agrees to a few units in the last place.
"""

from __future__ import annotations

import math

import numpy as np

from zerograd._fast._numba import kernel

__all__ = ["lstm_step", "lstm_step_grad"]


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
