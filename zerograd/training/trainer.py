"""``fit``: the training loop, with progress, metrics, callbacks and exact resume.

``fit(model, train_loader, optimizer, loss=..., epochs=...)`` trains ``model`` and returns
the ``Trainer`` that ran it (``trainer.history`` is one record per epoch). ``Trainer`` is
the object every callback and custom step receives; subclass it and override
``train_step``/``eval_step``, or pass ``train_step=fn`` for a step ``fn(trainer, batch)``.

With ``out=DIR`` the run is kept in a run directory (``training.rundir``): committed after
every epoch (and every ``checkpoint_every`` batches), so that ``resume=True`` continues an
interrupted run and ends with the very weights an uninterrupted one has. What is restored:
the model, the optimizer, the callbacks (schedulers, early stopping, best values), NumPy's
global random state and the loader's order and cursor (``DataLoader.state_dict``).

Distributed training plugs in through ``distributed=``: ``True`` for
``zerograd.distributed``, or any object with ``is_main()`` and ``allreduce_sum(array) ->
array`` (``training.group`` says what more it may have). Then only the main process prints
and writes files, the epoch's sums are added over all processes before means are taken,
and a loader whose dataset has ``set_epoch`` (a ``DatasetShard``) is told each epoch.
Gradient averaging is the optimizer's business: pass a ``DistributedOptimizer`` (with more
than one process of ``zerograd.distributed``, fit refuses any other). With
``zerograd.distributed`` the checkpoint is read by the main process alone and broadcast,
and it keeps every process's random state and running sums, so that resuming is exact on
every process.
"""

from __future__ import annotations

import contextlib
import datetime
import os
import platform
import signal
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, Protocol, TypeGuard

import numpy as np

import zerograd
from zerograd import random_state
from zerograd.backend import as_numpy
from zerograd.core.variable import Variable
from zerograd.data.dataset import DatasetLike
from zerograd.data.loader import DataLoader
from zerograd.distributed import DistributedOptimizer
from zerograd.errors import ShapeError, ZerogradError
from zerograd.nn.layer import Layer, StateDictError
from zerograd.optim.optimizer import Optimizer
from zerograd.serialization import remove_stale_temp_files
from zerograd.training import rundir
from zerograd.training.callbacks import Callback, ModelCheckpoint
from zerograd.training.group import ProcessGroup
from zerograd.training.metrics import resolve_loss, resolve_metrics
from zerograd.training.progress import epoch_progress, format_epoch, running_postfix

# Seconds between two drawings of the run directory's curves.png (always drawn after the
# last epoch). One drawing costs 0.15-0.8 s (measured, docs/training.md), far more than a
# small epoch.
CURVES_EVERY = 10.0

# What fit takes (see its docstring). A batch is what the loader yields, usually (x, t).
LossFn = Callable[[Any, Any], Any]  # loss(y, t) -> Variable
MetricFn = Callable[[Any, Any], float]  # metric(y, t) -> float, y an array
Metrics = Iterable[str | MetricFn] | Mapping[str, MetricFn] | str | MetricFn | None
StepFn = Callable[["Trainer", Any], Any]  # step(trainer, batch) -> {"loss": ..., ...}
# One optimizer (a DistributedOptimizer forwards everything else to the one it wraps).
OptimizerLike = Optimizer | DistributedOptimizer


class Terminated(BaseException):
    """SIGTERM, raised in the main thread while ``fit`` runs.

    A BaseException, like KeyboardInterrupt, so that no ``except Exception`` swallows it.
    """


class RunExistsError(ZerogradError):
    """``out`` holds a run, and neither ``resume`` nor ``overwrite`` was given."""


def _raise_terminated(signum: int, frame: object) -> None:
    raise Terminated()


@contextlib.contextmanager
def sigterm_raises() -> Iterator[None]:
    """SIGTERM raises Terminated inside the block, so that a run ends like Ctrl-C (with the
    files of its last commit written) instead of dying mid-way."""
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers can only be set from the main thread
        return
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def _scalar(value: Any) -> float:
    if isinstance(value, Variable):
        value = value.data
    return float(as_numpy(value))


