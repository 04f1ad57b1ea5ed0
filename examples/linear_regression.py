"""Linear regression by gradient descent on a toy dataset (the book's step 42).

    python examples/linear_regression.py [--iters 100] [--lr 0.1] [--plot linreg.png]

Data: y = 5 + 2 x + noise, noise ~ U(0, 1), so the best fit is close to W = 2, b = 5.5.
The parameters are plain Variables updated by hand, as in the book.
"""

import argparse

import numpy as np

import zerograd
import zerograd.functions as F
from zerograd import Variable


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iters", type=int, default=100)
    parser.add_argument("--lr", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--plot", default=None, help="save the data and the fitted line here")
    args = parser.parse_args(argv)

    zerograd.seed(args.seed)
    x = np.random.rand(100, 1)
    y = 5 + 2 * x + np.random.rand(100, 1)

    W = Variable(np.zeros((1, 1)))
    b = Variable(np.zeros(1))

    def predict(x):
        return F.matmul(x, W) + b

    for i in range(args.iters):
        loss = F.mean_squared_error(predict(x), y)
        W.cleargrad()
        b.cleargrad()
        loss.backward()
        W.data -= args.lr * W.grad.data
        b.data -= args.lr * b.grad.data
        if (i + 1) % max(1, args.iters // 10) == 0:
            print(f"iter {i + 1}: loss {float(loss.data):.6f}")

    # The closed-form least-squares fit, for comparison.
    design = np.hstack([x, np.ones_like(x)])
    (w_best, b_best), *_ = np.linalg.lstsq(design, y[:, 0], rcond=None)
    print(f"W = {W.data.item():.4f}, b = {b.data.item():.4f} "
          f"(least squares: W = {w_best:.4f}, b = {b_best:.4f})")

    if args.plot:
        import matplotlib.pyplot as plt

        figure, axes = plt.subplots(figsize=(5, 4))
        axes.scatter(x[:, 0], y[:, 0], s=10, label="data")
        line = np.linspace(0, 1, 2)[:, np.newaxis]
        with zerograd.no_grad():
            axes.plot(line[:, 0], predict(line).data[:, 0], color="tab:red", label="fit")
        axes.set(xlabel="x", ylabel="y", title="linear regression")
        axes.legend()
        figure.savefig(args.plot, dpi=100)
        plt.close(figure)
        print(f"plot saved to {args.plot}")


if __name__ == "__main__":
    main()
