"""A small DCGAN (Radford et al., 2015) that learns to draw 28x28 digits.

    python examples/dcgan.py --iters 2000                 # on ../shared/data/mnist
    python examples/dcgan.py --iters 5 --synthetic        # no data needed (a smoke run)
    python examples/dcgan.py --iters 2000 --samples out.png

Generator: z (N, 64) -> Linear (2*ngf*7*7) - BatchNorm - relu - reshape (2*ngf, 7, 7) -
Deconv2d 4x4/2 (ngf, 14x14) - BatchNorm - relu - Deconv2d 4x4/2 (1, 28x28) - sigmoid.
Discriminator: x (N, 1, 28, 28) -> Conv2d 4x4/2 (ndf, 14x14) - leaky relu - Conv2d 4x4/2
(2*ndf, 7x7) - BatchNorm - leaky relu - Linear (1 logit).
Both use Adam (step 2e-4, beta1 0.5) and the logits form of the binary cross-entropy; the
generator maximises log D(G(z)) (the non-saturating loss).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import zerograd
import zerograd.functions as F
from zerograd.models import Model
from zerograd.nn.batchnorm import BatchNorm
from zerograd.nn.conv import Conv2d, Deconv2d
from zerograd.nn.init import normal
from zerograd.nn.linear import Linear
from zerograd.optim import Adam

DEFAULT_DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "mnist"
Z_SIZE = 64
# DCGAN's initialisation: every weight from N(0, 0.02^2).
DCGAN_INIT = normal(0.02)


class Generator(Model):
    """z (N, z_size) -> images (N, 1, 28, 28) in (0, 1)."""

    def __init__(self, ngf: int = 32) -> None:
        super().__init__()
        self.ngf = ngf
        self.l1 = Linear(2 * ngf * 7 * 7, initializer=DCGAN_INIT)
        self.bn1 = BatchNorm()
        self.dc2 = Deconv2d(ngf, 4, 2, 1, initializer=DCGAN_INIT)
        self.bn2 = BatchNorm()
        self.dc3 = Deconv2d(1, 4, 2, 1, initializer=DCGAN_INIT)

    def forward(self, z):
        h = F.relu(self.bn1(self.l1(z)))
        h = F.reshape(h, (h.shape[0], 2 * self.ngf, 7, 7))
        h = F.relu(self.bn2(self.dc2(h)))
        return F.sigmoid(self.dc3(h))


class Discriminator(Model):
    """images (N, 1, 28, 28) -> logits (N, 1) of "real"."""

    def __init__(self, ndf: int = 32) -> None:
        super().__init__()
        self.c1 = Conv2d(ndf, 4, 2, 1, initializer=DCGAN_INIT)
        self.c2 = Conv2d(2 * ndf, 4, 2, 1, initializer=DCGAN_INIT)
        self.bn2 = BatchNorm()
        self.l3 = Linear(1, initializer=DCGAN_INIT)

    def forward(self, x):
        h = F.leaky_relu(self.c1(x), 0.2)
        h = F.leaky_relu(self.bn2(self.c2(h)), 0.2)
        return self.l3(F.reshape(h, (h.shape[0], -1)))


def load_images(data_dir, synthetic: bool, n: int = 8000) -> np.ndarray:
    """(n, 1, 28, 28) float32 images in [0, 1]: MNIST, or random blurred strokes."""
    if not synthetic:
        from zerograd.datasets import MNIST

        mnist = MNIST(train=False, transform=None, root=data_dir)
        return mnist.data[:n].astype(np.float32) / np.float32(255)
    rng = np.random.default_rng(0)
    images = np.zeros((n, 1, 28, 28), np.float32)
    rows = rng.integers(6, 22, size=n)
    images[np.arange(n), 0, rows, 6:22] = 1.0  # one horizontal bar per image
    return images


def train(iters: int = 2000, batch_size: int = 64, ngf: int = 32, ndf: int = 32,
          data_dir=DEFAULT_DATA, synthetic: bool = False, seed: int = 0,
          log_every: int = 100, verbose: bool = True) -> dict:
    """Alternate one discriminator and one generator step ``iters`` times.

    Returns {'generator', 'discriminator', 'd_losses', 'g_losses', 'seconds'}."""
    images = load_images(data_dir, synthetic)
    np.random.seed(seed)
    rng = np.random.default_rng(seed)
    gen, dis = Generator(ngf), Discriminator(ndf)
    opt_g = Adam(alpha=2e-4, beta1=0.5).setup(gen)
    opt_d = Adam(alpha=2e-4, beta1=0.5).setup(dis)
    ones = np.ones((batch_size, 1), np.int32)
    zeros = np.zeros((batch_size, 1), np.int32)
    d_losses, g_losses = [], []
    start = time.perf_counter()
    for it in range(1, iters + 1):
        real = images[rng.integers(0, len(images), size=batch_size)]
        z = rng.standard_normal((batch_size, Z_SIZE), dtype=np.float32)

        # Discriminator: real -> 1, fake -> 0. The fakes need no generator graph here.
        with zerograd.no_grad():
            fake = gen(z)
        d_loss = (F.sigmoid_cross_entropy(dis(real), ones)
                  + F.sigmoid_cross_entropy(dis(fake.data), zeros))
        dis.cleargrads()
        d_loss.backward()
        opt_d.update()

        # Generator: make the discriminator say 1 (gradients flow through dis into gen).
        g_loss = F.sigmoid_cross_entropy(dis(gen(z)), ones)
        gen.cleargrads()
        dis.cleargrads()
        g_loss.backward()
        opt_g.update()

        d_losses.append(float(d_loss.data))
        g_losses.append(float(g_loss.data))
        if verbose and (it % log_every == 0 or it == iters):
            print(f"iter {it:5d}  d_loss {np.mean(d_losses[-log_every:]):.4f}  "
                  f"g_loss {np.mean(g_losses[-log_every:]):.4f}  "
                  f"time {time.perf_counter() - start:6.1f} s", flush=True)
    return {"generator": gen, "discriminator": dis, "d_losses": d_losses,
            "g_losses": g_losses, "seconds": time.perf_counter() - start}


def sample_grid(gen: Generator, rows: int = 8, cols: int = 8, seed: int = 1) -> np.ndarray:
    """A (rows*28, cols*28) float32 image of generated digits (inference mode)."""
    z = np.random.default_rng(seed).standard_normal((rows * cols, Z_SIZE), dtype=np.float32)
    with zerograd.no_grad(), zerograd.test_mode():
        x = gen(z).data[:, 0]
    return x.reshape(rows, cols, 28, 28).transpose(0, 2, 1, 3).reshape(rows * 28, cols * 28)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iters", type=int, default=2000)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--ngf", type=int, default=32, help="generator width")
    parser.add_argument("--ndf", type=int, default=32, help="discriminator width")
    parser.add_argument("--data", default=str(DEFAULT_DATA), help="directory of the IDX files")
    parser.add_argument("--synthetic", action="store_true", help="bars instead of MNIST")
    parser.add_argument("--samples", help="save a grid of samples (.png needs matplotlib, "
                                          "else .npy)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    result = train(args.iters, args.batch_size, args.ngf, args.ndf, args.data,
                   args.synthetic, args.seed, log_every=max(1, min(100, args.iters // 10)))
    if args.samples:
        grid = sample_grid(result["generator"])
        if args.samples.endswith(".png"):
            import matplotlib

            matplotlib.use("Agg")
            import matplotlib.pyplot as plt

            plt.imsave(args.samples, grid, cmap="gray", vmin=0.0, vmax=1.0)
        else:
            np.save(args.samples, grid)
        print(f"samples saved to {os.path.abspath(args.samples)}")


if __name__ == "__main__":
    main()