def load_model_state(model: Layer, arrays: Mapping[str, Any], source: str) -> None:
    """``model.load_state_dict(arrays)``; WeightsMismatchError naming ``source`` and what
    differs (keys the model lacks or has, or a shape)."""
    try:
        model.load_state_dict(arrays, source=source)
    except StateDictError:
        keys = [key for key, _ in model.named_params()] + [k for k, _ in model.named_buffers()]
        missing = [key for key in keys if key not in arrays]
        unexpected = [key for key in arrays if key not in set(keys)]
        parts = ([f"the model has {missing} that the file lacks"] if missing else []) + \
                ([f"the file has {unexpected} that the model lacks"] if unexpected else [])
        raise rundir.WeightsMismatchError(source, "; ".join(parts)) from None
    except ShapeError as error:
        raise rundir.WeightsMismatchError(source, str(error)) from None


def probe(model: Layer, dataset: DatasetLike, source: str) -> None:
    """One forward pass on two examples, so that weights whose shapes only the data can check
    (lazily sized layers take a stored array as it is) fail here, naming their file. In test
    mode and without a graph: nothing is drawn from the random state, nothing changes."""
    x, _ = next(iter(DataLoader(dataset, min(2, len(dataset)), shuffle=False)))
    try:
        with zerograd.no_grad(), zerograd.test_mode():
            model(x)
    except ShapeError as error:
        raise rundir.WeightsMismatchError(source, str(error)) from None


class _Stateful(Protocol):
    """A loader (or step) that saves its position: DataLoader's state_dict protocol."""

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


def _has_state(loader: object) -> TypeGuard[_Stateful]:
    return hasattr(loader, "state_dict") and hasattr(loader, "load_state_dict")


def _split(batch: Any) -> tuple[Any, Any]:
    """(x, t) of a batch: a pair, or inputs alone (t None)."""
    if isinstance(batch, (tuple, list)) and len(batch) == 2:
        return batch[0], batch[1]
    return batch, None


