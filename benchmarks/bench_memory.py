"""Peak memory of a forward+backward pass (issue 5): zerograd vs PyTorch vs DeZero.

    python benchmarks/bench_memory.py

Workload: a 20-layer MLP of width 2048 (Linear + ReLU, float32), batch 256, loss = sum of
the output; we report how far the process's peak resident memory rises above its level with
the model and the input already built, for one forward+backward pass, for a forward
pass under no_grad (inference), and for a forward+backward pass with gradient
checkpointing (the 20 layers in SEGMENTS segments, each ``zerograd.checkpoint`` /
``torch.utils.checkpoint``: only the segments' inputs are kept, their insides are
recomputed in backward), and for a forward+backward pass with ``backward(retain_graph=
False)``, which frees each op's inputs and saved activations right after its backward
(PyTorch's default; DeZero has no such option). Each framework runs in its own subprocess;
the kernel's peak-RSS counter is reset (/proc/self/clear_refs) just before the measured pass,
after a tiny unmeasured pass that loads what a process loads on first use.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEPTH, WIDTH, BATCH = 20, 2048, 256
SEGMENTS = 4  # about sqrt(DEPTH): the usual choice, memory ~ DEPTH/SEGMENTS + SEGMENTS


def _rss_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def _reset_peak() -> None:
    Path("/proc/self/clear_refs").write_text("5")


def _measure(run, load=None) -> float:
    """MiB by which the peak resident set rises above the current one while ``run()`` runs.

    ``load()`` runs first, unmeasured: a tiny pass that loads what a process loads once on
    first use (numba and zerograd's compiled ReLU kernels, about 120 MiB; PyTorch's autograd
    engine), which is not the pass's memory."""
    import gc

    if load is not None:
        load()
    gc.collect()
    _reset_peak()
    before = _rss_kib("VmRSS")
    run()
    return (_rss_kib("VmHWM") - before) / 1024


def worker(framework: str, mode: str) -> float:
    import numpy as np

    rng = np.random.default_rng(0)
    x_data = rng.standard_normal((BATCH, WIDTH)).astype(np.float32)
    if framework == "torch":
        import torch

        torch.set_num_threads(2)
        layers = []
        for _ in range(DEPTH):
            layers += [torch.nn.Linear(WIDTH, WIDTH), torch.nn.ReLU()]
        model = torch.nn.Sequential(*layers)
        x = torch.from_numpy(x_data)

        def run():
            if mode == "no_grad":
                with torch.no_grad():
                    model(x).sum()
            elif mode == "free_graph":
                model(x).sum().backward(retain_graph=False)  # torch's default, spelled out
            elif mode == "checkpoint":
                from torch.utils.checkpoint import checkpoint_sequential

                checkpoint_sequential(model, SEGMENTS, x, use_reentrant=False).sum().backward()
            else:
                model(x).sum().backward()

        def load():
            t = torch.ones(8192, requires_grad=True)
            torch.relu(t).sum().backward()

        return _measure(run, load)

    if framework == "dezero":
        sys.path.insert(0, str(ROOT))
        from benchmarks._common import load_dezero

        dz = load_dezero()
        import dezero.functions as F
        import dezero.layers as L

        def make():
            class MLP(dz.Model):
                def __init__(self):
                    super().__init__()
                    self.fcs = []
                    for i in range(DEPTH):
                        fc = L.Linear(WIDTH, in_size=WIDTH)
                        setattr(self, f"l{i}", fc)
                        self.fcs.append(fc)

                def forward(self, h):
                    for fc in self.fcs:
                        h = F.relu(fc(h))
                    return h

            return MLP()

        model = make()

        def run():
            if mode == "no_grad":
                with dz.no_grad():
                    F.sum(model(x_data))
            else:
                F.sum(model(x_data)).backward()

        return _measure(run)

    import zerograd
    import zerograd.functions as F
    import zerograd.layers as L
    from zerograd.models import Sequential

    layers = []
    for _ in range(DEPTH):
        layers += [L.Linear(WIDTH, in_size=WIDTH), F.relu]
    model = Sequential(*layers)
    per_segment = len(layers) // SEGMENTS
    segments = [Sequential(*layers[i:i + per_segment])
                for i in range(0, len(layers), per_segment)]

    def run():
        if mode == "no_grad":
            with zerograd.no_grad():
                F.sum(model(x_data))
        elif mode == "free_graph":
            F.sum(model(x_data)).backward(retain_graph=False)
        elif mode == "checkpoint":
            h = zerograd.Variable(x_data)
            for segment in segments:
                h = zerograd.checkpoint(segment, h)
            F.sum(h).backward()
        else:
            F.sum(model(x_data)).backward()

    def load():
        t = zerograd.Variable(np.ones(8192, np.float32))
        F.sum(F.relu(t)).backward()

    return _measure(run, load)


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--worker":
        print(json.dumps(worker(sys.argv[2], sys.argv[3])))
        return
    sys.path.insert(0, str(ROOT))
    from benchmarks._common import load_dezero, load_torch, print_row

    frameworks = ["zerograd"]
    if load_torch() is not None:
        frameworks.append("torch")
    if load_dezero() is not None:
        frameworks.append("dezero")
    print(f"peak memory above model+input, {DEPTH} x Linear({WIDTH})+ReLU, batch {BATCH}, "
          f"float32 (param grads alone: {DEPTH * WIDTH * (WIDTH + 1) * 4 / 2**20:.0f} MiB)")
    results = {}
    without_dezero = [n for n in frameworks if n != "dezero"]  # DeZero has neither
    modes = {"train": frameworks, "no_grad": frameworks, "free_graph": without_dezero,
             "checkpoint": without_dezero}
    for mode, names in modes.items():
        for name in names:
            out = subprocess.run([sys.executable, __file__, "--worker", name, mode],
                                 capture_output=True, text=True, check=True)
            results[(name, mode)] = json.loads(out.stdout.strip().splitlines()[-1])
    for mode, label in (("train", "peak memory, forward+backward"),
                        ("no_grad", "peak memory, forward under no_grad"),
                        ("free_graph", "peak memory, fwd+bwd, backward(retain_graph=False)"),
                        ("checkpoint", f"peak memory, fwd+bwd, {SEGMENTS} checkpointed segments")):
        print_row(label, {n: results[(n, mode)] for n in modes[mode]}, "MiB")

if __name__ == "__main__":
    main()
