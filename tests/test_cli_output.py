"""What `zerograd train` shows: epoch times with sensible precision, curves with whole-epoch
ticks and a log loss axis where the loss spans decades; and the cnn model through eval and
--resume."""

import json
import os

import numpy as np
import pytest

from zerograd import cli
from zerograd.serialization import load_npz

FAST = ["--no-progress", "--dataset", "spiral", "--hidden", "10", "--lr", "0.05"]


@pytest.mark.parametrize("seconds, text", [
    (0.0, "0.00 ms"), (0.000523, "0.52 ms"), (0.0042, "4.20 ms"), (0.0481, "48.1 ms"),
    (0.5, "500 ms"), (1.0, "1.00 s"), (1.234, "1.23 s"), (12.34, "12.3 s"), (125.4, "125 s"),
    (3725.0, "3725 s"),
])
def test_format_seconds_three_significant_digits(seconds, text):
    assert cli.format_seconds(seconds) == text


def test_fast_epochs_do_not_print_zero_seconds(tmp_path, capsys):
    assert cli.main(["train", "--out", str(tmp_path / "r"), "--epochs", "2", *FAST]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("epoch")]
    assert len(lines) == 2
    for line in lines:
        assert "(0.0 s)" not in line
        value, unit = line.rsplit("(", 1)[1].rstrip(")").split()
        assert unit in ("ms", "s") and float(value) > 0


def history(losses, accuracy=True):
    records = []
    for epoch, loss in enumerate(losses, 1):
        record = {"epoch": epoch, "loss": loss, "test_loss": loss * 1.1, "seconds": 0.01}
        if accuracy:
            record.update(accuracy=0.5, test_accuracy=0.5)
        records.append(record)
    return records


def test_curves_have_whole_epoch_ticks():
    pytest.importorskip("matplotlib")
    for epochs in (1, 2, 3, 7, 30):
        figure = cli.draw_curves(history(np.linspace(1.0, 0.5, epochs).tolist()))
        figure.canvas.draw()
        for ax in figure.axes:
            lo, hi = ax.get_xlim()
            ticks = [t for t in ax.get_xticks() if lo <= t <= hi]
            assert ticks and all(float(t).is_integer() for t in ticks), (epochs, ticks)


def test_loss_axis_is_logarithmic_when_the_loss_spans_decades():
    pytest.importorskip("matplotlib")
    within_a_decade = cli.draw_curves(history([2.3, 0.9, 0.5, 0.3]))
    assert within_a_decade.axes[0].get_yscale() == "linear"
    spanning = cli.draw_curves(history([2.3, 0.3, 0.05, 0.01]))
    assert spanning.axes[0].get_yscale() == "log"
    assert spanning.axes[1].get_yscale() == "linear"  # accuracy stays linear
    regression = cli.draw_curves(history([0.1, 0.001], accuracy=False))
    assert len(regression.axes) == 1 and regression.axes[0].get_yscale() == "log"


def test_curves_png_is_written(tmp_path):
    pytest.importorskip("matplotlib")
    path = str(tmp_path / "curves.png")
    assert cli.plot_curves(history([2.3, 0.3, 0.05]), path) == path
    with open(path, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"


def test_cnn_run_evaluates_and_resumes(tmp_path, capsys):
    """The cnn's Conv2d layers are sized lazily; eval and --resume load weights into them
    before their first call."""
    pytest.importorskip("sklearn")
    cnn = ["--model", "cnn", "--hidden", "16", "--batch-size", "128", "--no-progress"]
    full, split = str(tmp_path / "full"), str(tmp_path / "split")
    assert cli.main(["train", "--out", full, "--epochs", "2", *cnn]) == 0
    assert cli.main(["train", "--out", split, "--epochs", "1", *cnn]) == 0
    capsys.readouterr()
    assert cli.main(["eval", "--weights", os.path.join(split, cli.WEIGHTS)]) == 0
    stdout = capsys.readouterr().out
    with open(os.path.join(split, cli.METRICS)) as f:
        accuracy = json.load(f)["history"][-1]["test_accuracy"]
    assert float(stdout.split("accuracy")[-1]) == pytest.approx(accuracy, abs=1e-4)
    assert cli.main(["train", "--out", split, "--resume", "--epochs", "2",
                     "--no-progress"]) == 0
    full_weights = load_npz(os.path.join(full, cli.WEIGHTS))
    split_weights = load_npz(os.path.join(split, cli.WEIGHTS))
    assert list(full_weights) == list(split_weights)
    for key in full_weights:
        np.testing.assert_array_equal(split_weights[key], full_weights[key])
