"""The ``zerograd`` command line: ``zerograd train``, ``eval``, ``predict`` and ``export``.

A thin layer over ``zerograd.training.fit``: this module turns flags (or a ``--config``
file) into a dataset, a model, an optimizer and callbacks, and hands them to the loop, which
keeps the run directory (``--out``; see ``zerograd.training.rundir`` for its commit
protocol: the checkpoint as the one source of truth, derived files rewritten from it,
``--resume`` continuing bit-identically after any interrupt).

Datasets and models come from three places, looked up in this order:

- the built-in registries (``register_dataset``, ``register_model``);
- the entry-point groups ``zerograd.datasets`` and ``zerograd.models`` of installed
  packages (``name = "package.module:factory"`` in their metadata);
- ``package.module:factory`` given on the command line itself.

A model factory is ``factory(spec: DataSpec, config: TrainConfig) -> Layer`` (an attribute
``needs_images = True`` asks for ``(N, C, H, W)`` batches); a dataset factory is
``factory(request: DataRequest) -> (train, test)``, or ``(train, test, spec)``; without a
spec the task, the number of outputs and the image shape are read from the data.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import json
import os
import re
import shlex
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib.metadata import EntryPoint, entry_points
from typing import TYPE_CHECKING, Any, TypeAlias, cast

import numpy as np

import zerograd
import zerograd.distributed as dist
from zerograd import functions as F
from zerograd import random_state
from zerograd.core.variable import Variable
from zerograd.data.dataset import DatasetLike, Subset
from zerograd.data.loader import DataLoader
from zerograd.errors import ZerogradError
from zerograd.nn.layer import Layer
from zerograd.optim.optimizer import Optimizer
from zerograd.optim.schedulers import LRScheduler
from zerograd.serialization import load_json, load_npz
from zerograd.training import rundir
from zerograd.training.callbacks import (
    Callback,
    EarlyStopping,
    GradientClipping,
    LearningRateScheduler,
    ModelCheckpoint,
    TensorBoard,
)
from zerograd.training.curves import draw_curves, plot_curves
from zerograd.training.progress import format_seconds
from zerograd.training.progress import progress as _progress  # noqa: F401 (the old name)
from zerograd.training.rundir import (
    CHECKPOINT,
    CURVES,
    DERIVED,
    METRICS,
    METRICS_CSV,
    OPTIMIZER,
    RUN_FILES,
    WEIGHTS,
    CheckpointError,
    WeightsMismatchError,
)
from zerograd.training.trainer import (
    LossFn,
    OptimizerLike,
    Terminated,
    Trainer,
    fit,
    load_model_state,
    predict,
    probe,
    sigterm_raises,
)

if TYPE_CHECKING:
    from zerograd.data.cifar import CIFAR10
    from zerograd.data.digits import Digits
    from zerograd.data.mnist import MNIST
    from zerograd.data.sincurve import SinCurve
    from zerograd.data.spiral import Spiral
    from zerograd.models import MLP, Sequential

EVAL_BATCH_SIZE = 1000
EXTRAS_INSTALL = 'pip install "zerograd[extras]"'


class CLIError(Exception):
    """A problem with what the user asked for; printed without a traceback (exit status 2)."""


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


# request -> (train, test) or (train, test, spec)
DatasetFactory: TypeAlias = Callable[[DataRequest], tuple[Any, ...]]
ModelFactory: TypeAlias = Callable[["DataSpec", "TrainConfig"], "zerograd.Model"]


@dataclass(frozen=True)
class DatasetEntry:
    build: DatasetFactory
    spec: DataSpec | None  # None: read from the data
    description: str
    requires: tuple[tuple[str, str], ...] = ()  # (module to import, package to pip install)
    # An image read by `zerograd predict`, as float (C, H, W) in [0, 1] -> what the dataset's
    # examples look like (its normalisation); None: passed on as it is.
    image_input: Callable[[np.ndarray], np.ndarray] | None = None


@dataclass(frozen=True)
class ModelEntry:
    build: ModelFactory
    needs_images: bool
    description: str


DATASETS: dict[str, DatasetEntry] = {}
MODELS: dict[str, ModelEntry] = {}


def register_dataset(name: str, spec: DataSpec | None = None, description: str = "",
                     requires: Sequence[tuple[str, str]] = (),
                     image_input: Callable[[np.ndarray], np.ndarray] | None = None
                     ) -> Callable[[DatasetFactory], DatasetFactory]:
    """Decorator: ``build(request: DataRequest) -> (train_dataset, test_dataset)``.

    ``spec`` None: read from the data (integer labels: classification). ``requires`` lists
    ``(module, pip package)`` pairs the dataset cannot do without; the command line checks
    them first and names the package to install.
    """
    def decorate(build: DatasetFactory) -> DatasetFactory:
        DATASETS[name] = DatasetEntry(build, spec, description or build.__doc__ or "",
                                      tuple(requires), image_input)
        return build
    return decorate


def register_model(name: str, needs_images: bool = False, description: str = ""
                   ) -> Callable[[ModelFactory], ModelFactory]:
    """Decorator: ``build(spec: DataSpec, config: TrainConfig) -> Model``.

    ``needs_images`` models get ``(N, C, H, W)`` batches; the others get flat vectors.
    """
    def decorate(build: ModelFactory) -> ModelFactory:
        MODELS[name] = ModelEntry(build, needs_images, description or build.__doc__ or "")
        return build
    return decorate


def _entry_point(group: str, name: str) -> EntryPoint | None:
    for point in entry_points(group=group):
        if point.name == name:
            return point
    return None


def _entry_point_names(group: str) -> list[str]:
    return sorted(point.name for point in entry_points(group=group))


def _import_factory(spec: str, flag: str) -> object:
    """``package.module:factory`` -> the object; CLIError naming the flag when it fails."""
    module_name, _, attribute = spec.partition(":")
    # The current directory, as for `python -m`: the console script's own directory is
    # first on sys.path instead, and a user's module next to their data would not be found.
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise CLIError(f"{flag} {spec}: cannot import {module_name} ({error}); is the package "
                       f"installed, or its directory on PYTHONPATH?") from error
    try:
        obj: object = module
        for part in attribute.split("."):
            obj = getattr(obj, part)
    except AttributeError:
        raise CLIError(f"{flag} {spec}: {module_name} has no {attribute!r}") from None
    return obj


def _lookup(name: str, registry: Mapping[str, object], group: str, flag: str) -> object:
    """The registered entry, the entry point or the imported factory called ``name``: an
    object of the user's code, checked by the caller."""
    if name in registry:
        return registry[name]
    point = _entry_point(group, name)
    if point is not None:
        try:
            return point.load()
        except Exception as error:
            raise CLIError(f"{flag} {name}: the entry point {point.value} (group {group}) "
                           f"cannot be loaded: {type(error).__name__}: {error}") from error
    if ":" in name:
        return _import_factory(name, flag)
    known = sorted(registry) + _entry_point_names(group)
    raise CLIError(f"unknown {flag[2:]} {name!r}; choose from {known} or give "
                   f"package.module:factory")


def model_entry(name: str) -> ModelEntry:
    found = _lookup(name, MODELS, "zerograd.models", "--model")
    if isinstance(found, ModelEntry):
        return found
    if not callable(found):
        raise CLIError(f"--model {name}: {type(found).__name__} is not a model factory "
                       f"(factory(spec, config) -> Layer)")
    # Only calling it can tell whether it takes (spec, config); the loop reports it if not.
    factory = cast(ModelFactory, found)
    return ModelEntry(factory, bool(getattr(found, "needs_images", False)), found.__doc__ or "")


