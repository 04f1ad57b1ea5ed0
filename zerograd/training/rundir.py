"""The run directory of ``fit(..., out=DIR)``: one commit point, files derived from it.

- ``checkpoint.npz`` is the run: the configuration, the completed epochs and the history
  and, once training has begun, the weights, the optimizer state, the random state, the
  loader's position (its order and cursor, so a run can resume in the middle of an epoch),
  the callbacks' state (schedulers, early stopping, best metric) and the running sums of an
  unfinished epoch. Resuming reads nothing else.
- ``weights.npz``, ``optimizer.npz``, ``metrics.csv``, ``curves.png``, ``metrics.json``:
  derived from the checkpoint, for people and for ``zerograd eval``.

The commit protocol: every save writes the checkpoint to a temporary file and renames it
over the old one. That rename is the one commit point; the derived files are rewritten from
the same state afterwards, ``metrics.json`` last. A process killed at any instant therefore
leaves either the old or the new checkpoint, never a mix, and at worst derived files one
save behind it. Resuming (and ``zerograd eval``, when it finds them behind) rewrites the
derived files from the checkpoint first and removes the temporary files of killed saves.
Everything in ``metrics.json``, timestamps and versions included, comes from the
checkpoint, so a rewritten file is the file that would have been written.
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeGuard

import numpy as np

from zerograd.errors import ZerogradError
from zerograd.serialization import (
    atomic_write,
    load_json,
    load_state,
    remove_stale_temp_files,
    save_json,
    save_npz,
    save_state,
)
from zerograd.training.curves import plot_curves

if TYPE_CHECKING:  # the trainer imports this module
    from zerograd.nn.layer import Layer
    from zerograd.training.trainer import OptimizerLike

CHECKPOINT, WEIGHTS, OPTIMIZER, METRICS, METRICS_CSV, CURVES = (
    "checkpoint.npz", "weights.npz", "optimizer.npz", "metrics.json", "metrics.csv",
    "curves.png")
# The files derived from the checkpoint, in the order they are written: metrics.json last,
# so that its epochs_done (and step) vouch for every file written before it.
DERIVED = (WEIGHTS, OPTIMIZER, METRICS_CSV, CURVES, METRICS)
RUN_FILES = (CHECKPOINT, *DERIVED)
CHECKPOINT_FORMAT = 1
# What a checkpoint holds once training has begun.
TRAINED_STATE = ("model", "optimizer", "rng")


class CheckpointError(ZerogradError):
    """A checkpoint that cannot be used: corrupt, edited, or not the model's."""


class WeightsMismatchError(CheckpointError):
    """Weights that do not fit the model; ``path`` names the file, ``detail`` says how."""

    def __init__(self, path: str, detail: str) -> None:
        super().__init__(f"{path} does not fit the model: {detail}")
        self.path, self.detail = path, detail


def bad_checkpoint(path: str, problem: str) -> CheckpointError:
    return CheckpointError(f"{path}: not a usable zerograd checkpoint: {problem} (the file is "
                           f"corrupt, was edited, or was written by another program)")


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)  # JSON true is not a count


def check_arrays(arrays: Mapping[str, Any], path: str, what: str) -> None:
    """Weights must be numeric arrays: a crafted file may hold text, which NumPy loads."""
    for key, value in arrays.items():
        if not isinstance(value, np.ndarray) or value.dtype.kind not in "biuf":
            kind = getattr(value, "dtype", type(value).__name__)
            raise CheckpointError(f"{path}: {what} entry {key!r} is {kind}, expected a numeric "
                                  f"array")


def _is_record(record: object, epoch: int, first: Any) -> bool:
    """Whether ``record`` is epoch ``epoch``'s: numbers only, and the same columns as the
    first record (the CSV and the curves take their columns from it)."""
    return (isinstance(record, dict) and record.get("epoch") == epoch
            and {"epoch", "loss"} <= set(record) and set(record) == set(first)
            and all(isinstance(v, (int, float)) and not isinstance(v, bool)
                    for v in record.values()))


