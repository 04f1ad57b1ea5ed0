"""The public API's types, checked the way a learner meets them: a DeZero-style program
(Variables and their operators, layers, models, optimizers, datasets and DataLoader, fit)
type-checks with no error under mypy, the names it uses have the types they say, and common
mistakes are caught. Also: the whole package type-checks, no module is skipped by mypy, and
the behaviours that typing the modules made explicit (errors that used to be AttributeErrors
or silent) stay.

mypy runs once, through ``mypy.api.run``, over the package and all the programs below (one
analysis of the package serves them all); it takes longer than 10 s with a cold cache, hence
``slow``.
"""

from __future__ import annotations

import os
import re
import runpy
import sys
from pathlib import Path

import numpy as np
import pytest
import tomllib

import zerograd
from zerograd import Parameter, Variable
from zerograd.models import MLP
from zerograd.optim import SGD, Adam, MomentumSGD
from zerograd.optim._checks import Integer
from zerograd.serialization import load_npz, save_npz
from zerograd.training import TruncatedBPTT, fit
from zerograd.training.trainer import Trainer

ROOT = Path(zerograd.__file__).resolve().parent.parent

# A learner's program, written as in the book (steps 1-60) with only the import changed.
LEARNER = '''
import os
import sys

import numpy as np

import zerograd.functions as F
import zerograd.layers as L
from zerograd import Config, Model, Parameter, Variable, no_grad, optimizers, test_mode
from zerograd.dataloaders import DataLoader, SeqDataLoader
from zerograd.datasets import ArrayDataset, SinCurve, Spiral
from zerograd.models import MLP, Sequential
from zerograd.training import fit

np.random.seed(0)
out = sys.argv[1] if len(sys.argv) > 1 else "."

# Steps 1-40: Variables, operators, higher-order derivatives.
x = Variable(np.array(2.0))
y = x ** 4 - 2 * x ** 2 + x / 2 - 1
y.backward(create_graph=True)
gx = x.grad
assert gx is not None
x.cleargrad()
gx.backward()
assert x.grad is not None
second = float(x.grad.data)            # 12 x^2 - 4 = 44
W = Variable(np.random.randn(2, 3))
z = F.sum(F.matmul(Variable(np.ones((4, 2))), W) + W[0] * 2)
z.backward()

# Steps 43-46: a model and an optimizer.
class TwoLayerNet(Model):
    def __init__(self, hidden_size, out_size):
        super().__init__()
        self.l1 = L.Linear(hidden_size)
        self.l2 = L.Linear(out_size)

    def forward(self, x):
        y = F.sigmoid(self.l1(x))
        y = self.l2(y)
        return y

data = np.random.rand(100, 1)
target = np.sin(2 * np.pi * data) + np.random.rand(100, 1)
net = TwoLayerNet(10, 1)
momentum = optimizers.MomentumSGD(lr=0.2).setup(net)
for i in range(20):
    loss = F.mean_squared_error(net(data), target)
    net.cleargrads()
    loss.backward()
    momentum.update()
params: list[Parameter] = list(net.params())

# Steps 48-53: spiral data in mini-batches, accuracy, saving the weights.
train_set = Spiral(train=True)
train_loader = DataLoader(train_set, batch_size=30)
model = MLP((10, 3))
optimizer = optimizers.SGD(lr=1.0).setup(model)
history: list[float] = []
for epoch in range(3):
    total = 0.0
    for xb, tb in train_loader:
        y = model(xb)
        loss = F.softmax_cross_entropy(y, tb)
        acc = F.accuracy(y, tb)
        model.cleargrads()
        loss.backward()
        optimizer.update()
        total += float(loss.data) * len(tb)
    history.append(total / len(train_set))
with no_grad(), test_mode():
    assert not Config.enable_backprop and not Config.train
    scores = model(np.zeros((1, 2), dtype=np.float32))
path = model.save_weights(os.path.join(out, "mlp.npz"))
MLP((10, 3)).load_weights(path)
first: L.Linear = model.layers[0]

# Steps 54-60: dropout, batch norm, convolutions, an LSTM over a sine curve.
drop = L.Dropout(0.5)
bn = L.BatchNorm()
conv = L.Conv2d(4, kernel_size=3, pad=1)
image = conv(np.random.rand(2, 1, 8, 8).astype(np.float32))
features = drop(bn(F.relu(image)))
lstm = L.LSTM(8)
head = L.Linear(1)
seq_loader = SeqDataLoader(SinCurve(train=True), batch_size=5)
adam = optimizers.Adam().setup(Sequential(lstm, head))
for count, (xs, ts) in enumerate(seq_loader):
    loss = F.mean_squared_error(head(lstm(xs)), ts)
    if count == 3:
        break
lstm.reset_state()

# Data of one's own, and the training loop of zerograd.training.
pairs = [(np.array([i, i + 1], dtype=np.float32), i % 2) for i in range(8)]
batches = DataLoader(pairs, batch_size=4, shuffle=False)
xs, ts = next(batches)
arrays = ArrayDataset(np.random.rand(12, 2).astype(np.float32), np.arange(12) % 3)
classifier = MLP((8, 3), activation=F.relu)
trainer = fit(classifier, DataLoader(arrays, batch_size=4),
              optimizers.Adam(alpha=0.01).setup(classifier), epochs=2, verbose=0)
summary = {"second": second, "first_loss": history[0], "last_loss": history[-1],
           "epochs": len(trainer.history), "batch": xs.shape}
print(summary)
'''

