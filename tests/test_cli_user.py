"""zerograd train with the user's own models and data (package.module:factory, entry
points), --config and --print-config, the loop's options as flags, Fashion-style IDX data and
CIFAR-10 from a local folder, and zerograd predict."""

import gzip
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from zerograd import cli
from zerograd.serialization import load_npz

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FAST = ["--no-progress", "--dataset", "spiral", "--hidden", "10", "--lr", "0.05"]
FACTORIES = "tests.training.factories"


def run_main(args, capsys):
    status = cli.main(args)
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def metrics(out):
    with open(os.path.join(out, cli.METRICS)) as f:
        return json.load(f)


def test_user_model_and_dataset_from_the_shell(tmp_path):
    out = str(tmp_path / "run")
    result = subprocess.run(
        [sys.executable, "-m", "zerograd", "train", "--model", f"{FACTORIES}:wide_mlp",
         "--dataset", f"{FACTORIES}:blobs", "--epochs", "3", "--lr", "0.05", "--no-progress",
         "--out", out],
        cwd=REPO, capture_output=True, text=True, timeout=120, env={**os.environ,
                                                                    "MPLBACKEND": "Agg"})
    assert result.returncode == 0, result.stderr
    assert "160 train / 40 test examples" in result.stdout
    assert metrics(out)["history"][-1]["test_accuracy"] > 0.95  # two well-separated blobs
    assert load_npz(os.path.join(out, cli.WEIGHTS))["l0/W"].shape == (2, 64)
    result = subprocess.run([sys.executable, "-m", "zerograd", "eval", "--weights", out],
                            cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and "(test, 40 examples)" in result.stdout, result.stderr


def test_user_image_model_and_dataset_in_process(tmp_path, capsys):
    out = str(tmp_path / "run")
    status, stdout, stderr = run_main(
        ["train", "--model", f"{FACTORIES}:small_cnn", "--dataset", f"{FACTORIES}:image_blobs",
         "--epochs", "2", "--batch-size", "16", "--no-progress", "--out", out], capsys)
    assert status == 0, stderr
    assert load_npz(os.path.join(out, cli.WEIGHTS))["l0/W"].shape == (4, 1, 3, 3)  # images
    bad = ["train", "--model", f"{FACTORIES}:nothing", "--out", str(tmp_path / "b"), *FAST]
    status, _, stderr = run_main(bad, capsys)
    assert status == 2 and f"--model {FACTORIES}:nothing: {FACTORIES} has no 'nothing'" in stderr
    bad[2] = "no_such_package.models:make"
    status, _, stderr = run_main(bad, capsys)
    assert status == 2 and "cannot import no_such_package.models" in stderr


def test_entry_point_registration(tmp_path, capsys, monkeypatch):
    """A package's entry points (group zerograd.models / zerograd.datasets) name factories."""
    from importlib.metadata import EntryPoint

    points = {"zerograd.models": [EntryPoint("wide", f"{FACTORIES}:wide_mlp", "zerograd.models")],
              "zerograd.datasets": [EntryPoint("blobs", f"{FACTORIES}:blobs",
                                               "zerograd.datasets")]}
    monkeypatch.setattr(cli, "entry_points", lambda group: points.get(group, []))
    out = str(tmp_path / "run")
    status, stdout, stderr = run_main(["train", "--model", "wide", "--dataset", "blobs",
                                       "--epochs", "1", "--no-progress", "--out", out], capsys)
    assert status == 0, stderr
    assert metrics(out)["config"]["model"] == "wide"
    with pytest.raises(SystemExit):
        cli.main(["train", "--model", "narrow"])
    assert "'wide'" in capsys.readouterr().err  # the entry point's name is offered


def test_config_file_and_print_config(tmp_path, capsys):
    config = tmp_path / "run.json"
    config.write_text(json.dumps({"dataset": "spiral", "hidden": [12], "epochs": 2,
                                  "scheduler": "step:step_size=1,gamma=0.5", "lr": 0.1}))
    status, stdout, _ = run_main(["train", "--config", str(config), "--epochs", "3",
                                  "--print-config"], capsys)
    assert status == 0
    effective = json.loads(stdout)
    assert effective == {**cli.TrainConfig().to_json(), "dataset": "spiral", "hidden": [12],
                         "epochs": 3, "scheduler": "step:step_size=1,gamma=0.5", "lr": 0.1}
    out = str(tmp_path / "run")
    assert run_main(["train", "--config", str(config), "--out", out, "--no-progress"],
                    capsys)[0] == 0
    log = metrics(out)
    assert [r["lr"] for r in log["history"]] == [0.1, 0.05]
    # The run's saved configuration passes back unchanged: the same run again.
    again = str(tmp_path / "again")
    assert run_main(["train", "--config", os.path.join(out, cli.METRICS), "--out", again,
                     "--no-progress"], capsys)[0] == 0
    for key, value in load_npz(os.path.join(out, cli.WEIGHTS)).items():
        np.testing.assert_array_equal(load_npz(os.path.join(again, cli.WEIGHTS))[key], value)
    # YAML, and the errors a config file can have.
    yaml_file = tmp_path / "run.yaml"
    yaml_file.write_text("dataset: spiral\nhidden: [12]\nepochs: 2\n")
    status, stdout, _ = run_main(["train", "--config", str(yaml_file), "--print-config"],
                                 capsys)
    assert status == 0 and json.loads(stdout)["hidden"] == [12]
    config.write_text(json.dumps({"datset": "spiral"}))
    status, _, stderr = run_main(["train", "--config", str(config)], capsys)
    assert status == 2 and "unknown setting(s) ['datset']" in stderr
    config.write_text(json.dumps({"epochs": "many"}))
    status, _, stderr = run_main(["train", "--config", str(config)], capsys)
    assert status == 2 and "setting 'epochs' is 'many', expected an integer" in stderr


def test_loop_options_as_flags(tmp_path, capsys):
    out = str(tmp_path / "run")
    status, stdout, stderr = run_main(
        ["train", "--out", out, "--epochs", "6", "--val-split", "0.2", "--optimizer", "sgd",
         "--lr", "0.5", "--scheduler", "cosine", "--warmup", "2", "--clip", "1.0",
         "--weight-decay", "1e-4", "--early-stopping", "2", "--save-best", *FAST[:-2]], capsys)
    assert status == 0, stderr
    log = metrics(out)
    assert "240 train / 60 validation / 300 test examples" in stdout
    assert stdout.splitlines()[-1].startswith("test: loss ")
    history = log["history"]
    assert set(history[0]) == {"epoch", "loss", "accuracy", "val_loss", "val_accuracy", "lr",
                               "grad_norm", "seconds"}
    # Linear warm-up to 0.5 over 2 epochs, then cosine from 0.5 over the other 4.
    expected = [0.5 / 3, 1.0 / 3, 0.5, 0.25 * (1 + np.cos(np.pi / 4)), 0.25]
    np.testing.assert_allclose([r["lr"] for r in history][:5], expected[:len(history)][:5])
    assert log["best"]["monitor"] == "val_loss"
    assert os.path.exists(os.path.join(out, "best.npz"))
    status, _, stderr = run_main(["train", "--out", str(tmp_path / "x"), "--scheduler",
                                  "triangle", *FAST], capsys)
    assert status == 2 and "unknown scheduler 'triangle'" in stderr
    status, _, stderr = run_main(["train", "--out", str(tmp_path / "x"), "--val-split", "1.5",
                                  *FAST], capsys)
    assert status == 2 and "--val-split must lie in [0, 1), got 1.5" in stderr


def test_early_stopping_flag_stops_and_resume_does_nothing(tmp_path, capsys):
    out = str(tmp_path / "run")
    # lr 5: the loss diverges at once, so test_loss stops improving.
    status, stdout, _ = run_main(["train", "--out", out, "--epochs", "30", "--optimizer", "sgd",
                                  "--early-stopping", "1", *FAST[:-2], "--lr", "20"], capsys)
    assert status == 0 and "early stopping: test_loss has not improved" in stdout
    log = metrics(out)
    assert log["stopped_early"] and log["finished"] and log["epochs_done"] < 30
    status, stdout, _ = run_main(["train", "--out", out, "--resume", "--no-progress"], capsys)
    assert status == 0 and "nothing to do: the run is stopped early" in stdout


def idx(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 8, array.ndim]) + b"".join(n.to_bytes(4, "big") for n in array.shape)
    return gzip.compress(header + array.astype(np.uint8).tobytes())


