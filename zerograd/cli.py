"""The ``zerograd`` command line: ``zerograd train`` and ``zerograd eval``.

``zerograd train`` trains a model on a dataset, shows a progress bar per epoch, prints the
loss and train/test accuracy of every epoch and writes into ``--out``:

- ``weights.npz``    the model's weights (``Layer.save_weights`` format, ``l0/W`` keys);
- ``optimizer.npz``  the optimizer's state (``Optimizer.state_dict`` via ``save_state``);
- ``metrics.json``   the run's settings and one record per epoch;
- ``curves.png``     loss and accuracy curves (when matplotlib is installed);
- ``checkpoint.npz`` everything ``--resume`` needs: weights, optimizer state, epoch, the
  global random state and the loader's order.

Every file is written atomically (temporary file + rename) after every epoch, so an
interrupted run leaves the previous epoch's files intact. ``--resume`` restores the
checkpoint and continues with results identical to an uninterrupted run.

``zerograd eval --weights RUN/weights.npz`` rebuilds the model (settings from the run's
``metrics.json`` unless given) and evaluates it.

Datasets and models live in small registries (``register_dataset``, ``register_model``), so
new ones plug in without touching the training loop.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import zerograd
from zerograd import functions as F
from zerograd import random_state
from zerograd.data.loader import DataLoader
from zerograd.errors import ZerogradError

CHECKPOINT, WEIGHTS, OPTIMIZER, METRICS, CURVES = (
    "checkpoint.npz", "weights.npz", "optimizer.npz", "metrics.json", "curves.png")
CHECKPOINT_FORMAT = 1
EVAL_BATCH_SIZE = 1000


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


@dataclass(frozen=True)
class DatasetEntry:
    build: Callable[[DataRequest], tuple]  # request -> (train, test)
    spec: DataSpec
    description: str


@dataclass(frozen=True)
class ModelEntry:
    build: Callable[[DataSpec, TrainConfig], zerograd.Model]
    needs_images: bool
    description: str


DATASETS: dict[str, DatasetEntry] = {}
MODELS: dict[str, ModelEntry] = {}


def register_dataset(name: str, spec: DataSpec, description: str = ""):
    """Decorator: ``build(request: DataRequest) -> (train_dataset, test_dataset)``."""
    def decorate(build):
        DATASETS[name] = DatasetEntry(build, spec, description or build.__doc__ or "")
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
                  "scikit-learn's 8x8 digits (1,438 train / 359 test), no network needed")
def _digits(request: DataRequest):
    from zerograd.data.digits import DEFAULT_TRANSFORM, Digits

    transform = None if request.as_images else DEFAULT_TRANSFORM
    return Digits(train=True, transform=transform), Digits(train=False, transform=transform)


@register_dataset("mnist", DataSpec("classification", 10, (1, 28, 28)),
                  "MNIST from IDX files in --data-dir (default: the cache directory)")
def _mnist(request: DataRequest):
    from zerograd.data.mnist import MNIST
    from zerograd.data.transforms import Compose, Normalize, ToFloat

    kwargs = {"root": request.data_dir, "download": request.download}
    if request.as_images:
        kwargs["transform"] = Compose([ToFloat(), Normalize(0.0, 255.0)])
    return MNIST(train=True, **kwargs), MNIST(train=False, **kwargs)


@register_dataset("spiral", DataSpec("classification", 3, None),
                  "the book's 3-class 2-D spiral (300 train / 300 test points)")
def _spiral(request: DataRequest):
    from zerograd.data.spiral import Spiral

    return Spiral(train=True), Spiral(train=False)


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
        if MODELS[self.model].needs_images and DATASETS[self.dataset].spec.image_shape is None:
            raise CLIError(f"--model {self.model} needs image data; {self.dataset} has none")
        self.hidden = tuple(int(h) for h in self.hidden)
        if not self.hidden or min(self.hidden) < 1:
            raise CLIError(f"--hidden must list positive layer sizes, got {self.hidden}")
        return self

    def to_json(self) -> dict:
        return {**dataclasses.asdict(self), "hidden": list(self.hidden)}

    @classmethod
    def from_json(cls, values: dict) -> TrainConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        config = cls(**{k: v for k, v in values.items() if k in names})
        config.hidden = tuple(config.hidden)
        return config


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


def build_data(config: TrainConfig):
    entry = DATASETS[config.dataset]
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


def _format_epoch(record: dict, epochs: int) -> str:
    text = f"epoch {record['epoch']:>{len(str(epochs))}}/{epochs}  loss {record['loss']:.4f}"
    if "accuracy" in record:
        text += f"  train acc {record['accuracy']:.4f}"
    text += f"  test loss {record['test_loss']:.4f}"
    if "test_accuracy" in record:
        text += f"  test acc {record['test_accuracy']:.4f}"
    return text + f"  ({record['seconds']:.1f} s)"


def save_outputs(run: Run, out: str, final: bool = False) -> None:
    """Writes the checkpoint, weights, optimizer state and metrics, each atomically."""
    from zerograd.serialization import save_json, save_state

    os.makedirs(out, exist_ok=True)
    checkpoint = {
        "format": CHECKPOINT_FORMAT, "config": run.config.to_json(), "epoch": run.epoch,
        "history": run.history, "model": run.model.state_dict(),
        "optimizer": run.optimizer.state_dict(), "rng": random_state.get_state(),
        "loader": run.loader.state_dict(),
    }
    save_state(os.path.join(out, CHECKPOINT), checkpoint)
    run.model.save_weights(os.path.join(out, WEIGHTS))
    save_state(os.path.join(out, OPTIMIZER), run.optimizer.state_dict())
    save_json(os.path.join(out, METRICS), {
        "config": run.config.to_json(), "task": run.spec.task, "epochs_done": run.epoch,
        "finished": final, "history": run.history,
    })


def load_checkpoint(out: str) -> tuple[dict, TrainConfig]:
    from zerograd.serialization import load_state

    path = os.path.join(out, CHECKPOINT)
    if not os.path.exists(path):
        raise CLIError(f"--resume: no checkpoint at {path}; start the run without --resume")
    state = load_state(path)
    if state.get("format") != CHECKPOINT_FORMAT:
        raise CLIError(f"--resume: {path} has checkpoint format {state.get('format')!r}, "
                       f"expected {CHECKPOINT_FORMAT}")
    return state, TrainConfig.from_json(state["config"])


def restore(run: Run, state: dict) -> None:
    """Puts a freshly built run into the checkpointed state (random state last)."""
    run.model.load_state_dict(state["model"], source="checkpoint")
    run.optimizer.load_state_dict(state["optimizer"])
    run.loader.load_state_dict(state["loader"])
    run.epoch = int(state["epoch"])
    run.history = list(state["history"])
    random_state.set_state(state["rng"])


def plot_curves(history: list, path: str) -> str | None:
    """Loss and accuracy per epoch as a PNG; returns None when matplotlib is missing."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        return None
    from zerograd.serialization import atomic_write

    epochs = [r["epoch"] for r in history]
    has_accuracy = "accuracy" in history[0]
    figure = Figure(figsize=(10 if has_accuracy else 5, 4))
    FigureCanvasAgg(figure)  # attaches a non-interactive canvas: no display needed
    axes = figure.subplots(1, 2 if has_accuracy else 1, squeeze=False)[0]
    axes[0].plot(epochs, [r["loss"] for r in history], marker="o", label="train")
    axes[0].plot(epochs, [r["test_loss"] for r in history], marker="o", label="test")
    axes[0].set(xlabel="epoch", ylabel="loss", title="loss")
    axes[0].legend()
    if has_accuracy:
        axes[1].plot(epochs, [r["accuracy"] for r in history], marker="o", label="train")
        axes[1].plot(epochs, [r["test_accuracy"] for r in history], marker="o", label="test")
        axes[1].set(xlabel="epoch", ylabel="accuracy", title="accuracy")
        axes[1].legend()
    figure.tight_layout()
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


