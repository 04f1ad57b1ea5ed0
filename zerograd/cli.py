"""The ``zerograd`` command line: ``zerograd train`` and ``zerograd eval``.

``zerograd train`` trains a model on a dataset, shows a progress bar per epoch, prints the
loss and train/test accuracy of every epoch and keeps a *run directory* (``--out``):

- ``checkpoint.npz`` the run itself: settings, completed epochs, history and, after the first
  epoch, the weights, the optimizer state, the global random state and the loader's order.
  It is the single source of truth: ``--resume`` reads nothing else.
- ``weights.npz``, ``optimizer.npz``, ``metrics.csv``, ``curves.png``, ``metrics.json``:
  derived from the checkpoint, for people and for ``zerograd eval``.

The commit protocol: after every epoch the checkpoint is written to a temporary file and
renamed over the old one. That rename is the epoch's one commit point; the derived files
are rewritten from the same state afterwards, ``metrics.json`` last. A process killed at any
instant therefore leaves either the old or the new checkpoint, never a mix, and at worst
derived files one epoch behind it. ``--resume`` (and ``zerograd eval``, when it finds them
behind) rewrites the derived files from the checkpoint before going on, and removes the
temporary files of killed saves. Ctrl-C and SIGTERM stop after rewriting every derived file,
the curves included, from the last committed epoch.

``zerograd eval --weights RUN/weights.npz`` rebuilds the model (settings from the run's
checkpoint or ``metrics.json`` unless given) and evaluates it.

Datasets and models live in small registries (``register_dataset``, ``register_model``), so
new ones plug in without touching the training loop.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import dataclasses
import importlib
import io
import os
import shlex
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

import zerograd
from zerograd import functions as F
from zerograd import random_state
from zerograd.data.loader import DataLoader
from zerograd.errors import ShapeError, ZerogradError
from zerograd.nn.layer import StateDictError
from zerograd.serialization import (
    atomic_write,
    load_json,
    load_npz,
    load_state,
    remove_stale_temp_files,
    save_json,
    save_npz,
    save_state,
)

CHECKPOINT, WEIGHTS, OPTIMIZER, METRICS, METRICS_CSV, CURVES = (
    "checkpoint.npz", "weights.npz", "optimizer.npz", "metrics.json", "metrics.csv",
    "curves.png")
# The files derived from the checkpoint, in the order they are written: metrics.json last,
# so that its epochs_done vouches for every file written before it.
DERIVED = (WEIGHTS, OPTIMIZER, METRICS_CSV, CURVES, METRICS)
RUN_FILES = (CHECKPOINT, *DERIVED)
CHECKPOINT_FORMAT = 1
EVAL_BATCH_SIZE = 1000
EXTRAS_INSTALL = 'pip install "zerograd[extras]"'


class CLIError(Exception):
    """A problem with what the user asked for; printed without a traceback (exit status 2)."""


class Terminated(BaseException):
    """SIGTERM, raised in the main thread by ``main``'s handler.

    A BaseException, like KeyboardInterrupt, so that no ``except Exception`` swallows it.
    """


# ---------------------------------------------------------------------------------------------
# Registries
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class DataSpec:
    """What a model builder needs to know about the data."""

    task: str  # "classification" or "regression"
    n_outputs: int  # classes, or regression targets
    image_shape: tuple[int, int, int] | None  # (C, H, W) when the inputs are images


@dataclass(frozen=True)
class DataRequest:
    """What the command line asks of a dataset builder."""

    data_dir: str | None = None  # where the dataset's files are (None: its default place)
    as_images: bool = False  # (N, C, H, W) examples for image models, else flat vectors
    download: bool = False  # fetch missing files (only datasets that have files)


@dataclass(frozen=True)
class DatasetEntry:
    build: Callable[[DataRequest], tuple]  # request -> (train, test)
    spec: DataSpec
    description: str
    requires: tuple[tuple[str, str], ...] = ()  # (module to import, package to pip install)


@dataclass(frozen=True)
class ModelEntry:
    build: Callable[[DataSpec, TrainConfig], zerograd.Model]
    needs_images: bool
    description: str


DATASETS: dict[str, DatasetEntry] = {}
MODELS: dict[str, ModelEntry] = {}


def register_dataset(name: str, spec: DataSpec, description: str = "",
                     requires: Sequence[tuple[str, str]] = ()):
    """Decorator: ``build(request: DataRequest) -> (train_dataset, test_dataset)``.

    ``requires`` lists ``(module, pip package)`` pairs the dataset cannot do without; the
    command line checks them first and names the package to install.
    """
    def decorate(build):
        DATASETS[name] = DatasetEntry(build, spec, description or build.__doc__ or "",
                                      tuple(requires))
        return build
    return decorate


def register_model(name: str, needs_images: bool = False, description: str = ""):
    """Decorator: ``build(spec: DataSpec, config: TrainConfig) -> Model``.

    ``needs_images`` models get ``(N, C, H, W)`` batches; the others get flat vectors.
    """
    def decorate(build):
        MODELS[name] = ModelEntry(build, needs_images, description or build.__doc__ or "")
        return build
    return decorate


@register_dataset("digits", DataSpec("classification", 10, (1, 8, 8)),
                  "scikit-learn's 8x8 digits (1,438 train / 359 test), no network needed",
                  requires=[("sklearn", "scikit-learn")])
def _digits(request: DataRequest):
    from zerograd.data.digits import DEFAULT_TRANSFORM, Digits

    transform = None if request.as_images else DEFAULT_TRANSFORM
    return Digits(train=True, transform=transform), Digits(train=False, transform=transform)


def _missing_mnist_files(root: str, train: bool) -> list[str]:
    """The split's IDX files that are in ``root`` neither gzipped nor unpacked."""
    from zerograd.data.mnist import MNIST

    return [stem + ".gz" for stem in MNIST.files[train]
            if not any(os.path.isfile(os.path.join(root, stem + ext)) for ext in (".gz", ""))]


