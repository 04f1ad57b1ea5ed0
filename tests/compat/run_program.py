"""Run a program written for DeZero, on zerograd (under the name ``dezero``) or on genuine DeZero.

    python tests/compat/run_program.py zerograd PROGRAM.py
    python tests/compat/run_program.py dezero PROGRAM.py

With ``zerograd``, a meta-path finder makes ``import dezero``, ``import dezero.functions as
F``, ``from dezero.core import Variable`` ... resolve to zerograd's modules, which is what a
user gets by changing only the import. With ``dezero``, genuine DeZero 0.0.13 runs; it still
uses ``np.int``, removed in NumPy 2, so that one alias is restored first. Either way NumPy's
global generator is seeded with 0 first, as the book's scripts expect nothing else of it.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import runpy
import sys

import numpy as np


class DezeroAlias(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Resolves ``dezero`` and ``dezero.X`` to ``zerograd`` and ``zerograd.X``."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname == "dezero" or fullname.startswith("dezero."):
            return importlib.util.spec_from_loader(fullname, self)
        return None

    def create_module(self, spec):
        return importlib.import_module("zerograd" + spec.name[len("dezero"):])

    def exec_module(self, module) -> None:
        pass  # the zerograd module is already executed


def main(argv: list[str]) -> None:
    framework, program = argv
    if framework == "zerograd":
        sys.meta_path.insert(0, DezeroAlias())
    elif framework == "dezero":
        np.int = int  # DeZero 0.0.13's transforms module uses the alias NumPy 2 removed
    else:
        raise SystemExit(f"run_program: the framework is 'zerograd' or 'dezero', not {framework!r}")
    np.random.seed(0)
    sys.argv = [program]
    runpy.run_path(program, run_name="__main__")


if __name__ == "__main__":
    main(sys.argv[1:])
