"""Each callback: what it computes, writes or stops, checked against values worked out by
hand; and that its state survives a resume."""

import csv
import os
import struct

import numpy as np
import pytest

import zerograd
from tests.training.factories import spiral
from zerograd import functions as F
from zerograd import optim, optimizers, training
from zerograd.data import DataLoader
from zerograd.models import MLP
from zerograd.serialization import load_npz


def spiral_run():
    zerograd.seed(0)
    train, test = spiral()
    model = MLP((10, 3), activation=F.relu)
    return (model, DataLoader(train, 30), optimizers.SGD(0.5).setup(model),
            DataLoader(test, 100, shuffle=False))


class Scripted(training.Callback):
    """Replaces the monitored column with scripted values, epoch by epoch."""

    def __init__(self, column, values):
        self.column, self.values = column, values

    def on_epoch_end(self, trainer, logs):
        logs[self.column] = self.values[trainer.epoch - 1]


def test_early_stopping_stops_after_patience_and_restores_the_best_weights():
    model, loader, optimizer, val = spiral_run()
    weights = []

    class Keep(training.Callback):
        def on_epoch_end(self, trainer, logs):
            weights.append(trainer.model.state_dict())

    stopper = training.EarlyStopping(patience=2, restore_best_weights=True)
    lines = []
    trainer = training.fit(model, loader, optimizer, epochs=10, val_loader=val, verbose=2,
                           log=lines.append, callbacks=[
                               Scripted("val_loss", [1.0, 0.5, 0.7, 0.6, 0.4, 0.3]), Keep(),
                               stopper])
    # Best at epoch 2; epochs 3 and 4 do not improve: stopped after epoch 4.
    assert trainer.epoch == 4 and trainer.stopped
    assert stopper.best == 0.5 and stopper.best_epoch == 2 and stopper.stopped_epoch == 4
    for key, value in model.state_dict().items():
        np.testing.assert_array_equal(value, weights[1][key])
    assert "early stopping: val_loss has not improved for 2 epoch(s); best 0.5000 at epoch 2" \
        in lines


def test_early_stopping_mode_and_min_delta():
    model, loader, optimizer, val = spiral_run()
    stopper = training.EarlyStopping("val_accuracy", patience=1, min_delta=0.05)
    trainer = training.fit(model, loader, optimizer, epochs=10, val_loader=val, verbose=0,
                           callbacks=[Scripted("val_accuracy", [0.5, 0.6, 0.62]), stopper])
    assert stopper.mode == "max" and trainer.epoch == 3  # +0.02 is within min_delta
    with pytest.raises(KeyError, match="monitor 'val_loss' is not among the epoch's columns"):
        training.fit(model, loader, optimizer, epochs=2, verbose=0,
                     callbacks=[training.EarlyStopping("val_loss")])


def test_a_run_stopped_early_resumes_to_nothing(tmp_path):
    model, loader, optimizer, val = spiral_run()
    callbacks = [Scripted("val_loss", [1.0, 2.0, 3.0]), training.EarlyStopping(patience=1)]
    training.fit(model, loader, optimizer, epochs=5, val_loader=val, out=tmp_path, verbose=0,
                 callbacks=callbacks)
    lines = []
    model, loader, optimizer, val = spiral_run()
    trainer = training.fit(model, loader, optimizer, epochs=5, val_loader=val, out=tmp_path,
                           resume=True, callbacks=callbacks, log=lines.append)
    assert trainer.epoch == 2 and any("the run is stopped early, with 2 of 5" in m for m in lines)


def test_model_checkpoint_keeps_the_best_and_the_last_weights(tmp_path):
    model, loader, optimizer, val = spiral_run()
    saved = []

    class Keep(training.Callback):
        def on_epoch_logged(self, trainer, record):
            saved.append(trainer.model.state_dict())

    checkpoint = training.ModelCheckpoint(tmp_path / "weights")
    training.fit(model, loader, optimizer, epochs=4, val_loader=val, verbose=0,
                 callbacks=[Scripted("val_loss", [0.9, 0.4, 0.6, 0.5]), checkpoint, Keep()])
    best, last = (load_npz(tmp_path / "weights" / name) for name in ("best.npz", "last.npz"))
    for key in best:
        np.testing.assert_array_equal(best[key], saved[1][key])
        np.testing.assert_array_equal(last[key], saved[3][key])
    assert checkpoint.summary() == {"monitor": "val_loss", "value": 0.4, "epoch": 2}