def train(config: TrainConfig | None, out: str, resume: bool = False, progress: bool = True,
          epochs: int | None = None, log: Callable[[str], None] = print) -> Run:
    """Trains a run (or resumes the one in ``out``) and writes its outputs into ``out``.

    When resuming, the checkpoint's settings are used (a note names any setting of ``config``
    that differs from the default and from the run's), with the total number of epochs set
    to ``epochs`` when given. Returns the Run.
    """
    state = None
    if resume:
        state, saved = load_checkpoint(out)
        if config is not None:
            _note_ignored_settings(config, saved, log)
        config = saved
    elif config is None:
        raise ValueError("train: give a TrainConfig, or resume=True")
    if epochs is not None:
        config.epochs = epochs
    config.check()
    run = build_run(config)
    if state is not None:
        restore(run, state)
        log(f"resuming {out} after epoch {run.epoch}")
    log(f"training {config.model} on {config.dataset}: {len(run.train_set)} train / "
        f"{len(run.test_set)} test examples, {config.epochs} epochs, batch size "
        f"{config.batch_size}, {config.optimizer}"
        + (f" (lr {config.lr})" if config.lr is not None else ""))
    if run.epoch >= config.epochs:
        log(f"nothing to do: the run already has {run.epoch} of {config.epochs} epochs "
            f"(raise --epochs to continue it)")
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
        save_outputs(run, out, final=run.epoch == config.epochs)
        log(_format_epoch(record, config.epochs))
    if plot_curves(run.history, os.path.join(out, CURVES)) is None:
        log(f"note: matplotlib is not installed, so {CURVES} was not written "
            f"(pip install matplotlib)")
    log(f"wrote {WEIGHTS}, {OPTIMIZER}, {METRICS}, {CHECKPOINT}"
        + (f", {CURVES}" if os.path.exists(os.path.join(out, CURVES)) else "") + f" to {out}")
    return run


