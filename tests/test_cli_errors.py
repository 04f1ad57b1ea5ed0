"""Errors at the command line: one line naming the file and the CLI's own flags, exit status
2 (1 for the unexpected), a traceback only with --debug. Crafted or corrupt checkpoints,
weights and settings never surface as a raw AttributeError/TypeError."""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from zerograd import cli
from zerograd.serialization import load_npz, load_state, save_npz, save_state
from zerograd.training import Trainer

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FAST = ["--no-progress", "--dataset", "spiral", "--hidden", "10", "--lr", "0.05"]


def run_main(args, capsys):
    status = cli.main(args)
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def assert_one_line_error(stderr, *phrases, status=2, got=2):
    assert got == status, stderr
    assert stderr.startswith("zerograd: error: ") and stderr.count("\n") == 1, stderr
    assert "Traceback" not in stderr
    for phrase in phrases:
        assert phrase in stderr, (phrase, stderr)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("trained") / "run")
    assert cli.main(["train", "--out", out, "--epochs", "2", *FAST]) == 0
    return out


@pytest.fixture
def run_copy(trained, tmp_path):
    out = str(tmp_path / "run")
    shutil.copytree(trained, out)
    return out


def edit_checkpoint(out, edit):
    path = os.path.join(out, cli.CHECKPOINT)
    state = load_state(path)
    replaced = edit(state)  # edits change the state in place, or return a replacement
    save_state(path, state if replaced is None else replaced)
    return path


def _pop(*keys):
    def edit(state):
        target = state
        for key in keys[:-1]:
            target = target[key]
        target.pop(keys[-1])
    return edit


def _set(keys, value):
    def edit(state):
        target = state
        for key in keys[:-1]:
            target = target[key]
        target[keys[-1]] = value
    return edit


CRAFTED_CHECKPOINTS = {
    "not a dict": (lambda s: [1, 2], "holds a list, not a dict"),
    "format": (_set(["format"], 7), "format 7, expected 1"),
    "settings not an object": (_set(["config"], "mlp"), "the settings are a str"),
    "epochs not a number": (_set(["config", "epochs"], "three"),
                            "setting 'epochs' is 'three', expected an integer"),
    "hidden not a list": (_set(["config", "hidden"], 10),
                          "setting 'hidden' is 10, expected a list of integers"),
    "unknown dataset": (_set(["config", "dataset"], "cifar"), "unknown dataset 'cifar'"),
    "epoch as text": (_set(["epoch"], "2"), "epoch is '2', expected a count"),
    "history too short": (_pop("history", 1), "the history has 1 records for 2"),
    "history record": (_set(["history", 1], {"epoch": 2, "loss": "low"}), "history record 2"),
    "no optimizer": (_pop("optimizer"), "no 'optimizer' state after 2 epochs"),
    "text weights": (_set(["model", "l0/W"], np.array(["a", "b"])),
                     "the weights entry 'l0/W' is <U1, expected a numeric array"),
    "missing weights": (_pop("model", "l1/b"),
                        "does not fit --model mlp --hidden 10 --dataset spiral: the model has "
                        "['l1/b'] that the file lacks"),
    "wrong bias shape": (_set(["model", "l0/b"], np.zeros(7, np.float32)),
                         "'l0/b' has shape (7,)"),
    "lazy weight shape": (_set(["model", "l0/W"], np.zeros((5, 10), np.float32)),
                          "does not fit --model mlp --hidden 10 --dataset spiral"),
    "optimizer type": (_set(["optimizer", "type"], "SGD"),
                       "cannot restore the run (", "saved by SGD"),
    "optimizer params": (_pop("optimizer", "params"),
                         "cannot restore the run (", "'params'"),
    "loader order": (_set(["loader", "index"], np.zeros(300, np.int64)),
                     "not a permutation of the 300 training examples"),
    "random state": (_set(["rng"], {"numpy": {"keys": "x"}}), "cannot restore the run"),
}


