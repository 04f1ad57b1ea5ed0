"""MLP training speed (issue 4): 784-1000-1000-10 ReLU, SGD, batch 100, MNIST-shaped data.

    python benchmarks/bench_mlp.py [--batches 20] [--rounds 9]
    OPENBLAS_NUM_THREADS=1 python benchmarks/bench_mlp.py --floor     # step vs its products
    OPENBLAS_NUM_THREADS=1 python benchmarks/profile_ops.py mlp       # the step op by op

Each round times ``--batches`` training steps (forward, softmax cross-entropy, backward,
SGD update) for zerograd (with and without its compiled kernels), PyTorch and DeZero in
turn, each turn after ``SETTLE`` seconds of untimed steps of its own (see there); the
median is scaled to an epoch of 60,000 examples. All frameworks train on the same pre-made
float32 batches (the real MNIST test images when ../shared/data/mnist is present, else
random pixels), so the figure is the training step itself, not the data loader.

``--floor`` times zerograd's step against its float32 matrix products alone (the same eight
products a step computes, same shapes, layouts and dtypes: :func:`products_alone`), round
by round in one process, in CPU time of the main thread (``time.thread_time``: with
``OPENBLAS_NUM_THREADS=1`` all of the work, and nearly untouched by other processes' load)
and in wall time (with two OpenBLAS threads the figure that matters, but only on a quiet
machine). It prints each per step and the median of the per-round ratios, step over
products, with the lowest and highest round. With PyTorch installed it times PyTorch's step
and the same eight products in ``torch.mm`` (:func:`torch_products_alone`) in the same
rounds, in wall time, and prints zerograd's products alone over PyTorch's step: the lowest
zerograd/PyTorch ratio any zerograd step could reach with these products.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import zerograd  # noqa: E402
import zerograd.functions as F  # noqa: E402
from benchmarks._common import (  # noqa: E402
    NOISY_LOAD,
    CpuLoad,
    interleaved,
    load_dezero,
    load_torch,
    numpy_path,
    print_row,
    timed,
)
from zerograd import optimizers  # noqa: E402
from zerograd.models import MLP  # noqa: E402

SIZES = (1000, 1000, 10)
BATCH = 100
EPOCH = 60_000


def make_batches(n_batches: int):
    rng = np.random.default_rng(0)
    mnist = ROOT.parent / "shared" / "data" / "mnist"
    n = n_batches * BATCH
    if (mnist / "t10k-images-idx3-ubyte.gz").exists():
        from zerograd.datasets import MNIST

        data = MNIST(train=False, root=str(mnist), transform=None)
        x = data.data.reshape(len(data.data), -1).astype(np.float32) / 255.0
        t = data.label.astype(np.int64)
        idx = rng.integers(0, len(x), size=n)
        x, t = x[idx], t[idx]
    else:
        x = rng.random((n, 784), dtype=np.float32)
        t = rng.integers(0, 10, size=n)
    return [(x[i:i + BATCH], t[i:i + BATCH]) for i in range(0, n, BATCH)]


# Seconds of untimed steps at the start of each framework's turn. OpenBLAS's helper threads
# keep spinning on a core for about 0.1 s after a product (PyTorch's OpenMP threads under
# 0.01 s), so the framework after zerograd or DeZero would start with one of this machine's
# two cores taken; and a framework that starts after a pause runs slower for its first
# milliseconds. Measured on a quiet machine (docs/performance.md): PyTorch's epoch took 5.8 s
# in 30-batch rounds and 8.9 s in 10-batch rounds when it started right after zerograd, and
# zerograd's 5.0-5.1 s instead of 4.3-4.8 s when it started after a 0.15 s pause.
SETTLE = 0.15


def steady_turn(run):
    """A timed turn of ``run`` (a training loop; ``run(1)`` trains on one batch) that first
    trains untimed for ``SETTLE`` seconds, so that its own threads are busy and the previous
    framework's have parked before the clock starts: the steady state of a training run."""

    def turn() -> float:
        end = time.perf_counter() + SETTLE
        while time.perf_counter() < end:
            run(1)
        return timed(run)

    return turn