def dataset_entry(name: str) -> DatasetEntry:
    found = _lookup(name, DATASETS, "zerograd.datasets", "--dataset")
    if isinstance(found, DatasetEntry):
        return found
    if not callable(found):
        raise CLIError(f"--dataset {name}: {type(found).__name__} is not a dataset factory "
                       f"(factory(request) -> (train, test))")
    # As for models: calling it tells whether it takes a request; build_data checks its result.
    return DatasetEntry(cast(DatasetFactory, found), None, found.__doc__ or "")


def _images_in_unit_range(x: np.ndarray) -> np.ndarray:
    return x


@register_dataset("digits", DataSpec("classification", 10, (1, 8, 8)),
                  "scikit-learn's 8x8 digits (1,438 train / 359 test), no network needed",
                  requires=[("sklearn", "scikit-learn")], image_input=_images_in_unit_range)
def _digits(request: DataRequest) -> tuple[Digits, Digits]:
    from zerograd.data.digits import DEFAULT_TRANSFORM, Digits

    transform = None if request.as_images else DEFAULT_TRANSFORM
    return Digits(train=True, transform=transform), Digits(train=False, transform=transform)


def _missing_idx_files(root: str, train: bool) -> list[str]:
    """The split's IDX files that are in ``root`` neither gzipped nor unpacked."""
    from zerograd.data.mnist import MNIST

    return [stem + ".gz" for stem in MNIST.files[train]
            if not any(os.path.isfile(os.path.join(root, stem + ext)) for ext in (".gz", ""))]


def _idx_splits(name: str, root: str, request: DataRequest,
                download_hint: str) -> tuple[MNIST, MNIST]:
    """MNIST-format IDX files (MNIST, Fashion-MNIST, KMNIST ...) from ``root``."""
    from zerograd.data.mnist import DEFAULT_TRANSFORM, MNIST
    from zerograd.data.transforms import Compose, Normalize, ToFloat

    # Images keep their (1, 28, 28) shape; flat vectors are MNIST's default.
    transform = (Compose([ToFloat(), Normalize(0.0, 255.0)]) if request.as_images
                 else DEFAULT_TRANSFORM)
    splits = []
    for train in (True, False):
        try:
            splits.append(MNIST(train=train, transform=transform, root=root,
                                download=request.download))
        except FileNotFoundError as error:
            # The library's message names its keyword arguments; say it in the CLI's flags.
            missing = ", ".join(_missing_idx_files(root, train)) or "its files"
            raise CLIError(
                f"--dataset {name}: the {'train' if train else 'test'} split is not in {root}: "
                f"missing {missing}. Put the IDX files (.gz or unpacked) there, give "
                f"--data-dir DIR holding them{download_hint}") from error
    return splits[0], splits[1]


@register_dataset("mnist", DataSpec("classification", 10, (1, 28, 28)),
                  "MNIST from IDX files in --data-dir (default: the cache directory)",
                  image_input=_images_in_unit_range)
def _mnist(request: DataRequest) -> tuple[MNIST, MNIST]:
    from zerograd.data.download import cache_dir
    from zerograd.data.mnist import MNIST

    root = request.data_dir or os.path.join(cache_dir(), "mnist")
    return _idx_splits("mnist", root, request,
                       f", or add --download to fetch them from {MNIST.mirrors[0]}")


@register_dataset("fashion-mnist", DataSpec("classification", 10, (1, 28, 28)),
                  "Fashion-MNIST (or any MNIST-format IDX quartet) from --data-dir",
                  image_input=_images_in_unit_range)
def _fashion_mnist(request: DataRequest) -> tuple[MNIST, MNIST]:
    from zerograd.data.download import cache_dir

    if request.download:
        raise CLIError("--dataset fashion-mnist: --download fetches MNIST's files only; put "
                       "Fashion-MNIST's train-*/t10k-* IDX files into --data-dir")
    root = request.data_dir or os.path.join(cache_dir(), "fashion-mnist")
    return _idx_splits("fashion-mnist", root, request, "")


def _cifar_input(x: np.ndarray) -> np.ndarray:
    return (x * 255.0 - 127.5) / 127.5  # CIFAR10's default transform, from [0, 1] pixels


@register_dataset("cifar10", DataSpec("classification", 10, (3, 32, 32)),
                  "CIFAR-10 binary batches or archive in --data-dir (--download fetches it)",
                  image_input=_cifar_input)
def _cifar10(request: DataRequest) -> tuple[CIFAR10, CIFAR10]:
    from zerograd.data.cifar import CIFAR10, DEFAULT_TRANSFORM
    from zerograd.data.download import cache_dir
    from zerograd.data.transforms import Compose, Flatten

    root = request.data_dir or os.path.join(cache_dir(), "cifar")
    transform = DEFAULT_TRANSFORM if request.as_images else Compose([DEFAULT_TRANSFORM,
                                                                     Flatten()])
    def split(train: bool) -> CIFAR10:
        return CIFAR10(train=train, transform=transform, root=root, download=request.download)

    try:
        return split(True), split(False)
    except FileNotFoundError as error:
        raise CLIError(f"--dataset cifar10: neither {CIFAR10.folder}/ nor {CIFAR10.archive} "
                       f"is in {root}. Give --data-dir DIR holding one of them, or add "
                       f"--download to fetch {CIFAR10.url}") from error


@register_dataset("spiral", DataSpec("classification", 3, None),
                  "the book's 3-class 2-D spiral (300 train / 300 test points)")
def _spiral(request: DataRequest) -> tuple[Spiral, Spiral]:
    from zerograd.data.spiral import Spiral

    # seed_global=False: --seed, not DeZero's fixed reseeding of the global generator,
    # decides the weights and the shuffling.
    return Spiral(train=True, seed_global=False), Spiral(train=False, seed_global=False)


@register_dataset("sincurve", DataSpec("regression", 1, None),
                  "next value of a noisy sine wave (regression; test on the cosine)")
def _sincurve(request: DataRequest) -> tuple[SinCurve, SinCurve]:
    from zerograd.data.sincurve import SinCurve

    return SinCurve(train=True), SinCurve(train=False)


@register_model("mlp", description="multi-layer perceptron: --hidden sizes, ReLU")
def _mlp(spec: DataSpec, config: TrainConfig) -> MLP:
    from zerograd.models import MLP

    return MLP(list(config.hidden) + [spec.n_outputs], activation=F.relu)


@register_model("linear", description="a single Linear layer (logistic/linear regression)")
def _linear(spec: DataSpec, config: TrainConfig) -> MLP:
    from zerograd.models import MLP

    return MLP([spec.n_outputs])


@register_model("cnn", needs_images=True,
                description="conv(3x3, 16)-ReLU-maxpool(2)-conv(3x3, 32)-ReLU-maxpool(2)-"
                            "Linear(--hidden[0])-ReLU-Linear")
def _cnn(spec: DataSpec, config: TrainConfig) -> Sequential:
    import zerograd.layers as L
    from zerograd.models import Sequential

    if not hasattr(L, "Conv2d"):
        raise CLIError("--model cnn needs zerograd.layers.Conv2d, which this version lacks")

    def pool(x: Variable) -> Variable:
        return F.pooling(x, 2, 2)

    def flatten(x: Variable) -> Variable:
        return x.reshape(len(x), -1)

    return Sequential(L.Conv2d(16, 3, pad=1), F.relu, pool, L.Conv2d(32, 3, pad=1), F.relu, pool,
                      flatten, L.Linear(config.hidden[0]), F.relu, L.Linear(spec.n_outputs))