def test_fashion_style_idx_data_from_a_folder(tmp_path, capsys):
    rng = np.random.default_rng(0)
    data = tmp_path / "fashion"
    data.mkdir()
    for prefix, n in (("train", 60), ("t10k", 20)):
        (data / f"{prefix}-images-idx3-ubyte.gz").write_bytes(
            idx(rng.integers(0, 256, (n, 28, 28))))
        (data / f"{prefix}-labels-idx1-ubyte.gz").write_bytes(idx(rng.integers(0, 10, n)))
    out = str(tmp_path / "run")
    status, stdout, stderr = run_main(["train", "--dataset", "fashion-mnist", "--data-dir",
                                       str(data), "--epochs", "1", "--out", out,
                                       "--no-progress"], capsys)
    assert status == 0, stderr
    assert "60 train / 20 test examples" in stdout
    status, _, stderr = run_main(["train", "--dataset", "fashion-mnist", "--data-dir",
                                  str(tmp_path), "--out", str(tmp_path / "o")], capsys)
    assert status == 2 and "--dataset fashion-mnist: the train split is not in" in stderr


def test_cifar10_from_a_folder(tmp_path, capsys):
    rng = np.random.default_rng(0)
    folder = tmp_path / "cifar" / "cifar-10-batches-bin"
    folder.mkdir(parents=True)
    for name, n in [(f"data_batch_{i}.bin", 8) for i in range(1, 6)] + [("test_batch.bin", 10)]:
        records = np.concatenate([rng.integers(0, 10, (n, 1)),
                                  rng.integers(0, 256, (n, 3072))], axis=1)
        (folder / name).write_bytes(records.astype(np.uint8).tobytes())
    out = str(tmp_path / "run")
    status, stdout, stderr = run_main(["train", "--dataset", "cifar10", "--data-dir",
                                       str(tmp_path / "cifar"), "--model", "cnn", "--hidden",
                                       "8", "--epochs", "1", "--out", out, "--no-progress"],
                                      capsys)
    assert status == 0, stderr
    assert "40 train / 10 test examples" in stdout
    # predict on a .npy batch of CIFAR-shaped inputs and on a PNG image.
    pytest.importorskip("PIL")
    from PIL import Image

    batch = tmp_path / "x.npy"
    np.save(batch, rng.standard_normal((2, 3, 32, 32)).astype(np.float32))
    image = tmp_path / "cat.png"
    Image.fromarray(rng.integers(0, 256, (40, 50, 3)).astype(np.uint8)).save(image)
    status, stdout, stderr = run_main(["predict", "--weights", out, str(batch), str(image)],
                                      capsys)
    assert status == 0, stderr
    lines = stdout.splitlines()
    assert [line.split(":")[0] for line in lines] == [f"{batch}[0]", f"{batch}[1]", str(image)]
    assert all(" class " in line for line in lines)


