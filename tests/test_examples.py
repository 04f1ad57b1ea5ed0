"""Smoke tests: every example runs with small settings and prints sensible numbers."""

import os
import re
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLES = os.path.join(REPO, "examples")
SHARED_MNIST = os.path.join(REPO, "..", "shared", "data", "mnist")


def run_example(name, *args, cwd):
    env = {**os.environ, "MPLBACKEND": "Agg", "PYTHONPATH": REPO}
    result = subprocess.run([sys.executable, os.path.join(EXAMPLES, name), *args],
                            capture_output=True, text=True, env=env, cwd=cwd, timeout=300)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_linear_regression_matches_the_book(tmp_path):
    pytest.importorskip("matplotlib")
    plot = tmp_path / "fit.png"
    out = run_example("linear_regression.py", "--plot", str(plot), cwd=tmp_path)
    # The book's step 42 prints W = [[2.11807369]], b = [5.46608905] for np.random.seed(0).
    assert "W = 2.1181, b = 5.4661" in out
    assert plot.read_bytes()[:4] == b"\x89PNG"


def test_spiral_trains_and_plots(tmp_path):
    pytest.importorskip("matplotlib")
    plot = tmp_path / "spiral.png"
    out = run_example("spiral.py", "--epochs", "60", "--plot", str(plot), cwd=tmp_path)
    losses = [float(v) for v in re.findall(r"loss ([0-9.]+)", out)]
    assert len(losses) == 10 and losses[-1] < losses[0]
    train_acc = float(re.search(r"train accuracy ([0-9.]+)", out).group(1))
    assert train_acc > 0.5  # well above chance (1/3) after a short run
    assert plot.read_bytes()[:4] == b"\x89PNG"


def test_mnist_mlp_on_the_shared_test_split(tmp_path):
    if not os.path.isfile(os.path.join(SHARED_MNIST, "t10k-images-idx3-ubyte.gz")):
        pytest.skip("the shared MNIST test split (../shared/data/mnist) is absent")
    out = run_example("mnist_mlp.py", "--data-dir", SHARED_MNIST, "--train-size", "2000",
                      "--epochs", "2", "--hidden", "100", "--lr", "0.003", cwd=tmp_path)
    assert "training on the first 2000 test images" in out
    accuracy = float(re.search(r"test loss [0-9.]+, accuracy ([0-9.]+)", out).group(1))
    assert accuracy > 0.8


def test_mnist_mlp_without_data_says_what_is_missing(tmp_path):
    env = {**os.environ, "PYTHONPATH": REPO}
    result = subprocess.run([sys.executable, os.path.join(EXAMPLES, "mnist_mlp.py"),
                             "--data-dir", str(tmp_path), "--epochs", "1"],
                            capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    assert result.returncode != 0
    assert "train-images-idx3-ubyte.gz" in result.stderr