OPTIMIZERS = {
    "sgd": "SGD", "momentum": "MomentumSGD", "nesterov": "MomentumSGD", "adagrad": "AdaGrad",
    "adadelta": "AdaDelta", "rmsprop": "RMSprop", "adam": "Adam", "adamw": "AdamW",
}


def make_optimizer(name: str, lr: float | None, weight_decay: float = 0.0) -> Optimizer:
    """The optimizer called ``name``; ``weight_decay``: AdamW's own decoupled decay, an L2
    ``WeightDecay`` hook for the others."""
    from zerograd import optimizers

    # Looked up by name: what the class takes (nesterov, weight_decay) depends on the name.
    cls = getattr(optimizers, OPTIMIZERS[name])
    optimizer = cls(nesterov=True) if name == "nesterov" else cls()
    if lr is not None:
        if optimizer.lr_attribute is None:
            raise CLIError(f"--optimizer {name} has no learning rate; drop --lr")
        optimizer.set_lr(lr)
    if name == "adamw":
        optimizer.weight_decay = weight_decay if weight_decay else optimizer.weight_decay
    elif weight_decay:
        optimizer.add_hook(optimizers.WeightDecay(weight_decay))
    return optimizer


SCHEDULERS = {"step": "StepLR", "multistep": "MultiStepLR", "exponential": "ExponentialLR",
              "cosine": "CosineAnnealingLR"}


# A scheduler argument as written on the command line: a number, a word, or a/b/c.
SchedulerValue: TypeAlias = "int | float | str | list[SchedulerValue]"


def _parse_value(text: str) -> SchedulerValue:
    if "/" in text:  # milestones=10/20/30
        return [_parse_value(part) for part in text.split("/")]
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def parse_scheduler(text: str) -> tuple[str, dict[str, SchedulerValue]]:
    """``"step:step_size=10,gamma=0.5"`` -> ``("step", {"step_size": 10, "gamma": 0.5})``."""
    name, _, rest = text.partition(":")
    if name not in SCHEDULERS:
        raise CLIError(f"--scheduler {text}: unknown scheduler {name!r}; choose from "
                       f"{sorted(SCHEDULERS)} (add --warmup N for a linear warm-up)")
    kwargs: dict[str, SchedulerValue] = {}
    for part in filter(None, rest.split(",")):
        key, eq, value = part.partition("=")
        if not eq:
            raise CLIError(f"--scheduler {text}: expected name:key=value,..., got {part!r}")
        kwargs[key.strip()] = _parse_value(value.strip())
    return name, kwargs


def make_scheduler(config: TrainConfig, optimizer: OptimizerLike) -> LRScheduler | None:
    """The learning-rate scheduler of ``config`` on ``optimizer``, or None."""
    from zerograd import optim

    if config.scheduler is None and not config.warmup:
        return None
    # A scheduler sets an Optimizer's rate; a DistributedOptimizer's rate is the one of the
    # optimizer it wraps (it forwards lr to it), so that one is scheduled.
    if isinstance(optimizer, dist.DistributedOptimizer):
        optimizer = optimizer.optimizer
    if optimizer.lr_attribute is None:
        raise CLIError(f"--optimizer {config.optimizer} has no learning rate to schedule; drop "
                       f"--scheduler and --warmup")
    after: LRScheduler | None = None
    if config.scheduler is not None:
        name, kwargs = parse_scheduler(config.scheduler)
        if name == "cosine":
            kwargs.setdefault("T_max", max(1, config.epochs - config.warmup))
        try:
            after = getattr(optim, SCHEDULERS[name])(optimizer, **kwargs)
        except (TypeError, ValueError) as error:
            raise CLIError(f"--scheduler {config.scheduler}: {error}") from None
    if config.warmup:
        return optim.LinearWarmup(optimizer, config.warmup, after=after)
    return after


# ---------------------------------------------------------------------------------------------
# Settings
# ---------------------------------------------------------------------------------------------
def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)  # JSON true is not a size


def _is_number(value: object) -> bool:
    return _is_int(value) or isinstance(value, float)


def _optional(test: Callable[[object], bool]) -> Callable[[object], bool]:
    return lambda v: v is None or test(v)


# What each setting may be when read from a file: (test, what the message says is expected).
_SETTING_TYPES: dict[str, tuple[Callable[[object], bool], str]] = {
    "dataset": (lambda v: isinstance(v, str), "a dataset name"),
    "model": (lambda v: isinstance(v, str), "a model name"),
    "epochs": (_is_int, "an integer"),
    "batch_size": (_is_int, "an integer"),
    "optimizer": (lambda v: isinstance(v, str), "an optimizer name"),
    "lr": (_optional(_is_number), "a number or null"),
    "seed": (_is_int, "an integer"),
    "hidden": (lambda v: isinstance(v, (list, tuple)) and all(_is_int(h) for h in v),
               "a list of integers"),
    "data_dir": (_optional(lambda v: isinstance(v, str)), "a path or null"),
    "download": (lambda v: isinstance(v, bool), "true or false"),
    "weight_decay": (_is_number, "a number"),
    "clip": (_optional(_is_number), "a number or null"),
    "scheduler": (_optional(lambda v: isinstance(v, str)), "a scheduler such as "
                                                           "'step:step_size=10' or null"),
    "warmup": (_is_int, "an integer"),
    "early_stopping": (_optional(_is_int), "an integer (patience) or null"),
    "monitor": (_optional(lambda v: isinstance(v, str)), "a column name or null"),
    "val_split": (_is_number, "a fraction"),
    "save_best": (lambda v: isinstance(v, bool), "true or false"),
    "checkpoint_every": (_optional(_is_int), "an integer (batches) or null"),
    "tensorboard": (lambda v: isinstance(v, bool), "true or false"),
}