@pytest.mark.parametrize("case", sorted(CRAFTED_CHECKPOINTS))
def test_crafted_checkpoint_is_one_line_naming_the_file(run_copy, capsys, case):
    edit, *phrases = CRAFTED_CHECKPOINTS[case]
    path = edit_checkpoint(run_copy, edit)
    status, _, stderr = run_main(["train", "--out", run_copy, "--resume", "--epochs", "3",
                                  "--no-progress"], capsys)
    assert_one_line_error(stderr, path, *phrases, got=status)
    assert "strict=False" not in stderr and "Pass " not in stderr


def test_truncated_checkpoint(run_copy, capsys):
    path = os.path.join(run_copy, cli.CHECKPOINT)
    with open(path, "r+b") as f:
        f.truncate(100)
    status, _, stderr = run_main(["train", "--out", run_copy, "--resume"], capsys)
    assert_one_line_error(stderr, path, got=status)
    # --out refuses to start over it too, naming what is there.
    status, _, stderr = run_main(["train", "--out", run_copy, *FAST], capsys)
    assert_one_line_error(stderr, "already holds a run (an unreadable checkpoint.npz)",
                          got=status)


def test_debug_shows_the_traceback(run_copy, capsys):
    edit_checkpoint(run_copy, _set(["format"], 7))
    for args in (["--debug", "train", "--out", run_copy, "--resume"],
                 ["train", "--out", run_copy, "--resume", "--debug"]):
        with pytest.raises(cli.CLIError, match="format 7"):
            cli.main(args)


def test_unexpected_errors_exit_1_with_a_hint(tmp_path, capsys, monkeypatch):
    def broken(trainer):
        raise RuntimeError("boom")

    monkeypatch.setattr(Trainer, "train_epoch", broken)
    status, _, stderr = run_main(["train", "--out", str(tmp_path / "r"), *FAST], capsys)
    assert_one_line_error(stderr, "RuntimeError: boom (run again with --debug for the "
                                  "traceback)", status=1, got=status)
    with pytest.raises(RuntimeError, match="boom"):
        cli.main(["--debug", "train", "--out", str(tmp_path / "r2"), *FAST])


def test_eval_weights_of_another_architecture_name_the_flags(trained, capsys):
    weights = os.path.join(trained, cli.WEIGHTS)
    status, _, stderr = run_main(["eval", "--weights", weights, "--hidden", "7"], capsys)
    assert_one_line_error(stderr, weights, "does not fit --model mlp --hidden 7 --dataset spiral",
                          "'l0/b' has shape (10,)", "(7,) in the model",
                          "Give the --model and --hidden the weights were trained with",
                          got=status)
    status, _, stderr = run_main(["eval", "--weights", weights, "--model", "linear"], capsys)
    assert_one_line_error(stderr, "the file has ['l1/W', 'l1/b'] that the model lacks",
                          got=status)
    assert "strict=False" not in stderr


def test_crafted_weights_and_settings_files(trained, tmp_path, capsys):
    # Weights outside a run directory: the settings come from metrics.json next to them.
    copy = tmp_path / "copy"
    copy.mkdir()
    shutil.copy(os.path.join(trained, cli.METRICS), copy / cli.METRICS)
    weights = str(copy / cli.WEIGHTS)
    arrays = load_npz(os.path.join(trained, cli.WEIGHTS))
    save_npz(weights, arrays)
    assert run_main(["eval", "--weights", weights], capsys)[0] == 0

    save_npz(weights, {**arrays, "l0/W": np.array(["x", "y"])})
    status, _, stderr = run_main(["eval", "--weights", weights], capsys)
    assert_one_line_error(stderr, weights, "entry 'l0/W' is <U1, expected a numeric array",
                          got=status)

    save_npz(weights, {**arrays, "l0/W": np.zeros((3, 10), np.float32)})  # spiral has 2 inputs
    status, _, stderr = run_main(["eval", "--weights", weights], capsys)
    assert_one_line_error(stderr, weights, "does not fit --model mlp", got=status)

    save_npz(weights, arrays)
    metrics_path = str(copy / cli.METRICS)
    for content, phrase in (("[1, 2]", "holds a list, expected the JSON object"),
                            ('{"config": {"hidden": "abc"}}', "setting 'hidden' is 'abc'"),
                            ('{"config": {"dataset": "cifar"}}',
                             "unknown dataset 'cifar'; choose from"),
                            ('{"config": [', "not valid JSON")):
        with open(metrics_path, "w") as f:
            f.write(content)
        status, _, stderr = run_main(["eval", "--weights", weights], capsys)
        assert_one_line_error(stderr, metrics_path, phrase, got=status)


