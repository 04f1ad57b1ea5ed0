"""DLPack: Variable.__dlpack__ / __dlpack_device__ and zerograd.from_dlpack share memory with
PyTorch and NumPy (a write through one is seen in the other, the pointers are equal), and the
errors say what could not be shared and why."""

import numpy as np
import pytest

import zerograd
import zerograd.functions as F
from zerograd import Parameter, Variable, from_dlpack
from zerograd.errors import InPlaceError

torch = pytest.importorskip("torch")

DTYPES = [np.float32, np.float64, np.int64, np.bool_]


def pointer(a: np.ndarray) -> int:
    return a.__array_interface__["data"][0]


def sample(dtype, shape=(2, 3)) -> np.ndarray:
    return (np.arange(int(np.prod(shape))) % 3).astype(dtype).reshape(shape)


def one(dtype):
    return np.ones((), dtype)


# -- zerograd to PyTorch ----------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_torch_from_dlpack_of_a_variable_shares_memory(dtype):
    v = Variable(sample(dtype))
    t = torch.from_dlpack(v)
    assert t.data_ptr() == pointer(v.data)
    assert tuple(t.shape) == (2, 3) and str(t.dtype) == f"torch.{np.dtype(dtype).name}"
    np.testing.assert_array_equal(t.numpy(), v.data)
    t[0, 0] = one(dtype).item()  # torch writes, zerograd sees it
    assert v.data[0, 0] == one(dtype)
    v.data[1, 2] = 0  # zerograd writes, torch sees it
    assert not t[1, 2].item()


def test_a_parameter_exports_like_a_variable():
    p = Parameter(np.zeros((3,), np.float32), name="W")
    t = torch.from_dlpack(p)
    t += 2.0
    np.testing.assert_array_equal(p.data, [2.0, 2.0, 2.0])
    assert p.__dlpack_device__() == (1, 0)


