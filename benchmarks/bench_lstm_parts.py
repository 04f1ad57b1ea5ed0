"""Where a whole-sequence LSTM's time goes: its matrix products against torch, and the op.

    python benchmarks/bench_lstm_parts.py products   # ~25 s; sets 1 and 2 threads itself
    OPENBLAS_NUM_THREADS=1 NUMBA_NUM_THREADS=1 python benchmarks/bench_lstm_parts.py op
    OPENBLAS_NUM_THREADS=1 NUMBA_NUM_THREADS=1 python benchmarks/bench_lstm_parts.py sizes

bench_lstm.py's second row (``LSTMSeq(128)`` over a (32, 64, 32) float32 batch, forward +
backward) measured in pieces, in one process:

- ``products``: every matrix product that zerograd's LSTMSeq layer computes, shaped and laid
  out as it computes them (the per-step recurrent product, the backward's ``dL/da @ Wh^T``,
  the Wh gradient over all steps, the input projection and its two gradients), each timed
  with NumPy and with ``torch.mm`` on the same arrays, on 1 and 2 BLAS threads, next to
  ``torch.nn.LSTM``'s whole forward + backward. Three clocks: CPU time of the main thread
  (``time.thread_time``; it leaves out the helper thread's work on 2 threads), and wall time
  on 1 and 2 threads. Best of several interleaved rounds; the machine's other load is
  printed (``_common.CpuLoad``).
- ``op``: ``LSTMSequence`` forward + backward alone, the current code against the code before
  the compiled cell update (kept below as ``_OldLSTMSequence``, a copy of it), interleaved,
  with the kernels and on the NumPy path; ``GRUSequence`` with its loops and on its NumPy
  path (its code before the loops); CPU time of the main thread.
- ``sizes``: both ops' forward and backward, kernels vs NumPy path, at several (N, H) (the
  thresholds' measurements).

Threads are set with threadpoolctl (NumPy) and ``torch.set_num_threads``.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._common import CpuLoad, load_torch  # noqa: E402
from zerograd.ops import recurrent as R  # noqa: E402
from zerograd.ops.recurrent import (  # noqa: E402
    _check,
    _data,
    _lstm_sequence_step_grad,
    _previous,
    _time_order,
    constant,
    fast,
    get_array_module,
)

N, T, D, H = 32, 64, 32, 128
G = 4 * H


def _best(fn, reps: int, rounds: int, clock) -> float:
    """Lowest mean time of ``reps`` calls over ``rounds`` rounds, in seconds, on ``clock``."""
    best = float("inf")
    for _ in range(rounds):
        start = clock()
        for _ in range(reps):
            fn()
        best = min(best, (clock() - start) / reps)
    return best


def product_shapes(rng):
    """(name, calls per fwd+bwd, in the layer's sum, a, b): the products of LSTMSeq's
    fwd+bwd as zerograd lays out their operands (time-major saved states, batch-major dL/da),
    and the alternatives tried. The layer's input is data, so no dL/dx is computed."""
    f32 = np.float32
    h = rng.standard_normal((N, H)).astype(f32)
    Wh = rng.standard_normal((H, G)).astype(f32)
    Wh_T = np.ascontiguousarray(Wh.T)
    d = rng.standard_normal((N, G)).astype(f32)
    hs = rng.standard_normal((T, N, H)).astype(f32)  # time-major saved h
    d_all = rng.standard_normal((N, T, G)).astype(f32)  # batch-major dL/da
    x = rng.standard_normal((N, T, D)).astype(f32)
    Wx = rng.standard_normal((D, G)).astype(f32)
    h_prev = hs.transpose(1, 0, 2).reshape(-1, H)  # the Wh gradient's (N*T, H) operand (a copy)
    return [
        ("step h @ Wh (32x128 @ 128x512)", T, True, h, Wh),
        ("step h @ Wh, Wh column-major", T, False, h, Wh_T.T),
        ("step dL/da @ Wh^T, Wh^T copied", T, True, d, Wh_T),
        ("step dL/da @ Wh.T (a view)", T, False, d, Wh.T),
        ("step dL/da[:, t] @ Wh^T (rows T*4H apart)", T, False, d_all[:, 3], Wh_T),
        ("gWh: h_prev^T @ dL/da, all steps", 1, True, h_prev.T, d_all.reshape(-1, G)),
        ("gWh, time-major hs, dL/da copied", 1, False, hs.reshape(-1, H).T,
         np.ascontiguousarray(d_all.transpose(1, 0, 2)).reshape(-1, G)),
        ("x @ Wx as (N, T, D) @ (D, 4H)", 1, True, x, Wx),
        ("x @ Wx, (N*T, D) as one matrix", 1, False, x.reshape(-1, D), Wx),
        ("gWx = x^T @ dL/da", 1, True, x.reshape(-1, D).T, d_all.reshape(-1, G)),
        ("gx = dL/da @ Wx^T (a deeper layer's)", 1, False, d_all.reshape(-1, G), Wx.T),
    ]


def products(torch, rounds: int) -> None:
    from threadpoolctl import threadpool_limits

    rng = np.random.default_rng(0)
    shapes = product_shapes(rng)
    lstm = torch.nn.LSTM(D, H, batch_first=True)
    xt = torch.from_numpy(rng.standard_normal((N, T, D)).astype(np.float32))

    def torch_lstm():
        lstm.zero_grad()
        lstm(xt)[0].sum().backward()

    load = CpuLoad()
    rows: dict = {}
    for threads in (1, 2):
        torch.set_num_threads(threads)
        with threadpool_limits(threads, user_api="blas"):
            for name, calls, counted, a, b in shapes:
                ta, tb = torch.from_numpy(np.asarray(a)), torch.from_numpy(np.asarray(b))
                mm = torch.matmul if ta.dim() == 3 else torch.mm

                def tfn(ta=ta, tb=tb, mm=mm):
                    return mm(ta, tb)

                def nfn(a=a, b=b):
                    return a @ b

                reps = 50 if calls > 1 else 3
                for which, fn in (("numpy", nfn), ("torch", tfn)):
                    fn()
                    cpu = _best(fn, reps, rounds, time.thread_time)
                    wall = _best(fn, reps, rounds, time.perf_counter)
                    rows.setdefault((name, which, counted), {})[threads] = (cpu * calls,
                                                                            wall * calls)
            torch_lstm()
            cpu = _best(torch_lstm, 3, rounds, time.thread_time)
            wall = _best(torch_lstm, 3, rounds, time.perf_counter)
            rows.setdefault(("torch.nn.LSTM fwd+bwd, whole", "torch", False), {})[threads] = (
                cpu, wall)
    for which in ("numpy", "torch"):  # the layer's products alone
        rows[(f"sum of the layer's products ({which})", which, False)] = {
            threads: tuple(sum(v[threads][k] for (_, w, counted), v in rows.items()
                               if counted and w == which) for k in (0, 1))
            for threads in (1, 2)}
    other = load.other()
    print(f"ms per fwd+bwd (a per-step product times its {T} calls); best of {rounds}; "
          "other load " + (f"{other:.0%}" if other is not None else "unknown"))
    print(f"{'product':<42} {'lib':<6} {'CPU 1 thr':>9} {'wall 1':>7} {'CPU 2 thr':>9} "
          f"{'wall 2':>7}")
    for (name, which, _), by_threads in rows.items():
        cells = [f"{v * 1e3:9.3f}" if i % 2 == 0 else f"{v * 1e3:7.3f}"
                 for i, v in enumerate(by_threads[1] + by_threads[2])]
        print(f"{name:<42} {which:<6} " + " ".join(cells))


# -- the op before the compiled cell update (commit 32c5d6f), for the A/B below -------------
class _OldLSTMSequence(R.LSTMSequence):
    """``LSTMSequence`` as it was before the compiled cell update: forward in NumPy (eleven
    calls a step), backward calling ``lstm_step_grad`` once a step. A copy, kept here."""

    def forward(self, xw, h0, c0, Wh):
        _check("lstm_sequence", 4, xw, h0, None, Wh, c=c0, projected=True)
        N, T, G = xw.shape
        H = G // 4
        xp = get_array_module(xw)
        dtype = np.result_type(xw.dtype, h0.dtype, c0.dtype, Wh.dtype)
        # Time-major storage: every step writes contiguous slices, and backward can work on
        # all steps at once where the recurrence allows.
        self.act = act = xp.empty((T, N, G), dtype=dtype)
        self.cs = cs = xp.empty((T, N, H), dtype=dtype)
        self.tanh_c = tanh_c = xp.empty((T, N, H), dtype=dtype)
        self.hs = hs = xp.empty((T, N, H), dtype=dtype)
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
        xw, h0, c0, Wh = self.inputs
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
                    constant(xp.zeros(Wh.shape, dtype=Wh.dtype)))
        act, tanh_c = self.act, self.tanh_c
        c_prev = _previous(self.cs, c0.data, self.reverse)
        # Every step's dL/da, batch-major like xw: the input projection's backward (the
        # layer's linear) then reads it as one (N*T, 4H) matrix, without a copy.
        d_all = xp.empty((N, T, G), dtype=act.dtype)
        upstream = [g for g in (gy, gh_rec, gc) if g is not None]
        if fast.use("lstm_step_grad", c_prev, act, tanh_c, *upstream):
            # One compiled call a step for all of its elementwise work (see
            # docs/performance.md); it imports numba, so only here.
            from zerograd._fast import recurrent as fast_recurrent

            def step_grad(t, gh, gc, out):
                return fast_recurrent.lstm_step_grad(act[t], c_prev[t], tanh_c[t], gh, gc,
                                                     out=out)
        else:
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
            gWh = h_prev.reshape(-1, H).T @ d_all.reshape(-1, G)
        zeros = xp.zeros(h0.shape, dtype=Wh.dtype)
        return (
            constant(d_all) if xw.requires_grad else None,
            constant(zeros if gh_rec is None else gh_rec) if h0.requires_grad else None,
            constant(zeros if gc is None else gc) if c0.requires_grad else None,
            constant(gWh) if gWh is not None else None,
        )