@dataclass
class TrainConfig:
    """Every setting of ``zerograd train``; a run saves it, ``--config`` reads it back."""

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
    weight_decay: float = 0.0
    clip: float | None = None
    scheduler: str | None = None
    warmup: int = 0
    early_stopping: int | None = None
    monitor: str | None = None
    val_split: float = 0.0
    save_best: bool = False
    checkpoint_every: int | None = None
    tensorboard: bool = False

    def check(self) -> TrainConfig:
        dataset, model = dataset_entry(self.dataset), model_entry(self.model)
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
        if model.needs_images and dataset.spec is not None and dataset.spec.image_shape is None:
            raise CLIError(f"--model {self.model} needs image data; {self.dataset} has none")
        self.hidden = tuple(int(h) for h in self.hidden)
        if not self.hidden or min(self.hidden) < 1:
            raise CLIError(f"--hidden must list positive layer sizes, got {self.hidden}")
        if self.weight_decay < 0:
            raise CLIError(f"--weight-decay must be >= 0, got {self.weight_decay}")
        if self.clip is not None and not self.clip > 0:
            raise CLIError(f"--clip must be positive, got {self.clip}")
        if self.scheduler is not None:
            parse_scheduler(self.scheduler)
        if self.warmup < 0:
            raise CLIError(f"--warmup must be >= 0 epochs, got {self.warmup}")
        if self.early_stopping is not None and self.early_stopping < 1:
            raise CLIError(f"--early-stopping must be a patience >= 1, got "
                           f"{self.early_stopping}")
        if not 0 <= self.val_split < 1:
            raise CLIError(f"--val-split must lie in [0, 1), got {self.val_split}")
        if self.checkpoint_every is not None and self.checkpoint_every < 1:
            raise CLIError(f"--checkpoint-every must be a positive number of batches, got "
                           f"{self.checkpoint_every}")
        return self

    def to_json(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "hidden": list(self.hidden)}

    @classmethod
    def from_json(cls, values: object, source: str = "the settings",
                  strict: bool = False) -> TrainConfig:
        """Settings read from a file (``source`` names it in errors). Missing keys take their
        defaults; unknown keys are ignored (a checkpoint of another version), or with
        ``strict`` an error (a --config file: a typo must not pass silently); a value of the
        wrong type is a CLIError."""
        if not isinstance(values, dict):
            raise CLIError(f"{source}: the settings are a {type(values).__name__}, expected a "
                           f"JSON object of settings")
        names = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(values) - set(names))
        if strict and unknown:
            raise CLIError(f"{source}: unknown setting(s) {unknown}; the settings are {names}")
        # Any: each value has passed its setting's test in _SETTING_TYPES.
        kwargs: dict[str, Any] = {}
        for name in names:
            if name not in values:
                continue
            value = values[name]
            fits, expected = _SETTING_TYPES[name]
            if not fits(value):
                raise CLIError(f"{source}: setting {name!r} is {value!r}, expected {expected}")
            kwargs[name] = tuple(value) if name == "hidden" else value
        return cls(**kwargs)

    def describe(self) -> str:
        """The model-defining settings as command-line flags, for messages."""
        return (f"--model {self.model} --hidden {','.join(map(str, self.hidden))} "
                f"--dataset {self.dataset}")


def read_config_file(path: str) -> dict[str, Any]:
    """The settings in a ``--config`` file: a JSON or YAML object of settings, or a run's
    ``metrics.json`` (its ``config``), so a run's saved configuration passes back as it is."""
    if not os.path.isfile(path):
        raise CLIError(f"--config: no such file: {path}")
    if path.endswith((".yaml", ".yml")):
        try:
            import yaml
        except ImportError:
            raise CLIError(f"--config {path}: YAML needs PyYAML: pip install pyyaml (or "
                           f"pip install 'zerograd[yaml]'); or give the settings as JSON") \
                from None
        try:
            with open(path, encoding="utf-8") as f:
                values = yaml.safe_load(f)
        except yaml.YAMLError as error:
            raise CLIError(f"--config {path}: not valid YAML: {error}") from None
    else:
        values = load_json(path)  # CorruptFileError names the file
    if isinstance(values, dict) and "config" in values and "history" in values:
        values = values["config"]  # a run's metrics.json
    if not isinstance(values, dict):
        raise CLIError(f"--config {path}: holds a {type(values).__name__}, expected an object "
                       f"of settings")
    return values


@dataclass
class Run:
    """Everything a training run is made of; ``epoch`` counts completed epochs."""

    config: TrainConfig
    spec: DataSpec
    train_set: DatasetLike
    test_set: DatasetLike
    loader: DataLoader
    model: zerograd.Model
    optimizer: OptimizerLike
    val_set: DatasetLike | None = None
    callbacks: list[Callback] = field(default_factory=list)
    epoch: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)
    trainer: Trainer | None = None


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


def infer_spec(dataset: DatasetLike, name: str) -> DataSpec:
    """A user dataset's task, outputs and image shape, read from its examples: integer
    labels are classes (as many as the largest label + 1), float targets are regression."""
    if len(dataset) == 0:
        raise CLIError(f"--dataset {name}: the training set is empty")
    x, t = dataset[0]
    x, t = np.asarray(x), None if t is None else np.asarray(t)
    if t is None:
        raise CLIError(f"--dataset {name}: the examples have no labels (t is None); "
                       f"training needs (x, t) pairs")
    image_shape = (int(x.shape[0]), int(x.shape[1]), int(x.shape[2])) if x.ndim == 3 else None
    if t.dtype.kind in "iub":
        labels = getattr(dataset, "label", None)
        if labels is None:
            labels = [int(np.asarray(dataset[i][1])) for i in range(len(dataset))]
        return DataSpec("classification", int(np.max(labels)) + 1, image_shape)
    return DataSpec("regression", int(t.size), image_shape)


def build_data(config: TrainConfig) -> tuple[DataSpec, DatasetLike, DatasetLike]:
    """The spec, the training set and the test set of ``config``'s dataset."""
    entry = dataset_entry(config.dataset)
    _check_requirements(config.dataset, entry)
    as_images = model_entry(config.model).needs_images
    try:
        built = entry.build(DataRequest(config.data_dir, as_images, config.download))
    except (FileNotFoundError, ImportError, OSError) as error:
        raise CLIError(str(error)) from error
    if not (isinstance(built, tuple) and len(built) in (2, 3)):
        raise CLIError(f"--dataset {config.dataset}: the factory returned "
                       f"{type(built).__name__}, expected (train, test) or (train, test, spec)")
    train_set, test_set = built[0], built[1]
    spec = built[2] if len(built) == 3 else entry.spec
    if spec is None:
        spec = infer_spec(train_set, config.dataset)
    return spec, train_set, test_set


def split_validation(train_set: DatasetLike, fraction: float,
                     seed: int) -> tuple[Subset, Subset]:
    """(train, validation) Subsets: a ``fraction`` of the examples held out, chosen by a
    generator of its own seeded with ``seed`` (the global random state is left alone)."""
    from zerograd.data.dataset import Subset

    n = len(train_set)
    n_val = int(round(fraction * n))
    if not 0 < n_val < n:
        raise CLIError(f"--val-split {fraction} of {n} training examples leaves "
                       f"{n_val} for validation and {n - n_val} for training; both need some")
    order = np.random.RandomState(seed).permutation(n)
    return Subset(train_set, np.sort(order[n_val:])), Subset(train_set, np.sort(order[:n_val]))


def build_callbacks(config: TrainConfig, optimizer: OptimizerLike,
                    out: str | None) -> list[Callback]:
    callbacks: list[Callback] = []
    scheduler = make_scheduler(config, optimizer)
    if scheduler is not None:
        callbacks.append(LearningRateScheduler(scheduler))
    if config.clip is not None:
        callbacks.append(GradientClipping(config.clip))
    if config.early_stopping is not None:
        callbacks.append(EarlyStopping(config.monitor, patience=config.early_stopping))
    if config.save_best:
        callbacks.append(ModelCheckpoint(monitor=config.monitor))
    if config.tensorboard and out is not None:
        callbacks.append(TensorBoard(os.path.join(out, "tensorboard")))
    return callbacks


