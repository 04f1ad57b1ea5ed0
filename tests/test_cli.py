"""The command line: training, metrics and files, resume equivalence, eval, errors."""

import builtins
import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest

from zerograd import cli
from zerograd.serialization import load_npz, load_state
from zerograd.training import Trainer

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED_MNIST = os.path.join(REPO, "..", "shared", "data", "mnist")
FAST = ["--no-progress", "--dataset", "spiral", "--hidden", "10", "--lr", "0.05"]


def run_main(args, capsys):
    status = cli.main(args)
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def metrics(out):
    with open(os.path.join(out, cli.METRICS)) as f:
        return json.load(f)


@pytest.mark.slow
def test_default_train_reaches_95_percent_on_digits(tmp_path, capsys):
    pytest.importorskip("sklearn")
    out = str(tmp_path / "run")
    start = time.perf_counter()
    status, stdout, _ = run_main(["train", "--out", out, "--no-progress"], capsys)
    seconds = time.perf_counter() - start
    assert status == 0
    assert seconds < 60
    log = metrics(out)
    assert log["config"]["dataset"] == "digits" and log["config"]["model"] == "mlp"
    assert log["finished"] and log["epochs_done"] == cli.TrainConfig().epochs
    assert log["history"][-1]["test_accuracy"] > 0.95
    lines = [line for line in stdout.splitlines() if line.startswith("epoch")]
    assert len(lines) == cli.TrainConfig().epochs
    assert "test acc" in lines[-1]
    for name in (cli.WEIGHTS, cli.OPTIMIZER, cli.METRICS, cli.CHECKPOINT):
        assert os.path.getsize(os.path.join(out, name)) > 0
    assert sorted(load_npz(os.path.join(out, cli.WEIGHTS))) == ["l0/W", "l0/b", "l1/W", "l1/b"]
    assert load_state(os.path.join(out, cli.OPTIMIZER))["type"] == "Adam"
    if pytest.importorskip("matplotlib"):
        with open(os.path.join(out, cli.CURVES), "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    # No temporary files left behind by the atomic writes.
    assert not [n for n in os.listdir(out) if n.startswith(".")]

    # eval reads the settings from metrics.json and reproduces the final test accuracy.
    status, stdout, _ = run_main(["eval", "--weights", os.path.join(out, cli.WEIGHTS)], capsys)
    assert status == 0
    accuracy = float(stdout.split("accuracy")[1])
    assert accuracy == pytest.approx(log["history"][-1]["test_accuracy"], abs=1e-4)


def _weights(out):
    return load_npz(os.path.join(out, cli.WEIGHTS))


def _assert_same_run(a, b):
    wa, wb = _weights(a), _weights(b)
    assert list(wa) == list(wb)
    for key in wa:
        np.testing.assert_array_equal(wa[key], wb[key])
    oa = load_state(os.path.join(a, cli.OPTIMIZER))
    ob = load_state(os.path.join(b, cli.OPTIMIZER))
    assert oa["counters"] == ob["counters"] and oa["hyperparams"] == ob["hyperparams"]
    for pa, pb in zip(oa["params"], ob["params"]):
        for key in pa["state"]:
            np.testing.assert_array_equal(pa["state"][key], pb["state"][key])
    ha, hb = metrics(a)["history"], metrics(b)["history"]
    for ra, rb in zip(ha, hb):
        assert {k: v for k, v in ra.items() if k != "seconds"} == \
               {k: v for k, v in rb.items() if k != "seconds"}


@pytest.mark.parametrize("dataset", ["digits", "spiral"])
def test_resume_equals_uninterrupted_run(tmp_path, capsys, dataset):
    if dataset == "digits":
        pytest.importorskip("sklearn")
    common = ["--no-progress", "--dataset", dataset, "--batch-size", "64"]
    full, split = str(tmp_path / "full"), str(tmp_path / "split")
    assert run_main(["train", "--out", full, "--epochs", "4", *common], capsys)[0] == 0
    assert run_main(["train", "--out", split, "--epochs", "2", *common], capsys)[0] == 0
    assert metrics(split)["epochs_done"] == 2
    status, stdout, _ = run_main(["train", "--out", split, "--resume", "--epochs", "4",
                                  "--no-progress", "--lr", "0.5"], capsys)
    assert status == 0 and "resuming" in stdout
    assert "note: ignoring lr=0.5: --resume continues with the run's lr=None" in stdout
    assert metrics(split)["epochs_done"] == 4 and len(metrics(split)["history"]) == 4
    _assert_same_run(full, split)


def test_interrupted_run_keeps_the_last_epoch_and_resumes(tmp_path, capsys, monkeypatch):
    full, broken = str(tmp_path / "full"), str(tmp_path / "broken")
    assert run_main(["train", "--out", full, "--epochs", "3", *FAST], capsys)[0] == 0

    real_train_epoch = Trainer.train_epoch

    def interrupted(trainer):
        if trainer.epoch == 2:
            raise KeyboardInterrupt
        return real_train_epoch(trainer)

    monkeypatch.setattr(Trainer, "train_epoch", interrupted)
    status, _, stderr = run_main(["train", "--out", broken, "--epochs", "3", *FAST], capsys)
    assert status == 130 and "--resume" in stderr
    assert load_state(os.path.join(broken, cli.CHECKPOINT))["epoch"] == 2
    monkeypatch.setattr(Trainer, "train_epoch", real_train_epoch)
    assert run_main(["train", "--out", broken, "--resume", "--no-progress"], capsys)[0] == 0
    _assert_same_run(full, broken)


def test_resume_without_checkpoint_is_a_clear_error(tmp_path, capsys):
    status, _, stderr = run_main(["train", "--out", str(tmp_path), "--resume"], capsys)
    assert status == 2
    assert "no checkpoint at" in stderr and "checkpoint.npz" in stderr
    status, _, stderr = run_main(["train", "--resume"], capsys)
    assert status == 2 and "--resume needs --out" in stderr


def test_resume_of_a_finished_run_does_nothing(tmp_path, capsys):
    out = str(tmp_path / "run")
    assert run_main(["train", "--out", out, "--epochs", "1", *FAST], capsys)[0] == 0
    status, stdout, _ = run_main(["train", "--out", out, "--resume", "--no-progress"], capsys)
    assert status == 0 and "nothing to do" in stdout


def test_sincurve_regression_has_no_accuracy(tmp_path, capsys):
    out = str(tmp_path / "run")
    status, stdout, _ = run_main(["train", "--out", out, "--dataset", "sincurve", "--epochs", "3",
                                  "--hidden", "20", "--no-progress", "--lr", "0.01"], capsys)
    assert status == 0
    history = metrics(out)["history"]
    assert "accuracy" not in history[0] and "test_accuracy" not in history[0]
    assert history[-1]["loss"] < history[0]["loss"]
    assert "acc" not in stdout.splitlines()[-2]


def test_optimizers_and_models_from_the_registry(tmp_path, capsys):
    for optimizer in ("sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adamw"):
        out = str(tmp_path / optimizer)
        args = ["train", "--out", out, "--epochs", "1", "--optimizer", optimizer,
                "--dataset", "spiral", "--no-progress"]
        assert run_main(args, capsys)[0] == 0, optimizer
    status, _, stderr = run_main(["train", "--out", str(tmp_path / "d"), "--optimizer",
                                  "adadelta", "--lr", "0.1", "--dataset", "spiral"], capsys)
    assert status == 2 and "adadelta has no learning rate" in stderr
    out = str(tmp_path / "linear")
    assert run_main(["train", "--out", out, "--model", "linear", "--epochs", "1", *FAST],
                    capsys)[0] == 0
    assert sorted(_weights(out)) == ["l0/W", "l0/b"]


def test_register_model_plugs_into_train(tmp_path, monkeypatch):
    from zerograd.models import MLP

    monkeypatch.setitem(cli.MODELS, "tiny", cli.MODELS["mlp"])
    built = []

    @cli.register_model("tiny", description="two units")
    def tiny(spec, config):
        built.append(spec)
        return MLP([2, spec.n_outputs])

    config = cli.TrainConfig(dataset="spiral", model="tiny", epochs=1)
    run = cli.train(config, str(tmp_path), progress=False, log=lambda _: None)
    assert built == [cli.DATASETS["spiral"].spec]
    assert run.model.l0.W.shape == (2, 2)


def test_cnn_model(tmp_path, capsys):
    import zerograd.layers as L

    out = str(tmp_path / "cnn")
    args = ["train", "--out", out, "--model", "cnn", "--epochs", "1", "--no-progress"]
    if not hasattr(L, "Conv2d"):
        status, _, stderr = run_main(args, capsys)
        assert status == 2 and "Conv2d" in stderr
        return
    pytest.importorskip("sklearn")
    assert run_main(args, capsys)[0] == 0
    assert metrics(out)["history"][0]["test_accuracy"] > 0.5
    status, _, stderr = run_main(["train", "--out", out, "--model", "cnn", "--dataset",
                                  "spiral"], capsys)
    assert status == 2 and "needs image data" in stderr


def test_mnist_errors_name_the_missing_files(tmp_path, capsys):
    status, _, stderr = run_main(["train", "--dataset", "mnist", "--data-dir", str(tmp_path),
                                  "--out", str(tmp_path / "o")], capsys)
    assert status == 2
    assert "train-images-idx3-ubyte.gz" in stderr and str(tmp_path) in stderr
    if os.path.isdir(SHARED_MNIST):  # only the test split is there
        status, _, stderr = run_main(["train", "--dataset", "mnist", "--data-dir", SHARED_MNIST,
                                      "--out", str(tmp_path / "o")], capsys)
        assert status == 2 and "the train split is not in" in stderr


def test_bad_arguments(capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(["train", "--dataset", "cifar"])
    assert info.value.code == 2
    assert "invalid choice: 'cifar'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(["train", "--hidden", "a,b"])
    assert "expected sizes like 100" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main([])
    status, _, stderr = run_main(["train", "--epochs", "0", "--dataset", "spiral"], capsys)
    assert status == 2 and "must be positive" in stderr


def test_eval_errors_and_overrides(tmp_path, capsys):
    status, _, stderr = run_main(["eval", "--weights", str(tmp_path / "none.npz"),
                                  "--dataset", "spiral"], capsys)
    assert status == 2 and "no such file" in stderr
    out = str(tmp_path / "run")
    assert run_main(["train", "--out", out, "--epochs", "2", *FAST], capsys)[0] == 0
    status, stdout, _ = run_main(["eval", "--weights", os.path.join(out, cli.WEIGHTS),
                                  "--split", "train"], capsys)
    assert status == 0 and "spiral (train, 300 examples)" in stdout


def test_progress_fallback_without_tqdm(monkeypatch, capsys):
    real_import = builtins.__import__

    def no_tqdm(name, *args, **kwargs):
        if name == "tqdm":
            raise ImportError("No module named 'tqdm'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_tqdm)
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    items = list(cli._progress(range(4), 4, "epoch 1/1", enabled=True))
    assert items == [0, 1, 2, 3]
    assert "4/4" in capsys.readouterr().err


def test_missing_matplotlib_is_a_note(tmp_path, capsys, monkeypatch):
    real_import = builtins.__import__

    def no_matplotlib(name, *args, **kwargs):
        if name.startswith("matplotlib"):
            raise ImportError("No module named 'matplotlib'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_matplotlib)
    out = str(tmp_path / "run")
    status, stdout, _ = run_main(["train", "--out", out, "--epochs", "1", *FAST], capsys)
    assert status == 0 and "matplotlib is not installed" in stdout
    assert not os.path.exists(os.path.join(out, cli.CURVES))


def test_python_dash_m_and_help(tmp_path):
    env = {**os.environ, "MPLBACKEND": "Agg"}
    result = subprocess.run([sys.executable, "-m", "zerograd", "train", "--out", str(tmp_path),
                             "--epochs", "1", *FAST], capture_output=True, text=True, env=env,
                            cwd=REPO, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "epoch 1/1" in result.stdout
    result = subprocess.run([sys.executable, "-m", "zerograd", "train", "--help"],
                            capture_output=True, text=True, cwd=REPO, timeout=60)
    assert result.returncode == 0 and "--resume" in result.stdout and "digits" in result.stdout


def test_corrupt_files_are_reported_without_traceback(tmp_path, capsys):
    out = str(tmp_path / "run")
    assert run_main(["train", "--out", out, "--epochs", "1", *FAST], capsys)[0] == 0
    with open(os.path.join(out, cli.CHECKPOINT), "r+b") as f:
        f.truncate(100)
    status, _, stderr = run_main(["train", "--out", out, "--resume"], capsys)
    assert status == 2 and "checkpoint.npz" in stderr and "truncated" in stderr
    # Weights of another architecture: the mismatched entry is named.
    status, _, stderr = run_main(["eval", "--weights", os.path.join(out, cli.WEIGHTS),
                                  "--hidden", "7"], capsys)
    assert status == 2 and "l0/b" in stderr and "(7,) in the model" in stderr


def test_mnist_download_flag_with_fake_network(tmp_path, capsys, monkeypatch):
    import gzip
    import io

    from zerograd.data import download as download_module

    rng = np.random.default_rng(0)

    def idx(array):
        header = bytes([0, 0, 8, array.ndim]) + b"".join(n.to_bytes(4, "big") for n in array.shape)
        return gzip.compress(header + array.astype(np.uint8).tobytes())

    files = {}
    for prefix, n in (("train", 64), ("t10k", 32)):
        files[f"{prefix}-images-idx3-ubyte.gz"] = idx(rng.integers(0, 256, (n, 28, 28)))
        files[f"{prefix}-labels-idx1-ubyte.gz"] = idx(rng.integers(0, 10, n))

    class Response(io.BytesIO):
        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.close()

    monkeypatch.setattr(download_module, "urlopen",
                        lambda url, timeout: Response(files[url.rsplit("/", 1)[1]]))
    data_dir = str(tmp_path / "mnist")
    args = ["train", "--dataset", "mnist", "--data-dir", data_dir, "--epochs", "1",
            "--out", str(tmp_path / "run"), "--no-progress"]
    status, _, stderr = run_main(args, capsys)
    assert status == 2 and "--download" in stderr  # nothing is fetched unless asked
    assert "download=True" not in stderr  # the CLI's flags, not the library's arguments
    # The fake test files do not match the real ones' checksums: refused, nothing kept.
    status, _, stderr = run_main(args + ["--download"], capsys)
    assert status == 2 and "expected 167310007f03" in stderr
    assert not [n for n in os.listdir(data_dir) if n.startswith("t10k")]
    from zerograd.data.mnist import MNIST

    monkeypatch.setattr(MNIST, "sha256", {})
    status, stdout, stderr = run_main(args + ["--download"], capsys)
    assert status == 0, stderr
    assert "64 train / 32 test" in stdout
    assert sorted(os.listdir(data_dir)) == sorted(files)