def op_ab(rounds: int) -> None:
    """LSTMSequence fwd+bwd alone: the current op against _OldLSTMSequence, interleaved,
    with the kernels and on the NumPy path; CPU time of the main thread."""
    import zerograd._fast as fast
    from zerograd import Parameter

    rng = np.random.default_rng(0)
    xw = Parameter((rng.standard_normal((N, T, G)) * 0.5).astype(np.float32))
    h0 = Parameter(np.zeros((N, H), np.float32))
    c0 = Parameter(np.zeros((N, H), np.float32))
    Wh = Parameter((rng.standard_normal((H, G)) * 0.1).astype(np.float32))
    b = Parameter(np.zeros(G, np.float32))

    def run(cls, numpy_only=False):
        # The op now takes the bias as its fifth input; the old one had none.
        inputs = (xw, h0, c0, Wh) + ((b,) if cls is R.LSTMSequence else ())

        def fn():
            for p in inputs:
                p.cleargrad()
            with fast.numpy_only() if numpy_only else contextlib.nullcontext():
                y, h, c = cls()(*inputs)
                y.sum().backward()
        return fn

    xw3 = Parameter((rng.standard_normal((N, T, 3 * H)) * 0.5).astype(np.float32))
    Wh3 = Parameter((rng.standard_normal((H, 3 * H)) * 0.1).astype(np.float32))
    bh3 = Parameter(np.zeros(3 * H, np.float32))

    def run_gru(numpy_only=False):  # GRUSequence's old code is its NumPy path
        def fn():
            for p in (xw3, h0, Wh3, bh3):
                p.cleargrad()
            with fast.numpy_only() if numpy_only else contextlib.nullcontext():
                y, h = R.GRUSequence()(xw3, h0, Wh3, bh3)
                y.sum().backward()
        return fn

    work = {"new, kernels": run(R.LSTMSequence), "old, kernels": run(_OldLSTMSequence),
            "new, NumPy path": run(R.LSTMSequence, True),
            "old, NumPy path": run(_OldLSTMSequence, True),
            "GRU, kernels": run_gru(), "GRU, NumPy path": run_gru(True)}
    for fn in work.values():
        fn()
    load = CpuLoad()
    times = {name: [] for name in work}
    for _ in range(rounds):
        for name, fn in work.items():
            times[name].append(_best(fn, 5, 1, time.thread_time))
    other = load.other()
    print(f"LSTMSequence fwd+bwd, (N, T, H) = ({N}, {T}, {H}) float32, CPU time of the main "
          f"thread, ms: best / median of {rounds} interleaved rounds of 5; other load "
          + (f"{other:.0%}" if other is not None else "unknown"))
    for name, values in times.items():
        print(f"  {name:<18} {min(values) * 1e3:7.2f} / {statistics.median(values) * 1e3:7.2f}")


