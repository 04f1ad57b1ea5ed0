"""Callbacks: small objects the loop calls at fixed points (Keras's and Lightning's protocol).

The hooks, in the order the loop calls them; each receives the ``Trainer`` (its ``model``,
``optimizer``, ``epoch``, ``step``, ``history``, ``out``; set ``trainer.stop_training`` to
stop after the epoch):

- ``on_fit_begin(trainer)``: once, after a resumed run has been restored;
- ``on_epoch_begin(trainer)``: before the first batch of an epoch (not when a run resumes in
  the middle of one);
- ``on_before_update(trainer, optimizer)``: after ``backward``, before ``optimizer.update()``
  (gradient clipping lives here);
- ``on_batch_end(trainer, logs)``: after each batch; ``logs`` holds its loss and metrics;
- ``on_epoch_end(trainer, logs)``: ``logs`` is the epoch's record (train and validation
  metrics, ``seconds``); a callback may add columns (``lr``);
- ``on_epoch_logged(trainer, record)``: after every ``on_epoch_end``, once the record is
  complete and appended to ``trainer.history``; loggers write here;
- ``on_fit_end(trainer)``: once, also after an interrupt or an error (files are closed).

``state_dict()`` / ``load_state_dict(state)``: what a callback must remember across a resume
(a scheduler's counter, the best value seen); saved in the run's checkpoint, so a resumed
run continues exactly. Callbacks with nothing to remember return None.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from zerograd.optim.clip import clip_grad_norm
from zerograd.serialization import save_npz
from zerograd.training.curves import draw_curves, panels, plot_curves
from zerograd.training.progress import in_notebook
from zerograd.training.rundir import write_metrics_csv

if TYPE_CHECKING:  # the trainer imports this module; the hooks only receive it
    from zerograd.optim.schedulers import LRScheduler
    from zerograd.training.trainer import OptimizerLike, Trainer


class Callback:
    """Base class: every hook does nothing."""

    def on_fit_begin(self, trainer: Trainer) -> None:
        pass

    def on_epoch_begin(self, trainer: Trainer) -> None:
        pass

    def on_before_update(self, trainer: Trainer, optimizer: OptimizerLike) -> None:
        pass

    def on_batch_end(self, trainer: Trainer, logs: dict[str, Any]) -> None:
        pass

    def on_epoch_end(self, trainer: Trainer, logs: dict[str, Any]) -> None:
        pass

    def on_epoch_logged(self, trainer: Trainer, record: dict[str, Any]) -> None:
        pass

    def on_fit_end(self, trainer: Trainer) -> None:
        pass

    def state_dict(self) -> dict[str, Any] | None:
        return None

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass


def _mode(monitor: str, mode: str, owner: str) -> str:
    """'auto': lower is better for losses and errors, higher for anything else (accuracy)."""
    if mode == "auto":
        return "min" if ("loss" in monitor or "error" in monitor) else "max"
    if mode not in ("min", "max"):
        raise ValueError(f"{owner}: mode must be 'auto', 'min' or 'max', got {mode!r}")
    return mode


def _monitored(logs: Mapping[str, Any], monitor: str, owner: str) -> float:
    if monitor not in logs:
        columns = [k for k in logs if k not in ("epoch", "seconds")]
        raise KeyError(f"{owner}: monitor {monitor!r} is not among the epoch's columns "
                       f"{columns}; give val_loader= for 'val_*' columns, or monitor= one of "
                       f"these")
    return float(logs[monitor])


class _Monitor(Callback):
    """Shared by EarlyStopping and ModelCheckpoint: the best value of one column so far."""

    def __init__(self, monitor: str | None, mode: str, min_delta: float) -> None:
        if min_delta < 0:
            raise ValueError(f"{type(self).__name__}: min_delta must be >= 0, got {min_delta}")
        self.monitor, self.mode_arg, self.min_delta = monitor, mode, float(min_delta)
        self.best: float | None = None
        self.best_epoch = 0

    def on_fit_begin(self, trainer: Trainer) -> None:
        self.monitor = self.monitor or trainer.default_monitor
        self.mode = _mode(self.monitor, self.mode_arg, type(self).__name__)

    def improved(self, logs: dict[str, Any]) -> bool:
        """Whether this epoch's value beats the best by more than min_delta; records it."""
        if self.monitor is None:
            raise RuntimeError(f"{type(self).__name__}: no monitor yet; on_fit_begin chooses "
                               f"one (fit calls it)")
        value = _monitored(logs, self.monitor, type(self).__name__)
        if math.isnan(value):
            return False
        better = (self.best is None
                  or (value < self.best - self.min_delta if self.mode == "min"
                      else value > self.best + self.min_delta))
        if better:
            self.best, self.best_epoch = value, int(logs["epoch"])
        return better

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best, "best_epoch": self.best_epoch}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best = None if state["best"] is None else float(state["best"])
        self.best_epoch = int(state["best_epoch"])