def test_model_checkpoint_in_the_run_directory(tmp_path):
    model, loader, optimizer, val = spiral_run()
    training.fit(model, loader, optimizer, epochs=2, val_loader=val, out=tmp_path, verbose=0,
                 callbacks=[training.ModelCheckpoint(monitor="val_accuracy")])
    assert "best.npz" in os.listdir(tmp_path) and "last.npz" not in os.listdir(tmp_path)
    metrics = zerograd.serialization.load_json(tmp_path / "metrics.json")
    assert metrics["best"]["monitor"] == "val_accuracy"
    assert metrics["best"]["value"] == max(r["val_accuracy"] for r in metrics["history"])
    with pytest.raises(ValueError, match="ModelCheckpoint: give directory=, or fit"):
        training.fit(model, loader, optimizer, verbose=0, callbacks=[training.ModelCheckpoint()])


@pytest.mark.parametrize("make, expected", [
    (lambda opt: optim.StepLR(opt, step_size=2, gamma=0.5), [0.4, 0.4, 0.2, 0.2, 0.1]),
    (lambda opt: optim.MultiStepLR(opt, milestones=[1, 3], gamma=0.1),
     [0.4, 0.04, 0.04, 0.004, 0.004]),
    (lambda opt: optim.ExponentialLR(opt, gamma=0.5), [0.4, 0.2, 0.1, 0.05, 0.025]),
    (lambda opt: optim.CosineAnnealingLR(opt, T_max=4),
     [0.4, 0.2 * (1 + np.cos(np.pi / 4)), 0.2, 0.2 * (1 - np.cos(np.pi / 4)), 0.0]),
    (lambda opt: optim.LinearWarmup(opt, 2), [0.4 / 3, 0.8 / 3, 0.4, 0.4, 0.4]),
])
def test_learning_rate_scheduler_column(make, expected):
    model, loader, _, _ = spiral_run()
    optimizer = optimizers.SGD(0.4).setup(model)
    trainer = training.fit(model, loader, optimizer, epochs=5, verbose=0,
                           callbacks=[training.LearningRateScheduler(make(optimizer))])
    np.testing.assert_allclose([r["lr"] for r in trainer.history], expected, rtol=1e-12,
                               atol=1e-15)


def test_scheduler_per_step():
    model, loader, _, _ = spiral_run()
    optimizer = optimizers.SGD(0.4).setup(model)
    scheduler = optim.ExponentialLR(optimizer, gamma=0.9)
    training.fit(model, loader, optimizer, epochs=2, verbose=0,
                 callbacks=[training.LearningRateScheduler(scheduler, interval="step")])
    assert scheduler.epoch == 20 and optimizer.lr == pytest.approx(0.4 * 0.9 ** 20)


def test_gradient_clipping_bounds_the_norm_and_reports_it():
    norms = []

    class Measure(training.Callback):
        def on_before_update(self, trainer, optimizer):
            norms.append(optim.global_grad_norm(trainer.model))

    model, loader, optimizer, _ = spiral_run()
    clipping = training.GradientClipping(0.05)
    unclipped = []

    class Before(training.Callback):
        def on_before_update(self, trainer, optimizer):
            unclipped.append(optim.global_grad_norm(trainer.model))

    trainer = training.fit(model, loader, optimizer, epochs=1, verbose=0,
                           callbacks=[Before(), clipping, Measure()])
    assert max(norms) <= 0.05 * (1 + 1e-5) and min(unclipped) > 0.05
    assert trainer.history[0]["grad_norm"] == pytest.approx(np.mean(unclipped))


