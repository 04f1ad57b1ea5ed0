"""conv2d's weight gradient is computed in one of two product orders (``gy @ col^T`` or
``(col @ gy^T)^T``, chosen by the number of patch rows): both must give the same values,
for every geometry, in float32 and float64."""

from __future__ import annotations

import numpy as np
import pytest

import zerograd.functions as F
from zerograd import Variable
from zerograd.ops import _im2col, conv


def naive_grad_weight(x, gy, kernel, stride, pad, dilation, groups):
    """gW[o, c, i, j] = sum_{n, y, x} gy[n, o, y, x] * xpad[n, g*Cg + c, y*S + i*D, x*S + j*D],
    by explicit loops over the kernel offsets (float64)."""
    N, C, H, W = x.shape
    OC, OH, OW = gy.shape[1], gy.shape[2], gy.shape[3]
    KH, KW = kernel
    Cg, OCg = C // groups, OC // groups
    xpad = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    gW = np.zeros((OC, Cg, KH, KW))
    for g in range(groups):
        xs = xpad[:, g * Cg:(g + 1) * Cg]
        gys = gy[:, g * OCg:(g + 1) * OCg].astype(np.float64)
        for i in range(KH):
            for j in range(KW):
                top, left = i * dilation, j * dilation
                window = xs[:, :, top:top + stride * (OH - 1) + 1:stride,
                            left:left + stride * (OW - 1) + 1:stride]
                gW[g * OCg:(g + 1) * OCg, :, i, j] = np.einsum("nohw,nchw->oc", gys, window)
    return gW


CASES = [
    # (N, C, H, OC, kernel, stride, pad, dilation, groups)
    (3, 16, 9, 8, 3, 1, 1, 1, 1),    # 144 patch rows, fewer gy channels: whole-row patches
    (3, 1, 10, 16, 3, 1, 1, 1, 1),   # 9 rows: compact patches, gy @ col^T
    (2, 8, 11, 6, 3, 2, 1, 1, 2),    # strided, grouped
    (2, 6, 12, 4, 3, 1, 2, 2, 1),    # dilated
    (2, 4, 7, 6, (2, 3), 1, 0, 1, 2),  # non-square kernel, grouped
]


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("transposed_from", [0, 10**9])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_both_weight_gradient_product_orders_match_loops(case, transposed_from, dtype,
                                                          monkeypatch):
    monkeypatch.setattr(_im2col, "TRANSPOSED_GRAD_ROWS", transposed_from)
    N, C, H, OC, kernel, stride, pad, dilation, groups = case
    KH, KW = (kernel, kernel) if isinstance(kernel, int) else kernel
    rng = np.random.default_rng(7)
    x = Variable(rng.standard_normal((N, C, H, H)).astype(dtype))
    W = Variable(rng.standard_normal((OC, C // groups, KH, KW)).astype(dtype))
    b = Variable(rng.standard_normal(OC).astype(dtype))
    y = F.conv2d(x, W, b, stride, pad, dilation=dilation, groups=groups)
    gy = rng.standard_normal(y.shape).astype(dtype)
    y.grad = Variable(gy)
    y.backward()
    expected = naive_grad_weight(x.data, gy, (KH, KW), stride, pad, dilation, groups)
    assert W.grad.dtype == dtype
    assert W.grad.data.flags.c_contiguous
    tol = 1e-10 if dtype == np.float64 else 1e-3
    np.testing.assert_allclose(W.grad.data, expected, rtol=tol, atol=tol)
    np.testing.assert_allclose(b.grad.data, gy.astype(np.float64).sum(axis=(0, 2, 3)),
                               rtol=tol, atol=tol)


def test_weight_gradient_without_cached_patches_matches(monkeypatch):
    """Patches too large to keep are recomputed for gW: same values either way."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((4, 16, 10, 10))
    W = rng.standard_normal((8, 16, 3, 3))
    grads = []
    for limit in (conv.PATCH_CACHE_BYTES, 0):
        monkeypatch.setattr(conv, "PATCH_CACHE_BYTES", limit)
        Wv = Variable(W.copy())
        (F.conv2d(x, Wv, pad=1) ** 2).sum().backward()
        grads.append(Wv.grad.data)
    np.testing.assert_allclose(grads[0], grads[1], rtol=1e-12, atol=1e-12)
