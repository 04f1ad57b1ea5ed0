"""The compiled kernels (zerograd._fast, numba) vs zerograd's NumPy kernels vs PyTorch's ops.

    python benchmarks/bench_fast.py              # kernels, threads, floors: about 2 minutes
    python benchmarks/bench_fast.py --quick      # fewer rounds
    python benchmarks/bench_fast.py --latency    # also first-call latency, cold and warm cache

Every row times the three implementations in turn, round after round (the machine's speed
drifts; ratios are taken within a round), and gives medians in milliseconds, the median of
the per-round ratios with the lowest and highest round in brackets, and the share of the
machine that other processes used meanwhile (``load``; above 10% the row is NOISY).
float32 throughout, the shapes of the benchmark workloads (bench_cnn.py, bench_ops.py,
bench_lstm.py). Each kernel is timed on raw arrays, as the op would call it; PyTorch's op
runs through autograd (forward + backward), which adds a few microseconds per call.

Sections:
- kernels: each kernel, forward + backward where it has one;
- threads: each serial kernel against a ``parallel=True`` build of it on numba's 2 threads;
- floors: the float32 matrix products alone of an MLP epoch and of the small CNN's steps,
  shaped as zerograd computes them (the time no framework built on BLAS can go below);
- latency (``--latency``): the first call of each kernel in a fresh process, with an empty
  cache (compilation) and then with the cache the first process left (loading).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._common import NOISY_LOAD, interleaved, load_torch, timed

F32 = np.float32
RNG = np.random.default_rng(0)


def _randn(*shape):
    return RNG.standard_normal(shape).astype(F32)


def _channel_major(a):
    return np.ascontiguousarray(a.transpose(1, 0, 2, 3)).transpose(1, 0, 2, 3)


def print_row(label, m, unit="ms", scale=1e3):
    names = [n for n in ("numba", "numpy", "torch", "1 thread", "2 threads") if n in m]
    cells = "  ".join(f"{n} {m[n] * scale:8.3f}" for n in names)
    ratios = []
    for name, base in (("numba", "numpy"), ("numba", "torch"), ("2 threads", "1 thread")):
        r = m.ratio(name, base)
        if r is not None:
            ratios.append(f"{name}/{base} {r[0]:.2f} [{r[1]:.2f}-{r[2]:.2f}]")
    load = "" if m.load is None else f"  load {m.load:.0%}" + (
        " NOISY" if m.load > NOISY_LOAD else "")
    print(f"{label:<40} {cells} {unit}   " + "  ".join(ratios) + load, flush=True)


# -- the kernels' workloads: name -> {implementation: callable} --------------------------------
def pooling_work(torch, shape):
    from zerograd._fast import pooling as FP
    from zerograd.ops import pooling as P

    x = _channel_major(_randn(*shape))  # as conv2d's (relu'd) outputs are laid out
    gy = _randn(shape[0], shape[1], shape[2] // 2, shape[3] // 2)

    def numba_step():  # the 2x2 kernels that ops/pooling.py calls
        y, idx = FP.max_pool_2x2(x)
        FP.max_pool_2x2_backward(gy, idx, shape[2:])

    def numpy_step():
        f = P.Pooling(2, 2, 0)
        f.forward(x)
        P.Pooling2DGrad(f).forward(gy)

    work = {"numba": numba_step, "numpy": numpy_step}
    if torch:
        tx, tgy = torch.from_numpy(np.ascontiguousarray(x)).requires_grad_(), torch.from_numpy(gy)

        def torch_step():
            tx.grad = None
            torch.nn.functional.max_pool2d(tx, 2, 2).backward(tgy)
        work["torch"] = torch_step
    return work


def avg_pool_work(torch, shape=(64, 16, 32, 32)):
    from zerograd._fast import pooling as FP
    from zerograd.ops import pooling as P

    x, gy = _randn(*shape), _randn(*shape)

    def numba_step():
        FP.avg_pool_forward(x, (3, 3), (1, 1), (1, 1), shape[2:], 9.0)
        FP.avg_pool_backward(gy, (3, 3), (1, 1), (1, 1), shape[2:], 9.0)

    def numpy_step():
        f = P.AveragePooling(3, 1, 1)
        f.forward(x)
        P.AveragePoolingGrad(f).forward(gy)

    work = {"numba": numba_step, "numpy": numpy_step}
    if torch:
        tx, tgy = torch.from_numpy(x).requires_grad_(), torch.from_numpy(gy)

        def torch_step():
            tx.grad = None
            torch.nn.functional.avg_pool2d(tx, 3, 1, 1).backward(tgy)
        work["torch"] = torch_step
    return work


def patches_work(torch, shape, adjoint: bool):
    """conv2d's patches of x (3x3, pad 1) and, with ``adjoint``, their sum back into x."""
    from zerograd._fast import im2col as FI
    from zerograd.ops import _im2col as I

    N, C, H, W = shape
    x = _channel_major(_randn(*shape)) if C > 1 else _randn(*shape)
    geo = I.Geometry(1, 1, 1, 1)
    wide = geo.row_length(W, W)
    col_wide = geo.patches(x, (3, 3), (H, W), scratch=False).copy()
    col_wide.reshape(1, -1, N, H, wide)[..., W:] = 0
    col = geo.patches(x, (3, 3), (H, W), wide=False)  # compact (the kernel's own layout)
    if adjoint:
        work = {
            "numba": lambda: FI.conv_patches_adjoint(col, N, C, (3, 3), (1, 1), (1, 1),
                                                     (1, 1), 1, (H, W), (H, W), W),
            "numpy": lambda: I.wide_scatter(col_wide, N, (3, 3), geo, (H, W))}
    else:
        work = {"numba": lambda: FI.conv_patches(x, (3, 3), (1, 1), (1, 1), (1, 1), 1, (H, W),
                                                 W),
                "numpy": lambda: geo.patches(x, (3, 3), (H, W), scratch=True)}
    if torch:
        F = torch.nn.functional
        tx = torch.from_numpy(np.ascontiguousarray(x))
        tcol = torch.from_numpy(np.ascontiguousarray(
            col.reshape(-1, N, H * W).transpose(1, 0, 2)))
        work["torch"] = ((lambda: F.fold(tcol, (H, W), 3, padding=1)) if adjoint
                         else (lambda: F.unfold(tx, 3, padding=1)))
    return work