def sizes(rounds: int) -> None:
    """Where the compiled loops pay ("lstm_sequence", "gru_sequence" in
    zerograd._fast.THRESHOLDS): each op's forward and its backward, kernels vs the NumPy
    path, at several (N, H), float32, T = 16; CPU time of the main thread per step, best of
    ``rounds`` alternating rounds."""
    import zerograd._fast as fast
    from zerograd import Parameter

    steps = 16
    load = CpuLoad()
    print("(N, H): forward kernels / NumPy path, backward kernels / NumPy path; us a step")
    for cls, gates in ((R.LSTMSequence, 4), (R.GRUSequence, 3)):
        print(cls.__name__)
        for n, hidden in ((1, 1), (1, 10), (1, 100), (4, 32), (32, 128), (64, 256),
                          (128, 512)):
            rng = np.random.default_rng(0)
            G_ = gates * hidden
            xw = Parameter((rng.standard_normal((n, steps, G_)) * 0.5).astype(np.float32))
            h0, c0 = (Parameter(np.zeros((n, hidden), np.float32)) for _ in range(2))
            Wh = Parameter((rng.standard_normal((hidden, G_)) * 0.1).astype(np.float32))
            bh = Parameter(np.zeros(G_, np.float32))
            inputs = (xw, h0, c0, Wh) if gates == 4 else (xw, h0, Wh, bh)
            gy = np.ones((n, steps, hidden), np.float32)
            best = {}
            for _ in range(rounds):
                for path in ("kernels", "numpy"):
                    with fast.numpy_only() if path == "numpy" else contextlib.nullcontext():
                        for p in inputs:
                            p.cleargrad()
                        op = cls()
                        start = time.thread_time()
                        for _ in range(5):
                            outputs = op.forward(*(p.data for p in inputs))
                        middle = time.thread_time()
                        op.inputs = inputs
                        for _ in range(5):
                            op.backward(Parameter(gy), *([None] * (len(outputs) - 1)))
                        end = time.thread_time()
                    del outputs
                    for key, value in ((("fwd", path), middle - start),
                                       (("bwd", path), end - middle)):
                        best[key] = min(best.get(key, float("inf")), value / 5 / steps)
            print(f"  ({n}, {hidden}): " + ", ".join(
                f"{part} {best[(part, 'kernels')] * 1e6:6.1f} / "
                f"{best[(part, 'numpy')] * 1e6:6.1f}" for part in ("fwd", "bwd")))
    other = load.other()
    print("other load " + (f"{other:.0%}" if other is not None else "unknown"))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=["products", "op", "sizes"])
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args(argv)
    torch = load_torch()
    if args.what == "products":
        products(torch, args.rounds)
    elif args.what == "op":
        op_ab(args.rounds)
    else:
        sizes(args.rounds)


if __name__ == "__main__":
    main()
