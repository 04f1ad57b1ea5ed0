"""Run every benchmark in bounded time and print the README's table.

    python benchmarks/run_all.py             # quick settings, both BLAS settings: 4-7 minutes quiet
    python benchmarks/run_all.py --only cnn,ops --no-unpinned

Each benchmark script runs in a subprocess with its quick settings, twice: once in this
machine's default environment, where ``OPENBLAS_CORETYPE`` and ``OPENBLAS_L2_SIZE`` pin NumPy's
OpenBLAS to an older kernel, and once with both unset (NumPy's own choice of kernel, about 1.9x
faster float32 GEMM here). "NumPy path" is zerograd without its compiled kernels
(``zerograd._fast.numpy_only()``), timed in the same rounds; "-" where the kernels are off
anyway or the benchmark has no such row. Every row is a median of per-round ratios to
PyTorch with the lowest and highest round in brackets; ``load`` is the largest share of the
machine that other processes used while the row was measured, and rows above 10% are marked
noisy.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

# (name, script arguments, time limit in seconds) in the README's order.
BENCHMARKS = [
    ("engine", ["bench_engine.py", "--quick"], 240),
    ("mlp", ["bench_mlp.py", "--batches", "20", "--rounds", "9"], 240),
    ("conv", ["bench_conv.py", "--quick"], 240),
    ("cnn", ["bench_cnn.py", "--quick"], 240),
    ("lstm", ["bench_lstm.py", "--quick"], 240),
    ("ops", ["bench_ops.py", "--quick"], 120),
    ("memory", ["bench_memory.py"], 240),
]
PINNING = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")


def run_benchmark(args: list[str], limit: float, unpinned: bool) -> list[dict]:
    """Run one script; return the JSON records of the rows it printed."""
    env = dict(os.environ)
    if unpinned:
        for name in PINNING:
            env.pop(name, None)
    with tempfile.NamedTemporaryFile("r", suffix=".jsonl") as records:
        env["BENCH_JSON"] = records.name
        try:
            subprocess.run([sys.executable, str(HERE / args[0]), *args[1:]], env=env,
                           timeout=limit, check=True, stdout=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            print(f"  {args[0]}: stopped after its {limit:.0f} s limit", file=sys.stderr)
        except subprocess.CalledProcessError as e:
            print(f"  {args[0]}: failed with exit status {e.returncode}", file=sys.stderr)
        return [json.loads(line) for line in records.read().splitlines() if line.strip()]


def ratio_text(record: dict | None, name: str = "zerograd") -> str:
    if record is None or name not in record["ratios"]:
        return "-"
    median, low, high = record["ratios"][name]
    return f"{median:.2f} [{low:.2f}-{high:.2f}]"


def load_text(*records: dict | None) -> str:
    loads = [r["load"] for r in records if r is not None and r.get("load") is not None]
    if not loads:
        return "-"
    worst = max(loads)
    return f"{worst:.0%}" + (" noisy" if worst > 0.10 else "")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", help="comma-separated benchmark names: "
                        + ", ".join(name for name, _, _ in BENCHMARKS))
    parser.add_argument("--no-unpinned", action="store_true",
                        help="skip the second run with OpenBLAS's kernel choice unpinned")
    args = parser.parse_args(argv)
    chosen = set(args.only.split(",")) if args.only else None
    start = time.perf_counter()
    rows: list[tuple[str, dict | None, dict | None]] = []
    for name, script, limit in BENCHMARKS:
        if chosen is not None and name not in chosen:
            continue
        print(f"running {' '.join(script)} ...", file=sys.stderr, flush=True)
        pinned = run_benchmark(script, limit, unpinned=False)
        unpinned = [] if args.no_unpinned else run_benchmark(script, limit, unpinned=True)
        by_label = {r["label"]: r for r in unpinned}
        for record in pinned:
            rows.append((f"{record['label']} ({name})", record, by_label.get(record["label"])))

    print("| workload (benchmark) | zerograd / PyTorch | same, OpenBLAS unpinned "
          "| NumPy path / PyTorch | DeZero / PyTorch | load |")
    print("|---|---|---|---|---|---|")
    for label, pinned, unpinned in rows:
        print(f"| {label} | {ratio_text(pinned)} | {ratio_text(unpinned)} "
              f"| {ratio_text(pinned, 'numpy-path')} | {ratio_text(pinned, 'dezero')} "
              f"| {load_text(pinned, unpinned)} |")
    print(f"\n{len(rows)} rows in {time.perf_counter() - start:.0f} s; ratios are time over "
          "PyTorch's (lower is better), medians of per-round ratios [lowest-highest round].")


if __name__ == "__main__":
    main()