def check_checkpoint(state: object, path: str) -> dict[str, Any]:
    """Checks the structure of a loaded checkpoint; returns it. CheckpointError otherwise."""
    if not isinstance(state, dict):
        raise bad_checkpoint(path, f"it holds a {type(state).__name__}, not a dict")
    if state.get("format") != CHECKPOINT_FORMAT:
        raise bad_checkpoint(path, f"format {state.get('format')!r}, expected "
                                   f"{CHECKPOINT_FORMAT}")
    epoch, history = state.get("epoch"), state.get("history")
    step = state.get("step", 0)
    if not _is_int(epoch) or epoch < 0:
        raise bad_checkpoint(path, f"epoch is {epoch!r}, expected a count of epochs")
    if not _is_int(step) or step < 0:
        raise bad_checkpoint(path, f"step is {step!r}, expected a count of batches")
    if not isinstance(history, list):
        raise bad_checkpoint(path, f"the history is a {type(history).__name__}, expected a "
                                   f"list of records")
    if len(history) != epoch:
        raise bad_checkpoint(path, f"the history has {len(history)} records for {epoch} "
                                   f"epochs")
    for i, record in enumerate(history, 1):
        if not _is_record(record, i, history[0]):
            raise bad_checkpoint(path, f"history record {i} is {record!r}")
    if epoch > 0 or step > 0:
        for key in TRAINED_STATE:
            if not isinstance(state.get(key), dict):
                raise bad_checkpoint(path, f"no {key!r} state after {epoch} epochs")
        check_arrays(state["model"], path, "the weights")
    return state


def expected_checkpoint(model: Layer,
                        optimizer: OptimizerLike | Mapping[str, OptimizerLike] | None
                        ) -> dict[str, Any]:
    """The arrays a checkpoint must hold to fit ``model`` and ``optimizer`` (an Optimizer,
    or a dict of them by name, as ``fit``'s ``optimizers``), as ``load_state``'s
    ``expected``: the model's own parameters and buffers stand for their shapes and dtypes
    (None: a lazy entry not sized yet), nothing is copied."""
    weights = None
    if hasattr(model, "named_params"):  # a Layer; anything else is restored by its own code
        weights = {key: param.data for key, param in model.named_params()}
        weights.update(model.named_buffers())
    state: dict[str, Any] | None
    if isinstance(optimizer, Mapping):
        state = {name: opt.expected_state() for name, opt in optimizer.items()}
    else:
        state = optimizer.expected_state() if optimizer is not None else None
    return {"model": weights, "optimizer": state}


def load_checkpoint(out: str, expected: Mapping[str, Any] | None = None
                    ) -> dict[str, Any] | None:
    """The checked checkpoint of the run in ``out``, or None when there is none.

    ``expected`` (see :func:`expected_checkpoint`): the model and optimizer that will receive
    it, whose shapes are then checked on the file's headers before any array is read. Without
    it, the arrays are bounded by the file's size (serialization.MAX_INFLATION).
    """
    path = os.path.join(out, CHECKPOINT)
    if not os.path.exists(path):
        return None
    state = load_state(path, expected=expected, caller="load_checkpoint")
    return check_checkpoint(state, path)  # CorruptFileError names the file too