# What the public names are, for a type checker (each reveal_type on its own line).
REVEALS = '''
import numpy as np

import zerograd.functions as F
import zerograd.layers as L
from zerograd import Config, Variable, optimizers
from zerograd.dataloaders import DataLoader
from zerograd.datasets import Spiral
from zerograd.models import MLP, VGG16

x = Variable(np.ones((2, 3)))
model = MLP((4, 2))
reveal_type(F.relu(x) * 2)
reveal_type(optimizers.Adam().setup(model))
reveal_type(model.params())
reveal_type(next(DataLoader(Spiral(), batch_size=10)))
reveal_type(Config.train)
reveal_type(L.Linear(3).W)
reveal_type(VGG16)
reveal_type(model.layers)
'''
EXPECTED_REVEALS = [
    "zerograd.core.variable.Variable",
    "zerograd.optim.optimizer.Optimizer",
    "typing.Iterator[zerograd.core.variable.Parameter]",
    "tuple[Any, Any]",
    "bool",
    "zerograd.core.variable.Parameter",
    "def (pretrained: bool =) -> zerograd.models_vision.VGG16",
    "list[zerograd.nn.linear.Linear]",
]

# Mistakes the types catch, each marked: mypy must report an error on every marked line and
# nowhere else.
MISTAKES = '''
import numpy as np

from zerograd import optimizers
from zerograd.dataloaders import DataLoader
from zerograd.datasets import Spiral
from zerograd.models import MLP

model = MLP((4, 2))
optimizers.SGD(lr="0.1")  # mistake: a learning rate is a number
DataLoader(Spiral(), batch_size="32")  # mistake
model.save_weights(3)  # mistake: a path
model.load_state_dict([np.zeros(3)])  # mistake: a dict of arrays by key
MLP(3)  # mistake: one output size per layer, a sequence
'''
MISTAKE_LINES = [number for number, line in enumerate(MISTAKES.lstrip("\n").splitlines(), 1)
                 if "# mistake" in line]


@pytest.fixture(scope="module")
def mypy_report(tmp_path_factory):
    """mypy's output on the package and the three programs above, run once for all."""
    api = pytest.importorskip("mypy.api")
    folder = tmp_path_factory.mktemp("typing")
    for name, text in (("learner", LEARNER), ("reveals", REVEALS), ("mistakes", MISTAKES)):
        (folder / f"{name}.py").write_text(text.lstrip("\n"))
    stdout, stderr, _ = api.run([str(folder / name) for name in
                                 ("learner.py", "reveals.py", "mistakes.py")]
                                + [str(ROOT / "zerograd"), "--cache-dir", str(folder / "cache"),
                                   "--config-file", str(ROOT / "pyproject.toml")])
    assert "error: " not in stderr, stderr
    return folder, stdout.splitlines()


@pytest.mark.slow
def test_the_package_type_checks_without_errors(mypy_report):
    folder, report = mypy_report
    errors = [line for line in report if ": error:" in line and str(folder) not in line]
    assert errors == [], "\n".join(errors)
    # Every module of the package was analysed (the three programs are the other files).
    checked = [line for line in report if line.startswith(("Found", "Success"))]
    n_modules = len(list((ROOT / "zerograd").rglob("*.py")))
    assert checked and f"{n_modules + 3} source files" in checked[-1], report


@pytest.mark.slow
def test_a_dezero_style_program_type_checks_without_errors(mypy_report):
    _, report = mypy_report
    errors = [line for line in report if "learner.py" in line and ": error:" in line]
    assert errors == [], "\n".join(report)
    # mypy analysed the program (and the package behind it) rather than skipping it.
    assert any("Found" in line or "Success" in line for line in report), report


@pytest.mark.slow
def test_public_names_have_their_types(mypy_report):
    _, report = mypy_report
    revealed = [re.search(r'Revealed type is "(.*)"', line).group(1)
                for line in report if "reveals.py" in line and "Revealed type" in line]
    assert revealed == EXPECTED_REVEALS, "\n".join(report)
    assert not [line for line in report if "reveals.py" in line and ": error:" in line]


@pytest.mark.slow
def test_mistakes_are_reported_on_their_lines(mypy_report):
    _, report = mypy_report
    errors = [line for line in report if "mistakes.py" in line and ": error:" in line]
    lines = sorted({int(line.split(":")[1]) for line in errors})
    assert lines == MISTAKE_LINES, "\n".join(report)


