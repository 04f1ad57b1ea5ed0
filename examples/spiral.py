"""Classify the book's three-armed spiral with a two-layer network and plot the decision regions.

    python examples/spiral.py                      # the book's settings (step 48/50)
    python examples/spiral.py --epochs 50 --plot spiral.png

Trains ``MLP((hidden, 3))`` with sigmoid and plain SGD on mini-batches from a DataLoader,
prints the loss and the train/test accuracy, then colours every point of the plane by the
predicted class and overlays the training points.
"""

import argparse

import numpy as np

import zerograd
import zerograd.functions as F
from zerograd import DataLoader, optimizers
from zerograd.datasets import Spiral
from zerograd.models import MLP


def accuracy(model, dataset) -> float:
    with zerograd.no_grad():
        y = model(dataset.data)
    return float((y.data.argmax(axis=1) == dataset.label).mean())


def plot_decision_boundary(model, dataset, path: str, show: bool) -> None:
    import matplotlib.pyplot as plt

    h = 0.01  # grid step
    x_min, x_max = dataset.data[:, 0].min() - 0.1, dataset.data[:, 0].max() + 0.1
    y_min, y_max = dataset.data[:, 1].min() - 0.1, dataset.data[:, 1].max() + 0.1
    xx, yy = np.meshgrid(np.arange(x_min, x_max, h), np.arange(y_min, y_max, h))
    grid = np.c_[xx.ravel(), yy.ravel()].astype(np.float32)
    with zerograd.no_grad():
        classes = model(grid).data.argmax(axis=1).reshape(xx.shape)

    figure, axes = plt.subplots(figsize=(5, 5))
    axes.contourf(xx, yy, classes, levels=[-0.5, 0.5, 1.5, 2.5], alpha=0.3,
                  colors=["tab:blue", "tab:orange", "tab:green"])
    for label, marker in zip(range(3), ("o", "x", "^")):
        points = dataset.data[dataset.label == label]
        axes.scatter(points[:, 0], points[:, 1], marker=marker, s=25, label=f"class {label}")
    axes.set(xlim=(x_min, x_max), ylim=(y_min, y_max), title="spiral: decision regions")
    axes.legend(loc="upper right")
    figure.savefig(path, dpi=100)
    print(f"decision boundary saved to {path}")
    if show:
        plt.show()
    plt.close(figure)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=300)
    parser.add_argument("--batch-size", type=int, default=30)
    parser.add_argument("--hidden", type=int, default=10)
    parser.add_argument("--lr", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--plot", default="spiral.png", help="where to save the plot")
    parser.add_argument("--show", action="store_true", help="also open a plot window")
    args = parser.parse_args(argv)

    zerograd.seed(args.seed)
    # seed_global=False: the spiral draws from its own generator, so --seed (not DeZero's
    # fixed reseeding of the global generator) decides the weights and the shuffling.
    train_set = Spiral(train=True, seed_global=False)
    test_set = Spiral(train=False, seed_global=False)
    loader = DataLoader(train_set, args.batch_size)
    model = MLP((args.hidden, 3))
    optimizer = optimizers.SGD(args.lr).setup(model)

    for epoch in range(args.epochs):
        total_loss = 0.0
        for x, t in loader:
            loss = F.softmax_cross_entropy(model(x), t)
            model.cleargrads()
            loss.backward()
            optimizer.update()
            total_loss += float(loss.data) * len(t)
        if (epoch + 1) % max(1, args.epochs // 10) == 0 or epoch + 1 == args.epochs:
            print(f"epoch {epoch + 1}, loss {total_loss / len(train_set):.4f}")

    print(f"train accuracy {accuracy(model, train_set):.4f}, "
          f"test accuracy {accuracy(model, test_set):.4f}")
    plot_decision_boundary(model, train_set, args.plot, args.show)


if __name__ == "__main__":
    main()
