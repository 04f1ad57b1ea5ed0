"""DLPack on the GPU: a CuPy-backed Variable and zerograd.from_dlpack of GPU arrays share device
memory with CuPy (and with PyTorch's CUDA tensors where that build of torch has CUDA).

Skipped on machines without CuPy and a GPU (tests/core/test_dlpack.py covers the CPU path and
the error for a CUDA array without CuPy).
"""

import numpy as np
import pytest

import zerograd
import zerograd.functions as F
from zerograd import Variable, from_dlpack

gpu = pytest.mark.skipif(not zerograd.cuda.gpu_enable, reason="CuPy with a GPU is required")


def _torch_cuda():
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("this build of PyTorch has no CUDA")
    return torch


@gpu
def test_cupy_from_dlpack_of_a_gpu_variable_shares_device_memory():
    import cupy

    v = Variable(cupy.arange(6, dtype=cupy.float32).reshape(2, 3))
    assert v.__dlpack_device__()[0] == 2  # kDLCUDA
    a = cupy.from_dlpack(v)
    assert a.data.ptr == v.data.data.ptr
    a[0, 0] = 42.0
    assert float(v.data[0, 0]) == 42.0


@gpu
@pytest.mark.parametrize("dtype", ["float32", "float64", "int64", "bool"])
def test_from_dlpack_of_a_cupy_array_is_a_cupy_backed_variable(dtype):
    import cupy

    a = (cupy.arange(6) % 3).astype(dtype).reshape(2, 3)
    v = from_dlpack(a)
    assert isinstance(v.data, cupy.ndarray) and v.data.data.ptr == a.data.ptr
    assert v.dtype == np.dtype(dtype)
    v.data[1, 2] = 0
    assert not bool(a[1, 2])


@gpu
def test_gradients_on_a_from_dlpack_gpu_variable_match_numpy():
    import cupy

    host = np.array([0.5, -1.0, 2.0])
    x = from_dlpack(cupy.asarray(host))
    F.sum(F.tanh(x) * x).backward()
    expected = np.tanh(host) + host * (1 - np.tanh(host) ** 2)
    np.testing.assert_allclose(cupy.asnumpy(x.grad.data), expected, rtol=1e-12)


@gpu
def test_torch_cuda_tensors_and_gpu_variables_share_memory():
    import cupy

    torch = _torch_cuda()
    t = torch.arange(4.0, device="cuda")
    v = from_dlpack(t)
    assert isinstance(v.data, cupy.ndarray) and v.data.data.ptr == t.data_ptr()
    t.add_(1.0)
    torch.cuda.synchronize()
    np.testing.assert_array_equal(cupy.asnumpy(v.data), [1.0, 2.0, 3.0, 4.0])

    w = Variable(cupy.ones(3, dtype=cupy.float32))
    u = torch.from_dlpack(w)
    assert u.is_cuda and u.data_ptr() == w.data.data.ptr