def few_rows_product_work(torch, M=16, K=9, T=78400):
    """conv1's weight gradient in the small CNN: gy (16, N*H*W) @ its 9 patch rows^T."""
    from zerograd._fast import products

    a, b = _randn(1, M, T), _randn(1, K, T)
    work = {"numba": lambda: products.rows_by_rows(a, b),
            "numpy": lambda: a @ b.transpose(0, 2, 1)}
    if torch:
        ta, tb = torch.from_numpy(a[0]), torch.from_numpy(b[0])
        work["torch"] = lambda: ta @ tb.T
    return work


def bias_relu_work(torch, shape=(100, 16, 28, 28)):
    from zerograd._fast import elementwise as E

    a = _channel_major(_randn(*shape))
    b, gy = _randn(shape[1]), _channel_major(_randn(*shape))
    ones = np.ones(shape[0] * shape[2] * shape[3], dtype=F32)

    def numba_step():
        y = E.bias_relu(a.copy(order="K"), b)
        E.bias_relu_backward(y, gy)

    def numpy_step():  # what the ops do now: y = a + b, maximum; gy * mask; BiasGrad
        y = np.maximum(a + b.reshape(1, -1, 1, 1), 0)
        gx = gy * (y > 0)
        gx.transpose(1, 0, 2, 3).reshape(shape[1], -1) @ ones

    work = {"numba": numba_step, "numpy": numpy_step}
    if torch:
        ta = torch.from_numpy(np.ascontiguousarray(a)).requires_grad_()
        tb = torch.from_numpy(b).requires_grad_()
        tgy = torch.from_numpy(np.ascontiguousarray(gy))

        def torch_step():
            ta.grad = tb.grad = None
            torch.relu(ta + tb.view(1, -1, 1, 1)).backward(tgy)
        work["torch"] = torch_step
    return work