def build_run(config: TrainConfig, out: str | None = None, distributed: bool = False) -> Run:
    """Seeds, then builds data, loader, model, optimizer and callbacks in a fixed order.

    ``distributed``: this process's part of a data-parallel run (``zerograd.distributed``,
    its group joined): its shard of the training set in batches of ``batch_size``, rank 0's
    initial weights, and an optimizer that averages the gradients over the processes.
    """
    random_state.seed(config.seed)
    spec, train_set, test_set = build_data(config)
    val_set = None
    if config.val_split:
        train_set, val_set = split_validation(train_set, config.val_split, config.seed)
    if distributed:
        # Every rank draws epoch e's order from (seed, e), not from the global random
        # state, so the shards agree without talking; the loader keeps the shard's order.
        shard = dist.scatter_dataset(train_set, shuffle=True, seed=config.seed)
        loader = DataLoader(shard, config.batch_size, shuffle=False)
    else:
        loader = DataLoader(train_set, config.batch_size, shuffle=True)
    model = model_entry(config.model).build(spec, config)
    base = make_optimizer(config.optimizer, config.lr, config.weight_decay).setup(model)
    if distributed:
        # Lazily sized layers get their weights from one forward pass (in test mode: no
        # BatchNorm statistics move, no dropout mask is drawn); then all take rank 0's.
        x, _ = next(iter(DataLoader(train_set, 1, shuffle=False)))
        with zerograd.no_grad(), zerograd.test_mode():
            model(x)
        dist.broadcast_parameters(model)
        if dist.rank() > 0:
            # Rank 0 keeps the stream a one-process run has; the others draw other dropout
            # masks, from a seed of their own.
            random_state.seed((config.seed + dist.rank()) % 2**32)
    optimizer: OptimizerLike = dist.DistributedOptimizer(base) if distributed else base
    callbacks = build_callbacks(config, optimizer, out)
    return Run(config, spec, train_set, test_set, loader, model, optimizer, val_set, callbacks)


def _task_loss(spec: DataSpec) -> tuple[LossFn, tuple[str, ...]]:
    if spec.task == "classification":
        return F.softmax_cross_entropy, ("accuracy",)
    return F.mean_squared_error, ()


def evaluate(model: Layer, dataset: DatasetLike, spec: DataSpec) -> dict[str, float]:
    """Mean loss (and accuracy for classification) over ``dataset``, without a graph."""
    from zerograd.training.trainer import evaluate as evaluate_loader

    loss, metrics = _task_loss(spec)
    return evaluate_loader(model, DataLoader(dataset, EVAL_BATCH_SIZE, shuffle=False), loss,
                           metrics)


# ---------------------------------------------------------------------------------------------
# Training, resuming, evaluating: the loop's run directory in the command line's words
# ---------------------------------------------------------------------------------------------
def load_checkpoint(out: str) -> tuple[dict[str, Any], TrainConfig]:
    """The checkpoint of the run in ``out`` and its settings; CLIError when unusable."""
    path = os.path.join(out, CHECKPOINT)
    try:
        state = rundir.load_checkpoint(out)  # a CorruptFileError names the file too
    except CheckpointError as error:
        raise CLIError(str(error)) from error
    if state is None:
        raise CLIError(f"--resume: no checkpoint at {path}; start the run without --resume")
    return state, checked_config(state.get("config"), path)


def checked_config(values: object, path: str) -> TrainConfig:
    config = TrainConfig.from_json(values, source=path)
    try:
        return config.check()
    except CLIError as error:
        raise CLIError(f"{path}: {error}") from None


def _describe_run(state: dict[str, Any]) -> str:
    try:
        config = TrainConfig.from_json(state.get("config"))
    except CLIError:
        return f"{state['epoch']} epochs"
    return f"{config.model} on {config.dataset}, {state['epoch']} of {config.epochs} epochs"


def _note_ignored_settings(given: TrainConfig, saved: TrainConfig,
                           log: Callable[[str], None]) -> None:
    default = TrainConfig()
    for f in dataclasses.fields(TrainConfig):
        value = getattr(given, f.name)
        if f.name != "epochs" and value != getattr(default, f.name) \
                and value != getattr(saved, f.name):
            log(f"note: ignoring {f.name}={value!r}: --resume continues with the run's "
                f"{f.name}={getattr(saved, f.name)!r}")


def train(config: TrainConfig | None, out: str, resume: bool = False, progress: bool = True,
          epochs: int | None = None, log: Callable[[str], None] = print,
          overwrite: bool = False, quiet: bool = False, distributed: object = None) -> Run:
    """Trains a run (or resumes the one in ``out``) with ``training.fit``; returns the Run.

    When resuming, the checkpoint's settings are used (a note names any setting of ``config``
    that differs from the default and from the run's), with the total number of epochs set
    to ``epochs`` when given. A new run refuses an ``out`` that holds a run unless
    ``overwrite``. KeyboardInterrupt and Terminated propagate after the files of the last
    commit are written.

    ``distributed=True``: data-parallel over the processes ``mpiexec`` started
    (``zerograd.distributed``; one process without it). ``batch_size`` is per process; only
    rank 0 reads and writes ``out`` and logs; see ``build_run`` for what each process
    builds. Any other object is passed to ``fit`` as it is (see there).
    """
    out = os.fspath(out)
    if distributed is True:
        dist.init()
        if not dist.is_main():
            log = _no_log
    is_main = distributed is not True or dist.is_main()
    if is_main and os.path.exists(out) and not os.path.isdir(out):
        raise CLIError(f"--out {out} is a file, not a directory")
    state = None
    if resume:
        if overwrite:
            raise CLIError("--resume continues the run in --out and --overwrite replaces it; "
                           "give one of them")
        if distributed is True:
            # Rank 0 reads the checkpoint; the others need not see its file system.
            state, saved = dist.broadcast_object(load_checkpoint(out) if is_main else None)
        else:
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
        existing = rundir.existing_run(out, _describe_run) if is_main else None
        if distributed is True:
            existing = dist.broadcast_object(existing)
        if existing is not None:
            raise CLIError(f"--out {out} already holds a run ({existing}); add --resume to "
                           f"continue it, --overwrite to replace it, or choose another --out")
    # Before anything is written: a failure here changes nothing.
    run = build_run(config, out, distributed=distributed is True)
    loss, metrics = _task_loss(run.spec)
    evaluated = run.val_set if run.val_set is not None else run.test_set
    batch = f"batch size {config.batch_size}"
    if distributed is True:
        size = dist.world_size()
        batch += f" per process x {size} process{'es' if size > 1 else ''}"
        if size == 1 and not quiet:
            log("note: --distributed, but no MPI launcher started this process: training as "
                "one process (world size 1); start it as mpiexec -n N zerograd train "
                "--distributed ... to train on N")
        # Every example once over the ranks; each sums its own, fit adds the sums.
        evaluated = dist.scatter_dataset(evaluated, shuffle=False, pad=False)
    if not quiet:
        log(f"training {config.model} on {config.dataset}: {len(run.train_set)} train / "
            + (f"{len(run.val_set)} validation / " if run.val_set is not None else "")
            + f"{len(run.test_set)} test examples, {config.epochs} epochs, {batch}, "
            f"{config.optimizer}"
            + (f" (lr {config.lr})" if config.lr is not None else ""))
    try:
        trainer = fit(run.model, run.loader, run.optimizer, loss=loss, epochs=config.epochs,
                      val_loader=DataLoader(evaluated, EVAL_BATCH_SIZE, shuffle=False),
                      val_name="val" if run.val_set is not None else "test", metrics=metrics,
                      callbacks=run.callbacks, out=out, resume=resume, overwrite=overwrite,
                      config=config.to_json(), verbose=0 if quiet else 1 if progress else 2,
                      log=log, checkpoint_every=config.checkpoint_every,
                      distributed=distributed)
    except WeightsMismatchError as error:
        raise CLIError(f"{error.path} does not fit {config.describe()}: {error.detail}. The "
                       f"checkpoint does not belong to the settings it records") from None
    except CheckpointError as error:
        raise CLIError(str(error)) from error
    run.trainer, run.epoch, run.history = trainer, trainer.epoch, trainer.history
    if run.val_set is not None and not quiet and trainer.is_main:
        result = evaluate(run.model, run.test_set, run.spec)
        log("test: " + "  ".join(f"{k} {v:.4f}" for k, v in result.items()))
    return run


