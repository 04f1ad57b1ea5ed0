"""MLP training speed (issue 4): 784-1000-1000-10 ReLU, SGD, batch 100, MNIST-shaped data.

    python benchmarks/bench_mlp.py [--batches 100] [--rounds 3]

Each round times ``--batches`` training steps (forward, softmax cross-entropy, backward,
SGD update) for zerograd, PyTorch and DeZero in turn; the median is scaled to an epoch of
60,000 examples. All frameworks train on the same pre-made float32 batches (the real MNIST
test images when ../shared/data/mnist is present, else random pixels), so the figure is the
training step itself, not the data loader.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import zerograd  # noqa: E402
import zerograd.functions as F  # noqa: E402
from benchmarks._common import interleaved, load_dezero, load_torch, print_row, timed  # noqa: E402
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


def zerograd_epoch(batches):
    np.random.seed(0)
    model = MLP(SIZES, activation=F.relu)
    opt = optimizers.SGD(lr=0.1).setup(model)

    def run():
        for x, t in batches:
            loss = F.softmax_cross_entropy(model(x), t)
            model.cleargrads()
            loss.backward()
            opt.update()

    run()  # warm-up: lazy weights, caches
    return lambda: timed(run)


def torch_epoch(torch, batches):
    torch.manual_seed(0)
    nn = torch.nn
    model = nn.Sequential(nn.Linear(784, 1000), nn.ReLU(), nn.Linear(1000, 1000), nn.ReLU(),
                          nn.Linear(1000, 10))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    tensors = [(torch.from_numpy(x), torch.from_numpy(t)) for x, t in batches]
    loss_fn = nn.CrossEntropyLoss()

    def run():
        for x, t in tensors:
            loss = loss_fn(model(x), t)
            opt.zero_grad()
            loss.backward()
            opt.step()

    run()
    return lambda: timed(run)


def dezero_epoch(dezero, batches):
    import dezero.functions as DF
    from dezero import models
    from dezero import optimizers as dz_optimizers

    np.random.seed(0)
    model = models.MLP(SIZES, activation=DF.relu)
    opt = dz_optimizers.SGD(lr=0.1).setup(model)

    def run():
        for x, t in batches:
            loss = DF.softmax_cross_entropy(model(x), t)
            model.cleargrads()
            loss.backward()
            opt.update()

    run()
    return lambda: timed(run)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    torch, dezero = load_torch(), load_dezero()
    batches = make_batches(args.batches)
    work = {"zerograd": zerograd_epoch(batches)}
    if torch:
        work["torch"] = torch_epoch(torch, batches)
    if dezero:
        work["dezero"] = dezero_epoch(dezero, batches)
    print(f"frameworks: {', '.join(work)}; {args.batches} batches of {BATCH} per round, "
          f"medians of {args.rounds} interleaved rounds, scaled to {EPOCH:,} examples")
    results = interleaved(work, args.rounds)
    scale = EPOCH / (args.batches * BATCH)
    print_row("MLP 784-1000-1000-10 epoch (ReLU, SGD)", results.scaled(scale))
    assert zerograd.Config.enable_backprop


if __name__ == "__main__":
    main()
