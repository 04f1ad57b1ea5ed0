"""LSTM benchmark (issue 5): the book's step-60 training loop, zerograd vs PyTorch vs DeZero.

    python benchmarks/bench_lstm.py            # 1,000 steps x 7 interleaved rounds (~15 s)
    python benchmarks/bench_lstm.py --quick    # 300 steps x 3 rounds

Workload (identical for the three frameworks): LSTM(hidden 100) + Linear(1) on the SinCurve
training sequence (float32), batch 1, one time step per iteration, the mean squared error of
each step added to a running loss, and every 30 steps (truncated BPTT) clear the gradients,
backward, cut the graph behind the state (``unchain_backward`` / ``detach``) and take an Adam
step. Each framework runs ``--steps`` iterations per round; the table shows the median time
of a round and the ratio to PyTorch from the same run. The input sequence is prepared once
(no data loader in the timed loop). NumPy and torch both use one thread.

Two rows before it time forward + backward of a whole-sequence LSTM layer (batch 32, 64
steps, 32 inputs, 128 hidden): ``LSTMSeq`` (with its compiled loops, and on the NumPy path)
vs ``torch.nn.LSTM``, first with each framework's default threads (two here; the row the
README's table quotes), then on one thread each. ``benchmarks/bench_lstm_parts.py`` takes
that row apart (its matrix products against torch's whole step, the op alone against its
previous code).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import zerograd.functions as ZF
from benchmarks._common import (  # noqa: E402
    interleaved,
    load_dezero,
    load_torch,
    numpy_path,
    print_row,
    timed,
)
from zerograd.data import SinCurve
from zerograd.models import Model

HIDDEN = 100
BPTT = 30


def sequence(steps: int):
    """(inputs, targets): ``steps`` pairs of (1, 1) float32 arrays, cycling through SinCurve."""
    np.random.seed(0)
    data = SinCurve(train=True)
    xs = data.data.astype(np.float32)
    ts = data.label.astype(np.float32)
    index = np.arange(steps) % len(xs)
    return [xs[i:i + 1] for i in index], [ts[i:i + 1] for i in index]


def dezero_style_loop(Model, F, L, optimizers, xs, ts):
    """The book's step-60 loop for a framework with DeZero's API (zerograd or DeZero)."""

    class BetterRNN(Model):
        def __init__(self):
            super().__init__()
            self.rnn = L.LSTM(HIDDEN)
            self.fc = L.Linear(1)

        def forward(self, x):
            return self.fc(self.rnn(x))

    model = BetterRNN()
    optimizer = optimizers.Adam().setup(model)

    def run():
        model.rnn.reset_state()
        loss, count = 0, 0
        for x, t in zip(xs, ts):
            loss += F.mean_squared_error(model(x), t)
            count += 1
            if count % BPTT == 0:
                model.cleargrads()
                loss.backward()
                loss.unchain_backward()
                optimizer.update()
                loss = 0

    run()  # warm up (and initialise the lazy weights)
    return lambda: timed(run)


def zerograd_loop(xs, ts):
    import zerograd.layers as L
    import zerograd.optimizers as optimizers

    return dezero_style_loop(Model, ZF, L, optimizers, xs, ts)


def dezero_loop(dezero, xs, ts):
    import dezero.functions as DF
    import dezero.layers as DL

    return dezero_style_loop(dezero.Model, DF, DL, dezero.optimizers, xs, ts)


def torch_loop(torch, xs, ts):
    xs = [torch.from_numpy(x) for x in xs]
    ts = [torch.from_numpy(t) for t in ts]
    cell = torch.nn.LSTMCell(1, HIDDEN)
    fc = torch.nn.Linear(HIDDEN, 1)
    params = list(cell.parameters()) + list(fc.parameters())
    optimizer = torch.optim.Adam(params, lr=0.001)
    mse = torch.nn.functional.mse_loss

    def run():
        state = None
        loss, count = 0, 0
        for x, t in zip(xs, ts):
            state = cell(x, state)
            loss = loss + mse(fc(state[0]), t)
            count += 1
            if count % BPTT == 0:
                optimizer.zero_grad()
                loss.backward()
                state = (state[0].detach(), state[1].detach())
                optimizer.step()
                loss = 0

    run()
    return lambda: timed(run)


def sequence_workloads(torch, N=32, T=64, D=32, H=128):
    """Forward + backward of one LSTM layer over a whole (N, T, D) batch: LSTMSeq (one fused
    op) vs torch.nn.LSTM. DeZero has no sequence layer."""
    import zerograd._fast as fast
    from zerograd.nn.rnn import LSTMSeq

    x = np.random.default_rng(0).standard_normal((N, T, D)).astype(np.float32)
    ours = LSTMSeq(H, in_size=D)

    def run_ours():
        ours.cleargrads()
        ours(x).sum().backward()

    work = {"zerograd": run_ours}
    if fast.available():  # the kernels are on: time the NumPy path in the same rounds
        def run_numpy_path():
            with fast.numpy_only():
                run_ours()

        work["numpy-path"] = run_numpy_path
    if torch is not None:
        theirs = torch.nn.LSTM(D, H, batch_first=True)
        xt = torch.from_numpy(x)

        def run_torch():
            theirs.zero_grad()
            theirs(xt)[0].sum().backward()

        work["torch"] = run_torch
    for fn in work.values():
        fn()  # warm up
    return {name: (lambda fn=fn: timed(fn)) for name, fn in work.items()}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="300 steps, 3 rounds")
    parser.add_argument("--steps", type=int, default=None, help="steps per round")
    parser.add_argument("--rounds", type=int, default=None)
    args = parser.parse_args(argv)
    steps = args.steps or (300 if args.quick else 1000)
    rounds = args.rounds or (3 if args.quick else 7)
    torch, dezero = load_torch(), load_dezero()  # torch: two threads, as NumPy's OpenBLAS
    # The whole-sequence layer first, with each framework's default threads (two on this
    # project's machines, as in the MLP and CNN benchmarks: batch 32 products are large
    # enough to share); then the same on one thread each, the setting of the batch-1 loop.
    results = interleaved(sequence_workloads(torch), rounds * 2)
    print_row("LSTMSeq(128) fwd+bwd, (32, 64, 32) batch", results, "ms", 1e3)
    if torch is not None:
        torch.set_num_threads(1)  # batch 1: threads only add synchronisation
        try:
            torch.set_num_interop_threads(1)
        except RuntimeError:  # already set in this process
            pass
    try:  # one BLAS thread for NumPy too, as for torch: batch-1 products are tiny
        from threadpoolctl import threadpool_limits

        threadpool_limits(1, user_api="blas")
        blas = "1 BLAS thread (threadpoolctl)"
    except ImportError:
        blas = "default BLAS threads (threadpoolctl not installed)"
    results = interleaved(sequence_workloads(torch), rounds * 2)
    print_row(f"LSTMSeq(128) fwd+bwd, (32, 64, 32) batch, {blas.split(' (')[0]} each", results,
              "ms", 1e3)
    xs, ts = sequence(steps)
    work = {"zerograd": zerograd_loop(xs, ts)}
    work["numpy-path"] = numpy_path(work["zerograd"])
    if torch is not None:
        work["torch"] = torch_loop(torch, xs, ts)
    if dezero is not None:
        work["dezero"] = dezero_loop(dezero, xs, ts)
    names = ", ".join(name for name, fn in work.items() if fn)
    print(f"frameworks: {names}; medians of {rounds} interleaved rounds; NumPy: {blas}")
    results = interleaved(work, rounds)
    print_row(f"LSTM({HIDDEN}) BPTT {BPTT}, batch 1, {steps:,} steps", results, "s")


if __name__ == "__main__":
    main()
