"""docs/interop.md's table of the ops with and without an ONNX lowering is the code's.

``python -m tests.onnx.test_export_docs`` prints the table to paste between the markers
``<!-- ops table start -->`` and ``<!-- ops table end -->``.
"""

import importlib
import pkgutil
import re
from pathlib import Path

import zerograd.ops
from tests.onnx.test_export_ops import _GRAD_NODE, LOSS_REASON, NOT_EXPORTABLE
from zerograd import Function
from zerograd.core import autograd, broadcast
from zerograd.onnx import lowering_of

DOCS = Path(__file__).resolve().parents[2] / "docs" / "interop.md"
START, END = "<!-- ops table start -->", "<!-- ops table end -->"

# Why an op has no lowering: the general families' reasons (test_export_ops), the others'
# where they say more than their kind (see _reason).
REASONS = {
    **NOT_EXPORTABLE,
    "Conv2DGradW": "the backward of `conv2d` (its weight gradient)",
    "BiasGrad": "the backward of a bias",
    "Pooling2DWithIndexes": "the second-order backward of max pooling",
    "Dropout": "never recorded at inference: `dropout` is the identity under `test_mode()`",
    "_Identity": "the functional API's (jacobian, hessian), not a model's forward",
    "_Stack": "the functional API's (jacobian, hessian), not a model's forward",
}


def _reason(module: str, name: str) -> str:
    if name in REASONS:
        return REASONS[name]
    if module == "loss":
        return LOSS_REASON
    if name.endswith("Grad"):
        return _GRAD_NODE
    return "no lowering yet"


def _families():
    modules = [(info.name, importlib.import_module(f"zerograd.ops.{info.name}"))
               for info in pkgutil.iter_modules(zerograd.ops.__path__)
               if not info.name.startswith("_") and info.name != "overloads"]
    return [("core (sum_to, broadcast_to, cast; checkpoint)", (broadcast, autograd)),
            *sorted((name, (module,)) for name, module in modules)]


def _classes(modules):
    return sorted((obj for module in modules for obj in vars(module).values()
                   if isinstance(obj, type) and issubclass(obj, Function)
                   and obj.__module__ == module.__name__), key=lambda c: c.__name__)


def op_table() -> str:
    """The markdown table: one row per op family."""
    rows = ["| family | with a lowering | without (why) |", "|---|---|---|"]
    for family, module in _families():
        classes = _classes(module)
        if not classes:
            continue
        with_ = [f"`{c.__name__}`" for c in classes if lowering_of(c) is not None]
        reasons: dict[str, list[str]] = {}  # reason -> ops, in the order first met
        for c in classes:
            if lowering_of(c) is None:
                reasons.setdefault(_reason(family, c.__name__), []).append(f"`{c.__name__}`")
        without = [f"{', '.join(ops)}: {reason}" for reason, ops in reasons.items()]
        rows.append(f"| {family} | {', '.join(with_) or '-'} | {'; '.join(without) or '-'} |")
    return "\n".join(rows)


def test_the_docs_table_is_the_code():
    text = DOCS.read_text()
    documented = text[text.index(START) + len(START):text.index(END)].strip()
    assert documented == op_table(), (
        "docs/interop.md's ONNX op table is out of date: run "
        "`python -m tests.onnx.test_export_docs` and paste its output between the markers")


def test_every_listed_lowering_exists():
    # Independent of the generator: each name the table lists as exported has a lowering.
    text = DOCS.read_text()
    table = text[text.index(START):text.index(END)]
    names = {c.__name__: c for _, m in _families() for c in _classes(m)}
    for line in table.splitlines()[3:]:
        exported = line.split("|")[2]
        for name in re.findall(r"`(\w+)`", exported):
            assert lowering_of(names[name]) is not None, name


if __name__ == "__main__":
    print(op_table())