def _remove(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.remove(path)


def write_metrics_csv(path: str, history: list[dict[str, Any]]) -> None:
    """One row per epoch, the columns of the records; written atomically."""
    columns = list(history[0]) if history else ["epoch", "loss", "seconds"]
    text = io.StringIO()
    writer = csv.DictWriter(text, columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(history)
    with atomic_write(path, "w") as f:
        f.write(text.getvalue())


def trained(state: dict[str, Any]) -> bool:
    return state["epoch"] > 0 or state.get("step", 0) > 0


def finished(state: dict[str, Any]) -> bool:
    epochs = state.get("epochs")
    return bool(state.get("stopped")) or (epochs is not None and state["epoch"] >= epochs
                                          and state.get("step", 0) == 0)


def metrics_summary(state: dict[str, Any]) -> dict[str, Any]:
    """What ``metrics.json`` holds: all of it read from the checkpoint ``state``."""
    return {
        "config": state.get("config", {}), "epochs": state.get("epochs"),
        "epochs_done": state["epoch"], "step": state.get("step", 0),
        "finished": finished(state), "stopped_early": bool(state.get("stopped")),
        "best": state.get("best"), "history": state["history"],
        "versions": state.get("versions", {}), "created": state.get("created"),
        "saved": state.get("saved"),
    }


def write_outputs(out: str, state: dict[str, Any], curves: bool) -> list[str]:
    """Rewrites every derived file of ``out`` from the checkpoint ``state``; returns their names.

    Each file is written atomically and ``metrics.json`` last. What the state has nothing for
    is removed rather than left stale: weights and optimizer state before training began,
    curves before the first epoch or without matplotlib. With ``curves=False`` an existing
    ``curves.png`` is left as it is (drawing may cost more than a small epoch; the loop
    decides when it is worth it).
    """
    paths = {name: os.path.join(out, name) for name in DERIVED}
    if trained(state):
        save_npz(paths[WEIGHTS], state["model"])  # what Layer.save_weights writes
        save_state(paths[OPTIMIZER], state["optimizer"])
    else:
        _remove(paths[WEIGHTS])
        _remove(paths[OPTIMIZER])
    write_metrics_csv(paths[METRICS_CSV], state["history"])
    if state["epoch"] == 0 or (curves and plot_curves(state["history"], paths[CURVES]) is None):
        _remove(paths[CURVES])
    save_json(paths[METRICS], metrics_summary(state))
    return [name for name in DERIVED if os.path.exists(paths[name])]


def commit(out: str, state: dict[str, Any], curves: bool = False) -> list[str]:
    """Saves a run: the checkpoint (the commit point), then the files derived from it."""
    save_state(os.path.join(out, CHECKPOINT), state)
    return write_outputs(out, state, curves)


def outputs_match(out: str, state: dict) -> bool:
    """Whether the derived files describe the checkpoint ``state``: ``metrics.json`` is
    written last, so its epoch and step equal to the checkpoint's vouch for the others."""
    try:
        metrics = load_json(os.path.join(out, METRICS))
    except (OSError, ZerogradError):
        return False
    if not isinstance(metrics, dict) or metrics.get("epochs_done") != state["epoch"] \
            or metrics.get("step", 0) != state.get("step", 0):
        return False
    return not trained(state) or all(os.path.exists(os.path.join(out, name))
                                     for name in (WEIGHTS, OPTIMIZER))


def repair(out: str, state: dict[str, Any], log: Callable[[str], None], always: bool,
           curves: bool = True) -> None:
    """Rewrites the derived files from the checkpoint: ``always`` (on resume), or when they
    are behind it. Either way the temporary files of killed saves go first. ``curves=False``
    when training goes on, which redraws them."""
    removed = remove_stale_temp_files(out)
    if removed:
        log(f"note: removed {len(removed)} temporary file(s) of interrupted saves from {out}")
    behind = not outputs_match(out, state)
    if behind:
        log(f"note: the files in {out} were behind {CHECKPOINT} (epoch {state['epoch']}), "
            f"from a save that was interrupted; rewriting them from it")
    if behind or always:
        write_outputs(out, state, curves=curves)


def finish_interrupted(out: str, log: Callable[[str], None]) -> None:
    """After Ctrl-C or SIGTERM: rewrites every derived file, curves included, from the
    checkpoint on disk. That is the last commit whatever instant the interrupt came at (the
    run in memory may be a save ahead when it came during one)."""
    state = load_checkpoint(out)
    if state is None:
        return
    write_outputs(out, state, curves=True)
    log(f"interrupted: {state['epoch']} completed epoch(s) saved in {out}, with their "
        f"metrics and curves")


def existing_run(out: str, describe: Callable[[dict[str, Any]], str] | None = None
                 ) -> str | None:
    """What run ``out`` already holds, in words, or None when it holds none."""
    present = [name for name in RUN_FILES if os.path.exists(os.path.join(out, name))]
    if not present:
        return None
    if CHECKPOINT in present:
        try:
            state = load_checkpoint(out)
        except ZerogradError:
            return f"an unreadable {CHECKPOINT}"
        if state is None:  # removed since it was listed
            return ", ".join(name for name in present if name != CHECKPOINT) or None
        if describe is not None:
            return describe(state)
        return f"{state['epoch']} of {state.get('epochs')} epochs"
    return ", ".join(present)


__all__ = [
    "CHECKPOINT", "CURVES", "CheckpointError", "DERIVED", "METRICS", "METRICS_CSV", "OPTIMIZER",
    "RUN_FILES", "WEIGHTS", "WeightsMismatchError", "bad_checkpoint", "check_arrays",
    "check_checkpoint", "commit", "existing_run", "expected_checkpoint", "finish_interrupted",
    "load_checkpoint",
    "metrics_summary", "outputs_match", "repair", "write_metrics_csv", "write_outputs",
]