@register_dataset("mnist", DataSpec("classification", 10, (1, 28, 28)),
                  "MNIST from IDX files in --data-dir (default: the cache directory)")
def _mnist(request: DataRequest):
    from zerograd.data.download import cache_dir
    from zerograd.data.mnist import MNIST
    from zerograd.data.transforms import Compose, Normalize, ToFloat

    root = request.data_dir or os.path.join(cache_dir(), "mnist")
    kwargs = {"root": root, "download": request.download}
    if request.as_images:
        kwargs["transform"] = Compose([ToFloat(), Normalize(0.0, 255.0)])
    splits = []
    for train in (True, False):
        try:
            splits.append(MNIST(train=train, **kwargs))
        except FileNotFoundError as error:
            # The library's message names its keyword arguments; say it in the CLI's flags.
            missing = ", ".join(_missing_mnist_files(root, train)) or "its files"
            raise CLIError(
                f"--dataset mnist: the {'train' if train else 'test'} split is not in {root}: "
                f"missing {missing}. Put the IDX files (.gz or unpacked) there, give "
                f"--data-dir DIR holding them, or add --download to fetch them from "
                f"{MNIST.mirrors[0]}") from error
    return splits[0], splits[1]


@register_dataset("spiral", DataSpec("classification", 3, None),
                  "the book's 3-class 2-D spiral (300 train / 300 test points)")
def _spiral(request: DataRequest):
    from zerograd.data.spiral import Spiral

    # seed_global=False: --seed, not DeZero's fixed reseeding of the global generator,
    # decides the weights and the shuffling.
    return Spiral(train=True, seed_global=False), Spiral(train=False, seed_global=False)


@register_dataset("sincurve", DataSpec("regression", 1, None),
                  "next value of a noisy sine wave (regression; test on the cosine)")
def _sincurve(request: DataRequest):
    from zerograd.data.sincurve import SinCurve

    return SinCurve(train=True), SinCurve(train=False)


@register_model("mlp", description="multi-layer perceptron: --hidden sizes, ReLU")
def _mlp(spec: DataSpec, config: TrainConfig):
    from zerograd.models import MLP

    return MLP(list(config.hidden) + [spec.n_outputs], activation=F.relu)


@register_model("linear", description="a single Linear layer (logistic/linear regression)")
def _linear(spec: DataSpec, config: TrainConfig):
    from zerograd.models import MLP

    return MLP([spec.n_outputs])


@register_model("cnn", needs_images=True,
                description="conv(3x3, 16)-ReLU-maxpool(2)-conv(3x3, 32)-ReLU-maxpool(2)-"
                            "Linear(--hidden[0])-ReLU-Linear")
def _cnn(spec: DataSpec, config: TrainConfig):
    import zerograd.layers as L
    from zerograd.models import Sequential

    if not hasattr(L, "Conv2d"):
        raise CLIError("--model cnn needs zerograd.layers.Conv2d, which this version lacks")

    def pool(x):
        return F.pooling(x, 2, 2)

    def flatten(x):
        return x.reshape(len(x), -1)

    return Sequential(L.Conv2d(16, 3, pad=1), F.relu, pool, L.Conv2d(32, 3, pad=1), F.relu, pool,
                      flatten, L.Linear(config.hidden[0]), F.relu, L.Linear(spec.n_outputs))


OPTIMIZERS = {
    "sgd": "SGD", "momentum": "MomentumSGD", "nesterov": "MomentumSGD", "adagrad": "AdaGrad",
    "adadelta": "AdaDelta", "rmsprop": "RMSprop", "adam": "Adam", "adamw": "AdamW",
}


def make_optimizer(name: str, lr: float | None):
    from zerograd import optimizers

    cls = getattr(optimizers, OPTIMIZERS[name])
    optimizer = cls(nesterov=True) if name == "nesterov" else cls()
    if lr is not None:
        if optimizer.lr_attribute is None:
            raise CLIError(f"--optimizer {name} has no learning rate; drop --lr")
        optimizer.set_lr(lr)
    return optimizer


# ---------------------------------------------------------------------------------------------
# Settings
# ---------------------------------------------------------------------------------------------
def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)  # JSON true is not a size


# What each setting may be when read from a file: (test, what the message says is expected).
_SETTING_TYPES = {
    "dataset": (lambda v: isinstance(v, str), "a dataset name"),
    "model": (lambda v: isinstance(v, str), "a model name"),
    "epochs": (_is_int, "an integer"),
    "batch_size": (_is_int, "an integer"),
    "optimizer": (lambda v: isinstance(v, str), "an optimizer name"),
    "lr": (lambda v: v is None or _is_int(v) or isinstance(v, float), "a number or null"),
    "seed": (_is_int, "an integer"),
    "hidden": (lambda v: isinstance(v, (list, tuple)) and all(_is_int(h) for h in v),
               "a list of integers"),
    "data_dir": (lambda v: v is None or isinstance(v, str), "a path or null"),
    "download": (lambda v: isinstance(v, bool), "true or false"),
}


