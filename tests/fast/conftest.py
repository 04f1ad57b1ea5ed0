import pytest


@pytest.fixture
def kernels_on(monkeypatch):
    """The test starts from the default switch: a ZEROGRAD_FAST=0 in the environment (a run
    of the whole suite on the NumPy path) must not turn its comparisons into no-ops."""
    monkeypatch.delenv("ZEROGRAD_FAST", raising=False)
