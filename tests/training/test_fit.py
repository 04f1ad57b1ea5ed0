"""fit: the same weights as the book's hand-written loop, any iterable of batches,
regression, custom steps (two optimizers, as for a GAN), what it prints, the run directory's
files, the distributed seam, and its errors."""

import json
import os

import numpy as np
import pytest

import zerograd
from tests.training.factories import spiral
from zerograd import functions as F
from zerograd import optimizers, training
from zerograd.data import DataLoader
from zerograd.models import MLP
from zerograd.training import rundir


def spiral_run(seed=0):
    zerograd.seed(seed)
    train, test = spiral()
    model = MLP((10, 3), activation=F.relu)
    return model, DataLoader(train, 30), optimizers.SGD(0.5).setup(model), test


def test_fit_equals_the_books_loop():
    model, loader, optimizer, _ = spiral_run()
    trainer = training.fit(model, loader, optimizer, epochs=3, verbose=0)
    expected_model, expected_loader, expected_optimizer, _ = spiral_run()
    losses = []
    for _ in range(3):  # the book's step 48
        total, count = 0.0, 0
        for x, t in expected_loader:
            y = expected_model(x)
            loss = F.softmax_cross_entropy(y, t)
            expected_model.cleargrads()
            loss.backward()
            expected_optimizer.update()
            total += float(loss.data) * len(t)
            count += len(t)
        losses.append(total / count)
    for (key, value), (_, expected) in zip(model.state_dict().items(),
                                           expected_model.state_dict().items()):
        np.testing.assert_array_equal(value, expected, err_msg=key)
    assert [r["loss"] for r in trainer.history] == losses
    assert [r["epoch"] for r in trainer.history] == [1, 2, 3]
    assert list(trainer.history[0]) == ["epoch", "loss", "accuracy", "seconds"]


def test_validation_columns_and_any_iterable_of_batches():
    model, loader, optimizer, test = spiral_run()
    batches = [(x, t) for x, t in loader]  # a plain list: no length of its own needed
    val = [(test.data, test.label)]
    trainer = training.fit(model, iter_list(batches), optimizer, epochs=2, val_loader=val,
                           verbose=0)
    record = trainer.history[-1]
    assert list(record) == ["epoch", "loss", "accuracy", "val_loss", "val_accuracy", "seconds"]
    with zerograd.no_grad(), zerograd.test_mode():
        y = model(test.data)
        expected_loss = float(F.softmax_cross_entropy(y, test.label).data)
    assert record["val_loss"] == pytest.approx(expected_loss, rel=1e-6)
    assert record["val_accuracy"] == float((y.data.argmax(1) == test.label).mean())
    assert training.evaluate(model, val) == {"loss": pytest.approx(expected_loss, rel=1e-6),
                                             "accuracy": record["val_accuracy"]}


class iter_list:
    """An iterable that is not a DataLoader and has no len()."""

    def __init__(self, items):
        self.items = items

    def __iter__(self):
        return iter(self.items)


def test_regression_and_custom_metrics():
    zerograd.seed(0)
    x = np.linspace(-1, 1, 64, dtype=np.float32)[:, None]
    t = 3 * x + 1
    model = MLP((1,))
    data = zerograd.datasets.ArrayDataset(x, t)

    def mean_abs_error(y, t):
        return float(np.abs(y - t).mean())

    trainer = training.fit(model, DataLoader(data, 16), optimizers.SGD(0.2).setup(model),
                           loss="mean_squared_error", metrics=(mean_abs_error,), epochs=30,
                           verbose=0)
    assert trainer.history[-1]["loss"] < 0.01 < trainer.history[0]["loss"]
    assert trainer.history[-1]["mean_abs_error"] < 0.1
    with pytest.raises(zerograd.errors.DTypeError, match="for regression pass metrics=\\(\\)"):
        training.fit(model, DataLoader(data, 16), optimizers.SGD(0.2).setup(model),
                     loss="mse", epochs=1, verbose=0)