@dataclass
class TrainConfig:
    dataset: str = "digits"
    model: str = "mlp"
    epochs: int = 30
    batch_size: int = 32
    optimizer: str = "adam"
    lr: float | None = None
    seed: int = 0
    hidden: tuple[int, ...] = (100,)
    data_dir: str | None = None
    download: bool = False

    def check(self) -> TrainConfig:
        if self.dataset not in DATASETS:
            raise CLIError(f"unknown dataset {self.dataset!r}; choose from {sorted(DATASETS)}")
        if self.model not in MODELS:
            raise CLIError(f"unknown model {self.model!r}; choose from {sorted(MODELS)}")
        if self.optimizer not in OPTIMIZERS:
            raise CLIError(f"unknown optimizer {self.optimizer!r}; choose from "
                           f"{sorted(OPTIMIZERS)}")
        if self.epochs < 1 or self.batch_size < 1:
            raise CLIError(f"--epochs and --batch-size must be positive, got {self.epochs} and "
                           f"{self.batch_size}")
        if self.lr is not None and not self.lr > 0:
            raise CLIError(f"--lr must be positive, got {self.lr}")
        if not 0 <= self.seed < 2**32:  # what NumPy's seed accepts
            raise CLIError(f"--seed must lie in [0, 2**32), got {self.seed}")
        if MODELS[self.model].needs_images and DATASETS[self.dataset].spec.image_shape is None:
            raise CLIError(f"--model {self.model} needs image data; {self.dataset} has none")
        self.hidden = tuple(int(h) for h in self.hidden)
        if not self.hidden or min(self.hidden) < 1:
            raise CLIError(f"--hidden must list positive layer sizes, got {self.hidden}")
        return self

    def to_json(self) -> dict:
        return {**dataclasses.asdict(self), "hidden": list(self.hidden)}

    @classmethod
    def from_json(cls, values: dict, source: str = "the settings") -> TrainConfig:
        """Settings read from a file (``source`` names it in errors); unknown keys are ignored,
        missing ones take their defaults, and a value of the wrong type is a CLIError."""
        if not isinstance(values, dict):
            raise CLIError(f"{source}: the settings are a {type(values).__name__}, expected a "
                           f"JSON object of settings")
        kwargs = {}
        for f in dataclasses.fields(cls):
            if f.name not in values:
                continue
            value = values[f.name]
            fits, expected = _SETTING_TYPES[f.name]
            if not fits(value):
                raise CLIError(f"{source}: setting {f.name!r} is {value!r}, expected "
                               f"{expected}")
            kwargs[f.name] = tuple(value) if f.name == "hidden" else value
        return cls(**kwargs)

    def describe(self) -> str:
        """The model-defining settings as command-line flags, for messages."""
        return (f"--model {self.model} --hidden {','.join(map(str, self.hidden))} "
                f"--dataset {self.dataset}")


@dataclass
class Run:
    """Everything a training run is made of; ``epoch`` counts completed epochs."""

    config: TrainConfig
    spec: DataSpec
    train_set: object
    test_set: object
    loader: DataLoader
    model: zerograd.Model
    optimizer: object
    epoch: int = 0
    history: list = field(default_factory=list)


def _check_requirements(name: str, entry: DatasetEntry) -> None:
    for module, package in entry.requires:
        try:
            importlib.import_module(module)
        except ImportError as error:
            default = " (the default)" if name == TrainConfig.dataset else ""
            raise CLIError(
                f"--dataset {name}{default} needs {package}, which is not installed: "
                f"{EXTRAS_INSTALL} installs it (or: pip install {package}). "
                f"--dataset spiral and --dataset sincurve work with NumPy alone") from error


def build_data(config: TrainConfig):
    entry = DATASETS[config.dataset]
    _check_requirements(config.dataset, entry)
    as_images = MODELS[config.model].needs_images
    try:
        train_set, test_set = entry.build(DataRequest(config.data_dir, as_images,
                                                      config.download))
    except (FileNotFoundError, ImportError, OSError) as error:
        raise CLIError(str(error)) from error
    return entry.spec, train_set, test_set


def build_run(config: TrainConfig) -> Run:
    """Seeds, then builds data, loader, model and optimizer in a fixed order."""
    random_state.seed(config.seed)
    spec, train_set, test_set = build_data(config)
    loader = DataLoader(train_set, config.batch_size, shuffle=True)
    model = MODELS[config.model].build(spec, config)
    optimizer = make_optimizer(config.optimizer, config.lr).setup(model)
    return Run(config, spec, train_set, test_set, loader, model, optimizer)


# ---------------------------------------------------------------------------------------------
# Training and evaluation
# ---------------------------------------------------------------------------------------------
def _loss_and_correct(spec: DataSpec, y, t):
    if spec.task == "classification":
        loss = F.softmax_cross_entropy(y, t)
        correct = int((y.data.argmax(axis=1) == t).sum())
        return loss, correct
    return F.mean_squared_error(y, t), None


def evaluate(model, dataset, spec: DataSpec) -> dict:
    """Mean loss (and accuracy for classification) over ``dataset``, without a graph."""
    loader = DataLoader(dataset, EVAL_BATCH_SIZE, shuffle=False)
    total_loss, total_correct, count = 0.0, 0, 0
    model.eval()
    try:
        with zerograd.no_grad(), zerograd.test_mode():
            for x, t in loader:
                loss, correct = _loss_and_correct(spec, model(x), t)
                total_loss += float(loss.data) * len(x)
                total_correct += correct or 0
                count += len(x)
    finally:
        model.train()
    result = {"loss": total_loss / count}
    if spec.task == "classification":
        result["accuracy"] = total_correct / count
    return result


class _PlainProgress:
    """A minimal progress bar on stderr for when tqdm is not installed."""

    def __init__(self, iterable: Iterable, total: int, desc: str):
        self.iterable, self.total, self.desc = iterable, total, desc

    def __iter__(self):
        width = 30
        for i, item in enumerate(self.iterable, 1):
            yield item
            done = width * i // self.total
            sys.stderr.write(f"\r{self.desc} [{'#' * done}{'.' * (width - done)}] "
                             f"{i}/{self.total}")
            sys.stderr.flush()
        sys.stderr.write("\r" + " " * (len(self.desc) + width + 16) + "\r")


