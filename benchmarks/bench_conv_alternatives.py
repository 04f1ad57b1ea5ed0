"""Convolution algorithms tried for the small CNN and not kept: their timings next to
zerograd's im2col kernels, so that the comparison in docs/performance.md can be repeated.

    OPENBLAS_NUM_THREADS=1 python benchmarks/bench_conv_alternatives.py
    OPENBLAS_NUM_THREADS=2 python benchmarks/bench_conv_alternatives.py

* Winograd F(2x2, 3x3) in NumPy (Lavin & Gray, 2016): input tiles 4x4 transformed with
  B^T d B, sixteen products (OC, C) @ (C, tiles), outputs A^T m A. 2.25x fewer
  multiplications, but at these channel counts the products have an inner dimension of
  C = 16 or 32, and the transforms are about 40 strided NumPy passes.
* A direct 3x3 weight gradient for one input channel (conv1), compiled with numba.

Figures are the best of 20 runs in CPU time of the calling thread (``time.thread_time``),
milliseconds; the relative error is against a float64 computation.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from zerograd.ops._im2col import (  # noqa: E402
    Geometry,
    conv_forward,
    conv_grad_weight,
    conv_transpose,
)

# F(2x2, 3x3)'s weight transform; B^T and A^T are written out as additions below.
G = np.array([[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]])


def winograd_conv3x3(x, W, b=None):
    """conv2d(x, W, b) for a 3x3 kernel, stride 1, pad 1: x (N, C, H, W) -> (N, OC, H, W)."""
    N, C, H, Wd = x.shape
    OC = W.shape[0]
    dt = x.dtype
    th, tw = (H + 1) // 2, (Wd + 1) // 2  # 2x2 output tiles
    WP = 2 * tw + 2
    padded = np.zeros((C, N, 2 * th + 2, WP), dt)
    padded[:, :, 1:H + 1, 1:Wd + 1] = x.transpose(1, 0, 2, 3)
    # V = B^T d B, rows first, then columns; B^T = [[1,0,-1,0],[0,1,1,0],[0,-1,1,0],[0,1,0,-1]].
    r = [padded[:, :, k:k + 2 * th:2, :] for k in range(4)]
    T = np.empty((4, C, N, th, WP), dt)
    np.subtract(r[0], r[2], out=T[0])
    np.add(r[1], r[2], out=T[1])
    np.subtract(r[2], r[1], out=T[2])
    np.subtract(r[1], r[3], out=T[3])
    V = np.empty((4, 4, C, N, th, tw), dt)
    for i in range(4):
        c = [T[i][..., k:k + 2 * tw:2] for k in range(4)]
        np.subtract(c[0], c[2], out=V[i, 0])
        np.add(c[1], c[2], out=V[i, 1])
        np.subtract(c[2], c[1], out=V[i, 2])
        np.subtract(c[1], c[3], out=V[i, 3])
    U = np.einsum("ik,ockl,jl->ijoc", G, W.astype(np.float64), G).astype(dt)
    P = N * th * tw
    M = np.matmul(U.reshape(16, OC, C), V.reshape(16, C, P)).reshape(4, 4, OC, P)
    if b is not None:
        M[1, 1] += b.reshape(OC, 1).astype(dt)  # A^T's column 1 is all ones: b reaches all four
    # y = A^T m A, A^T = [[1, 1, 1, 0], [0, 1, -1, -1]].
    S = np.empty((2, 4, OC, P), dt)
    for j in range(4):
        np.add(M[0, j], M[1, j], out=S[0, j])
        S[0, j] += M[2, j]
        np.subtract(M[1, j], M[2, j], out=S[1, j])
        S[1, j] -= M[3, j]
    Y = np.empty((OC, N, th, 2, tw, 2), dt)
    for a in range(2):
        s = S[a].reshape(4, OC, N, th, tw)
        out = Y[:, :, :, a, :, 0]
        np.add(s[0], s[1], out=out)
        out += s[2]
        out = Y[:, :, :, a, :, 1]
        np.subtract(s[1], s[2], out=out)
        out -= s[3]
    return Y.reshape(OC, N, 2 * th, 2 * tw)[:, :, :H, :Wd].transpose(1, 0, 2, 3)


def direct_grad_weight_kernel():
    from zerograd._fast._numba import kernel

    @kernel
    def grad_weight(padded, gy, gW):
        """gW (OC, 3, 3) of one input channel: padded (N, H+2, W+2), gy (N, OC, H, W)."""
        N, OC, H, W = gy.shape
        for o in range(OC):
            acc = np.zeros((3, 3, W), dtype=gy.dtype)  # one partial sum per output column
            for n in range(N):
                for y in range(H):
                    g = gy[n, o, y]
                    for i in range(3):
                        row = padded[n, y + i]
                        for j in range(3):
                            a = acc[i, j]
                            for x in range(W):
                                a[x] += g[x] * row[x + j]
            for i in range(3):
                for j in range(3):
                    gW[o, i, j] = acc[i, j].astype(np.float64).sum()

    return grad_weight


def best(fn, n: int = 20) -> float:
    fn()
    times = []
    for _ in range(n):
        start = time.thread_time()
        fn()
        times.append(time.thread_time() - start)
    return min(times) * 1e3


def relative_error(a, reference) -> float:
    return float(np.abs(a - reference).max() / np.abs(reference).max())


def main() -> None:
    rng = np.random.default_rng(0)
    geo = Geometry(1, 1, 1, 1)
    print("Winograd F(2x2, 3x3) in NumPy vs zerograd's im2col (ms, CPU time of one thread)")
    for N, C, H, OC in [(100, 16, 14, 32), (64, 64, 16, 64)]:
        x = rng.standard_normal((N, C, H, H)).astype(np.float32)
        W = rng.standard_normal((OC, C, 3, 3)).astype(np.float32)
        reference = conv_forward(x.astype(np.float64), W.astype(np.float64), None, geo,
                                 (H, H))[0]
        error = relative_error(winograd_conv3x3(x, W), reference)
        wino = best(lambda x=x, W=W: winograd_conv3x3(x, W))
        im2col = best(lambda x=x, W=W, H=H: conv_forward(x, W, None, geo, (H, H)))
        print(f"  forward {N}x{C}x{H}x{H}, {OC} 3x3: winograd {wino:6.2f}  im2col "
              f"{im2col:6.2f}  (error {error:.1e})")
    # conv2's input gradient: a convolution of gy (32 channels) with the flipped W^T.
    gy = np.ascontiguousarray(rng.standard_normal((32, 100, 14, 14)).astype(np.float32))
    gy = gy.transpose(1, 0, 2, 3)
    W2 = rng.standard_normal((32, 16, 3, 3)).astype(np.float32)
    flipped = W2.transpose(1, 0, 2, 3)[..., ::-1, ::-1]
    error = relative_error(winograd_conv3x3(gy, flipped), conv_transpose(gy, W2, geo, (14, 14)))
    print(f"  conv2's input gradient: winograd {best(lambda: winograd_conv3x3(gy, flipped)):6.2f}"
          f"  zerograd {best(lambda: conv_transpose(gy, W2, geo, (14, 14))):6.2f}"
          f"  (difference {error:.1e})")
    try:
        grad_weight = direct_grad_weight_kernel()
    except ImportError:
        return
    x = rng.random((100, 1, 28, 28), dtype=np.float32)
    gy = np.ascontiguousarray(rng.standard_normal((16, 100, 28, 28)).astype(np.float32))
    gy = gy.transpose(1, 0, 2, 3)

    def direct():
        padded = np.zeros((100, 30, 30), np.float32)
        padded[:, 1:29, 1:29] = x[:, 0]
        gW = np.empty((16, 3, 3))
        grad_weight(padded, np.ascontiguousarray(gy), gW)
        return gW.reshape(16, 1, 3, 3)

    error = relative_error(direct(), conv_grad_weight(x, gy, geo, (3, 3)))
    print(f"conv1's weight gradient (1 input channel), direct numba loop "
          f"{best(direct):6.2f}  im2col {best(lambda: conv_grad_weight(x, gy, geo, (3, 3))):6.2f}"
          f"  (difference {error:.1e})")


if __name__ == "__main__":
    main()