def _no_log(text: str) -> None:
    """The log of a process other than rank 0: one process speaks for the run."""


def _run_settings(weights: str, log: Callable[[str], None]) -> tuple[dict[str, Any], str]:
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
            if not rundir.trained(state):
                raise CLIError(f"{directory}: the run has no completed epoch yet, so there "
                               f"are no weights to evaluate")
            try:
                rundir.repair(directory, state, log, always=False)
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


def _weights_path(weights: str) -> str:
    weights = os.fspath(weights)
    return os.path.join(weights, WEIGHTS) if os.path.isdir(weights) else weights


def load_model(weights: str, overrides: Mapping[str, object],
               log: Callable[[str], None] = print, load_data: bool = True
               ) -> tuple[zerograd.Model, TrainConfig, DataSpec, DatasetLike | None,
                          DatasetLike | None]:
    """The model of a run with ``weights`` loaded: (model, config, spec, train, test); the
    datasets are None when not ``load_data`` and the dataset's spec is known without them."""
    values, source = _run_settings(weights, log)
    values = {**TrainConfig.from_json(values, source).to_json(),
              **{k: v for k, v in overrides.items() if v is not None}}
    try:
        config = TrainConfig.from_json(values, source).check()
    except CLIError as error:
        raise CLIError(f"{error} (settings read from {source})") from None
    if not os.path.isfile(weights):
        raise CLIError(f"--weights: no such file: {weights}")
    entry = dataset_entry(config.dataset)
    train_set: DatasetLike | None
    test_set: DatasetLike | None
    if load_data or entry.spec is None:
        spec, train_set, test_set = build_data(config)
    else:
        spec, train_set, test_set = entry.spec, None, None
    model = model_entry(config.model).build(spec, config)
    arrays = load_npz(weights)
    hint = ("Give the --model and --hidden the weights were trained with (they are read from "
            "the run's checkpoint or metrics.json next to the weights when there is one)")
    try:
        rundir.check_arrays(arrays, weights, "the weights")
        load_model_state(model, arrays, weights)
        if train_set is not None:
            probe(model, train_set, weights)
    except WeightsMismatchError as error:
        raise CLIError(f"{weights} does not fit {config.describe()}: {error.detail}. "
                       f"{hint}") from None
    return model, config, spec, train_set, test_set


def evaluate_weights(weights: str, overrides: Mapping[str, object], split: str = "test",
                     log: Callable[[str], None] = print) -> dict[str, float]:
    """Rebuilds the model of a run, loads ``weights`` and evaluates it on ``split``."""
    weights = _weights_path(weights)
    model, config, spec, train_set, test_set = load_model(weights, overrides, log)
    dataset = test_set if split == "test" else train_set
    assert dataset is not None  # load_model with load_data=True builds both splits
    result = evaluate(model, dataset, spec)
    text = (f"{config.model} on {config.dataset} ({split}, {len(dataset)} examples): "
            f"loss {result['loss']:.4f}")
    if "accuracy" in result:
        text += f"  accuracy {result['accuracy']:.4f}"
    log(text)
    return result


def read_input(path: str, spec: DataSpec, needs_images: bool,
               entry: DatasetEntry) -> np.ndarray:
    """A batch of model inputs from a ``.npy`` file (one example or a batch, as the model
    takes them) or an image (converted to the dataset's image shape and normalisation)."""
    if not os.path.isfile(path):
        raise CLIError(f"predict: no such file: {path}")
    if path.endswith(".npy"):
        try:
            x = np.load(path, allow_pickle=False)
        except ValueError as error:
            raise CLIError(f"predict: {path} is not a plain .npy array ({error})") from None
        if x.dtype.kind not in "biuf":
            raise CLIError(f"predict: {path} holds {x.dtype} values, expected numbers")
        example_ndim = 3 if needs_images else 1
        if x.ndim == example_ndim:
            x = x[np.newaxis]
        if x.ndim != example_ndim + 1:
            raise CLIError(f"predict: {path} has shape {x.shape}; expected one example "
                           f"({example_ndim}-D) or a batch of them ({example_ndim + 1}-D)")
        return x.astype(np.float32)
    if spec.image_shape is None:
        raise CLIError(f"predict: {path} is an image, but the run's dataset has no image "
                       f"shape; give a .npy file of inputs")
    try:
        from PIL import Image
    except ImportError:
        raise CLIError(f"predict: reading {path} needs Pillow: {EXTRAS_INSTALL}") from None
    C, H, W = spec.image_shape
    try:
        with Image.open(path) as image:
            image = image.convert("L" if C == 1 else "RGB").resize((W, H))
            pixels = np.asarray(image, dtype=np.float32) / 255.0
    except OSError as error:
        raise CLIError(f"predict: cannot read the image {path}: {error}") from None
    x = pixels[np.newaxis] if C == 1 else pixels.transpose(2, 0, 1)
    if entry.image_input is not None:
        x = entry.image_input(x)
    x = x.astype(np.float32)
    return x[np.newaxis] if needs_images else x.reshape(1, -1)


def predict_files(weights: str, inputs: Sequence[str], overrides: Mapping[str, object],
                  top: int = 3,
                  log: Callable[[str], None] = print) -> list[np.ndarray]:
    """Predictions of a run's model for each input file; one line per example."""
    weights = _weights_path(weights)
    model, config, spec, _, _ = load_model(weights, overrides, log, load_data=False)
    needs_images = model_entry(config.model).needs_images
    entry = dataset_entry(config.dataset)
    results: list[np.ndarray] = []
    for path in inputs:
        x = read_input(path, spec, needs_images, entry)
        y = predict(model, x)
        results.append(y)
        for i, row in enumerate(y):
            name = path if len(y) == 1 else f"{path}[{i}]"
            if spec.task == "classification":
                p = np.exp(row - row.max())
                p /= p.sum()
                best = np.argsort(-p)[:top]
                log(f"{name}: class {best[0]}  ("
                    + ", ".join(f"{k}: {p[k]:.3f}" for k in best) + ")")
            else:
                log(f"{name}: " + " ".join(f"{v:.6g}" for v in np.ravel(row)))
    return results


EXPORT_FORMATS = ("onnx",)
EXPORT_BATCH = 2  # the example batch export traces; the exported batch axis is symbolic


def _example_input(config: TrainConfig, spec: DataSpec,
                   train_set: DatasetLike | None) -> np.ndarray:
    """A zero batch shaped as the model takes its inputs: (N, C, H, W) from the dataset's
    image shape for image models, else the shape of one training example."""
    if model_entry(config.model).needs_images and spec.image_shape is not None:
        shape: tuple[int, ...] = spec.image_shape
    else:
        if train_set is None:
            _, train_set, _ = build_data(config)
        if len(train_set) == 0:
            raise CLIError(f"export: the training set of --dataset {config.dataset} is empty, "
                           f"so the input shape is unknown")
        shape = tuple(np.shape(train_set[0][0]))
    return np.zeros((EXPORT_BATCH, *shape), dtype=np.float32)