def _progress(iterable: Iterable, total: int, desc: str, enabled: bool):
    if not enabled:
        return iterable
    try:
        from tqdm import tqdm
    except ImportError:
        return _PlainProgress(iterable, total, desc) if sys.stderr.isatty() else iterable
    return tqdm(iterable, total=total, desc=desc, leave=False, unit="batch", disable=None)


def train_epoch(run: Run, progress: bool = True) -> dict:
    """One pass over the training set; returns the mean loss and the running accuracy."""
    spec, model, optimizer = run.spec, run.model, run.optimizer
    total_loss, total_correct, count = 0.0, 0, 0
    desc = f"epoch {run.epoch + 1}/{run.config.epochs}"
    for x, t in _progress(run.loader, run.loader.max_iter, desc, progress):
        loss, correct = _loss_and_correct(spec, model(x), t)
        model.cleargrads()
        loss.backward()
        optimizer.update()
        total_loss += float(loss.data) * len(x)
        total_correct += correct or 0
        count += len(x)
    result = {"loss": total_loss / count}
    if spec.task == "classification":
        result["accuracy"] = total_correct / count
    return result


def format_seconds(seconds: float) -> str:
    """Three significant digits, in ms under a second: '0.52 ms', '48.1 ms', '1.23 s', '125 s'."""
    value, unit = (seconds * 1e3, "ms") if seconds < 1 else (seconds, "s")
    decimals = 0 if value >= 100 else 1 if value >= 10 else 2
    return f"{value:.{decimals}f} {unit}"


def _format_epoch(record: dict, epochs: int) -> str:
    text = f"epoch {record['epoch']:>{len(str(epochs))}}/{epochs}  loss {record['loss']:.4f}"
    if "accuracy" in record:
        text += f"  train acc {record['accuracy']:.4f}"
    text += f"  test loss {record['test_loss']:.4f}"
    if "test_accuracy" in record:
        text += f"  test acc {record['test_accuracy']:.4f}"
    return text + f"  ({format_seconds(record['seconds'])})"


# ---------------------------------------------------------------------------------------------
# The run directory: one commit point (the checkpoint), files derived from it
# ---------------------------------------------------------------------------------------------
def checkpoint_state(run: Run) -> dict:
    """What ``checkpoint.npz`` holds. Before the first epoch the settings are the whole run:
    ``build_run`` rebuilds that state exactly from the seed."""
    state = {"format": CHECKPOINT_FORMAT, "config": run.config.to_json(), "epoch": run.epoch,
             "history": run.history}
    if run.epoch > 0:
        state.update(model=run.model.state_dict(), optimizer=run.optimizer.state_dict(),
                     rng=random_state.get_state(), loader=run.loader.state_dict())
    return state