def zerograd_steps(batches):
    """A callable that trains a fresh MLP one step per batch (``run(n)``: on the first n
    batches only), already run once (warm-up: lazy weights, caches)."""
    np.random.seed(0)
    model = MLP(SIZES, activation=F.relu)
    opt = optimizers.SGD(lr=0.1).setup(model)

    def run(n=None):
        for x, t in batches[:n]:
            loss = F.softmax_cross_entropy(model(x), t)
            model.cleargrads()
            loss.backward()
            opt.update()

    run()
    return run


def zerograd_epoch(batches):
    return steady_turn(zerograd_steps(batches))


def products_alone(batches):
    """The float32 matrix products of one training step per batch, as zerograd computes them.

    Forward ``h @ W`` (both C-contiguous), then per layer from the last: the input gradient
    ``gy @ W.T`` (W.T an F-ordered view; none for the input batch, a constant) and the weight
    gradient ``h.T @ gy`` (h.T an F-ordered view): NumPy hands both views to BLAS as
    transposed operands, without copies (``Linear.backward`` in zerograd/ops/linalg.py;
    tests/ops/test_linear_step.py checks that the step's operands are these). Returns a
    callable that runs them for every batch.
    """
    return _products_of_a_step([x for x, _ in batches], *_product_operands())


def torch_products_alone(torch, batches):
    """The same eight products in PyTorch (``torch.mm`` on transposed views, as autograd's
    backward of ``nn.Linear`` takes them), on the same arrays (shared with NumPy, no copies):
    PyTorch's own floor. Returns a callable that runs them for every batch."""
    xs = [x for x, _ in batches]
    operands = _product_operands()
    return _products_of_a_step(*([torch.from_numpy(a) for a in arrays]
                                 for arrays in (xs, *operands)))


def _product_operands():
    """The weights, hidden activations and output gradients that the products take: random
    float32 arrays of the step's shapes (the values do not change a product's time)."""
    rng = np.random.default_rng(0)
    sizes = (784, *SIZES)
    Ws = [rng.standard_normal((a, b), dtype=np.float32) for a, b in zip(sizes[:-1], sizes[1:])]
    hidden = [rng.standard_normal((BATCH, a), dtype=np.float32) for a in sizes[1:-1]]
    gys = [rng.standard_normal((BATCH, b), dtype=np.float32) for b in sizes[1:]]
    return Ws, hidden, gys


def _products_of_a_step(xs, Ws, hidden, gys):
    """A callable running a step's products for each input batch in ``xs``, with ``@`` and
    ``.T`` (NumPy arrays or torch tensors)."""

    def run():
        for x in xs:
            h = x
            for W in Ws:
                h = h @ W
            for k in reversed(range(len(Ws))):
                if k > 0:
                    gys[k] @ Ws[k].T
                (x if k == 0 else hidden[k - 1]).T @ gys[k]

    return run


def _clocked(fn):
    """(CPU time of this thread, wall time) of one call of ``fn``."""
    cpu, wall = time.thread_time(), time.perf_counter()
    fn()
    return time.thread_time() - cpu, time.perf_counter() - wall


def floor(n_batches: int, rounds: int, torch=None) -> dict:
    """zerograd's step against its products alone, alternating round by round; with
    ``torch``, PyTorch's step and its products alone in the same rounds. Every turn first
    runs its own work untimed for ``SETTLE`` seconds (see there).

    Returns {name: {"cpu"/"wall": [seconds per step, one per round]}, "load": other load},
    names "step" and "products", and "torch step" and "torch products" with ``torch``.
    """
    batches = make_batches(n_batches)
    work = {"step": zerograd_steps(batches), "products": products_alone(batches)}
    if torch is not None:
        work["torch step"] = torch_steps(torch, batches)
        work["torch products"] = torch_products_alone(torch, batches)
    for fn in work.values():
        fn()  # warm-up
    samples = {name: {"cpu": [], "wall": []} for name in work}
    load = CpuLoad()
    for _ in range(rounds):
        for name, fn in work.items():
            end = time.perf_counter() + SETTLE
            while time.perf_counter() < end:
                fn()
            cpu, wall = _clocked(fn)
            samples[name]["cpu"].append(cpu / n_batches)
            samples[name]["wall"].append(wall / n_batches)
    return {**samples, "load": load.other()}


def _ratio(result: dict, top: str, bottom: str, clock: str) -> str:
    ratios = [a / b for a, b in zip(result[top][clock], result[bottom][clock])]
    return f"{statistics.median(ratios):.3f} [{min(ratios):.3f}-{max(ratios):.3f}]"


