"""Smoke tests of the CNN examples: the DCGAN trains a few iterations with small sizes."""

import importlib.util
import os
import subprocess
import sys

import numpy as np

import zerograd
from zerograd.nn.batchnorm import BatchNorm
from zerograd.nn.conv import Deconv2d

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLES = os.path.join(REPO, "examples")


def _load(name):
    spec = importlib.util.spec_from_file_location(f"example_{name}",
                                                  os.path.join(EXAMPLES, f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_dcgan_runs_a_few_iterations_and_learns_something():
    dcgan = _load("dcgan")
    result = dcgan.train(iters=6, batch_size=8, ngf=8, ndf=8, synthetic=True, verbose=False)
    gen, dis = result["generator"], result["discriminator"]
    d_losses, g_losses = result["d_losses"], result["g_losses"]
    assert len(d_losses) == len(g_losses) == 6
    assert np.all(np.isfinite(d_losses)) and np.all(np.isfinite(g_losses))
    # At the start D(real) and D(fake) are both about 1/2: d_loss ~ 2 log 2, g_loss ~ log 2.
    assert abs(d_losses[0] - 2 * np.log(2)) < 0.2 and abs(g_losses[0] - np.log(2)) < 0.2
    assert d_losses[-1] < d_losses[0]  # the discriminator starts telling bars from noise

    # It really is made of Deconv2d and BatchNorm layers, all float32, with running stats.
    kinds = {type(layer) for layer in gen.layers()}
    assert Deconv2d in kinds and BatchNorm in kinds
    assert gen.dc2.W.shape == (16, 8, 4, 4)
    assert all(p.dtype == np.float32 for p in gen.params())
    assert np.any(gen.bn2.avg_mean != 0) and np.any(dis.bn2.avg_var != 1)

    z = np.random.default_rng(0).standard_normal((3, dcgan.Z_SIZE), dtype=np.float32)
    with zerograd.test_mode():
        images = gen(z)
    assert images.shape == (3, 1, 28, 28) and images.dtype == np.float32
    assert np.all((images.data > 0) & (images.data < 1))
    grid = dcgan.sample_grid(gen, rows=2, cols=3)
    assert grid.shape == (56, 84)


def test_dcgan_command_line_saves_samples(tmp_path):
    out = tmp_path / "samples.npy"
    env = {**os.environ, "PYTHONPATH": REPO, "MPLBACKEND": "Agg"}
    result = subprocess.run(
        [sys.executable, os.path.join(EXAMPLES, "dcgan.py"), "--iters", "3", "--synthetic",
         "--batch-size", "4", "--ngf", "4", "--ndf", "4", "--samples", str(out)],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "iter     3" in result.stdout and "samples saved" in result.stdout
    grid = np.load(out)
    assert grid.shape == (8 * 28, 8 * 28) and np.all((grid >= 0) & (grid <= 1))