def test_csv_logger(tmp_path):
    model, loader, optimizer, val = spiral_run()
    path = tmp_path / "log.csv"
    trainer = training.fit(model, loader, optimizer, epochs=3, val_loader=val, verbose=0,
                           callbacks=[training.CSVLogger(path)])
    with open(path) as f:
        rows = list(csv.DictReader(f))
    assert [float(r["val_loss"]) for r in rows] == [r["val_loss"] for r in trainer.history]
    assert list(rows[0]) == list(trainer.history[0])


def read_events(logdir):
    """(tag, step, value) of every scalar in TensorBoard event files (TFRecord framing:
    length, its CRC, the Event protobuf, its CRC)."""
    from tensorboardX.proto import event_pb2

    scalars = []
    for name in sorted(os.listdir(logdir)):
        data = open(os.path.join(logdir, name), "rb").read()
        offset = 0
        while offset < len(data):
            (length,) = struct.unpack("<Q", data[offset:offset + 8])
            event = event_pb2.Event.FromString(data[offset + 12:offset + 12 + length])
            offset += 12 + length + 4
            for value in event.summary.value:
                scalars.append((value.tag, event.step, value.simple_value))
    return scalars


def test_tensorboard(tmp_path):
    pytest.importorskip("tensorboardX")
    model, loader, optimizer, val = spiral_run()
    trainer = training.fit(model, loader, optimizer, epochs=2, val_loader=val, verbose=0,
                           callbacks=[training.TensorBoard(tmp_path / "tb")])
    scalars = read_events(tmp_path / "tb")
    tags = {tag for tag, _, _ in scalars}
    assert tags == {"loss/train", "loss/val", "accuracy/train", "accuracy/val", "seconds"}
    val_loss = [value for tag, _, value in scalars if tag == "loss/val"]
    np.testing.assert_allclose(val_loss, [r["val_loss"] for r in trainer.history], rtol=1e-6)
    assert [step for tag, step, _ in scalars if tag == "loss/val"] == [1, 2]


def test_live_curves(tmp_path, monkeypatch):
    pytest.importorskip("matplotlib")
    model, loader, optimizer, val = spiral_run()
    drawn = []
    curves = training.LiveCurves(tmp_path / "curves.png", every=0.0)
    real_draw = curves.draw
    monkeypatch.setattr(curves, "draw", lambda trainer: (drawn.append(trainer.epoch),
                                                         real_draw(trainer)))
    training.fit(model, loader, optimizer, epochs=3, val_loader=val, verbose=0,
                 callbacks=[curves])
    assert drawn == [1, 2, 3]  # every epoch, and not again at the end
    with open(tmp_path / "curves.png", "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    # Drawing at most every 60 s: after the first epoch, and at the end.
    drawn.clear()
    slow = training.LiveCurves(tmp_path / "slow.png", every=60.0)
    real_slow = slow.draw
    monkeypatch.setattr(slow, "draw", lambda trainer: (drawn.append(trainer.epoch),
                                                       real_slow(trainer)))
    model, loader, optimizer, val = spiral_run()
    training.fit(model, loader, optimizer, epochs=3, verbose=0, callbacks=[slow])
    assert drawn == [1, 3]


def test_callback_state_survives_a_resume(tmp_path):
    """A StepLR stepped twice, then a resume: the third epoch runs at the third rate."""
    def run(epochs, resume):
        model, loader, _, _ = spiral_run()
        optimizer = optimizers.SGD(0.4).setup(model)
        scheduler = training.LearningRateScheduler(optim.StepLR(optimizer, 1, gamma=0.5))
        stopper = training.EarlyStopping("loss", patience=5)
        return training.fit(model, loader, optimizer, epochs=epochs, out=tmp_path,
                            resume=resume, verbose=0, callbacks=[scheduler, stopper]), stopper

    run(2, False)
    trainer, stopper = run(3, True)
    assert [r["lr"] for r in trainer.history] == [0.4, 0.2, 0.1]
    losses = [r["loss"] for r in trainer.history]
    assert stopper.best == min(losses) and stopper.best_epoch == losses.index(min(losses)) + 1
