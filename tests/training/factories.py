"""Small models and data sets for the training tests, and the factories the command line
imports as ``tests.training.factories:NAME`` (run from the repository root)."""

from __future__ import annotations

import numpy as np

import zerograd
import zerograd.layers as L
from zerograd import functions as F
from zerograd.data import ArrayDataset, DataLoader, SeqDataLoader, Spiral
from zerograd.models import MLP, Model, Sequential


def spiral():
    return Spiral(train=True, seed_global=False), Spiral(train=False, seed_global=False)


def images(n: int = 96, seed: int = 0) -> ArrayDataset:
    """Random 1x8x8 images whose class is the brighter half (left or right): learnable."""
    rng = np.random.RandomState(seed)
    x = rng.rand(n, 1, 8, 8).astype(np.float32)
    t = (x[:, :, :, 4:].mean(axis=(1, 2, 3)) > x[:, :, :, :4].mean(axis=(1, 2, 3)))
    return ArrayDataset(x, t.astype(np.int64))


def cnn() -> Sequential:
    return Sequential(L.Conv2d(4, 3, pad=1), F.relu, lambda x: F.pooling(x, 2, 2),
                      lambda x: x.reshape(len(x), -1), L.Linear(2))


class SineLSTM(Model):
    def __init__(self, hidden: int = 8) -> None:
        super().__init__()
        self.rnn = L.LSTM(hidden)
        self.fc = L.Linear(1)

    def reset_state(self) -> None:
        self.rnn.reset_state()

    def forward(self, x):
        return self.fc(self.rnn(x))


def sine(n: int = 120) -> ArrayDataset:
    """The next value of a sine wave: x[i] = sin(i / 5), t[i] = x[i + 1]."""
    wave = np.sin(np.arange(n + 1) / 5.0).astype(np.float32)
    return ArrayDataset(wave[:-1, None], wave[1:, None])


def setup(kind: str):
    """(model, train loader, fit keyword arguments) of a small run, seeded."""
    from zerograd import optimizers
    from zerograd.training import TruncatedBPTT

    zerograd.seed(0)
    if kind == "mlp":
        train, _ = spiral()
        model = MLP((10, 3), activation=F.relu)
        return model, DataLoader(train, 32), {"optimizer": optimizers.Adam(0.05).setup(model)}
    if kind == "cnn":
        model = cnn()
        return model, DataLoader(images(), 16), {"optimizer": optimizers.Adam(0.01).setup(model)}
    model = SineLSTM()
    return model, SeqDataLoader(sine(), 4), {
        "optimizer": optimizers.Adam(0.01).setup(model), "loss": "mean_squared_error",
        "metrics": (), "train_step": TruncatedBPTT(5)}


# -- factories for the command line ----------------------------------------------------------
def wide_mlp(spec, config):
    """One hidden layer of 64 units (a user's model factory)."""
    return MLP((64, spec.n_outputs), activation=F.relu)


def small_cnn(spec, config):
    return Sequential(L.Conv2d(4, 3, pad=1), F.relu, lambda x: F.pooling(x, 2, 2),
                      lambda x: x.reshape(len(x), -1), L.Linear(spec.n_outputs))


small_cnn.needs_images = True


def blobs(request):
    """Two Gaussian blobs in 2-D, 160 train / 40 test (a user's dataset factory, no spec:
    the command line reads the task and the classes from the integer labels)."""
    rng = np.random.RandomState(1)
    x = np.concatenate([rng.randn(100, 2) + 2, rng.randn(100, 2) - 2]).astype(np.float32)
    t = np.repeat([0, 1], 100)
    order = rng.permutation(200)
    x, t = x[order], t[order]
    return ArrayDataset(x[:160], t[:160]), ArrayDataset(x[160:], t[160:])


def image_blobs(request):
    """images() as a user's image dataset: (N, 1, 8, 8), flattened unless asked for images."""
    train, test = images(96, 0), images(32, 1)
    if not request.as_images:
        train = ArrayDataset(train.data.reshape(len(train), -1), train.label)
        test = ArrayDataset(test.data.reshape(len(test), -1), test.label)
    return train, test
