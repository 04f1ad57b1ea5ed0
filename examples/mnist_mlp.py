"""A multi-layer perceptron on MNIST, read from IDX files in --data-dir.

    python examples/mnist_mlp.py --data-dir ~/.zerograd/mnist            # the full dataset
    python examples/mnist_mlp.py --data-dir ../shared/data/mnist         # only the test split

With the standard train and test files (``train-*`` and ``t10k-*``, gzip or not) it trains on
the 60,000 training images and evaluates on the 10,000 test images. When the directory holds
only the test split, it trains on its first --train-size images and evaluates on the rest.
``--download`` fetches missing files (needs the network).
"""

import argparse
import os
import time

import numpy as np

import zerograd
import zerograd.functions as F
from zerograd import DataLoader, optimizers
from zerograd.datasets import MNIST, Subset
from zerograd.models import MLP


def load(data_dir: str, train_size: int, download: bool):
    """(train, test) datasets: the standard split, or a split of the test file alone."""
    try:
        return MNIST(train=True, root=data_dir, download=download), \
            MNIST(train=False, root=data_dir, download=download)
    except FileNotFoundError as error:
        only_test = any(os.path.exists(os.path.join(data_dir, "t10k-images-idx3-ubyte" + ext))
                        for ext in (".gz", ""))
        if not only_test:
            raise SystemExit(f"mnist_mlp: {error}") from error
    # Only the test split is there: carve a training set out of it.
    full = MNIST(train=False, root=data_dir)
    if not 0 < train_size < len(full):
        raise SystemExit(f"mnist_mlp: --train-size must be in 1..{len(full) - 1}")
    print(f"no train split in {data_dir}: training on the first {train_size} test images, "
          f"evaluating on the other {len(full) - train_size}")
    return Subset(full, np.arange(train_size)), Subset(full, np.arange(train_size, len(full)))

def evaluate(model, dataset, batch_size: int = 1000) -> tuple[float, float]:
    total_loss, correct = 0.0, 0
    with zerograd.no_grad():
        for x, t in DataLoader(dataset, batch_size, shuffle=False):
            y = model(x)
            total_loss += float(F.softmax_cross_entropy(y, t).data) * len(t)
            correct += int((y.data.argmax(axis=1) == t).sum())
    return total_loss / len(dataset), correct / len(dataset)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=os.path.join(zerograd.data.cache_dir(), "mnist"))
    parser.add_argument("--download", action="store_true")
    parser.add_argument("--train-size", type=int, default=8000,
                        help="training images taken from the test file when it is alone")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--hidden", type=int, default=1000)
    parser.add_argument("--lr", type=float, default=0.001, help="Adam's step size")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    zerograd.seed(args.seed)
    train_set, test_set = load(args.data_dir, args.train_size, args.download)
    loader = DataLoader(train_set, args.batch_size)
    model = MLP((args.hidden, 10), activation=F.relu)
    optimizer = optimizers.Adam(args.lr).setup(model)

    for epoch in range(args.epochs):
        start = time.perf_counter()
        total_loss, correct = 0.0, 0
        for x, t in loader:
            y = model(x)
            loss = F.softmax_cross_entropy(y, t)
            model.cleargrads()
            loss.backward()
            optimizer.update()
            total_loss += float(loss.data) * len(t)
            correct += int((y.data.argmax(axis=1) == t).sum())
        test_loss, test_acc = evaluate(model, test_set)
        print(f"epoch {epoch + 1}: train loss {total_loss / len(train_set):.4f}, "
              f"accuracy {correct / len(train_set):.4f} | test loss {test_loss:.4f}, "
              f"accuracy {test_acc:.4f} ({time.perf_counter() - start:.1f} s)")


if __name__ == "__main__":
    main()