def test_custom_step_with_two_optimizers():
    """A GAN-shaped step: two models, two optimizers, two losses in the history."""
    zerograd.seed(0)
    generator, critic = MLP((8, 2)), MLP((8, 1))
    opts = {"g": optimizers.Adam(0.01).setup(generator), "d": optimizers.Adam(0.01).setup(critic)}
    real = zerograd.datasets.ArrayDataset(np.random.randn(64, 2).astype(np.float32) + 3)

    def gan_step(trainer, batch):
        x, _ = batch
        z = np.random.randn(len(x), 4).astype(np.float32)
        fake = generator(z)
        d_loss = F.mean_squared_error(critic(x), np.ones((len(x), 1), np.float32)) + \
            F.mean_squared_error(critic(fake.data), np.zeros((len(x), 1), np.float32))
        critic.cleargrads()
        d_loss.backward()
        trainer.update("d")
        g_loss = F.mean_squared_error(critic(fake), np.ones((len(x), 1), np.float32))
        generator.cleargrads()
        g_loss.backward()
        trainer.update("g")
        return {"loss": d_loss + g_loss, "d_loss": d_loss, "g_loss": g_loss}

    trainer = training.fit(generator, DataLoader(real, 16), opts, train_step=gan_step,
                           metrics=(), epochs=2, verbose=0)
    assert list(trainer.history[0]) == ["epoch", "loss", "d_loss", "g_loss", "seconds"]
    for record in trainer.history:
        assert record["loss"] == pytest.approx(record["d_loss"] + record["g_loss"])
    with pytest.raises(ValueError, match="call update\\(optimizer\\) with one"):
        training.fit(generator, DataLoader(real, 16), opts, metrics=(), loss="mse", epochs=1,
                     verbose=0, train_step=lambda trainer, batch: trainer.update())


def test_subclassed_trainer_overrides_the_steps():
    calls = []

    class Counting(training.Trainer):
        def train_step(self, batch):
            calls.append("train")
            return super().train_step(batch)

        def eval_step(self, batch):
            calls.append("eval")
            return super().eval_step(batch)

    model, loader, optimizer, test = spiral_run()
    Counting(model, loader, optimizer, epochs=1, val_loader=DataLoader(test, 100, shuffle=False),
             verbose=0).fit()
    assert calls == ["train"] * 10 + ["eval"] * 3


def test_verbose_levels(capsys):
    model, loader, optimizer, test = spiral_run()
    lines = []
    training.fit(model, loader, optimizer, epochs=2, verbose=2, log=lines.append)
    assert len(lines) == 2 and lines[0].startswith("epoch 1/2  loss ")
    assert "train acc" in lines[0] and lines[0].endswith("ms)")
    training.fit(model, loader, optimizer, epochs=2, verbose=0, log=lines.append)
    assert len(lines) == 2
    # verbose=1 outside a terminal (pytest's capture): no bar, no carriage return.
    training.fit(model, loader, optimizer, epochs=1, verbose=1, log=lines.append)
    assert len(lines) == 3 and "\r" not in capsys.readouterr().err


def test_plain_progress_lines_in_logs(monkeypatch):
    """Not a terminal (a CI log): a plain line now and then, with the running loss and the
    rate; PLAIN_EVERY=0 makes it every batch here."""
    from zerograd.training import progress

    monkeypatch.setattr(progress, "PLAIN_EVERY", 0.0)
    model, loader, optimizer, _ = spiral_run()
    lines = []
    training.fit(model, loader, optimizer, epochs=1, verbose=1, log=lines.append)
    assert len(lines) == 11 and lines[0].startswith("epoch 1/1: 1/10 batches, loss ")
    assert lines[0].endswith("batches/s") and "accuracy" in lines[0]
    assert lines[-1].startswith("epoch 1/1  loss")