class EarlyStopping(_Monitor):
    """Stops when ``monitor`` has not improved by more than ``min_delta`` for ``patience``
    epochs. ``monitor`` defaults to the validation loss (the training loss without
    validation data). ``restore_best_weights``: when it stops, the model gets back the
    weights of the best epoch (they are then what the run saves)."""

    def __init__(self, monitor: str | None = None, patience: int = 5, min_delta: float = 0.0,
                 mode: str = "auto", restore_best_weights: bool = False) -> None:
        super().__init__(monitor, mode, min_delta)
        if not isinstance(patience, int) or patience < 1:
            raise ValueError(f"EarlyStopping: patience must be an int >= 1, got {patience!r}")
        self.patience = patience
        self.restore_best_weights = restore_best_weights
        self.wait = 0
        self.stopped_epoch = 0
        self.best_weights: dict | None = None

    def on_epoch_end(self, trainer: Trainer, logs: dict[str, Any]) -> None:
        if self.improved(logs):
            self.wait = 0
            if self.restore_best_weights:
                self.best_weights = trainer.model.state_dict()
            return
        self.wait += 1
        if self.wait >= self.patience:
            trainer.stop_training = True
            self.stopped_epoch = int(logs["epoch"])
            if self.restore_best_weights and self.best_weights is not None:
                trainer.model.load_state_dict(self.best_weights)
            trainer.log(f"early stopping: {self.monitor} has not improved for {self.patience} "
                        f"epoch(s); best {self.best:.4f} at epoch {self.best_epoch}")

    def state_dict(self) -> dict[str, Any]:
        state = {**super().state_dict(), "wait": self.wait, "stopped_epoch": self.stopped_epoch}
        if self.best_weights is not None:
            state["best_weights"] = self.best_weights
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.wait, self.stopped_epoch = int(state["wait"]), int(state["stopped_epoch"])
        self.best_weights = state.get("best_weights")


class ModelCheckpoint(_Monitor):
    """Saves the weights of the best epoch by ``monitor`` (``best.npz``) and of the last one
    (``last.npz``) into ``directory``, each atomically, in ``Layer.save_weights`` format.

    ``directory`` defaults to the run's ``out``; there the last weights are the run's own
    ``weights.npz``, so only ``best.npz`` is written. The best file is written before the
    epoch is committed: if the process dies in between, resuming repeats that epoch
    bit-identically and writes the same file again.
    """

    def __init__(self, directory: str | os.PathLike | None = None, monitor: str | None = None,
                 mode: str = "auto", save_best: bool = True, save_last: bool = True,
                 min_delta: float = 0.0) -> None:
        super().__init__(monitor, mode, min_delta)
        self.directory = None if directory is None else os.fspath(directory)
        self.save_best, self.save_last = save_best, save_last

    def on_fit_begin(self, trainer: Trainer) -> None:
        super().on_fit_begin(trainer)
        target = self.directory or trainer.out
        if target is None:
            raise ValueError("ModelCheckpoint: give directory=, or fit(..., out=DIR)")
        self.target: str = target
        self.in_run = trainer.out is not None and \
            os.path.abspath(self.target) == os.path.abspath(trainer.out)

    @property
    def best_path(self) -> str:
        return os.path.join(self.target, "best.npz")

    def on_epoch_end(self, trainer: Trainer, logs: dict[str, Any]) -> None:
        if not trainer.is_main:
            self.improved(logs)
            return
        weights = None
        if self.improved(logs) and self.save_best:
            weights = trainer.model.state_dict()
            save_npz(self.best_path, weights)
        if self.save_last and not self.in_run:
            save_npz(os.path.join(self.target, "last.npz"),
                     weights if weights is not None else trainer.model.state_dict())

    def summary(self) -> dict[str, Any]:
        return {"monitor": self.monitor, "value": self.best, "epoch": self.best_epoch}


class LearningRateScheduler(Callback):
    """Steps one of ``zerograd.optim``'s schedulers (StepLR, MultiStepLR, ExponentialLR,
    CosineAnnealingLR, LinearWarmup) after every epoch, or after every batch with
    ``interval="step"``. Adds the column ``lr``: the rate the epoch started with."""

    def __init__(self, scheduler: LRScheduler, interval: str = "epoch") -> None:
        if interval not in ("epoch", "step"):
            raise ValueError(f"LearningRateScheduler: interval must be 'epoch' or 'step', got "
                             f"{interval!r}")
        if not (hasattr(scheduler, "step") and hasattr(scheduler, "state_dict")):
            raise TypeError(f"LearningRateScheduler: expected a zerograd.optim scheduler, got "
                            f"{type(scheduler).__name__}")
        self.scheduler, self.interval = scheduler, interval
        self.lr_used = scheduler.get_lr()

    def on_epoch_begin(self, trainer: Trainer) -> None:
        self.lr_used = self.scheduler.optimizer.get_lr()

    def on_batch_end(self, trainer: Trainer, logs: dict[str, Any]) -> None:
        if self.interval == "step":
            self.scheduler.step()

    def on_epoch_end(self, trainer: Trainer, logs: dict[str, Any]) -> None:
        logs["lr"] = self.lr_used
        if self.interval == "epoch":
            self.scheduler.step()

    def state_dict(self) -> dict[str, Any]:
        return {"scheduler": self.scheduler.state_dict(), "lr_used": self.lr_used}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.scheduler.load_state_dict(state["scheduler"])
        self.lr_used = float(state["lr_used"])


