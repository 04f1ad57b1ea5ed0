"""zerograd has every public name genuine DeZero has, module by module."""

from __future__ import annotations

import importlib
import subprocess
import sys
import types

import pytest

# DeZero names zerograd leaves out on purpose, with the reason.
NOT_PROVIDED = {
    # DeZero's SqueezeNet is an empty placeholder: its __init__ and forward do nothing.
    "models": {"SqueezeNet"},
}
MODULES = ["", "core", "core_simple", "functions", "functions_conv", "layers", "models",
           "optimizers", "datasets", "dataloaders", "transforms", "utils", "cuda"]


def genuine_dezero():
    import numpy

    if not hasattr(numpy, "int"):
        numpy.int = int  # DeZero 0.0.13's transforms module uses the alias NumPy 2 removed
    return pytest.importorskip("dezero")


def public_names(module: types.ModuleType) -> set[str]:
    """What ``from module import *`` gives, without the modules it merely imported (np, os)."""
    if hasattr(module, "__all__"):
        return set(module.__all__)
    names = set()
    for name, value in vars(module).items():
        if name.startswith("_"):
            continue
        if isinstance(value, types.ModuleType) and (
                not value.__name__.startswith("dezero") or value.__name__ == "dezero"):
            continue  # numpy, os ... and the package itself, imported for DeZero's own use
        origin = getattr(value, "__module__", None)
        if origin is not None and not str(origin).startswith("dezero"):
            continue  # names DeZero imported from elsewhere (np.ndarray, contextlib...)
        names.add(name)
    return names


@pytest.mark.parametrize("module", MODULES, ids=lambda m: m or "dezero")
def test_every_dezero_name_exists_in_zerograd(module):
    genuine_dezero()
    theirs = importlib.import_module("dezero" + (f".{module}" if module else ""))
    ours = importlib.import_module("zerograd" + (f".{module}" if module else ""))
    missing = sorted(name for name in public_names(theirs) - NOT_PROVIDED.get(module, set())
                     if not hasattr(ours, name))
    assert not missing, f"zerograd.{module or ''} lacks DeZero's {missing}"


def star_import_names(package: str) -> set[str]:
    """``from package import *`` in a fresh interpreter (other tests import submodules,
    which would add their names to the package)."""
    code = (f"import numpy; numpy.int = int\nns = {{}}\nexec('from {package} import *', ns)\n"
            "print(' '.join(sorted(ns)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=120)
    return set(out.stdout.split()) - {"__builtins__"}


def test_star_import_gives_what_dezeros_gives():
    genuine_dezero()
    missing = sorted(star_import_names("dezero") - star_import_names("zerograd"))
    assert not missing
    ours: dict = {}
    exec("from zerograd import *", ours)
    assert ours["dezero"] is ours["zerograd"] is importlib.import_module("zerograd")