@pytest.mark.parametrize("view", ["transpose", "every_other_column", "column"])
def test_non_contiguous_variables_export_with_their_strides(view):
    base = np.arange(12, dtype=np.float64).reshape(3, 4)
    data = {"transpose": base.T, "every_other_column": base[:, ::2],
            "column": base[:, 1]}[view]
    t = torch.from_dlpack(Variable(data))
    assert t.stride() == tuple(s // data.itemsize for s in data.strides)
    np.testing.assert_array_equal(t.numpy(), data)
    before = base.copy()
    t.add_(100.0)  # through the view, into base: exactly the view's elements change
    changed = base != before
    assert changed.sum() == data.size
    np.testing.assert_array_equal(base[changed], before[changed] + 100.0)
    np.testing.assert_array_equal(data, t.numpy())


def test_zero_dimensional_variable_round_trips():
    v = Variable(np.array(1.5, np.float32))
    t = torch.from_dlpack(v)
    assert t.shape == () and t.item() == 1.5
    t.fill_(4.0)
    assert v.data.shape == () and v.data.item() == 4.0


def test_negative_strides_are_refused_with_a_readable_error():
    # PyTorch aborts the process on a capsule with negative strides; zerograd refuses first.
    v = Variable(np.arange(4.0)[::-1])
    with pytest.raises(BufferError, match=r"negative strides \(-8,\).*copy=True"):
        torch.from_dlpack(v)
    copied = torch.from_dlpack(v, copy=True)  # a copy is fine: it has positive strides
    np.testing.assert_array_equal(copied.numpy(), [3.0, 2.0, 1.0, 0.0])
    assert copied.data_ptr() != pointer(v.data)


def test_a_variable_without_data_cannot_be_exported():
    v = Variable(None, name="h")
    with pytest.raises(BufferError, match=r"Variable.__dlpack__: .*named 'h'.*data is None"):
        v.__dlpack__()
    with pytest.raises(BufferError, match=r"Variable.__dlpack_device__: .*data is None"):
        v.__dlpack_device__()


def test_numpy_reads_a_variable_through_dlpack():
    v = Variable(sample(np.float32))
    a = np.from_dlpack(v)
    assert pointer(a) == pointer(v.data)


def test_a_variable_in_a_graph_exports_its_array_only():
    x = Variable(np.array([1.0, 2.0]))
    y = x * 3.0
    t = torch.from_dlpack(y)
    assert not t.requires_grad and t.grad_fn is None
    np.testing.assert_array_equal(t.numpy(), [3.0, 6.0])


# -- PyTorch to zerograd ----------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_from_dlpack_of_a_torch_tensor_shares_memory(dtype):
    t = torch.from_numpy(sample(dtype).copy())
    v = from_dlpack(t)
    assert type(v) is Variable and isinstance(v.data, np.ndarray)
    assert pointer(v.data) == t.data_ptr()
    assert v.dtype == np.dtype(dtype) and v.shape == (2, 3)
    v.data[0, 1] = one(dtype)
    assert t[0, 1].item() == one(dtype).item()
    t[1, 0] = 0
    assert not v.data[1, 0]


def test_from_dlpack_of_non_contiguous_and_zero_d_tensors():
    base = torch.arange(12.0).reshape(3, 4)
    v = from_dlpack(base.t())
    assert v.shape == (4, 3)
    assert v.data.strides == tuple(s * 4 for s in base.t().stride())
    np.testing.assert_array_equal(v.data, base.t().numpy())
    v.data[0, 2] = -1.0
    assert base[2, 0].item() == -1.0
    s = from_dlpack(torch.tensor(2.5))
    assert s.shape == () and s.data.item() == 2.5


def test_requires_grad_is_zerograds_own_flag():
    t = torch.ones(2)
    assert from_dlpack(t).requires_grad is True  # as Variable(array)
    assert from_dlpack(t, requires_grad=False).requires_grad is False


def test_a_torch_tensor_that_requires_grad_must_be_detached():
    t = torch.ones(2, 3, requires_grad=True)
    with pytest.raises(BufferError, match=r"from_dlpack: could not read the torch.Tensor "
                                          r"\(torch.float32 \(2, 3\)\).*detach\(\)"):
        from_dlpack(t)
    v = from_dlpack(t.detach())  # what PyTorch advises: the same memory, no torch graph
    assert pointer(v.data) == t.data_ptr()


def test_gradients_flow_from_a_from_dlpack_variable():
    t = torch.tensor([0.5, -1.0, 2.0], dtype=torch.float64)
    x = from_dlpack(t)
    y = F.sum(F.tanh(x) * x)
    y.backward()
    reference = t.clone().requires_grad_(True)
    (torch.tanh(reference) * reference).sum().backward()
    np.testing.assert_allclose(x.grad.data, reference.grad.numpy(), rtol=1e-12)
    np.testing.assert_allclose(y.data, (torch.tanh(t) * t).sum().item(), rtol=1e-12)


def test_a_training_step_on_shared_weights_updates_the_torch_tensor():
    weight = torch.tensor([1.0, 2.0])
    w = from_dlpack(weight)
    loss = F.sum(w * w)
    loss.backward()
    w.data -= 0.25 * w.grad.data  # an optimizer's in-place update
    np.testing.assert_allclose(weight.numpy(), [0.5, 1.0])


def test_from_dlpack_of_numpy_arrays_and_other_producers():
    a = np.arange(3.0)
    v = from_dlpack(a)
    assert pointer(v.data) == pointer(a)

    class Producer:  # any object that speaks the protocol
        def __init__(self, array):
            self.array = array

        def __dlpack__(self, **kwargs):
            return self.array.__dlpack__(**kwargs)

        def __dlpack_device__(self):
            return self.array.__dlpack_device__()

    b = np.ones((2, 2), np.float32)
    w = from_dlpack(Producer(b))
    assert pointer(w.data) == pointer(b) and w.dtype == np.float32
    u = from_dlpack(v)  # a Variable is a producer too
    assert pointer(u.data) == pointer(a) and u is not v


def test_from_dlpack_of_something_without_the_protocol():
    with pytest.raises(TypeError, match=r"from_dlpack: a list has no __dlpack__ or "
                                        r"__dlpack_device__; expected an array"):
        from_dlpack([1.0, 2.0])

    class HalfProducer:
        def __dlpack__(self, **kwargs):
            raise AssertionError("not reached")

    with pytest.raises(TypeError, match=r"HalfProducer has no __dlpack_device__"):
        from_dlpack(HalfProducer())


class _OnDevice:
    """A producer that claims to live on a given DLPack device."""

    def __init__(self, device_type, device_id=0):
        self.device = (device_type, device_id)

    def __dlpack__(self, **kwargs):
        raise AssertionError("the device check comes first")

    def __dlpack_device__(self):
        return self.device


def test_a_device_zerograd_cannot_hold_is_named():
    with pytest.raises(BufferError, match=r"lives on Metal device 0 \(DLPack device type 8\)"):
        from_dlpack(_OnDevice(8))


@pytest.mark.skipif(zerograd.cuda.gpu_enable, reason="CuPy with a GPU is present")
def test_a_cuda_array_without_cupy_is_a_clear_error():
    with pytest.raises(BufferError, match=r"lives on CUDA device 1 \(DLPack device type 2\); "
                                          r".*CuPy.*pip install cupy"):
        from_dlpack(_OnDevice(2, 1))


def test_a_dtype_numpy_lacks_is_a_clear_error():
    with pytest.raises(BufferError, match=r"could not read the torch.Tensor \(torch.bfloat16 "
                                          r"\(2,\)\) through DLPack: .*dtype"):
        from_dlpack(torch.zeros(2, dtype=torch.bfloat16))


# -- the in-place write clock sees only writes through Variable.data --------------------------
def test_a_write_through_the_torch_view_is_outside_zerograds_sight():
    # docs/interop.md: zerograd counts in-place writes made through Variable.data; torch
    # writes straight into the shared memory, so backward reads the new values silently.
    weight = torch.tensor([1.0, 2.0], dtype=torch.float64)
    w = from_dlpack(weight)
    x = Variable(np.array([3.0, 4.0]))
    y = F.sum(x * w)
    weight += 10.0  # after the forward pass, before backward
    y.backward()
    np.testing.assert_array_equal(x.grad.data, [11.0, 12.0])  # from the new w, not [1, 2]


def test_a_write_through_variable_data_is_still_caught_on_shared_memory():
    weight = torch.tensor([1.0, 2.0], dtype=torch.float64)
    w = from_dlpack(weight)
    x = Variable(np.array([3.0, 4.0]), name="x")
    y = F.sum(x * w)
    w.data += 10.0
    with pytest.raises(InPlaceError, match=r"Mul's backward needs input 1"):
        y.backward()
