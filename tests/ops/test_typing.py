"""The package's types: py.typed ships, and the operators that zerograd.ops.overloads
installs on Variable at import time are visible to a type checker (mypy)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

import zerograd

ROOT = Path(zerograd.__file__).resolve().parent.parent


def test_the_package_says_it_is_typed():
    assert (Path(zerograd.__file__).parent / "py.typed").is_file()
    assert 'zerograd = ["py.typed"]' in (ROOT / "pyproject.toml").read_text()


def test_operators_on_variables_type_check_as_variables(tmp_path):
    api = pytest.importorskip("mypy.api")
    program = tmp_path / "program.py"
    program.write_text(textwrap.dedent("""
        import numpy as np
        import zerograd.functions as F
        from zerograd import Variable

        x = Variable(np.ones(3))
        y = (x * 2 + 1) / x - x ** 2
        z = -y @ x.T + abs(x)[0] + x.sum(axis=0).reshape(1) + 2 ** x
        reveal_type(y)
        reveal_type(z)
        reveal_type(F.batch_norm(x, x, x, None, None).mean())
        mask = x > 0
        w: Variable = F.tanh(x) * mask
        bad: int = x + x
    """))
    stdout, _, status = api.run([str(program), "--cache-dir", str(tmp_path / "cache"),
                                 "--config-file", str(ROOT / "pyproject.toml")])
    revealed = [line for line in stdout.splitlines() if "Revealed type" in line]
    assert len(revealed) == 3 and all('"zerograd.core.variable.Variable"' in r
                                      for r in revealed), stdout
    errors = [line for line in stdout.splitlines() if ": error:" in line]
    # Exactly the one mistake: a Variable is not an int.
    assert len(errors) == 1 and "program.py:14" in errors[0] and "Variable" in errors[0], stdout
    assert status == 1