class Trainer:
    """Runs the loop of :func:`fit` (see there for the arguments) and holds its state.

    What callbacks and steps read: ``model``, ``optimizer``, ``loss_fn``, ``metrics``,
    ``epoch`` (completed epochs), ``epochs`` (the total), ``step`` (batches done in the
    current epoch), ``global_step``, ``batches_per_epoch`` (None for an iterable without a
    length), ``history``, ``out``, ``is_main``, ``stop_training`` (set it to stop after the
    epoch), ``log(text)``.
    """

    def __init__(self, model: Layer, train_loader: Iterable[Any],
                 optimizer: OptimizerLike | Mapping[str, OptimizerLike] | None,
                 loss: str | LossFn = "softmax_cross_entropy", epochs: int = 1,
                 val_loader: Iterable[Any] | None = None, metrics: Metrics = ("accuracy",),
                 callbacks: Iterable[Callback] = (), out: str | os.PathLike | None = None,
                 resume: bool = False, overwrite: bool = False,
                 config: dict[str, Any] | None = None, train_step: StepFn | None = None,
                 eval_step: StepFn | None = None, verbose: int = 1,
                 log: Callable[[str], None] = print, val_name: str = "val",
                 checkpoint_every: int | None = None, curves_every: float = CURVES_EVERY,
                 distributed: Any = None) -> None:
        if not isinstance(epochs, int) or isinstance(epochs, bool) or epochs < 1:
            raise ValueError(f"fit: epochs must be a positive int, got {epochs!r}")
        if verbose not in (0, 1, 2):
            raise ValueError(f"fit: verbose must be 0 (quiet), 1 (progress bar and a line per "
                             f"epoch) or 2 (a line per epoch), got {verbose!r}")
        if checkpoint_every is not None:
            if out is None:
                raise ValueError("fit: checkpoint_every needs out=, the run directory")
            if not _has_state(train_loader):
                raise TypeError(f"fit: checkpoint_every needs a loader that can save its "
                                f"position (state_dict/load_state_dict, as DataLoader); got "
                                f"{type(train_loader).__name__}")
            if not isinstance(checkpoint_every, int) or checkpoint_every < 1:
                raise ValueError(f"fit: checkpoint_every must be a positive int (batches), got "
                                 f"{checkpoint_every!r}")
        if resume and out is None:
            raise ValueError("fit: resume=True needs out=, the run directory to continue")
        if resume and overwrite:
            raise ValueError("fit: resume=True continues the run in out and overwrite=True "
                             "replaces it; give one of them")
        self.model = model
        self.train_loader = train_loader
        self.optimizer = optimizer
        self.optimizers = dict(optimizer) if isinstance(optimizer, Mapping) else None
        self.loss_fn = resolve_loss(loss)
        self.epochs = epochs
        self.val_loader = val_loader
        self.val_name = val_name
        self.metrics = resolve_metrics(metrics)
        self.callbacks = list(callbacks)
        for cb in self.callbacks:
            if not isinstance(cb, Callback):
                raise TypeError(f"fit: callbacks must be Callback instances, got "
                                f"{type(cb).__name__}")
        self.out = None if out is None else os.fspath(out)
        self.resume, self.overwrite = resume, overwrite
        self.config = {} if config is None else config
        self.custom_step = train_step
        self._train = (lambda batch: train_step(self, batch)) if train_step else self.train_step
        self._eval = (lambda batch: eval_step(self, batch)) if eval_step else self.eval_step
        self.verbose = verbose
        self.group = ProcessGroup(distributed)
        self.distributed = self.group.distributed
        self.is_main = self.group.is_main
        if not self.group.alone and self.group.size is not None:
            given: list[object] = list(self.optimizers.values()) if self.optimizers \
                else [optimizer]
            for opt in given:
                if opt is not None and not isinstance(opt, DistributedOptimizer):
                    # Without the averaging every process would train its own model.
                    raise TypeError(f"fit: training on {self.group.size} processes needs "
                                    f"each optimizer wrapped in "
                                    f"zerograd.distributed.DistributedOptimizer, which "
                                    f"averages the gradients; got {type(opt).__name__}")
        self.log = log if verbose and self.is_main else (lambda text: None)
        self.checkpoint_every = checkpoint_every
        self.curves_every = curves_every
        self.batches_per_epoch: int | None
        try:
            # An iterable without len() raises TypeError: that is the check.
            self.batches_per_epoch = len(train_loader)  # type: ignore[arg-type]
        except TypeError:
            self.batches_per_epoch = None
        self.default_monitor = f"{val_name}_loss" if val_loader is not None else "loss"
        # The run's state: what the checkpoint holds.
        self.epoch, self.step, self.global_step = 0, 0, 0
        self.history: list[dict] = []
        self.stop_training = False
        self.stopped = False
        self.created = _now()
        self._sums: dict[str, float] = {}
        self._count = 0
        self._elapsed = 0.0
        # The clock of curves.png starts with the run: a run of small epochs draws its
        # curves at the end only, a long one every CURVES_EVERY seconds.
        self._last_curves = time.perf_counter()
        self._checkpoint_due = False

    # -- the steps a subclass may override -----------------------------------------------------
    def train_step(self, batch: Any) -> dict[str, Any]:
        """One batch: forward, loss, backward, update. Returns what the loop records:
        ``loss`` (a Variable or a number), ``y`` and ``t`` for the metrics, ``n`` the batch
        size (default: the length of ``x``), and any other numbers to average per epoch."""
        x, t = _split(batch)
        y = self.model(x)
        loss = self.loss_fn(y, t)
        self.backward(loss)
        self.update()
        return {"loss": loss, "y": y, "t": t, "n": len(x)}

    def eval_step(self, batch: Any) -> dict[str, Any]:
        """One validation batch, already inside ``no_grad`` and ``test_mode``."""
        x, t = _split(batch)
        y = self.model(x)
        return {"loss": self.loss_fn(y, t), "y": y, "t": t, "n": len(x)}

    def backward(self, loss: Variable) -> None:
        """Clears the model's gradients, then back-propagates ``loss``."""
        self.model.cleargrads()
        loss.backward()

    def update(self, optimizer: OptimizerLike | str | None = None) -> None:
        """Runs the callbacks' ``on_before_update`` (clipping), then ``optimizer.update()``
        (the one optimizer by default; name one for a dict of optimizers)."""
        if optimizer is None:
            optimizer = self._the_optimizer("Trainer.update")
        elif isinstance(optimizer, str):
            if self.optimizers is None:
                raise ValueError(f"Trainer.update({optimizer!r}): fit got one optimizer, not a "
                                 f"dict of them; call update() without a name")
            optimizer = self.optimizers[optimizer]
        if not isinstance(optimizer, DistributedOptimizer):
            for cb in self.callbacks:
                cb.on_before_update(self, optimizer)
            optimizer.update()
            return
        # A DistributedOptimizer: average over the ranks first, so that clipping (and any
        # other callback before the update) sees the gradients one process with the whole
        # batch would have, then update without averaging again.
        optimizer.average_gradients()
        for cb in self.callbacks:
            cb.on_before_update(self, optimizer)
        optimizer.update(average=False)

    def _the_optimizer(self, caller: str) -> OptimizerLike:
        """The one optimizer fit got; an error naming ``caller`` for a dict or none."""
        optimizer = self.optimizer
        if self.optimizers is not None:
            raise ValueError(f"{caller}: fit got the optimizers {sorted(self.optimizers)}; call "
                             f"update(optimizer) with one")
        if optimizer is None or isinstance(optimizer, Mapping):
            raise ValueError(f"{caller}: fit got no optimizer (optimizer=None)")
        return optimizer

    # -- the loop --------------------------------------------------------------------------------
    def fit(self) -> Trainer:
        with sigterm_raises():
            state = self._start()
            try:
                for cb in self.callbacks:
                    cb.on_fit_begin(self)
                if state is not None and (self.stopped or (self.epoch >= self.epochs
                                                           and self.step == 0)):
                    why = "stopped early" if self.stopped else "finished"
                    self.log(f"nothing to do: the run is {why}, with {self.epoch} of "
                             f"{self.epochs} epochs, and its files are consistent (raise "
                             f"epochs to continue it)")
                    return self
                written = []
                while self.epoch < self.epochs and not self.stop_training:
                    written = self.run_epoch()
            except (KeyboardInterrupt, Terminated):
                if self.out is not None and self.is_main:
                    rundir.finish_interrupted(self.out, self.log)
                raise
            finally:
                for cb in self.callbacks:
                    cb.on_fit_end(self)
        if self.out is not None and self.is_main:
            if rundir.CURVES not in written:
                self.log(f"note: matplotlib is not installed, so {rundir.CURVES} was not "
                         f"written (pip install matplotlib)")
            self.log(f"wrote {', '.join([rundir.CHECKPOINT, *written])} to {self.out}")
        return self

    def run_epoch(self) -> list[str]:
        """One epoch: training, validation, callbacks, commit, summary line. Returns the
        derived files written (empty without ``out``)."""
        train = self.train_epoch()
        start = time.perf_counter()
        val = self.evaluate(self.val_loader) if self.val_loader is not None else {}
        self.epoch += 1
        self.step = 0
        record = {"epoch": self.epoch, **train,
                  **{f"{self.val_name}_{k}": v for k, v in val.items()},
                  "seconds": self._elapsed + time.perf_counter() - start}
        for cb in self.callbacks:
            cb.on_epoch_end(self, record)
        if self.stop_training:
            self.stopped = True
        self.history.append(record)
        for cb in self.callbacks:
            cb.on_epoch_logged(self, record)
        last = self.epoch >= self.epochs or self.stopped
        written = self._commit(curves=last or self._curves_due())
        self.log(format_epoch(record, self.epochs, (self.val_name,)))
        return written

    def train_epoch(self) -> dict[str, float]:
        """One pass over the training data (or the rest of one, after a resume mid-epoch);
        returns the means of the epoch's loss and metrics."""
        dataset = getattr(self.train_loader, "dataset", None)
        set_epoch = getattr(dataset, "set_epoch", None)
        if set_epoch is not None:
            # A distributed shard: this epoch's examples. Also when resuming in the middle
            # of an epoch, whose remaining batches come from that epoch's shard.
            set_epoch(self.epoch)
        if self.step == 0:
            self._sums, self._count, self._elapsed = {}, 0, 0.0
            for cb in self.callbacks:
                cb.on_epoch_begin(self)
        start = time.perf_counter()
        bar = epoch_progress(self.batches_per_epoch, f"epoch {self.epoch + 1}/{self.epochs}",
                             initial=self.step, enabled=self.verbose == 1 and self.is_main,
                             log=self.log)
        try:
            for batch in self._batches():
                values = self._values(self._train(batch), batch)
                n = int(values.pop("n"))
                for key, value in values.items():
                    self._sums[key] = self._sums.get(key, 0.0) + value * n
                self._count += n
                self.step += 1
                self.global_step += 1
                for cb in self.callbacks:
                    cb.on_batch_end(self, values)
                if bar is not None:
                    bar.update(running_postfix(self._sums, self._count))
                self._maybe_checkpoint(start)
        finally:
            if bar is not None:
                bar.close()
        self._elapsed += time.perf_counter() - start
        return self._means(self._sums, self._count, "training")

    def _batches(self) -> Iterator[Any]:
        """The epoch's batches. A loader with DeZero's protocol is advanced with next(), which
        honours its cursor (a run resumed in the middle of an epoch starts where it was) and
        reshuffles at the end exactly as a for loop does; anything else is iterated."""
        loader = self.train_loader
        if not (_has_state(loader) and hasattr(loader, "__next__")):
            yield from loader
            return
        while True:
            try:
                batch = next(loader)  # type: ignore[call-overload]  # has __next__ (above)
            except StopIteration:
                return
            yield batch

    def _values(self, out: Any, batch: Any) -> dict[str, float]:
        """What one step returned, as numbers: the loss, the metrics, ``n``."""
        if not isinstance(out, Mapping):
            out = {"loss": out}
        if "loss" not in out:
            raise KeyError(f"fit: the step returned {sorted(out)}; it must return the batch's "
                           f"loss (a Variable or number), or a dict with 'loss'")
        n = out.get("n")
        if n is None:
            x, _ = _split(batch)
            n = len(x)
        values = {"loss": _scalar(out["loss"])}
        if self.metrics and "y" in out:
            y, t = out["y"], out.get("t")
            y = y.data if isinstance(y, Variable) else y
            for name, fn in self.metrics.items():
                values[name] = float(fn(y, t))
        for key, value in out.items():
            if key not in ("loss", "y", "t", "n"):
                values[key] = _scalar(value)
        values["n"] = int(n)
        return values

    def _means(self, sums: dict[str, float], count: int, what: str) -> dict[str, float]:
        if self.distributed is not None:
            keys = list(sums)
            total = self.group.allreduce_sum(
                np.array([count, *[sums[k] for k in keys]], dtype=np.float64))
            count, sums = int(total[0]), dict(zip(keys, total[1:].tolist()))
        if count == 0:
            raise ValueError(f"fit: the {what} data gave no batches")
        return {key: value / count for key, value in sums.items()}

    def evaluate(self, loader: Iterable[Any]) -> dict[str, float]:
        """The means of the loss and metrics over ``loader``, in test mode, without a graph."""
        sums: dict[str, float] = {}
        count = 0
        self.model.eval()
        try:
            with zerograd.no_grad(), zerograd.test_mode():
                for batch in loader:
                    values = self._values(self._eval(batch), batch)
                    n = int(values.pop("n"))
                    for key, value in values.items():
                        sums[key] = sums.get(key, 0.0) + value * n
                    count += n
        finally:
            self.model.train()
        return self._means(sums, count, "validation")

    # -- the run directory --------------------------------------------------------------------
    def _curves_due(self) -> bool:
        return time.perf_counter() - self._last_curves >= self.curves_every

    def _maybe_checkpoint(self, start: float) -> None:
        """Commits in the middle of an epoch every ``checkpoint_every`` batches, at the first
        batch where the step is ``ready`` (not inside a truncated-BPTT window)."""
        if self.checkpoint_every is None:
            return
        if self.global_step % self.checkpoint_every == 0:
            self._checkpoint_due = True
        last = self.batches_per_epoch is not None and self.step >= self.batches_per_epoch
        if self._checkpoint_due and not last and getattr(self.custom_step, "ready", True):
            self._checkpoint_due = False
            elapsed = self._elapsed
            self._elapsed += time.perf_counter() - start
            self._commit(curves=False)
            self._elapsed = elapsed  # the epoch's clock keeps counting from ``start``

    def _commit(self, curves: bool) -> list[str]:
        if self.out is None:
            return []
        # What differs between the processes, gathered on every one (a collective), written
        # by the main one.
        ranks = self.group.gather(self._rank_state())
        if not self.is_main:
            return []
        if curves:
            self._last_curves = time.perf_counter()
        state = self.state_dict()
        if ranks is not None and rundir.trained(state):
            state["ranks"] = ranks
        return rundir.commit(self.out, state, curves=curves)

    def _rank_state(self) -> dict[str, Any]:
        """This process's own part of the run: its random state (dropout masks differ
        between processes) and the running sums of an unfinished epoch (of its shard)."""
        state: dict[str, Any] = {"rng": random_state.get_state()}
        if self.step > 0:
            state["partial"] = {"sums": dict(self._sums), "count": self._count,
                                "seconds": self._elapsed}
        return state

    def _own_rank_state(self, state: dict[str, Any], source: str) -> dict[str, Any] | None:
        """This process's part of a checkpointed ``state`` (see ``_rank_state``), or None
        to take the saved one of the main process."""
        saved = state.get("world_size", 1)
        size, rank = self.group.size, self.group.rank
        if size is None or saved == size:
            ranks = state.get("ranks")
            # (A group that knows its size knows this process's rank.)
            if size is None or size == 1 or ranks is None or rank is None:
                return None
            if not isinstance(ranks, list) or len(ranks) != size \
                    or not isinstance(ranks[rank], dict):
                raise rundir.bad_checkpoint(source, f"the states of its {saved} processes "
                                                    f"are not {saved} records")
            return ranks[rank]
        if self.step > 0:
            raise rundir.CheckpointError(
                f"{source}: the run stopped in the middle of epoch {self.epoch + 1} on "
                f"{saved} process(es), whose shards of that epoch {size} processes do not "
                f"have; resume it on {saved} (mpiexec -n {saved})")
        self.log(f"note: the run was trained on {saved} process(es) and continues on {size}: "
                 f"each takes the main process's random state, and the shards change, so the "
                 f"result differs from a run on {saved}")
        return None

    def state_dict(self) -> dict[str, Any]:
        """Everything the run is at this instant: what ``checkpoint.npz`` holds."""
        state: dict[str, Any] = {"format": rundir.CHECKPOINT_FORMAT, "config": self.config,
                 "world_size": self.group.size or 1,
                 "epochs": self.epochs, "epoch": self.epoch, "step": self.step,
                 "global_step": self.global_step, "history": self.history,
                 "stopped": self.stopped, "created": self.created, "saved": _now(),
                 "versions": {"zerograd": zerograd.__version__, "numpy": np.__version__,
                              "python": platform.python_version()}}
        if self.epoch == 0 and self.step == 0:
            return state  # a fresh run is its settings: the code that built it rebuilds it
        if self.optimizers is not None:
            optimizer = {name: opt.state_dict() for name, opt in self.optimizers.items()}
        else:
            optimizer = self._the_optimizer("Trainer.state_dict").state_dict()
        state.update(model=self.model.state_dict(), optimizer=optimizer,
                     rng=random_state.get_state(),
                     callbacks={str(i): cb.state_dict() for i, cb in enumerate(self.callbacks)
                                if cb.state_dict() is not None})
        for key, loader in (("loader", self.train_loader), ("val_loader", self.val_loader)):
            if _has_state(loader):
                state[key] = loader.state_dict()
        step_state = getattr(self.custom_step, "state_dict", None)
        if step_state is not None:  # a stateful step (TruncatedBPTT)
            state["train_step"] = step_state()
        if self.step > 0:
            state["partial"] = {"sums": dict(self._sums), "count": self._count,
                                "seconds": self._elapsed}
        best = [cb.summary() for cb in self.callbacks if isinstance(cb, ModelCheckpoint)]
        if best:
            state["best"] = best[0]
        return state

    def load_state_dict(self, state: dict[str, Any], source: str = rundir.CHECKPOINT) -> None:
        """Puts this freshly built run into a checkpointed state (random state last)."""
        self.epoch, self.step = state["epoch"], state.get("step", 0)
        self.global_step = state.get("global_step", 0)
        self.history = list(state["history"])
        self.stopped = bool(state.get("stopped", False))
        self.created = state.get("created") or self.created
        if not rundir.trained(state):
            return
        load_model_state(self.model, state["model"], source)
        dataset = getattr(self.train_loader, "dataset", None)
        if self.custom_step is None and dataset is not None and hasattr(dataset, "__len__"):
            probe(self.model, dataset, source)
        own = self._own_rank_state(state, source)
        # The loaders' positions are in a shard of the saved number of processes.
        same_shards = state.get("world_size", 1) == (self.group.size or 1)
        try:
            if self.optimizers is not None:
                for name, opt in self.optimizers.items():
                    opt.load_state_dict(state["optimizer"][name], source=source)
            else:
                self._the_optimizer("Trainer.load_state_dict").load_state_dict(
                    state["optimizer"], source=source)
            for key, loader in (("loader", self.train_loader), ("val_loader", self.val_loader)):
                if key in state and _has_state(loader) and same_shards:
                    loader.load_state_dict(state[key])
            saved = state.get("callbacks", {})
            for i, cb in enumerate(self.callbacks):
                if str(i) in saved:
                    cb.load_state_dict(saved[str(i)])
            load_step = getattr(self.custom_step, "load_state_dict", None)
            if "train_step" in state and load_step is not None:
                load_step(state["train_step"])
            mine = state if own is None else own
            partial = mine.get("partial")
            if self.step > 0 and partial is not None:
                self._sums = {k: float(v) for k, v in partial["sums"].items()}
                self._count = int(partial["count"])
                self._elapsed = float(partial["seconds"])
            random_state.set_state(mine["rng"])
        except (KeyError, TypeError, ValueError, IndexError, AttributeError) as error:
            # Where file contents meet code that trusts them: a crafted state must not
            # surface as a traceback from deep inside the optimizer.
            raise rundir.bad_checkpoint(source, f"cannot restore the run "
                                                f"({type(error).__name__}: {error})") from None
        loader = self.train_loader
        if isinstance(loader, DataLoader) and "loader" in state and same_shards:
            # Any order of the right length loads; only a permutation trains on every
            # example once.
            if not np.array_equal(np.sort(np.asarray(loader.index)),
                                  np.arange(loader.data_size)) \
                    or not 0 <= loader.iteration <= loader.max_iter:
                raise rundir.bad_checkpoint(source, f"the loader's order is not a permutation "
                                                    f"of the {loader.data_size} training "
                                                    f"examples")

    def _open_out(self, out: str) -> dict[str, Any] | None:
        """Checks ``out`` (the run directory), and on the main process creates it (a fresh
        run commits its epoch 0). Returns the checkpoint to resume from, or None."""
        if os.path.exists(out) and not os.path.isdir(out):
            raise NotADirectoryError(f"fit: out={out} is a file, not a directory")
        state = None
        if self.resume:
            # The model and optimizer about to receive the checkpoint bound what is read of
            # it: an array whose header does not fit them fails before its data is read.
            expected = rundir.expected_checkpoint(self.model,
                                                  self.optimizers or self.optimizer)
            state = rundir.load_checkpoint(out, expected)
        if self.resume and state is None:
            self.log(f"no checkpoint in {out}; starting a new run")
        if state is None and not self.overwrite:
            existing = rundir.existing_run(out)
            if existing is not None:
                raise RunExistsError(f"fit: out={out} already holds a run ({existing}); pass "
                                     f"resume=True to continue it, overwrite=True to replace "
                                     f"it, or choose another out")
        if self.is_main:
            os.makedirs(out, exist_ok=True)
            if state is None:
                remove_stale_temp_files(out)  # of a killed run that left no checkpoint
                # Epoch 0: from here on the run exists. A fresh run is its settings, the
                # same on every process, so nothing needs gathering.
                rundir.commit(out, self.state_dict(), curves=False)
        return state

    def _start(self) -> dict[str, Any] | None:
        """Prepares ``out``: a fresh run commits its epoch 0; a resumed one is restored and
        its files repaired. Returns the checkpoint resumed from, or None."""
        out = self.out
        if out is None:
            return None
        # The main process opens the run directory; with zerograd.distributed the others
        # get the checkpoint it read from it (their hosts need not see the directory).
        state = self.group.from_main(lambda: self._open_out(out))
        if state is None:
            return None
        path = os.path.join(out, rundir.CHECKPOINT)
        if state.get("config", {}) != self.config and self.config:
            self.log(f"note: the configuration given differs from the run's in {path}; the "
                     f"run continues with the objects given")
        self.load_state_dict(state, path)
        where = f" (batch {self.step} of epoch {self.epoch + 1})" if self.step else ""
        self.log(f"resuming {out} after epoch {self.epoch}{where}")
        if self.is_main:
            done = self.stopped or (self.epoch >= self.epochs and self.step == 0)
            rundir.repair(out, state, self.log, always=True, curves=done)
        return state


