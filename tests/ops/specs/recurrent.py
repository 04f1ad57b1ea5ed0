"""Specs of the fused recurrent ops (zerograd.ops.recurrent) with NumPy references."""

import numpy as np

from tests.ops.harness import OpSpec
from zerograd.ops import recurrent as R


def _sigmoid(a):
    return 1 / (1 + np.exp(-a))


def np_lstm_cell(x, h, c, Wx, Wh, b):
    f, i, o, u = np.split(x @ Wx + h @ Wh + b, 4, axis=1)
    c_new = _sigmoid(f) * c + _sigmoid(i) * np.tanh(u)
    return _sigmoid(o) * np.tanh(c_new), c_new


def np_gru_cell(x, h, Wx, Wh, bx, bh):
    xr, xz, xn = np.split(x @ Wx + bx, 3, axis=1)
    hr, hz, hn = np.split(h @ Wh + bh, 3, axis=1)
    r, z = _sigmoid(xr + hr), _sigmoid(xz + hz)
    n = np.tanh(xn + r * hn)
    return (1 - z) * n + z * h


def np_rnn_cell(x, h, Wx, Wh, b):
    return np.tanh(x @ Wx + h @ Wh + b)


def _order(T, reverse):
    return range(T - 1, -1, -1) if reverse else range(T)


def np_lstm_sequence(xw, h, c, Wh, b=0.0, reverse=False):
    ys = [None] * xw.shape[1]
    for t in _order(xw.shape[1], reverse):
        f, i, o, u = np.split(xw[:, t] + h @ Wh + b, 4, axis=1)
        c = _sigmoid(f) * c + _sigmoid(i) * np.tanh(u)
        ys[t] = h = _sigmoid(o) * np.tanh(c)
    return np.stack(ys, axis=1), h, c


def np_gru_sequence(xw, h, Wh, bh, reverse=False):
    ys = [None] * xw.shape[1]
    H = h.shape[1]
    for t in _order(xw.shape[1], reverse):
        # x Wx + bx is xw[:, t]: feed it through np_gru_cell with an identity input weight.
        gx = xw[:, t]
        ys[t] = h = np_gru_cell(gx, h, np.eye(3 * H), Wh, np.zeros(3 * H), bh)
    return np.stack(ys, axis=1), h


def np_rnn_sequence(xw, h, Wh, reverse=False):
    ys = [None] * xw.shape[1]
    for t in _order(xw.shape[1], reverse):
        ys[t] = h = np.tanh(xw[:, t] + h @ Wh)
    return np.stack(ys, axis=1), h


def _small(scale):
    """Inputs drawn from N(0, scale^2): gates stay away from saturation, gradients are O(1)."""
    def make(rng, shapes, dtype):
        return [(rng.standard_normal(s) * scale).astype(dtype) for s in shapes]
    return make


N, D, H, T = 2, 3, 4, 3
def fused_blocks(*parts):
    """fused_weights of the parts as blocks 0, 2 and 3 of four (block 1 is left out, like a
    gate without a bias): the parts are first made views of one fused array, as the
    recurrent layers keep them, so the op sees what it is built for."""
    width = parts[0].shape[-1]
    fused = np.full(parts[0].shape[:-1] + (4 * width,), 7.0, dtype=parts[0].dtype)
    for part, position in zip(parts, (0, 2, 3)):
        fused[..., position * width:(position + 1) * width] = part.data
        part.data = fused[..., position * width:(position + 1) * width]
    (y,) = R.fused_weights([(fused, (0, 2, 3))], 4, *parts)
    return y


def np_fused_blocks(a, b, c):
    return np.concatenate([a, np.full(a.shape, 7.0, a.dtype), b, c], axis=-1)


def blocks_with_an_axis(rng, shapes, dtype):
    if any(len(s) == 0 for s in shapes):
        raise ValueError("fused_weights: blocks are cut along the last axis; 0-d has none")
    return [rng.uniform(-1, 1, s).astype(dtype) for s in shapes]


SPECS = [
    OpSpec("fused_weights", fused_blocks, np_fused_blocks,
           shapes=[((3, 2), (3, 2), (3, 2)), ((2,), (2,), (2,))],
           make_inputs=blocks_with_an_axis, zero_d=False),
    OpSpec("lstm_cell", R.lstm_cell, np_lstm_cell,
           shapes=[((N, D), (N, H), (N, H), (D, 4 * H), (H, 4 * H), (4 * H,)),
                   ((1, 1), (1, 2), (1, 2), (1, 8), (2, 8), (8,))],
           make_inputs=_small(0.7), zero_d=False),
    OpSpec("gru_cell", R.gru_cell, np_gru_cell,
           shapes=[((N, D), (N, H), (D, 3 * H), (H, 3 * H), (3 * H,), (3 * H,))],
           make_inputs=_small(0.7), zero_d=False),
    OpSpec("rnn_cell", R.rnn_cell, np_rnn_cell,
           shapes=[((N, D), (N, H), (D, H), (H, H), (H,))], make_inputs=_small(0.7), zero_d=False),
    OpSpec("lstm_sequence", R.lstm_sequence, np_lstm_sequence,
           shapes=[((N, T, 4 * H), (N, H), (N, H), (H, 4 * H))], make_inputs=_small(0.7),
           double_backward=False, zero_d=False),
    OpSpec("lstm_sequence_reverse", R.lstm_sequence, np_lstm_sequence, kwargs={"reverse": True},
           shapes=[((N, T, 4 * H), (N, H), (N, H), (H, 4 * H))], make_inputs=_small(0.7),
           double_backward=False, zero_d=False),
    OpSpec("lstm_sequence_bias", R.lstm_sequence, np_lstm_sequence,
           shapes=[((N, T, 4 * H), (N, H), (N, H), (H, 4 * H), (4 * H,)),
                   ((1, 1, 8), (1, 2), (1, 2), (2, 8), (8,))], make_inputs=_small(0.7),
           double_backward=False, zero_d=False),
    OpSpec("lstm_sequence_bias_reverse", R.lstm_sequence, np_lstm_sequence,
           kwargs={"reverse": True},
           shapes=[((N, T, 4 * H), (N, H), (N, H), (H, 4 * H), (4 * H,))],
           make_inputs=_small(0.7), double_backward=False, zero_d=False),
    OpSpec("gru_sequence", R.gru_sequence, np_gru_sequence,
           shapes=[((N, T, 3 * H), (N, H), (H, 3 * H), (3 * H,))], make_inputs=_small(0.7),
           double_backward=False, zero_d=False),
    OpSpec("gru_sequence_reverse", R.gru_sequence, np_gru_sequence, kwargs={"reverse": True},
           shapes=[((N, T, 3 * H), (N, H), (H, 3 * H), (3 * H,))], make_inputs=_small(0.7),
           double_backward=False, zero_d=False),
    OpSpec("rnn_sequence", R.rnn_sequence, np_rnn_sequence,
           shapes=[((N, T, H), (N, H), (H, H))], make_inputs=_small(0.7),
           double_backward=False, zero_d=False),
    OpSpec("rnn_sequence_reverse", R.rnn_sequence, np_rnn_sequence, kwargs={"reverse": True},
           shapes=[((N, T, H), (N, H), (H, H))], make_inputs=_small(0.7),
           double_backward=False, zero_d=False),
]