def gelu_work(torch, size=1_000_000):
    from zerograd._fast import elementwise as E
    from zerograd.ops import activation as A

    x, gy = _randn(size), _randn(size)

    def numba_step():
        _, cdf = E.gelu(x, keep_cdf=True)
        E.gelu_backward(x, gy, cdf)

    def numpy_step():
        f = A.GELU()
        f.forward(x)
        gy * A.GELUGrad(f.cdf).forward(x)

    work = {"numba": numba_step, "numpy": numpy_step}
    if torch:
        tx, tgy = torch.from_numpy(x).requires_grad_(), torch.from_numpy(gy)

        def torch_step():
            tx.grad = None
            torch.nn.functional.gelu(tx).backward(tgy)
        work["torch"] = torch_step
    return work


def embedding_work(torch, vocab=1000, dim=64, n_ids=100_000):
    from zerograd._fast.indexing import scatter_rows
    from zerograd.ops.indexing import _scatter_rows

    ids = RNG.integers(0, vocab, size=n_ids)
    gy = _randn(n_ids, dim)
    work = {"numba": lambda: scatter_rows((vocab, dim), 0, ids, gy),
            "numpy": lambda: _scatter_rows((vocab, dim), 0, ids, gy)}
    if torch:
        tids, tgy = torch.from_numpy(ids), torch.from_numpy(gy)
        work["torch"] = lambda: torch.ops.aten.embedding_dense_backward(tgy, tids, vocab, -1,
                                                                         False)
    return work


def lstm_work(torch, N=1, H=100, steps=100):
    """``steps`` LSTM steps' gate arithmetic, forward then backward (batch 1: all overhead)."""
    from zerograd._fast import recurrent as FR
    from zerograd.ops import recurrent as R

    gates0, c0, gh, gc = _randn(N, 4 * H), _randn(N, H), _randn(N, H), _randn(N, H)

    def run(step, grad):
        def go():
            for _ in range(steps):
                gates = gates0.copy()
                _, _, tanh_c = step(gates, c0)
                grad(gates, c0, tanh_c, gh, gc)
        return go

    work = {"numba": run(FR.lstm_step, FR.lstm_step_grad),
            "numpy": run(R._lstm_step, R._lstm_step_grad)}
    if torch:
        tg0, tc0 = torch.from_numpy(gates0), torch.from_numpy(c0)
        tgh, tgc = torch.from_numpy(gh), torch.from_numpy(gc)

        def torch_steps():
            for _ in range(steps):
                g = tg0.clone().requires_grad_()
                f, i, o, u = g.chunk(4, 1)
                c = torch.sigmoid(f) * tc0 + torch.sigmoid(i) * torch.tanh(u)
                h = torch.sigmoid(o) * torch.tanh(c)
                torch.autograd.backward((h, c), (tgh, tgc))
        work["torch"] = torch_steps
    return work


def kernel_rows(torch):
    """(label, make) pairs: ``make()`` builds the row's inputs and callables."""
    return [
        ("max pool 2x2/2 fwd+bwd 100x16x28x28", lambda: pooling_work(torch, (100, 16, 28, 28))),
        ("max pool 2x2/2 fwd+bwd 100x32x14x14", lambda: pooling_work(torch, (100, 32, 14, 14))),
        ("avg pool 3x3/1 pad 1 fwd+bwd 64x16x32", lambda: avg_pool_work(torch)),
        ("conv patches 3x3 pad 1, 100x1x28x28",
         lambda: patches_work(torch, (100, 1, 28, 28), False)),
        ("conv patches 3x3 pad 1, 100x16x14x14",
         lambda: patches_work(torch, (100, 16, 14, 14), False)),
        ("patches adjoint (col2im) 100x16x14x14",
         lambda: patches_work(torch, (100, 16, 14, 14), True)),
        ("conv1 weight gradient (16, 78400) @ (78400, 9)", lambda: few_rows_product_work(torch)),
        ("bias+relu fwd+bwd(+gb) 100x16x28x28", lambda: bias_relu_work(torch)),
        ("exact gelu fwd+bwd 1e6", lambda: gelu_work(torch)),
        ("embedding bwd 100,000 ids, 1000x64", lambda: embedding_work(torch)),
        ("LSTM gates fwd+bwd x100, N=1 H=100", lambda: lstm_work(torch)),
    ]