def _ms(samples: list[float]) -> str:
    return f"{statistics.median(samples) * 1e3:7.3f} ms (min {min(samples) * 1e3:.3f})"


def print_floor(result: dict) -> None:
    threads = os.environ.get("OPENBLAS_NUM_THREADS", "unset")
    load = result["load"]
    note = "" if load is None else f"load {load:.0%}" + (" NOISY" if load > NOISY_LOAD else "")
    print(f"MLP step vs its matrix products alone, OPENBLAS_NUM_THREADS={threads}, {note}")
    for clock, label in (("cpu", "CPU time of the main thread"), ("wall", "wall time")):
        print(f"  {label:<28} step {_ms(result['step'][clock])}  products "
              f"{_ms(result['products'][clock])}  step/products "
              f"{_ratio(result, 'step', 'products', clock)}")
    if "torch step" not in result:
        return
    # PyTorch's helper threads do part of its work, so only wall time compares.
    print("  PyTorch (2 threads), wall    step "
          f"{_ms(result['torch step']['wall'])}  products "
          f"{_ms(result['torch products']['wall'])}  step/products "
          f"{_ratio(result, 'torch step', 'torch products', 'wall')}")
    print("  zerograd/PyTorch, wall time  step/step "
          f"{_ratio(result, 'step', 'torch step', 'wall')}  zerograd's products alone/"
          f"PyTorch's step {_ratio(result, 'products', 'torch step', 'wall')}  products/"
          f"products {_ratio(result, 'products', 'torch products', 'wall')}")


def torch_steps(torch, batches):
    """PyTorch's training loop on the same batches (``run(n)``: the first n only), already
    run once."""
    torch.manual_seed(0)
    nn = torch.nn
    model = nn.Sequential(nn.Linear(784, 1000), nn.ReLU(), nn.Linear(1000, 1000), nn.ReLU(),
                          nn.Linear(1000, 10))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    tensors = [(torch.from_numpy(x), torch.from_numpy(t)) for x, t in batches]
    loss_fn = nn.CrossEntropyLoss()

    def run(n=None):
        for x, t in tensors[:n]:
            loss = loss_fn(model(x), t)
            opt.zero_grad()
            loss.backward()
            opt.step()

    run()
    return run


def torch_epoch(torch, batches):
    return steady_turn(torch_steps(torch, batches))


def dezero_epoch(dezero, batches):
    import dezero.functions as DF
    from dezero import models
    from dezero import optimizers as dz_optimizers

    np.random.seed(0)
    model = models.MLP(SIZES, activation=DF.relu)
    opt = dz_optimizers.SGD(lr=0.1).setup(model)

    def run(n=None):
        for x, t in batches[:n]:
            loss = DF.softmax_cross_entropy(model(x), t)
            model.cleargrads()
            loss.backward()
            opt.update()

    run()
    return steady_turn(run)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    # More rounds than run_all's old 3: the per-round ratio swings with the machine's speed;
    # each turn also starts with SETTLE seconds untimed, so very short rounds waste time
    # (docs/performance.md, the MLP).
    parser.add_argument("--batches", type=int, default=20, help="batches per round")
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--floor", action="store_true",
                        help="zerograd's step against its matrix products alone (and "
                        "PyTorch's against its own, when installed)")
    args = parser.parse_args(argv)
    if args.floor:
        print_floor(floor(args.batches, args.rounds, load_torch()))
        return
    torch, dezero = load_torch(), load_dezero()
    batches = make_batches(args.batches)
    work = {"zerograd": zerograd_epoch(batches),
            "numpy-path": numpy_path(zerograd_epoch(batches))}  # None without the kernels
    if torch:
        work["torch"] = torch_epoch(torch, batches)
    if dezero:
        work["dezero"] = dezero_epoch(dezero, batches)
    print(f"frameworks: {', '.join(work)}; {args.batches} batches of {BATCH} per round, "
          f"medians of {args.rounds} interleaved rounds, scaled to {EPOCH:,} examples")
    results = interleaved(work, args.rounds, settle=0)  # each turn settles itself
    scale = EPOCH / (args.batches * BATCH)
    print_row("MLP 784-1000-1000-10 epoch (ReLU, SGD)", results.scaled(scale))
    assert zerograd.Config.enable_backprop


if __name__ == "__main__":
    main()