def export_weights(weights: str, out: str | None, fmt: str = "onnx", opset: int | None = None,
                   overrides: Mapping[str, object] | None = None,
                   log: Callable[[str], None] = print) -> str:
    """Rebuilds the model of a run (as ``zerograd eval`` does), loads ``weights`` and writes
    it as an ONNX file ``out`` (default: model.onnx next to the weights); returns the path.

    The graph's input is ``input`` (float32, the batch axis symbolic, the rest from the
    dataset), its output ``output`` (the model's scores or predictions, before any softmax
    the loss would apply).
    """
    if fmt not in EXPORT_FORMATS:
        raise CLIError(f"export: unknown --format {fmt!r}; supported: "
                       f"{', '.join(EXPORT_FORMATS)}")
    weights = _weights_path(weights)
    if not os.path.isfile(weights):
        raise CLIError(f"export: --weights: no such file: {weights} (give the weights.npz of "
                       f"a run of zerograd train, or its directory)")
    try:
        import onnx  # noqa: F401 - only to say early and plainly what is missing
    except ImportError:
        raise CLIError("export --format onnx needs the onnx package: "
                       "pip install 'zerograd[onnx]'") from None
    import zerograd.onnx

    model, config, spec, train_set, _ = load_model(weights, overrides or {}, log,
                                                   load_data=False)
    x = _example_input(config, spec, train_set)
    if out is None:
        out = os.path.join(os.path.dirname(os.path.abspath(weights)), "model.onnx")
    model.eval()  # inference: dropout off, batch norm on its running statistics
    try:
        proto = zerograd.onnx.export(model, x, out, opset=opset, input_names=["input"],
                                     output_names=["output"])
    except (ValueError, OSError) as error:  # a bad --opset, an --out that cannot be written
        raise CLIError(f"export: {error}") from None
    finally:
        model.train()

    def shape(value: onnx.ValueInfoProto) -> str:
        dims = [d.dim_param or str(d.dim_value) for d in value.type.tensor_type.shape.dim]
        return f"({', '.join(dims)})"

    opset_used = next(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx"))
    log(f"{config.model} on {config.dataset}: wrote {out} (ONNX opset {opset_used}): input "
        f"'input' float32 {shape(proto.graph.input[0])} -> output 'output' "
        f"{shape(proto.graph.output[0])}")
    return out


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


def _name_of(registry: Mapping[str, object], group: str) -> Callable[[str], str]:
    """An argparse type: a registered name, an entry point's, or package.module:factory."""
    def check(text: str) -> str:
        if text in registry or ":" in text or _entry_point(group, text) is not None:
            return text
        known = ", ".join(repr(name) for name in sorted(registry) + _entry_point_names(group))
        raise argparse.ArgumentTypeError(f"invalid choice: {text!r} (choose from {known}, or "
                                         f"give package.module:factory)")
    return check


def _add_debug(parser: argparse.ArgumentParser) -> None:
    # SUPPRESS: a subcommand's default must not overwrite `zerograd --debug train`.
    parser.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                        help="show the Python traceback of an error")


def _add_model_flags(parser: argparse.ArgumentParser, shown: Callable[[str], str]) -> None:
    """--dataset, --model, --hidden, --data-dir, --download. Their defaults are SUPPRESS:
    only flags that were given reach the settings, over a --config file or a run's own."""
    parser.add_argument("--dataset", type=_name_of(DATASETS, "zerograd.datasets"),
                        default=argparse.SUPPRESS, metavar="NAME",
                        help=f"{{{','.join(sorted(DATASETS))}}} or package.module:factory"
                             + shown("dataset"))
    parser.add_argument("--model", type=_name_of(MODELS, "zerograd.models"),
                        default=argparse.SUPPRESS, metavar="NAME",
                        help=f"{{{','.join(sorted(MODELS))}}} or package.module:factory"
                             + shown("model"))
    parser.add_argument("--hidden", type=_hidden_sizes, default=argparse.SUPPRESS,
                        help="hidden layer sizes, comma-separated" + shown("hidden"))
    parser.add_argument("--data-dir", default=argparse.SUPPRESS,
                        help="directory holding the dataset's files (mnist, fashion-mnist, "
                             "cifar10)")
    parser.add_argument("--download", action="store_const", const=True,
                        default=argparse.SUPPRESS,
                        help="download the dataset's missing files (mnist, cifar10; needs "
                             "the network)")
    _add_debug(parser)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="zerograd", description="Train, evaluate and use zerograd models.")
    parser.add_argument("--version", action="version", version=f"zerograd {zerograd.__version__}")
    _add_debug(parser)
    commands = parser.add_subparsers(dest="command", metavar="{train,eval,predict,export}")
    commands.required = True
    base = TrainConfig()

    def shown(name: str) -> str:
        value = getattr(base, name)
        value = ",".join(map(str, value)) if isinstance(value, tuple) else value
        return f" (default: {value})"

    train_parser = commands.add_parser(
        "train", help="train a model and write weights, metrics and curves",
        description="Train a model with zerograd.training.fit; after every epoch, commits a "
                    "checkpoint into --out and rewrites weights, optimizer state, metrics and "
                    "curves from it. --resume continues an interrupted run and repairs its "
                    "files. Settings: defaults, then --config FILE, then the flags given.")
    add = train_parser.add_argument
    _add_model_flags(train_parser, shown)
    add("--config", default=None, metavar="FILE",
        help="settings from a JSON or YAML file, or a run's metrics.json")
    add("--print-config", action="store_true",
        help="print the effective settings as JSON (a valid --config file) and exit")
    add("--epochs", type=int, default=argparse.SUPPRESS,
        help=f"total number of epochs (default: {base.epochs}; with --resume: the run's)")
    add("--batch-size", type=int, default=argparse.SUPPRESS,
        help="mini-batch size" + shown("batch_size"))
    add("--optimizer", choices=sorted(OPTIMIZERS), default=argparse.SUPPRESS,
        help="update rule" + shown("optimizer"))
    add("--lr", type=float, default=argparse.SUPPRESS,
        help="learning rate (default: the optimizer's own)")
    add("--weight-decay", type=float, default=argparse.SUPPRESS,
        help="weight decay: AdamW's decoupled decay, an L2 hook for the others (default: 0)")
    add("--scheduler", default=argparse.SUPPRESS, metavar="NAME[:k=v,...]",
        help="learning-rate schedule per epoch: step:step_size=N[,gamma=G], "
             "multistep:milestones=A/B[,gamma=G], exponential:gamma=G, cosine[:T_max=N,"
             "eta_min=E] (T_max defaults to the epochs after warm-up)")
    add("--warmup", type=int, default=argparse.SUPPRESS, metavar="EPOCHS",
        help="linear learning-rate warm-up over EPOCHS epochs, before --scheduler")
    add("--clip", type=float, default=argparse.SUPPRESS, metavar="MAX_NORM",
        help="clip the gradients' global norm to MAX_NORM before every update")
    add("--early-stopping", type=int, default=argparse.SUPPRESS, metavar="PATIENCE",
        help="stop when --monitor has not improved for PATIENCE epochs")
    add("--monitor", default=argparse.SUPPRESS, metavar="COLUMN",
        help="the column early stopping and --save-best watch (default: val_loss with "
             "--val-split, else test_loss)")
    add("--val-split", type=float, default=argparse.SUPPRESS, metavar="FRACTION",
        help="hold out FRACTION of the training set for validation after every epoch; the "
             "test set is then evaluated once, at the end (default: 0, validate on the test "
             "set)")
    add("--save-best", action="store_const", const=True, default=argparse.SUPPRESS,
        help="also keep best.npz, the weights of the best epoch by --monitor")
    add("--checkpoint-every", type=int, default=argparse.SUPPRESS, metavar="BATCHES",
        help="also commit a checkpoint every BATCHES batches (resumable mid-epoch)")
    add("--tensorboard", action="store_const", const=True, default=argparse.SUPPRESS,
        help="log every epoch to TensorBoard event files in OUT/tensorboard (tensorboardX)")
    add("--seed", type=int, default=argparse.SUPPRESS, help="random seed" + shown("seed"))
    add("--out", default=None, help="run directory (default: runs/<dataset>-<model>)")
    add("--resume", action="store_true",
        help="continue the run in --out from its last checkpoint (its saved settings are "
             "used; --epochs may raise the total)")
    add("--overwrite", action="store_true", help="replace the run that --out already holds")
    add("--no-progress", action="store_true", help="no progress bars, a line per epoch")
    add("--quiet", action="store_true", help="print nothing but errors")
    add("--distributed", action="store_true",
        help="data-parallel over the processes mpiexec started (zerograd.distributed): "
             "mpiexec -n N zerograd train --distributed ...; --batch-size is per process; "
             "rank 0 alone writes --out and prints")

    eval_parser = commands.add_parser(
        "eval", help="evaluate saved weights",
        description="Evaluate weights saved by 'zerograd train'. The dataset and model are read "
                    "from the run's checkpoint (or metrics.json) next to the weights unless "
                    "given.")
    eval_parser.add_argument("--weights", required=True,
                             help="weights .npz to evaluate (or the run directory)")
    _add_model_flags(eval_parser, lambda name: "")
    eval_parser.add_argument("--split", choices=("test", "train"), default="test")

    predict_parser = commands.add_parser(
        "predict", help="predict with saved weights, for images or .npy files",
        description="Print the predictions of a trained model for each input: an image "
                    "(converted to the dataset's image size and scale) or a .npy file holding "
                    "one example or a batch, as the model takes them.")
    predict_parser.add_argument("inputs", nargs="+", metavar="FILE",
                                help="images (.png, .jpg, ...) or .npy arrays")
    predict_parser.add_argument("--weights", required=True,
                                help="weights .npz (or the run directory)")
    predict_parser.add_argument("--top", type=int, default=3,
                                help="classes shown per example (default: %(default)s)")
    _add_model_flags(predict_parser, lambda name: "")

    export_parser = commands.add_parser(
        "export", help="export saved weights as an ONNX model",
        description="Write the model of a run of 'zerograd train' with its weights as an ONNX "
                    "file (zerograd.onnx.export): the model is rebuilt from the run's "
                    "checkpoint (or metrics.json) next to the weights, as 'zerograd eval' "
                    "does; the input shape comes from the dataset, with a symbolic batch "
                    "axis. Needs the onnx package (pip install 'zerograd[onnx]').")
    export_parser.add_argument("--weights", required=True,
                               help="weights .npz to export (or the run directory)")
    export_parser.add_argument("--format", choices=EXPORT_FORMATS, default="onnx",
                               help="file format (default: %(default)s)")
    export_parser.add_argument("--out", default=None, metavar="FILE",
                               help="the file to write (default: model.onnx next to the "
                                    "weights)")
    export_parser.add_argument("--opset", type=int, default=None, metavar="N",
                               help="ONNX opset version (default: zerograd.onnx's, 17)")
    _add_model_flags(export_parser, lambda name: "")
    return parser