def run_kernels(torch, rounds):
    print(f"\n== kernels: medians of {rounds} interleaved rounds (numba {numba_version()})")
    rows = [(label, make()) for label, make in kernel_rows(torch)]
    for label, work in rows:
        for fn in work.values():
            fn()  # compile (or load from the cache) and warm up
        print_row(label, interleaved({n: (lambda fn=fn: timed(fn)) for n, fn in work.items()},
                                     rounds))
    return rows


# The kernels each row calls, compiled serial (parallel=False) in zerograd._fast; the thread
# study swaps in a parallel=True build of the same function for the duration of its timing.
SERIAL_KERNELS = {
    "max pool": ("pooling", ["_max_pool_2x2_planes", "_max_pool_2x2_grad_planes"]),
    "avg pool": ("pooling", ["_avg_pool_planes", "_avg_pool_grad_planes"]),
    "conv patches": ("im2col", ["_patches_runs", "_patches_planes"]),
    "patches adjoint": ("im2col", ["_adjoint_runs", "_adjoint_planes"]),
    "bias+relu": ("elementwise", ["_bias_relu3", "_relu_grad3"]),
    "embedding": ("indexing", ["_scatter_rows3"]),
}


def run_threads(rows, rounds):
    """Each serial kernel against its parallel=True build on numba's 2 threads; GELU (built
    parallel) on 1 vs 2 threads. The LSTM step (batch 1, 400 elements) is too small for
    threads to pay for their start."""
    import importlib

    import numba

    print(f"\n== threads: serial vs parallel=True on 2 threads ({rounds} rounds)")
    for label, work in rows:
        fn = work["numba"]
        key = next((k for k in SERIAL_KERNELS if label.startswith(k)), None)
        if key is None and label.startswith("exact gelu"):
            def with_threads(n, fn=fn):
                def go():
                    numba.set_num_threads(n)
                    try:
                        return timed(fn)
                    finally:
                        numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
                return go
            m = interleaved({"1 thread": with_threads(1), "2 threads": with_threads(2)}, rounds)
            print_row(label + " (built parallel)", m)
            continue
        if key is None:
            continue
        module = importlib.import_module(f"zerograd._fast.{SERIAL_KERNELS[key][0]}")
        names = SERIAL_KERNELS[key][1]
        serial = {n: getattr(module, n) for n in names}
        parallel = {n: numba.njit(parallel=True, error_model="numpy", nogil=True)(k.py_func)
                    for n, k in serial.items()}

        def swapped(kernels, fn=fn, module=module, serial=serial):
            def go():
                for n, k in kernels.items():
                    setattr(module, n, k)
                try:
                    return timed(fn)
                finally:
                    for n, k in serial.items():
                        setattr(module, n, k)
            return go

        swapped(parallel)()  # compile the parallel build
        m = interleaved({"1 thread": swapped(serial), "2 threads": swapped(parallel)}, rounds)
        print_row(label + " (serial | parallel)", m)


# -- floors: the matrix products alone -----------------------------------------------------------
def mlp_products():
    """An MLP epoch's products (600 steps of batch 100), laid out as zerograd computes them:
    bench_mlp.products_alone, which ``bench_mlp.py --floor`` times against the step."""
    from benchmarks.bench_mlp import products_alone

    return products_alone([(_randn(100, 784), None)] * 600)