def _remove(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.remove(path)


def write_metrics_csv(path: str, history: list) -> None:
    """One row per epoch; the columns are those of the records (no accuracy for regression)."""
    columns = list(history[0]) if history else ["epoch", "loss", "test_loss", "seconds"]
    text = io.StringIO()
    writer = csv.DictWriter(text, columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(history)
    with atomic_write(path, "w") as f:
        f.write(text.getvalue())


def write_outputs(out: str, state: dict, curves: bool) -> list[str]:
    """Rewrites every derived file of ``out`` from the checkpoint ``state``; returns their names.

    Each file is written atomically and ``metrics.json`` last. What the state has nothing for
    is removed rather than left stale: weights and optimizer state before the first epoch,
    curves before the first epoch or without matplotlib. With ``curves=False`` an existing
    ``curves.png`` of the run is left as it is (it is redrawn at the end, at an interrupt and
    on resume, not after every epoch: drawing costs more than a small epoch).
    """
    config = TrainConfig.from_json(state["config"])
    epoch, history = state["epoch"], state["history"]
    paths = {name: os.path.join(out, name) for name in DERIVED}
    if epoch > 0:
        save_npz(paths[WEIGHTS], state["model"])  # what Layer.save_weights writes
        save_state(paths[OPTIMIZER], state["optimizer"])
    else:
        _remove(paths[WEIGHTS])
        _remove(paths[OPTIMIZER])
    write_metrics_csv(paths[METRICS_CSV], history)
    if epoch == 0 or (curves and plot_curves(history, paths[CURVES]) is None):
        _remove(paths[CURVES])
    save_json(paths[METRICS], {
        "config": state["config"], "task": DATASETS[config.dataset].spec.task,
        "epochs_done": epoch, "finished": epoch >= config.epochs, "history": history,
    })
    return [name for name in DERIVED if os.path.exists(paths[name])]


def commit(run: Run, out: str, curves: bool = False) -> list[str]:
    """Saves the run: the checkpoint (the commit point), then the files derived from it."""
    state = checkpoint_state(run)
    save_state(os.path.join(out, CHECKPOINT), state)
    return write_outputs(out, state, curves)


def outputs_match(out: str, state: dict) -> bool:
    """Whether the derived files describe the checkpoint ``state``.

    ``metrics.json`` is written last, so its ``epochs_done`` equal to the checkpoint's epoch
    vouches for the files written before it.
    """
    try:
        metrics = load_json(os.path.join(out, METRICS))
    except (OSError, ZerogradError):
        return False
    if not isinstance(metrics, dict) or metrics.get("epochs_done") != state["epoch"]:
        return False
    return state["epoch"] == 0 or all(os.path.exists(os.path.join(out, name))
                                      for name in (WEIGHTS, OPTIMIZER))


def _bad_checkpoint(path: str, problem: str) -> CLIError:
    return CLIError(f"{path}: not a usable zerograd checkpoint: {problem} (the file is corrupt, "
                    f"was edited, or was written by another program)")


def _check_arrays(arrays: dict, path: str, what: str) -> None:
    """Weights must be numeric arrays: a crafted file may hold text, which NumPy loads."""
    for key, value in arrays.items():
        if not isinstance(value, np.ndarray) or value.dtype.kind not in "biuf":
            kind = getattr(value, "dtype", type(value).__name__)
            raise CLIError(f"{path}: {what} entry {key!r} is {kind}, expected a numeric array")


def check_checkpoint(state, path: str) -> TrainConfig:
    """Checks the structure of a loaded checkpoint; returns its settings."""
    if not isinstance(state, dict):
        raise _bad_checkpoint(path, f"it holds a {type(state).__name__}, not a dict")
    if state.get("format") != CHECKPOINT_FORMAT:
        raise _bad_checkpoint(path, f"format {state.get('format')!r}, expected "
                                    f"{CHECKPOINT_FORMAT}")
    config = TrainConfig.from_json(state.get("config"), source=path)
    try:
        config.check()
    except CLIError as error:
        raise CLIError(f"{path}: {error}") from None
    epoch, history = state.get("epoch"), state.get("history")
    if not _is_int(epoch) or epoch < 0:
        raise _bad_checkpoint(path, f"epoch is {epoch!r}, expected a count of epochs")
    if not isinstance(history, list):
        raise _bad_checkpoint(path, f"the history is a {type(history).__name__}, expected a "
                                    f"list of records")
    if len(history) != epoch:
        raise _bad_checkpoint(path, f"the history has {len(history)} records for {epoch} "
                                    f"epochs")
    for i, record in enumerate(history, 1):
        if not _is_record(record, i, history[0]):
            raise _bad_checkpoint(path, f"history record {i} is {record!r}")
    if epoch > 0:
        for key in ("model", "optimizer", "rng", "loader"):
            if not isinstance(state.get(key), dict):
                raise _bad_checkpoint(path, f"no {key!r} state after {epoch} epochs")
        _check_arrays(state["model"], path, "the weights")
    return config


def _is_record(record, epoch: int, first) -> bool:
    """Whether ``record`` is epoch ``epoch``'s: numbers only, and the same columns as the
    first record (the CSV and the curves take their columns from it)."""
    return (isinstance(record, dict) and record.get("epoch") == epoch
            and {"epoch", "loss", "test_loss", "seconds"} <= set(record)
            and set(record) == set(first)
            and all(isinstance(v, (int, float)) and not isinstance(v, bool)
                    for v in record.values()))


def load_checkpoint(out: str) -> tuple[dict, TrainConfig]:
    """The checkpoint of the run in ``out`` and its settings; CLIError when unusable."""
    path = os.path.join(out, CHECKPOINT)
    if not os.path.exists(path):
        raise CLIError(f"--resume: no checkpoint at {path}; start the run without --resume")
    state = load_state(path)  # CorruptFileError (a ZerogradError) names the file
    return state, check_checkpoint(state, path)


def load_weights_into(model, arrays: dict, source: str, config: TrainConfig, hint: str) -> None:
    """``model.load_state_dict(arrays)`` with errors that name ``source`` and the CLI's flags."""
    try:
        model.load_state_dict(arrays, source=source)
    except StateDictError:
        keys = [key for key, _ in model.named_params()] + [k for k, _ in model.named_buffers()]
        missing = [key for key in keys if key not in arrays]
        unexpected = [key for key in arrays if key not in set(keys)]
        parts = ([f"the model has {missing} that the file lacks"] if missing else []) + \
                ([f"the file has {unexpected} that the model lacks"] if unexpected else [])
        raise CLIError(f"{source} does not fit {config.describe()}: {'; '.join(parts)}. "
                       f"{hint}") from None
    except ShapeError as error:
        raise CLIError(f"{source} does not fit {config.describe()}: {error}. {hint}") from None


def check_fits(model, dataset, source: str, config: TrainConfig) -> None:
    """One forward pass on two examples, so that weights whose shapes only the data can check
    (lazily sized layers take a stored array as it is) fail here, naming their file."""
    x, _ = next(iter(DataLoader(dataset, 2, shuffle=False)))
    try:
        with zerograd.no_grad(), zerograd.test_mode():
            model(x)
    except ShapeError as error:
        raise CLIError(f"{source} does not fit {config.describe()}: {error}") from None


def restore(run: Run, state: dict, source: str = CHECKPOINT) -> None:
    """Puts a freshly built run into the checkpointed state (random state last).

    Before the first epoch there is nothing to restore: the fresh run is that state.
    """
    run.epoch = state["epoch"]
    run.history = list(state["history"])
    if run.epoch == 0:
        return
    hint = "The checkpoint does not belong to the settings it records"
    load_weights_into(run.model, state["model"], source, run.config, hint)
    check_fits(run.model, run.train_set, source, run.config)
    try:
        run.optimizer.load_state_dict(state["optimizer"])
        run.loader.load_state_dict(state["loader"])
        random_state.set_state(state["rng"])
    except (KeyError, TypeError, ValueError, IndexError, AttributeError) as error:
        # Where file contents meet code that trusts them: a crafted state must not surface
        # as a traceback from deep inside the optimizer.
        raise _bad_checkpoint(source, f"cannot restore the run ({type(error).__name__}: "
                                      f"{error})") from None
    # Any order of the right length loads; only a permutation trains on every example once.
    loader = run.loader
    if not np.array_equal(np.sort(np.asarray(loader.index)), np.arange(loader.data_size)) or \
            not 0 <= loader.iteration <= loader.max_iter:
        raise _bad_checkpoint(source, f"the loader's order is not a permutation of the "
                                      f"{loader.data_size} training examples")


def _existing_run(out: str) -> str | None:
    """What run ``out`` already holds, in words, or None when it holds none."""
    present = [name for name in RUN_FILES if os.path.exists(os.path.join(out, name))]
    if not present:
        return None
    if CHECKPOINT in present:
        try:
            state, config = load_checkpoint(out)
        except (CLIError, ZerogradError):
            return f"an unreadable {CHECKPOINT}"
        return (f"{config.model} on {config.dataset}, {state['epoch']} of {config.epochs} "
                f"epochs")
    return ", ".join(present)


def draw_curves(history: list):
    """A matplotlib Figure of loss (and accuracy) per epoch; None when matplotlib is missing.

    Epochs are whole numbers, so are the ticks; the loss axis is logarithmic when the loss
    spans a decade or more, where a linear axis would flatten everything after the drop.
    """
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
        from matplotlib.ticker import MaxNLocator
    except ImportError:
        return None

    epochs = [r["epoch"] for r in history]
    has_accuracy = "accuracy" in history[0]
    figure = Figure(figsize=(10 if has_accuracy else 5, 4))
    FigureCanvasAgg(figure)  # attaches a non-interactive canvas: no display needed
    axes = figure.subplots(1, 2 if has_accuracy else 1, squeeze=False)[0]
    losses = [r["loss"] for r in history] + [r["test_loss"] for r in history]
    axes[0].plot(epochs, [r["loss"] for r in history], marker="o", label="train")
    axes[0].plot(epochs, [r["test_loss"] for r in history], marker="o", label="test")
    axes[0].set(xlabel="epoch", ylabel="loss", title="loss")
    if min(losses) > 0 and max(losses) >= 10 * min(losses):
        axes[0].set_yscale("log")
    if has_accuracy:
        axes[1].plot(epochs, [r["accuracy"] for r in history], marker="o", label="train")
        axes[1].plot(epochs, [r["test_accuracy"] for r in history], marker="o", label="test")
        axes[1].set(xlabel="epoch", ylabel="accuracy", title="accuracy")
    for ax in axes:
        # min_n_ticks=1: with one or two epochs, fewer ticks rather than fractional ones.
        ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
        ax.grid(alpha=0.3)
        ax.legend()
    figure.tight_layout()
    return figure


def plot_curves(history: list, path: str) -> str | None:
    """``draw_curves`` saved as a PNG at ``path``; returns None when matplotlib is missing."""
    figure = draw_curves(history)
    if figure is None:
        return None
    with atomic_write(path, "wb") as f:
        figure.savefig(f, format="png", dpi=100)
    return path


def _note_ignored_settings(given: TrainConfig, saved: TrainConfig, log) -> None:
    default = TrainConfig()
    for f in dataclasses.fields(TrainConfig):
        value = getattr(given, f.name)
        if f.name != "epochs" and value != getattr(default, f.name) \
                and value != getattr(saved, f.name):
            log(f"note: ignoring {f.name}={value!r}: --resume continues with the run's "
                f"{f.name}={getattr(saved, f.name)!r}")


def _repair(out: str, state: dict, log, always: bool, curves: bool = True) -> None:
    """Rewrites the derived files from the checkpoint: ``always`` (on resume), or when they
    are behind it. Either way the temporary files of killed saves go first. ``curves=False``
    when training goes on, which redraws them at its end."""
    removed = remove_stale_temp_files(out)
    if removed:
        log(f"note: removed {len(removed)} temporary file(s) of interrupted saves from {out}")
    behind = not outputs_match(out, state)
    if behind:
        log(f"note: the files in {out} were behind {CHECKPOINT} (epoch {state['epoch']}), "
            f"from a save that was interrupted; rewriting them from it")
    if behind or always:
        write_outputs(out, state, curves=curves)


def _finish_interrupted(out: str, log) -> None:
    """After Ctrl-C or SIGTERM: rewrites every derived file, curves included, from the
    checkpoint on disk. That is the last committed epoch whatever instant the interrupt came
    at (the one in memory may be an epoch ahead when it came during a save)."""
    if not os.path.exists(os.path.join(out, CHECKPOINT)):
        return
    state, _ = load_checkpoint(out)
    write_outputs(out, state, curves=True)
    log(f"interrupted: {state['epoch']} completed epoch(s) saved in {out}, with their "
        f"metrics and curves")


def train(config: TrainConfig | None, out: str, resume: bool = False, progress: bool = True,
          epochs: int | None = None, log: Callable[[str], None] = print,
          overwrite: bool = False) -> Run:
    """Trains a run (or resumes the one in ``out``) and writes its outputs into ``out``.

    When resuming, the checkpoint's settings are used (a note names any setting of ``config``
    that differs from the default and from the run's), with the total number of epochs set
    to ``epochs`` when given. A new run refuses an ``out`` that holds a run unless
    ``overwrite``. Returns the Run; KeyboardInterrupt and Terminated propagate after the
    outputs of the completed epochs are written.
    """
    out = os.fspath(out)
    if os.path.exists(out) and not os.path.isdir(out):
        raise CLIError(f"--out {out} is a file, not a directory")
    state = None
    if resume:
        if overwrite:
            raise CLIError("--resume continues the run in --out and --overwrite replaces it; "
                           "give one of them")
        state, saved = load_checkpoint(out)
        if config is not None:
            _note_ignored_settings(config, saved, log)
        config = saved
    elif config is None:
        raise ValueError("train: give a TrainConfig, or resume=True")
    if epochs is not None:
        config.epochs = epochs
    config.check()
    if state is None and not overwrite:
        existing = _existing_run(out)
        if existing is not None:
            raise CLIError(f"--out {out} already holds a run ({existing}); add --resume to "
                           f"continue it, --overwrite to replace it, or choose another --out")
    run = build_run(config)  # before anything is written: a failure here changes nothing
    os.makedirs(out, exist_ok=True)
    try:
        if state is None:
            remove_stale_temp_files(out)  # of a killed run that left no checkpoint
            commit(run, out)  # epoch 0: from here on the run exists (and replaces an old one)
        else:
            restore(run, state, os.path.join(out, CHECKPOINT))
            log(f"resuming {out} after epoch {run.epoch}")
            _repair(out, state, log, always=True, curves=run.epoch >= config.epochs)
        log(f"training {config.model} on {config.dataset}: {len(run.train_set)} train / "
            f"{len(run.test_set)} test examples, {config.epochs} epochs, batch size "
            f"{config.batch_size}, {config.optimizer}"
            + (f" (lr {config.lr})" if config.lr is not None else ""))
        if run.epoch >= config.epochs:
            log(f"nothing to do: the run is finished, with {run.epoch} of {config.epochs} "
                f"epochs, and its files are consistent (raise --epochs to continue it)")
            return run
        while run.epoch < config.epochs:
            start = time.perf_counter()
            train_metrics = train_epoch(run, progress)
            test_metrics = evaluate(run.model, run.test_set, run.spec)
            run.epoch += 1
            record = {"epoch": run.epoch, **train_metrics,
                      **{f"test_{k}": v for k, v in test_metrics.items()},
                      "seconds": time.perf_counter() - start}
            run.history.append(record)
            written = commit(run, out, curves=run.epoch == config.epochs)
            log(_format_epoch(record, config.epochs))
    except (KeyboardInterrupt, Terminated):
        _finish_interrupted(out, log)
        raise
    if CURVES not in written:
        log(f"note: matplotlib is not installed, so {CURVES} was not written "
            f"(pip install matplotlib)")
    log(f"wrote {', '.join([CHECKPOINT, *written])} to {out}")
    return run


def _run_settings(weights: str, log) -> tuple[dict, str]:
    """The settings of the run ``weights`` belongs to, and the file they come from.

    In a run directory the checkpoint is the truth; when the derived files (the weights
    among them) are behind it after a killed save, they are rewritten from it first.
    """
    directory = os.path.dirname(os.path.abspath(weights))
    checkpoint = os.path.join(directory, CHECKPOINT)
    if os.path.basename(weights) == WEIGHTS and os.path.exists(checkpoint):
        try:
            state, _ = load_checkpoint(directory)
        except (CLIError, ZerogradError) as error:
            # Evaluating only reads: the weights can still be judged on their own.
            log(f"note: {error}; evaluating {weights} with the settings of {METRICS}")
        else:
            if state["epoch"] == 0:
                raise CLIError(f"{directory}: the run has no completed epoch yet, so there "
                               f"are no weights to evaluate")
            try:
                _repair(directory, state, log, always=False)
            except OSError as error:  # a run directory we may read but not write
                raise CLIError(f"{weights} is behind {checkpoint} (a save was interrupted) "
                               f"and could not be rewritten from it ({error}); run zerograd "
                               f"train --out {shlex.quote(directory)} --resume where it can "
                               f"write") from None
            return state["config"], checkpoint
    metrics = os.path.join(directory, METRICS)
    if os.path.exists(metrics):
        values = load_json(metrics)
        if not isinstance(values, dict):
            raise CLIError(f"{metrics}: holds a {type(values).__name__}, expected the JSON "
                           f"object that zerograd train writes")
        return values.get("config", {}), metrics
    return {}, "the command line"


def evaluate_weights(weights: str, overrides: dict, split: str = "test",
                     log: Callable[[str], None] = print) -> dict:
    """Rebuilds the model of a run, loads ``weights`` and evaluates it on ``split``."""
    weights = os.fspath(weights)
    values, source = _run_settings(weights, log)
    values = {**TrainConfig.from_json(values, source).to_json(),
              **{k: v for k, v in overrides.items() if v is not None}}
    try:
        config = TrainConfig.from_json(values, source).check()
    except CLIError as error:
        raise CLIError(f"{error} (settings read from {source})") from None
    if not os.path.isfile(weights):
        raise CLIError(f"--weights: no such file: {weights}")
    spec, train_set, test_set = build_data(config)
    model = MODELS[config.model].build(spec, config)
    hint = ("Give the --model and --hidden the weights were trained with (they are read from "
            "the run's checkpoint or metrics.json next to the weights when there is one)")
    arrays = load_npz(weights)
    _check_arrays(arrays, weights, "the weights")
    load_weights_into(model, arrays, weights, config, hint)
    dataset = test_set if split == "test" else train_set
    check_fits(model, dataset, weights, config)
    result = evaluate(model, dataset, spec)
    text = (f"{config.model} on {config.dataset} ({split}, {len(dataset)} examples): "
            f"loss {result['loss']:.4f}")
    if "accuracy" in result:
        text += f"  accuracy {result['accuracy']:.4f}"
    log(text)
    return result


# ---------------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------------
def _hidden_sizes(text: str) -> tuple[int, ...]:
    try:
        sizes = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"expected sizes like 100 or 128,64, got {text!r}") \
            from error
    return sizes


def _add_debug(parser: argparse.ArgumentParser) -> None:
    # SUPPRESS: a subcommand's default must not overwrite `zerograd --debug train`.
    parser.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                        help="show the Python traceback of an error")


