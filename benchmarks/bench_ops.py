"""Single-op benchmarks of issue 10's table: exact GELU and embedding backward, vs PyTorch.

    python benchmarks/bench_ops.py            # about 10 seconds
    python benchmarks/bench_ops.py --quick    # fewer rounds

Workloads (float32, forward + backward, milliseconds, median of interleaved rounds):

* exact (erf) GELU on 1e6 elements, the gradient of its sum;
* embedding lookup of 100,000 ids drawn from 1,000 (so ids repeat about 100 times each) into a
  (1,000, 64) table, and the backward that adds the repeated rows' gradients.

DeZero has neither op, so only zerograd and PyTorch are timed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._common import interleaved, load_torch, numpy_path, print_row, timed  # noqa: E402

GELU_SIZE = 1_000_000
VOCAB, DIM, IDS = 1_000, 64, 100_000


def gelu_workloads(torch) -> dict:
    import zerograd
    import zerograd.functions as F

    x_data = np.random.default_rng(0).standard_normal(GELU_SIZE).astype(np.float32)
    x = zerograd.Variable(x_data)

    def zerograd_step():
        x.cleargrad()
        F.sum(F.gelu(x)).backward()

    work = {"zerograd": lambda: timed(zerograd_step)}
    work["numpy-path"] = numpy_path(work["zerograd"])
    if torch is not None:
        tx = torch.from_numpy(x_data.copy()).requires_grad_()

        def torch_step():
            tx.grad = None
            torch.nn.functional.gelu(tx).sum().backward()

        work["torch"] = lambda: timed(torch_step)
    return work


def embedding_workloads(torch) -> dict:
    import zerograd
    import zerograd.functions as F

    rng = np.random.default_rng(0)
    ids = rng.integers(0, VOCAB, size=IDS)
    W_data = rng.standard_normal((VOCAB, DIM)).astype(np.float32)
    W = zerograd.Parameter(W_data)

    def zerograd_step():
        W.cleargrad()
        F.sum(F.embed_id(ids, W)).backward()

    work = {"zerograd": lambda: timed(zerograd_step)}
    work["numpy-path"] = numpy_path(work["zerograd"])
    if torch is not None:
        tW = torch.from_numpy(W_data.copy()).requires_grad_()
        tids = torch.from_numpy(ids)

        def torch_step():
            tW.grad = None
            torch.nn.functional.embedding(tids, tW).sum().backward()

        work["torch"] = lambda: timed(torch_step)
    return work


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds")
    args = parser.parse_args(argv)
    torch = load_torch()
    rounds = 5 if args.quick else 15
    print(f"frameworks: zerograd{', torch' if torch else ''}; medians of {rounds} interleaved "
          "rounds, forward+backward")
    for label, make in ((f"exact gelu, {GELU_SIZE:.0e} elements", gelu_workloads),
                        (f"embedding bwd, {IDS:,} ids of {VOCAB:,} x {DIM}", embedding_workloads)):
        work = make(torch)
        for fn in work.values():
            if fn is not None:
                fn()  # warm up
        print_row(label, interleaved(work, rounds), "ms", 1e3)


if __name__ == "__main__":
    main()