def cnn_products(N=100):
    """The small CNN's products as zerograd lays them out with the compiled kernels (bias in
    the product, compact patches, the input batch needing no gradient). conv1's weight
    gradient is OpenBLAS's product here, which the compiled path replaces by
    ``zerograd._fast.products.rows_by_rows`` (the kernels section times both)."""
    p1 = _randn(10, N * 28 * 28)  # conv1 patches (9 + ones row)
    W1, gy1 = _randn(16, 10), _randn(16, N * 28 * 28)
    p2 = _randn(145, N * 14 * 14)
    W2, gy2 = _randn(32, 145), _randn(32, N * 14 * 14)
    h, Wf, gf = _randn(N, 1568), _randn(1568, 10), _randn(N, 10)

    def step():
        W1 @ p1
        gy1 @ p1[:9].T  # gW1 (no gx: the input batch)
        W2 @ p2
        p2[:144] @ gy2.T  # gW2, (col @ gy^T)^T
        W2[:, :144].T @ gy2  # gx2 before its scatter
        h @ Wf
        h.T @ gf
        gf @ Wf.T
    return step


def run_floors(rounds):
    print(f"\n== floors: float32 matrix products alone (medians of {rounds} rounds)")
    work = {"MLP epoch (600 steps)": lambda: timed(mlp),
            "small CNN 10 steps": lambda: timed(lambda: [cnn() for _ in range(10)])}
    mlp, cnn = mlp_products(), cnn_products()
    for fn in work.values():
        fn()
    m = interleaved(work, rounds)
    for name in work:
        spread = m.samples[name]
        print(f"{name:<40} {m[name]:8.3f} s  [{min(spread):.3f}-{max(spread):.3f}]"
              f"  load {m.load:.0%}" + (" NOISY" if m.load > NOISY_LOAD else ""))


# -- first-call latency ---------------------------------------------------------------------
def first_calls() -> dict:
    """In this (fresh) process: seconds to import numba, then for each kernel its first call
    less a later call (what compiling or loading it cost)."""
    start = time.perf_counter()
    import numba  # noqa: F401

    from zerograd._fast import _numba  # noqa: F401
    out = {"import numba": time.perf_counter() - start}
    # Build every row's inputs first with the NumPy path only: some inputs come from it.
    rows = [(label, make) for label, make in kernel_rows(None)]
    for label, make in rows:
        work = make()
        fn = work["numba"]
        first = timed(fn) if label not in out else 0.0
        out[label] = max(0.0, first - min(timed(fn) for _ in range(3)))
    return out


def run_latency():
    print("\n== first-call latency of each kernel in a fresh process (s): cold = empty cache "
          "(compiles), warm = the cache the cold process left")
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, ZEROGRAD_CACHE=cache)
        env.pop("NUMBA_CACHE_DIR", None)
        runs = []
        for _ in range(2):
            out = subprocess.run([sys.executable, __file__, "--first-calls"], env=env,
                                 capture_output=True, text=True, check=True).stdout
            runs.append(json.loads(out.strip().splitlines()[-1]))
    for label in runs[0]:
        print(f"{label:<40} cold {runs[0][label]:7.3f}  warm {runs[1][label]:7.3f}")
    print(f"{'total':<40} cold {sum(runs[0].values()):7.3f}  warm {sum(runs[1].values()):7.3f}")


def numba_version() -> str:
    import numba

    return numba.__version__


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds")
    parser.add_argument("--latency", action="store_true", help="also first-call latency")
    parser.add_argument("--first-calls", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.first_calls:
        print(json.dumps(first_calls()))
        return
    torch = load_torch()
    rounds = 5 if args.quick else 11
    rows = run_kernels(torch, rounds)
    run_threads(rows, rounds)
    run_floors(3 if args.quick else 5)
    if args.latency:
        run_latency()


if __name__ == "__main__":
    main()