def test_eval_falls_back_to_metrics_when_the_checkpoint_is_unreadable(run_copy, capsys):
    with open(os.path.join(run_copy, cli.CHECKPOINT), "wb") as f:
        f.write(b"not a zip")
    status, stdout, _ = run_main(["eval", "--weights", os.path.join(run_copy, cli.WEIGHTS)],
                                 capsys)
    assert status == 0
    assert "note: " in stdout and "with the settings of metrics.json" in stdout
    with open(os.path.join(run_copy, cli.METRICS)) as f:
        final = json.load(f)["history"][-1]["test_accuracy"]
    assert float(stdout.split("accuracy")[-1]) == pytest.approx(final, abs=1e-4)


def test_mnist_errors_speak_the_cli_flags(tmp_path, capsys):
    status, _, stderr = run_main(["train", "--dataset", "mnist", "--data-dir", str(tmp_path),
                                  "--out", str(tmp_path / "o")], capsys)
    assert_one_line_error(stderr, f"the train split is not in {tmp_path}",
                          "missing train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz",
                          "--data-dir DIR", "--download", got=status)
    assert "root=" not in stderr and "download=True" not in stderr
    assert not os.path.exists(tmp_path / "o")  # nothing written for a run that cannot start


def test_settings_out_of_range(tmp_path, capsys):
    for args, phrase in ((["--lr", "-1"], "--lr must be positive, got -1.0"),
                         (["--seed", "-3"], "--seed must lie in [0, 2**32), got -3")):
        status, _, stderr = run_main(["train", "--out", str(tmp_path / "o"), *FAST, *args],
                                     capsys)
        assert_one_line_error(stderr, phrase, got=status)


# Hides scikit-learn from a fresh interpreter, as on a plain `pip install zerograd`.
NO_SKLEARN = """
import sys

class HideScikitLearn:
    def find_spec(self, name, path=None, target=None):
        if name == "sklearn" or name.startswith("sklearn."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, HideScikitLearn())
"""


def test_default_dataset_without_scikit_learn_says_what_to_install(tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(NO_SKLEARN)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), REPO]),
           "MPLBACKEND": "Agg"}
    out = str(tmp_path / "run")
    check = subprocess.run([sys.executable, "-c", "import sklearn"], env=env,
                           capture_output=True, text=True, timeout=60)
    assert check.returncode != 0  # the import is blocked
    result = subprocess.run([sys.executable, "-m", "zerograd", "train", "--out", out,
                             "--epochs", "1", "--no-progress"], env=env, cwd=REPO,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert result.stderr == (
        "zerograd: error: --dataset digits (the default) needs scikit-learn, which is not "
        "installed: pip install \"zerograd[extras]\" installs it (or: pip install "
        "scikit-learn). --dataset spiral and --dataset sincurve work with NumPy alone\n")
    assert not os.path.exists(out)
    # The datasets it names do work without scikit-learn.
    result = subprocess.run([sys.executable, "-m", "zerograd", "train", "--out", out,
                             "--epochs", "1", *FAST], env=env, cwd=REPO,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "epoch 1/1" in result.stdout