def evaluate_weights(weights: str, overrides: dict, split: str = "test",
                     log: Callable[[str], None] = print) -> dict:
    """Rebuilds the model of a run, loads ``weights`` and evaluates it on ``split``."""
    from zerograd.serialization import load_json

    metrics_path = os.path.join(os.path.dirname(os.path.abspath(weights)), METRICS)
    values = {}
    if os.path.exists(metrics_path):
        values = load_json(metrics_path).get("config", {})
    values.update({k: v for k, v in overrides.items() if v is not None})
    config = TrainConfig.from_json(values).check()
    spec, train_set, test_set = build_data(config)
    model = MODELS[config.model].build(spec, config)
    if not os.path.exists(weights):
        raise CLIError(f"--weights: no such file: {weights}")
    model.load_weights(weights)
    dataset = test_set if split == "test" else train_set
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="zerograd", description="Train and evaluate zerograd models.")
    parser.add_argument("--version", action="version", version=f"zerograd {zerograd.__version__}")
    commands = parser.add_subparsers(dest="command", metavar="{train,eval}")
    commands.required = True

    base = TrainConfig()
    train_parser = commands.add_parser(
        "train", help="train a model and write weights, metrics and curves",
        description="Train a model; writes weights, optimizer state, metrics.json, curves.png "
                    "and a checkpoint into --out after every epoch.")
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
                              help="output directory (default: runs/<dataset>-<model>)")
    train_parser.add_argument("--resume", action="store_true",
                              help="continue the run in --out from its last checkpoint (its "
                                   "saved settings are used; --epochs may raise the total)")
    train_parser.add_argument("--no-progress", action="store_true", help="no progress bars")

    eval_parser = commands.add_parser(
        "eval", help="evaluate saved weights",
        description="Evaluate weights saved by 'zerograd train'. The dataset and model are read "
                    "from the run's metrics.json next to the weights unless given.")
    eval_parser.add_argument("--weights", required=True, help="weights .npz to evaluate")
    _add_common(eval_parser, defaults=False)
    eval_parser.add_argument("--split", choices=("test", "train"), default="test")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``zerograd`` console script; returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        if args.command == "train":
            config = TrainConfig(dataset=args.dataset, model=args.model,
                                 batch_size=args.batch_size, optimizer=args.optimizer,
                                 lr=args.lr, seed=args.seed, hidden=args.hidden,
                                 data_dir=args.data_dir, download=bool(args.download))
            if args.resume and args.out is None:
                raise CLIError("--resume needs --out, the directory of the run to continue")
            out = args.out or os.path.join("runs", f"{args.dataset}-{args.model}")
            train(config, out, resume=args.resume, progress=not args.no_progress,
                  epochs=args.epochs)
        else:
            overrides = {"dataset": args.dataset, "model": args.model, "hidden": args.hidden,
                         "data_dir": args.data_dir, "download": args.download}
            evaluate_weights(args.weights, overrides, split=args.split)
    except (CLIError, ZerogradError) as error:
        # ZerogradError: corrupt data or checkpoint files, weights that do not fit the model.
        print(f"zerograd: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("zerograd: interrupted; the last completed epoch is saved (use --resume)",
              file=sys.stderr)
        return 130
    return 0


__all__ = [
    "CLIError", "DATASETS", "DataRequest", "DataSpec", "MODELS", "OPTIMIZERS", "Run", "TrainConfig",
    "build_parser", "build_run", "evaluate", "evaluate_weights", "main", "register_dataset",
    "register_model", "train",
]