def _add_common(parser: argparse.ArgumentParser, defaults: bool) -> None:
    base = TrainConfig()

    def default(name):
        return getattr(base, name) if defaults else None

    shown = " (default: %(default)s)" if defaults else ""
    parser.add_argument("--dataset", choices=sorted(DATASETS), default=default("dataset"),
                        help="dataset" + shown)
    parser.add_argument("--model", choices=sorted(MODELS), default=default("model"),
                        help="model" + shown)
    parser.add_argument("--hidden", type=_hidden_sizes, default=default("hidden"),
                        help="hidden layer sizes, comma-separated (default: 100)")
    parser.add_argument("--data-dir", default=None,
                        help="directory holding the dataset's files (mnist)")
    parser.add_argument("--download", action="store_true", default=None,
                        help="download the dataset's missing files (mnist; needs the network)")
    _add_debug(parser)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="zerograd", description="Train and evaluate zerograd models.")
    parser.add_argument("--version", action="version", version=f"zerograd {zerograd.__version__}")
    _add_debug(parser)
    commands = parser.add_subparsers(dest="command", metavar="{train,eval}")
    commands.required = True

    base = TrainConfig()
    train_parser = commands.add_parser(
        "train", help="train a model and write weights, metrics and curves",
        description="Train a model; after every epoch, commits a checkpoint into --out and "
                    "rewrites weights, optimizer state and metrics from it (curves.png at the "
                    "end). --resume continues an interrupted run and repairs its files.")
    _add_common(train_parser, defaults=True)
    train_parser.add_argument("--epochs", type=int, default=None,
                              help=f"total number of epochs (default: {base.epochs}; with "
                                   f"--resume: the run's)")
    train_parser.add_argument("--batch-size", type=int, default=base.batch_size,
                              help="mini-batch size (default: %(default)s)")
    train_parser.add_argument("--optimizer", choices=sorted(OPTIMIZERS), default=base.optimizer,
                              help="update rule (default: %(default)s)")
    train_parser.add_argument("--lr", type=float, default=None,
                              help="learning rate (default: the optimizer's own)")
    train_parser.add_argument("--seed", type=int, default=base.seed,
                              help="random seed (default: %(default)s)")
    train_parser.add_argument("--out", default=None,
                              help="run directory (default: runs/<dataset>-<model>)")
    train_parser.add_argument("--resume", action="store_true",
                              help="continue the run in --out from its last checkpoint (its "
                                   "saved settings are used; --epochs may raise the total)")
    train_parser.add_argument("--overwrite", action="store_true",
                              help="replace the run that --out already holds")
    train_parser.add_argument("--no-progress", action="store_true", help="no progress bars")

    eval_parser = commands.add_parser(
        "eval", help="evaluate saved weights",
        description="Evaluate weights saved by 'zerograd train'. The dataset and model are read "
                    "from the run's checkpoint (or metrics.json) next to the weights unless "
                    "given.")
    eval_parser.add_argument("--weights", required=True, help="weights .npz to evaluate")
    _add_common(eval_parser, defaults=False)
    eval_parser.add_argument("--split", choices=("test", "train"), default="test")
    return parser