class GradientClipping(Callback):
    """Scales the gradients before every update so that their global norm is at most
    ``max_norm`` (``optim.clip_grad_norm``). Adds the column ``grad_norm``: the epoch's mean
    norm before clipping, which tells whether the limit bites."""

    def __init__(self, max_norm: float) -> None:
        if not max_norm > 0:
            raise ValueError(f"GradientClipping: max_norm must be positive, got {max_norm!r}")
        self.max_norm = float(max_norm)
        self.total, self.count = 0.0, 0

    def on_epoch_begin(self, trainer: Trainer) -> None:
        self.total, self.count = 0.0, 0

    def on_before_update(self, trainer: Trainer, optimizer: OptimizerLike) -> None:
        self.total += clip_grad_norm(list(optimizer.target_params()), self.max_norm)
        self.count += 1

    def on_epoch_end(self, trainer: Trainer, logs: dict[str, Any]) -> None:
        if self.count:
            logs["grad_norm"] = self.total / self.count

    def state_dict(self) -> dict[str, Any]:
        return {"total": self.total, "count": self.count}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.total, self.count = float(state["total"]), int(state["count"])


class CSVLogger(Callback):
    """Writes the history to ``path`` as CSV after every epoch, one row per epoch (the whole
    file, atomically: a resumed run rewrites it from its restored history)."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = os.fspath(path)

    def on_epoch_logged(self, trainer: Trainer, record: dict[str, Any]) -> None:
        if trainer.is_main:
            write_metrics_csv(self.path, trainer.history)


class TensorBoard(Callback):
    """Logs every column of every epoch to TensorBoard event files in ``logdir``, as
    ``loss/train``, ``loss/val``, ... (``pip install tensorboardX``, or the extra
    ``zerograd[tensorboard]``). A resumed run purges the events of the epochs it repeats."""

    def __init__(self, logdir: str | os.PathLike) -> None:
        self.logdir = os.fspath(logdir)
        self.writer = None

    def on_fit_begin(self, trainer: Trainer) -> None:
        if not trainer.is_main:
            return
        try:
            from tensorboardX import SummaryWriter
        except ImportError as error:
            raise ImportError("TensorBoard needs tensorboardX: pip install tensorboardX (or "
                              "pip install 'zerograd[tensorboard]')") from error
        # purge_step: events of epochs after the last commit were written by a killed
        # process; the resumed run writes them again.
        purge = trainer.epoch + 1 if trainer.epoch else None
        self.writer = SummaryWriter(self.logdir, purge_step=purge)

    def on_epoch_logged(self, trainer: Trainer, record: dict[str, Any]) -> None:
        if self.writer is None:
            return
        for base, lines in panels(record).items():
            for column, label in lines:
                self.writer.add_scalar(f"{base}/{label}", record[column], record["epoch"])
        for column in ("lr", "seconds"):
            if column in record:
                self.writer.add_scalar(column, record[column], record["epoch"])
        self.writer.flush()

    def on_fit_end(self, trainer: Trainer) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


class LiveCurves(Callback):
    """Draws the learning curves after every epoch: to ``path`` (a PNG, rewritten
    atomically) and, in a Jupyter notebook, inline (one image, updated in place).

    Drawing costs tens of milliseconds, more than a tiny epoch, so it is done at most every
    ``every`` seconds, and always after the first and the last epoch.
    """

    def __init__(self, path: str | os.PathLike | None = None, every: float = 2.0,
                 inline: bool | None = None) -> None:
        self.path = None if path is None else os.fspath(path)
        self.every = float(every)
        self.inline = inline
        self.last_draw = -math.inf
        self.handle = None
        self.drawn_epoch = 0

    def on_fit_begin(self, trainer: Trainer) -> None:
        if self.inline is None:
            self.inline = in_notebook()

    def on_epoch_logged(self, trainer: Trainer, record: dict[str, Any]) -> None:
        if trainer.is_main and time.perf_counter() - self.last_draw >= self.every:
            self.draw(trainer)

    def on_fit_end(self, trainer: Trainer) -> None:
        if trainer.is_main and trainer.history and self.drawn_epoch != trainer.epoch:
            self.draw(trainer)

    def draw(self, trainer: Trainer) -> None:
        self.last_draw = time.perf_counter()
        self.drawn_epoch = trainer.epoch
        if self.path is not None:
            plot_curves(trainer.history, self.path)
        if self.inline:
            self._show(trainer.history)

    def _show(self, history: list) -> None:
        import io

        from IPython.display import Image, display

        figure = draw_curves(history)
        if figure is None:
            return
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", dpi=80)
        image = Image(data=buffer.getvalue(), format="png")
        if self.handle is None:
            self.handle = display(image, display_id=True)
        else:
            self.handle.update(image)


__all__ = ["CSVLogger", "Callback", "EarlyStopping", "GradientClipping", "LearningRateScheduler",
           "LiveCurves", "ModelCheckpoint", "TensorBoard"]
