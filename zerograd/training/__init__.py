"""``zerograd.training``: one well-made training loop for any model and any data.

::

    from zerograd import training
    trainer = training.fit(model, train_loader, optimizer, loss="softmax_cross_entropy",
                           epochs=10, val_loader=val_loader, metrics=("accuracy",),
                           callbacks=[training.EarlyStopping(patience=3)], out="runs/mine")
    trainer.history[-1]["val_accuracy"]

``fit`` shows a progress bar and a line per epoch, runs the callbacks, and with ``out=``
keeps a run directory that ``resume=True`` continues bit-identically after any interrupt
(docs/training.md). ``zerograd train`` is a thin command line over it.
"""

from zerograd.training import callbacks, rundir
from zerograd.training.callbacks import (
    Callback,
    CSVLogger,
    EarlyStopping,
    GradientClipping,
    LearningRateScheduler,
    LiveCurves,
    ModelCheckpoint,
    TensorBoard,
)
from zerograd.training.curves import draw_curves, plot_curves
from zerograd.training.metrics import LOSSES, METRICS, accuracy
from zerograd.training.progress import format_epoch, format_seconds
from zerograd.training.rundir import CheckpointError, WeightsMismatchError, load_checkpoint
from zerograd.training.steps import TruncatedBPTT
from zerograd.training.trainer import (
    RunExistsError,
    Terminated,
    Trainer,
    evaluate,
    fit,
    predict,
)

__all__ = [
    "CSVLogger", "Callback", "CheckpointError", "EarlyStopping", "GradientClipping", "LOSSES",
    "LearningRateScheduler", "LiveCurves", "METRICS", "ModelCheckpoint", "RunExistsError",
    "TensorBoard", "Terminated", "Trainer", "TruncatedBPTT", "WeightsMismatchError", "accuracy",
    "callbacks", "draw_curves", "evaluate", "fit", "format_epoch", "format_seconds",
    "load_checkpoint", "plot_curves", "predict", "rundir",
]