def test_predict_matches_the_model(tmp_path, capsys):
    out = str(tmp_path / "run")
    assert run_main(["train", "--out", out, "--epochs", "2", *FAST], capsys)[0] == 0
    x = np.array([[0.1, 0.2], [-0.5, 0.4], [0.3, -0.3]], np.float32)
    np.save(tmp_path / "points.npy", x)
    status, stdout, _ = run_main(["predict", "--weights", os.path.join(out, cli.WEIGHTS),
                                  str(tmp_path / "points.npy"), "--top", "2"], capsys)
    assert status == 0
    model, *_ = cli.load_model(os.path.join(out, cli.WEIGHTS), {}, load_data=False)
    from zerograd.training import predict

    y = predict(model, x)
    p = np.exp(y - y.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    for row, line in zip(p, stdout.splitlines()):
        best = np.argsort(-row)[:2]
        assert line.endswith(f"class {best[0]}  ({best[0]}: {row[best[0]]:.3f}, "
                             f"{best[1]}: {row[best[1]]:.3f})")
    np.save(tmp_path / "wrong.npy", np.zeros((2, 3, 4), np.float32))
    status, _, stderr = run_main(["predict", "--weights", out, str(tmp_path / "wrong.npy")],
                                 capsys)
    assert status == 2 and "has shape (2, 3, 4); expected one example (1-D)" in stderr


def test_quiet_prints_nothing(tmp_path, capsys):
    status, stdout, stderr = run_main(["train", "--out", str(tmp_path / "r"), "--epochs", "1",
                                       "--quiet", *FAST], capsys)
    assert status == 0 and stdout == "" and stderr == ""