_MODEL_FLAGS = ("dataset", "model", "hidden", "data_dir", "download")
_NOT_SETTINGS = ("command", "debug", "config", "print_config", "out", "resume", "overwrite",
                 "no_progress", "quiet", "distributed")


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """The settings of ``zerograd train``: defaults, then --config, then the flags given."""
    values: dict[str, Any] = {}
    if args.config is not None:
        values = read_config_file(args.config)
        TrainConfig.from_json(values, source=args.config, strict=True)  # types and typos
    given = {k: v for k, v in vars(args).items() if k not in _NOT_SETTINGS}
    if "hidden" in given:
        given["hidden"] = list(given["hidden"])
    return TrainConfig.from_json({**values, **given}, source=args.config or "the settings")


def _safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text)


def _run_command(args: argparse.Namespace) -> None:
    if args.command == "train":
        config = config_from_args(args)
        if args.print_config:
            if args.resume:
                _, config = load_checkpoint(args.out)
                if "epochs" in vars(args):
                    config.epochs = args.epochs
            print(json.dumps(config.check().to_json(), indent=2))
            return
        train(config, args.out,
              resume=args.resume, progress=not args.no_progress,
              epochs=getattr(args, "epochs", None), overwrite=args.overwrite, quiet=args.quiet,
              log=(lambda text: None) if args.quiet else print,
              distributed=True if args.distributed else None)
    else:
        overrides = {name: getattr(args, name, None) for name in _MODEL_FLAGS}
        if args.command == "eval":
            evaluate_weights(args.weights, overrides, split=args.split)
        elif args.command == "export":
            export_weights(args.weights, args.out, args.format, args.opset, overrides)
        else:
            predict_files(args.weights, args.inputs, overrides, top=args.top)


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
        if args.out is None:
            dataset = getattr(args, "dataset", None) or TrainConfig.dataset
            model = getattr(args, "model", None) or TrainConfig.model
            args.out = os.path.join("runs", f"{_safe_name(dataset)}-{_safe_name(model)}")
    try:
        with sigterm_raises():
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
        size = _world_size(args)
        where = f" on rank {dist.rank()} of {size}" if size > 1 and not dist.is_main() else ""
        print(f"zerograd: error{where}: {error}", file=sys.stderr)
        if size > 1:
            # The other processes would wait forever in their next collective.
            dist.abort(2)
        return 2
    except Exception as error:
        if debug or _world_size(args) > 1:
            # Under mpiexec: zerograd.distributed's hook prints the traceback, naming the
            # rank, and aborts the job (one line would not say where a rank failed).
            raise
        print(f"zerograd: error: {type(error).__name__}: {error} (run again with --debug for "
              f"the traceback)", file=sys.stderr)
        return 1
    return 0


def _world_size(args: argparse.Namespace) -> int:
    """The number of processes of ``zerograd train --distributed`` (1 otherwise, and when
    the process group could not be joined)."""
    if not getattr(args, "distributed", False):
        return 1
    try:
        return dist.world_size()
    except ImportError:  # launched by mpiexec without mpi4py: init's own error says so
        return 1


__all__ = [
    "CHECKPOINT", "CURVES", "CLIError", "CheckpointError", "DATASETS", "DERIVED", "DataRequest",
    "DataSpec", "DatasetEntry", "EXPORT_FORMATS", "METRICS", "METRICS_CSV", "MODELS",
    "ModelEntry", "OPTIMIZER", "OPTIMIZERS", "RUN_FILES", "Run", "Terminated", "TrainConfig",
    "WEIGHTS", "build_parser", "build_run", "config_from_args", "dataset_entry", "draw_curves",
    "evaluate", "evaluate_weights", "export_weights", "format_seconds", "load_model", "main",
    "model_entry", "plot_curves", "predict_files", "read_config_file", "register_dataset",
    "register_model", "train",
]