def fit(model: Layer, train_loader: Iterable[Any],
        optimizer: OptimizerLike | Mapping[str, OptimizerLike] | None,
        loss: str | LossFn = "softmax_cross_entropy", epochs: int = 1,
        val_loader: Iterable[Any] | None = None, metrics: Metrics = ("accuracy",),
        callbacks: Iterable[Callback] = (), out: str | os.PathLike | None = None,
        resume: bool = False, overwrite: bool = False, config: dict[str, Any] | None = None,
        train_step: StepFn | None = None, eval_step: StepFn | None = None, verbose: int = 1,
        log: Callable[[str], None] = print, val_name: str = "val",
        checkpoint_every: int | None = None, curves_every: float = CURVES_EVERY,
        distributed: Any = None) -> Trainer:
    """Trains ``model`` for ``epochs`` epochs; returns the Trainer (``.history``: one dict of
    means per epoch, Keras's ``History.history`` as records).

    - ``train_loader``: a DataLoader/SeqDataLoader, or any iterable of ``(x, t)`` batches.
    - ``optimizer``: set up on the model; a dict of them for a custom step (GANs).
    - ``loss``: ``loss(y, t) -> Variable`` or a name (``"softmax_cross_entropy"``,
      ``"mean_squared_error"``); ``metrics``: names (``"accuracy"``) or ``fn(y, t) ->
      float``, averaged over the epoch's examples; ``metrics=()`` for regression.
    - ``val_loader``: evaluated after every epoch, columns ``val_loss``, ``val_accuracy``
      (``val_name`` changes the prefix).
    - ``callbacks``: ``training.callbacks`` (checkpoints, early stopping, schedulers, ...).
    - ``out``: the run directory; ``resume=True`` continues the run there (or starts it when
      there is none), ``overwrite=True`` replaces it; ``config``: a JSON-able dict saved with
      the run; ``checkpoint_every``: also commit every so many batches (resumable mid-epoch).
    - ``train_step``/``eval_step``: ``fn(trainer, batch) -> dict`` instead of the default
      steps (see ``Trainer.train_step``).
    - ``verbose``: 0 quiet, 1 progress bar and a line per epoch, 2 the lines only; ``log``
      receives the lines.
    - ``distributed``: see the module's docstring.
    """
    return Trainer(model, train_loader, optimizer, loss=loss, epochs=epochs,
                   val_loader=val_loader, metrics=metrics, callbacks=callbacks, out=out,
                   resume=resume, overwrite=overwrite, config=config, train_step=train_step,
                   eval_step=eval_step, verbose=verbose, log=log, val_name=val_name,
                   checkpoint_every=checkpoint_every, curves_every=curves_every,
                   distributed=distributed).fit()


