"""Shared helpers for the nn tests: skip what needs an op that has not landed yet."""

import pytest

import zerograd.functions as F


def require_ops(*names):
    """Skip the test unless every named op exists in zerograd.functions."""
    missing = [name for name in names if not hasattr(F, name)]
    return pytest.mark.skipif(bool(missing), reason=f"needs F.{', F.'.join(missing)}")


def import_dezero():
    """Genuine DeZero 0.0.13 (needs numpy.int), or skip."""
    import numpy

    if not hasattr(numpy, "int"):
        numpy.int = int
    return pytest.importorskip("dezero")