def _raise_terminated(signum, frame):
    raise Terminated()


@contextlib.contextmanager
def _sigterm_raises():
    """SIGTERM raises Terminated while the command runs, so that it ends like Ctrl-C (with
    the curves and metrics of the completed epochs written) instead of dying mid-way."""
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers can only be set from the main thread
        return
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _run_command(args) -> None:
    if args.command == "train":
        config = TrainConfig(dataset=args.dataset, model=args.model,
                             batch_size=args.batch_size, optimizer=args.optimizer,
                             lr=args.lr, seed=args.seed, hidden=args.hidden,
                             data_dir=args.data_dir, download=bool(args.download))
        train(config, args.out, resume=args.resume, progress=not args.no_progress,
              epochs=args.epochs, overwrite=args.overwrite)
    else:
        overrides = {"dataset": args.dataset, "model": args.model, "hidden": args.hidden,
                     "data_dir": args.data_dir, "download": args.download}
        evaluate_weights(args.weights, overrides, split=args.split)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``zerograd`` console script; returns the exit status.

    Errors are one line on stderr: 2 for what the user gave (arguments, files), 1 for
    anything else; ``--debug`` shows the traceback instead.
    """
    args = build_parser().parse_args(argv)
    debug = getattr(args, "debug", False)
    if args.command == "train":
        if args.resume and args.out is None:
            print("zerograd: error: --resume needs --out, the directory of the run to "
                  "continue", file=sys.stderr)
            return 2
        args.out = args.out or os.path.join("runs", f"{args.dataset}-{args.model}")
    try:
        with _sigterm_raises():
            _run_command(args)
    except (KeyboardInterrupt, Terminated) as stop:
        cause = "SIGTERM" if isinstance(stop, Terminated) else "Ctrl-C"
        if args.command == "train" and os.path.exists(os.path.join(args.out, CHECKPOINT)):
            print(f"zerograd: interrupted ({cause}); the completed epochs are saved. Continue "
                  f"with: zerograd train --out {shlex.quote(args.out)} --resume",
                  file=sys.stderr)
        else:
            print(f"zerograd: interrupted ({cause}); nothing was saved", file=sys.stderr)
        return 143 if isinstance(stop, Terminated) else 130
    except (CLIError, ZerogradError) as error:
        # ZerogradError: corrupt data or checkpoint files, weights that do not fit the model.
        if debug:
            raise
        print(f"zerograd: error: {error}", file=sys.stderr)
        return 2
    except Exception as error:
        if debug:
            raise
        print(f"zerograd: error: {type(error).__name__}: {error} (run again with --debug for "
              f"the traceback)", file=sys.stderr)
        return 1
    return 0


__all__ = [
    "CLIError", "DATASETS", "DataRequest", "DataSpec", "MODELS", "OPTIMIZERS", "Run",
    "Terminated", "TrainConfig", "build_parser", "build_run", "commit", "evaluate",
    "evaluate_weights", "main", "register_dataset", "register_model", "train", "write_outputs",
]