def evaluate(model: Layer, loader: Iterable[Any], loss: str | LossFn = "softmax_cross_entropy",
             metrics: Metrics = ("accuracy",), eval_step: StepFn | None = None
             ) -> dict[str, float]:
    """The means of the loss and metrics of ``model`` over ``loader`` (Keras's
    ``model.evaluate``), in test mode, without a graph."""
    trainer = Trainer(model, loader, None, loss=loss, metrics=metrics, eval_step=eval_step,
                      verbose=0)
    return trainer.evaluate(loader)


def predict(model: Layer, x: Any, batch_size: int = 1000) -> np.ndarray:
    """``model(x)`` in batches, in test mode and without a graph; NumPy array of outputs."""
    x = np.asarray(x)
    outputs = []
    model.eval()
    try:
        with zerograd.no_grad(), zerograd.test_mode():
            for start in range(0, len(x), batch_size):
                y = model(x[start:start + batch_size])
                outputs.append(as_numpy(y.data if isinstance(y, Variable) else y))
    finally:
        model.train()
    return np.concatenate(outputs) if outputs else np.empty((0,))


__all__ = ["CURVES_EVERY", "RunExistsError", "Terminated", "Trainer", "evaluate", "fit",
           "load_model_state", "predict", "probe", "sigterm_raises"]
