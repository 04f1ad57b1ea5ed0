"""The book's recurrent examples on SinCurve: an RNN (step 59) and an LSTM (step 60).

    python examples/sin_rnn.py                      # both models, the book's 100 epochs
    python examples/sin_rnn.py --model lstm --epochs 30 --plot sin.png

Both learn to predict the next value of a noisy sine wave with truncated backpropagation
through time (BPTT length 30): the RNN reads the sequence one value at a time (batch 1, the
book's step 59); the LSTM reads 30 parallel stretches of it per step through SeqDataLoader
(step 60). After training, each model predicts the next value of a clean cosine wave (the
SinCurve test split) one step ahead; the script prints the mean squared error of those
predictions.

Both draw their initial weights as the book's scripts do on DeZero for the same seed (the
RNN's h2h at its second call), so the training losses are the book's. Results (seed 0,
`python examples/sin_rnn.py`, 100 epochs): the prediction MSE on the cosine falls from 1.11
(untrained) to 0.026 for the RNN and from 0.50 to 0.0005 for the LSTM. The RNN's training is
noisy with the book's Adam(0.001) at batch 1: its MSE is 0.024 after 3 epochs, 0.0039 after
4 and 0.0016 after 6, and the training loss of its last epoch jumps to 0.0086 from about
0.0017 in epochs 60-90. tests/test_examples_rnn.py runs shorter versions and checks the
thresholds stated there.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import zerograd
import zerograd.functions as F
from zerograd.data import SeqDataLoader, SinCurve
from zerograd.models import Model
from zerograd.nn.linear import Linear
from zerograd.nn.rnn import LSTM, RNN
from zerograd.optim import Adam


def blas_single_thread():
    """One BLAS thread for the small matrix products here: extra threads only synchronise,
    and on a busy machine OpenBLAS's waiting threads make each product many times slower
    (measured 20x on this project's 2-core machine under load). Needs threadpoolctl."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return contextlib.nullcontext()
    return threadpool_limits(1, user_api="blas")


class SimpleRNN(Model):
    """Step 59: an Elman RNN and a linear read-out."""

    def __init__(self, hidden_size: int, out_size: int, cell=RNN) -> None:
        super().__init__()
        self.rnn = cell(hidden_size)
        self.fc = Linear(out_size)

    def reset_state(self) -> None:
        self.rnn.reset_state()

    def forward(self, x):
        return self.fc(self.rnn(x))


class BetterRNN(SimpleRNN):
    """Step 60: the same with an LSTM."""

    def __init__(self, hidden_size: int, out_size: int) -> None:
        super().__init__(hidden_size, out_size, cell=LSTM)


def _batches(kind: str, dataset: SinCurve, batch_size: int):
    """(x, t) float32 pairs: one value at a time for the RNN, SeqDataLoader for the LSTM."""
    if kind == "rnn":
        xs = dataset.data.astype(np.float32)
        ts = dataset.label.astype(np.float32)
        return [(xs[i:i + 1], ts[i:i + 1]) for i in range(len(xs))]
    loader = SeqDataLoader(dataset, batch_size=batch_size)
    return [(x.astype(np.float32), t.astype(np.float32)) for x, t in loader]


def prediction_mse(model: SimpleRNN) -> float:
    """One-step-ahead predictions on the clean cosine (SinCurve's test split): the mean of
    (prediction - next value)^2."""
    state = np.random.get_state()  # the test split draws (and discards) noise
    test = SinCurve(train=False)
    np.random.set_state(state)
    model.reset_state()
    errors = []
    with zerograd.no_grad():
        for x, t in zip(test.data, test.label):
            y = model(x.reshape(1, 1).astype(np.float32))
            errors.append((y.item() - t.item()) ** 2)
    model.reset_state()
    return float(np.mean(errors))


def train(kind: str = "lstm", epochs: int = 100, hidden_size: int = 100, bptt_length: int = 30,
          batch_size: int = 30, seed: int = 0, verbose: bool = True) -> dict:
    """Train the step-59 RNN (``kind="rnn"``) or the step-60 LSTM; returns the per-epoch
    average training losses, the prediction MSE before and after training, and the model."""
    with blas_single_thread():
        return _train(kind, epochs, hidden_size, bptt_length, batch_size, seed, verbose)


def _train(kind, epochs, hidden_size, bptt_length, batch_size, seed, verbose) -> dict:
    np.random.seed(seed)
    dataset = SinCurve(train=True)
    batches = _batches(kind, dataset, batch_size)
    model = SimpleRNN(hidden_size, 1) if kind == "rnn" else BetterRNN(hidden_size, 1)
    optimizer = Adam().setup(model)
    model(np.zeros((1, 1), np.float32))  # fix the lazy sizes before measuring
    initial = prediction_mse(model)
    history = []
    start = time.perf_counter()
    for epoch in range(epochs):
        model.reset_state()
        loss, count, total = 0, 0, 0.0
        for x, t in batches:
            loss += F.mean_squared_error(model(x), t)
            count += 1
            if count % bptt_length == 0 or count == len(batches):
                model.cleargrads()
                loss.backward()
                loss.unchain_backward()
                optimizer.update()
                total += float(loss.data)
                loss = 0
        history.append(total / count)
        if verbose and (epoch + 1) % max(1, epochs // 10) == 0:
            print(f"| {kind} | epoch {epoch + 1:3d} | loss {history[-1]:.6f}")
    seconds = time.perf_counter() - start
    final = prediction_mse(model)
    if verbose:
        print(f"{kind}: prediction MSE on the cosine {initial:.4f} -> {final:.5f} "
              f"({epochs} epochs, {seconds:.1f} s)")
    return {"history": history, "initial_mse": initial, "test_mse": final, "model": model,
            "seconds": seconds}


def plot(models: dict, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    xs = np.cos(np.linspace(0, 4 * np.pi, 1000))
    plt.plot(np.arange(len(xs)), xs, label="y = cos(x)")
    for kind, model in models.items():
        model.reset_state()
        with zerograd.no_grad():
            preds = [model(np.array([[x]], np.float32)).item() for x in xs]
        plt.plot(np.arange(len(xs)), preds, label=f"{kind} prediction")
    plt.legend()
    plt.savefig(path)
    print(f"saved {path}")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=["rnn", "lstm", "both"], default="both")
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--hidden", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--plot", metavar="PNG", help="draw the predictions on cos to a file")
    args = parser.parse_args(argv)
    kinds = ["rnn", "lstm"] if args.model == "both" else [args.model]
    models = {}
    for kind in kinds:
        models[kind] = train(kind, args.epochs, args.hidden, seed=args.seed)["model"]
    if args.plot:
        plot(models, args.plot)


if __name__ == "__main__":
    main()
