"""benchmarks/bench_mlp.py --floor: zerograd's step, its products alone, and PyTorch's."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks import bench_mlp  # noqa: E402


def test_floor_times_both_frameworks_in_the_same_rounds(monkeypatch, capsys):
    torch = pytest.importorskip("torch")
    monkeypatch.setattr(bench_mlp, "SETTLE", 0.0)
    result = bench_mlp.floor(1, 2, torch)
    names = {"step", "products", "torch step", "torch products"}
    assert names <= set(result)
    for name in names:
        for clock in ("cpu", "wall"):
            samples = result[name][clock]
            assert len(samples) == 2 and all(0 < s < 5 for s in samples)
    bench_mlp.print_floor(result)
    out = capsys.readouterr().out
    assert "zerograd's products alone/PyTorch's step" in out
    assert "PyTorch (2 threads), wall" in out


def test_torch_products_alone_take_the_shapes_of_a_step(monkeypatch):
    # Three forward products, then per layer from the last dL/dx (none for the input batch)
    # and dL/dW: the operands of zerograd's step (tests/ops/test_linear_step.py).
    torch = pytest.importorskip("torch")
    batches = bench_mlp.make_batches(1)
    seen = []
    original = torch.Tensor.__matmul__
    monkeypatch.setattr(torch.Tensor, "__matmul__",
                        lambda a, b: seen.append((tuple(a.shape), tuple(b.shape)))
                        or original(a, b))
    bench_mlp.torch_products_alone(torch, batches)()
    assert seen == [((100, 784), (784, 1000)), ((100, 1000), (1000, 1000)),
                    ((100, 1000), (1000, 10)),
                    ((100, 10), (10, 1000)), ((1000, 100), (100, 10)),
                    ((100, 1000), (1000, 1000)), ((1000, 100), (100, 1000)),
                    ((784, 100), (100, 1000))]
