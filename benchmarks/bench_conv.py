"""Convolution and pooling benchmarks, zerograd vs PyTorch (and DeZero when installed).

    python benchmarks/bench_conv.py                  # about 30 seconds on a quiet machine
    python benchmarks/bench_conv.py --quick          # fewer rounds
    python benchmarks/bench_conv.py --single-thread  # 1 BLAS / torch thread
    python benchmarks/bench_conv.py --cpu-time       # 1 thread, CPU time of this thread:
                                                     # steady when other jobs share the cores
    python benchmarks/bench_conv.py --layouts        # which inputs the compiled patch
                                                     # kernels should take (zerograd only)

Workloads (float32, NCHW; milliseconds per forward+backward step, median of the rounds,
each round timing every framework in turn so that the machine's drift cancels in ratios):
- conv2d, first layer: x 64x3x32x32 (a constant input batch: no gx), W 64x3x3x3, b, pad 1;
  backward from a fixed gy gives gW and gb.
- conv2d, hidden layer: the same with x requiring a gradient too (adds gx).
- conv2d 3x3, 64->64 channels on 32x16x16 with x requiring a gradient.
- conv2d 3x3, 16->32 channels on 100x16x14x14 with x requiring a gradient (the second
  convolution of the small-CNN benchmark, bench_cnn.py).
- max pooling 2x2 stride 2 on 64x64x32x32 (x requires a gradient).
- average pooling 3x3 stride 1 pad 1 on 64x16x32x32.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import zerograd
import zerograd.functions as ZF
from benchmarks._common import interleaved, load_dezero, load_torch, print_row, timed


def _conv_step(name, torch, dezero, x, W, b, gy, x_grad: bool, pad: int):
    """A callable running one conv2d forward+backward in framework ``name``."""
    if name == "zerograd":
        xv = zerograd.Variable(x) if x_grad else x
        Wv, bv, gyv = zerograd.Variable(W), zerograd.Variable(b), zerograd.Variable(gy)

        def step():
            y = ZF.conv2d(xv, Wv, bv, stride=1, pad=pad)
            y.grad = gyv
            y.backward()
            Wv.cleargrad()
            bv.cleargrad()
            if x_grad:
                xv.cleargrad()
        return step
    if name == "dezero":
        import dezero.functions as DF

        # DeZero computes gx for every input; a non-Variable x is a constant in neither.
        xv, Wv, bv = dezero.Variable(x), dezero.Variable(W), dezero.Variable(b)
        gyv = dezero.Variable(gy)

        def step():
            y = DF.conv2d(xv, Wv, bv, stride=1, pad=pad)
            y.grad = gyv
            y.backward()
            for v in (xv, Wv, bv):
                v.cleargrad()
        return step
    xt = torch.from_numpy(x).requires_grad_(x_grad)
    Wt = torch.from_numpy(W).requires_grad_()
    bt = torch.from_numpy(b).requires_grad_()
    gyt = torch.from_numpy(gy)

    def step():
        y = torch.nn.functional.conv2d(xt, Wt, bt, stride=1, padding=pad)
        y.backward(gyt)
        for t in (xt, Wt, bt):
            t.grad = None
    return step


def _pool_step(name, torch, dezero, x, kernel, stride, pad, kind: str):
    """One max/average pooling forward+backward (x requires a gradient)."""
    if name == "zerograd":
        xv = zerograd.Variable(x)
        fn = ZF.pooling if kind == "max" else ZF.average_pooling

        def step():
            y = fn(xv, kernel, stride, pad)
            y.backward()
            xv.cleargrad()
        return step
    if name == "dezero":
        import dezero.functions as DF

        xv = dezero.Variable(x)
        fn = DF.pooling if kind == "max" else DF.average_pooling

        def step():
            y = fn(xv, kernel, stride, pad)
            y.backward()
            xv.cleargrad()
        return step
    xt = torch.from_numpy(x).requires_grad_()
    fn = torch.nn.functional.max_pool2d if kind == "max" else torch.nn.functional.avg_pool2d

    def step():
        y = fn(xt, kernel, stride, pad)
        y.backward(torch.ones_like(y))
        xt.grad = None
    return step


def _repeat(step, iters: int, cpu_time: bool = False):
    def run() -> float:
        if cpu_time:  # all work runs in this thread (1 BLAS / torch thread)
            start = time.thread_time()
            for _ in range(iters):
                step()
            return (time.thread_time() - start) / iters
        return timed(lambda: [step() for _ in range(iters)]) / iters
    return run


# (label, N, C, HW, OC, stride, channel-major x): the small CNN's two convolutions, the
# contiguous inputs of the table above, and a stride-2 layer in both layouts.
LAYOUT_CASES = [
    ("100x1x28x28, 16, stride 1 (conv1)", 100, 1, 28, 16, 1, False),
    ("100x16x14x14 channel-major, 32, 1 (conv2)", 100, 16, 14, 32, 1, True),
    ("100x16x14x14 contiguous, 32, 1", 100, 16, 14, 32, 1, False),
    ("32x64x16x16 contiguous, 64, 1", 32, 64, 16, 64, 1, False),
    ("64x3x32x32 contiguous, 16, 1", 64, 3, 32, 16, 1, False),
    ("64x16x16x16 contiguous, 32, 2", 64, 16, 16, 32, 2, False),
    ("64x16x16x16 channel-major, 32, 2", 64, 16, 16, 32, 2, True),
]


def compare_layouts(rounds: int) -> None:
    """conv2d forward+backward (bias, pad 1, gy from F.sum) under three dispatches of the
    compiled conv kernels, interleaved: none (the NumPy path), the patch and scatter-add
    kernels for every input, and what zerograd does (patches by layout, scatter-add always).
    Prints the best sample of each, ms."""
    import zerograd._fast as fast
    from zerograd.ops import _im2col as I

    chosen = (I.Geometry.compiled_patches, I.Geometry.compiled_adjoint)

    def every_input(self, x) -> bool:
        return fast.use("conv_patches", x)

    def never(self, x) -> bool:
        return False

    dispatches = {"NumPy path": (never, never), "kernels for every input": (every_input,
                                                                            every_input),
                  "zerograd's choice": chosen}
    rng = np.random.default_rng(0)
    print("conv2d 3x3 pad 1 fwd+bwd, best of the rounds, ms: " + " | ".join(dispatches))
    try:
        for label, N, C, HW, OC, stride, channel_major in LAYOUT_CASES:
            x = rng.standard_normal((N, C, HW, HW)).astype(np.float32)
            if channel_major:
                x = np.ascontiguousarray(x.transpose(1, 0, 2, 3)).transpose(1, 0, 2, 3)
            W = zerograd.Variable((rng.standard_normal((OC, C, 3, 3)) * 0.1).astype(np.float32))
            b = zerograd.Variable(np.zeros(OC, np.float32))

            def step(x=x, W=W, b=b, stride=stride) -> None:
                W.cleargrad()
                b.cleargrad()
                ZF.sum(ZF.conv2d(zerograd.Variable(x), W, b, stride=stride, pad=1)).backward()

            def under(methods):
                def run() -> float:
                    I.Geometry.compiled_patches, I.Geometry.compiled_adjoint = methods
                    return _repeat(step, 5)()
                return run

            result = interleaved({name: under(m) for name, m in dispatches.items()}, rounds)
            cells = " | ".join(f"{min(result.samples[name]) * 1e3:6.2f}" for name in dispatches)
            print(f"{label:<44} {cells}" + ("  NOISY" if result.noisy else ""))
    finally:
        I.Geometry.compiled_patches, I.Geometry.compiled_adjoint = chosen


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds")
    parser.add_argument("--no-dezero", action="store_true", help="skip DeZero")
    parser.add_argument("--single-thread", action="store_true",
                        help="one thread for NumPy's BLAS (needs threadpoolctl) and for torch")
    parser.add_argument("--cpu-time", action="store_true",
                        help="single thread, and measure this thread's CPU time, not wall time")
    parser.add_argument("--layouts", action="store_true",
                        help="zerograd only: the compiled conv kernels' dispatch by layout")
    args = parser.parse_args(argv)
    if args.layouts:
        compare_layouts(3 if args.quick else 7)
        return
    args.single_thread = args.single_thread or args.cpu_time
    torch = load_torch()
    dezero = None if args.no_dezero else load_dezero()
    rounds = 3 if args.quick else 5
    if args.single_thread:
        from threadpoolctl import threadpool_limits

        threadpool_limits(1, "blas")
        if torch:
            torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    names = ["zerograd"] + (["torch"] if torch else []) + (["dezero"] if dezero else [])
    clock = ("CPU ms (1 thread)" if args.cpu_time
             else "ms (1 thread)" if args.single_thread else "ms")
    print(f"numpy {np.__version__}" + (f", torch {torch.__version__}" if torch else "")
          + (", dezero 0.0.13" if dezero else "") + f"; {rounds} rounds, median {clock} "
          "per step")

    def conv_case(label, N, C, HW, OC, x_grad, iters):
        x = rng.standard_normal((N, C, HW, HW)).astype(np.float32)
        W = (rng.standard_normal((OC, C, 3, 3)) * 0.1).astype(np.float32)
        b = rng.standard_normal(OC).astype(np.float32)
        gy = rng.standard_normal((N, OC, HW, HW)).astype(np.float32)
        steps = {n: _repeat(_conv_step(n, torch, dezero, x, W, b, gy, x_grad, 1), iters,
                            args.cpu_time) for n in names}
        for step in steps.values():  # warm up caches and allocators
            step()
        print_row(label, interleaved(steps, rounds), unit="ms", scale=1e3)

    def pool_case(label, shape, kernel, stride, pad, kind, iters):
        x = rng.standard_normal(shape).astype(np.float32)
        steps = {n: _repeat(_pool_step(n, torch, dezero, x, kernel, stride, pad, kind), iters,
                            args.cpu_time) for n in names}
        for step in steps.values():
            step()
        print_row(label, interleaved(steps, rounds), unit="ms", scale=1e3)

    conv_case("conv2d 64x3x32x32, 64 3x3, pad 1 (x const)", 64, 3, 32, 64, False, 4)
    conv_case("conv2d 64x3x32x32, 64 3x3, pad 1 (x grad)", 64, 3, 32, 64, True, 3)
    conv_case("conv2d 32x64x16x16, 64 3x3, pad 1 (x grad)", 32, 64, 16, 64, True, 2)
    conv_case("conv2d 100x16x14x14, 32 3x3, pad 1 (x grad)", 100, 16, 14, 32, True, 3)
    pool_case("max pool 2x2/2 on 64x64x32x32", (64, 64, 32, 32), 2, 2, 0, "max", 3)
    pool_case("avg pool 3x3/1 pad 1 on 64x16x32x32", (64, 16, 32, 32), 3, 1, 1, "avg", 3)


if __name__ == "__main__":
    main()