@pytest.mark.slow
def test_the_learner_program_runs_and_learns(mypy_report, capsys):
    folder, _ = mypy_report
    argv = sys.argv
    sys.argv = [str(folder / "learner.py"), str(folder)]
    state = np.random.get_state()
    try:
        runpy.run_path(str(folder / "learner.py"), run_name="__main__")
    finally:
        sys.argv = argv
        np.random.set_state(state)
    summary = eval(capsys.readouterr().out.strip().splitlines()[-1])  # the dict it printed
    assert summary["second"] == pytest.approx(12 * 2.0 ** 2 - 4)
    assert summary["last_loss"] < summary["first_loss"]
    assert summary["epochs"] == 2 and summary["batch"] == (4, 2)
    assert os.path.isfile(folder / "mlp.npz")


def test_mypy_skips_no_module():
    # Every module is typed: none may come back under an ignore_errors override, nor be
    # silenced by a comment of its own (a first-line `# type: ignore` or `# mypy:` flag).
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mypy"]
    assert config["files"] == ["zerograd"]
    skipped = [override["module"] for override in config.get("overrides", [])
               if override.get("ignore_errors") or override.get("follow_imports") == "skip"]
    assert skipped == []
    silenced = []
    for path in sorted((ROOT / "zerograd").rglob("*.py")):
        lines = path.read_text(encoding="utf-8").splitlines()
        if (lines and lines[0].startswith("# type: ignore")) or any(
                line.startswith("# mypy:") for line in lines):
            silenced.append(str(path.relative_to(ROOT)))
    assert silenced == []


# -- behaviours that typing the modules made explicit ------------------------------------------
def test_update_one_without_a_gradient_names_the_optimizer_and_parameter():
    W = Parameter(np.ones((2, 2), dtype=np.float32), name="W")
    for optimizer in (SGD(), MomentumSGD(), Adam()):
        optimizer.setup(W)
        with pytest.raises(ValueError, match=rf"{type(optimizer).__name__}\.update_one: "
                                             r"parameter 'W' has no gradient"):
            optimizer.update_one(W)
        np.testing.assert_array_equal(W.data, np.ones((2, 2)))  # nothing was changed


def test_update_skips_parameters_without_gradients_as_before():
    W = Parameter(np.ones(3), name="W")
    b = Parameter(np.ones(3), name="b")
    optimizer = SGD(lr=0.5).setup([W, b])
    W.grad = Variable(np.array([1.0, 2.0, 3.0]))
    optimizer.update()
    np.testing.assert_array_equal(W.data, [0.5, 0.0, -0.5])
    np.testing.assert_array_equal(b.data, [1.0, 1.0, 1.0])


@pytest.mark.parametrize("key", ["allow_pickle", "file"])
def test_save_npz_refuses_the_names_numpy_savez_takes_itself(tmp_path, key):
    # An entry named 'allow_pickle' used to become np.savez's flag and vanish from the file.
    path = tmp_path / "weights.npz"
    with pytest.raises(ValueError, match=rf"save_npz\(.*weights\.npz'\): an entry cannot be "
                                         rf"named '{key}'"):
        save_npz(path, {"W": np.ones(2), key: np.zeros(3)})
    assert not path.exists()
    save_npz(path, {"W": np.ones(2), "l0/allow_pickle": np.zeros(3)})  # nested keys are fine
    loaded = load_npz(path)
    np.testing.assert_array_equal(loaded["l0/allow_pickle"], np.zeros(3))


def test_integer_settings_keep_their_exact_value():
    rule = Integer(0)
    assert rule.check("Adam", "t", 2 ** 60 + 1) == 2 ** 60 + 1
    assert rule.check("Adam", "t", np.float32(4.0)) == 4
    assert rule.check("Adam", "t", 3.0) == 3
    for bad in (2.5, float("inf"), float("nan"), np.float32(2.5)):
        with pytest.raises(ValueError, match="Adam: t must be an integer >= 0"):
            rule.check("Adam", "t", bad)


def _loader():
    return [(np.ones((2, 3), dtype=np.float32), np.array([0, 1]))]


def test_trainer_update_by_name_without_a_dict_of_optimizers_says_so():
    model = MLP((2,))
    trainer = Trainer(model, _loader(), SGD().setup(model), verbose=0)
    with pytest.raises(ValueError, match=r"Trainer.update\('gen'\): fit got one optimizer, "
                                         r"not a dict of them"):
        trainer.update("gen")


def test_trainer_update_without_an_optimizer_says_so():
    model = MLP((2,))
    trainer = Trainer(model, _loader(), None, verbose=0)
    with pytest.raises(ValueError, match=r"Trainer.update: fit got no optimizer"):
        trainer.update()


def test_truncated_bptt_needs_a_model_with_reset_state():
    model = MLP((2,))
    with pytest.raises(TypeError, match=r"TruncatedBPTT: the model \(MLP\) has no "
                                        r"reset_state\(\)"):
        fit(model, _loader(), SGD().setup(model), loss="mean_squared_error", metrics=(),
            train_step=TruncatedBPTT(2), verbose=0)