def test_run_directory_files(tmp_path):
    model, loader, optimizer, test = spiral_run()
    out = tmp_path / "run"
    config = {"lr": 0.5, "note": "spiral"}
    trainer = training.fit(model, loader, optimizer, epochs=2, out=out, config=config,
                           val_loader=DataLoader(test, 100, shuffle=False), verbose=0)
    assert sorted(os.listdir(out)) == sorted(rundir.RUN_FILES)
    with open(out / rundir.METRICS) as f:
        metrics = json.load(f)
    assert metrics["config"] == config and metrics["epochs_done"] == 2 and metrics["finished"]
    assert metrics["versions"]["zerograd"] == zerograd.__version__
    assert metrics["versions"]["numpy"] == np.__version__
    assert metrics["created"].endswith("+00:00") and metrics["saved"] >= metrics["created"]
    assert metrics["history"] == trainer.history
    header = (out / rundir.METRICS_CSV).read_text().splitlines()[0]
    assert header == "epoch,loss,accuracy,val_loss,val_accuracy,seconds"
    weights = zerograd.serialization.load_npz(out / rundir.WEIGHTS)
    for key, value in model.state_dict().items():
        np.testing.assert_array_equal(weights[key], value)
    # A second run into the same directory is refused unless asked for.
    with pytest.raises(training.RunExistsError, match="already holds a run \\(2 of 2 epochs\\)"):
        training.fit(model, loader, optimizer, epochs=2, out=out, verbose=0)
    training.fit(model, loader, optimizer, epochs=1, out=out, overwrite=True, verbose=0)
    assert json.loads((out / rundir.METRICS).read_text())["epochs_done"] == 1


def test_resume_without_a_checkpoint_starts_the_run(tmp_path):
    model, loader, optimizer, _ = spiral_run()
    lines = []
    training.fit(model, loader, optimizer, epochs=1, out=tmp_path / "new", resume=True,
                 verbose=2, log=lines.append)
    assert lines[0] == f"no checkpoint in {tmp_path / 'new'}; starting a new run"


class FakeWorld:
    """Two processes seen from one: allreduce_sum doubles (the other rank's sums are the
    same), and this rank is or is not the main one."""

    def __init__(self, main):
        self.main = main

    def is_main(self):
        return self.main

    def allreduce_sum(self, value):
        return 2 * np.asarray(value)


def test_distributed_seam(tmp_path):
    model, loader, optimizer, _ = spiral_run()
    lines = []
    trainer = training.fit(model, loader, optimizer, epochs=1, out=tmp_path / "worker",
                           distributed=FakeWorld(main=False), verbose=2, log=lines.append)
    assert lines == [] and not os.path.exists(tmp_path / "worker")  # rank 0 alone writes
    model, loader, optimizer, _ = spiral_run()
    alone = training.fit(model, loader, optimizer, epochs=1, verbose=0)
    # Means over both ranks' sums: the same per-example means as one rank's.
    assert trainer.history[0]["loss"] == pytest.approx(alone.history[0]["loss"])


def test_errors_name_what_was_given(tmp_path):
    model, loader, optimizer, _ = spiral_run()
    with pytest.raises(ValueError, match="epochs must be a positive int, got 0"):
        training.fit(model, loader, optimizer, epochs=0)
    with pytest.raises(ValueError, match="resume=True needs out="):
        training.fit(model, loader, optimizer, resume=True)
    with pytest.raises(ValueError, match="unknown loss 'hinge'"):
        training.fit(model, loader, optimizer, loss="hinge")
    with pytest.raises(ValueError, match="unknown metric 'f1'"):
        training.fit(model, loader, optimizer, metrics=("f1",))
    with pytest.raises(TypeError, match="checkpoint_every needs a loader that can save"):
        training.fit(model, [(1, 2)], optimizer, out=tmp_path, checkpoint_every=2)
    with pytest.raises(KeyError, match="it must return the batch's loss"):
        training.fit(model, loader, optimizer, verbose=0,
                     train_step=lambda trainer, batch: {"y": 1})
    with pytest.raises(TypeError, match="callbacks must be Callback instances, got int"):
        training.fit(model, loader, optimizer, callbacks=[3])
