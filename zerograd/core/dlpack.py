"""``from_dlpack``: a Variable over another framework's array, sharing its memory.

DLPack is the protocol of the Python array API for handing an array from one library to
another without a copy: the producer's ``__dlpack_device__()`` says where the memory lives
and its ``__dlpack__()`` gives a capsule describing it (pointer, shape, strides, dtype).
zerograd's arrays are NumPy's or CuPy's, so the consumer is NumPy's ``from_dlpack`` for memory
the CPU can read and CuPy's for GPU memory. ``Variable.__dlpack__`` (core/variable.py) is the
other direction.
"""

from __future__ import annotations

import numpy as np

from zerograd.backend import cupy_module
from zerograd.core.variable import Variable

# DLPack's DLDeviceType codes (dlpack.h) that zerograd can hold an array on. NumPy reads
# any memory the CPU can address: plain CPU memory, CUDA's and ROCm's pinned host memory,
# and CUDA managed memory. CuPy reads device memory.
_NUMPY_DEVICES = {1: "CPU", 3: "CUDA pinned host", 11: "ROCm pinned host", 13: "CUDA managed"}
_CUPY_DEVICES = {2: "CUDA", 10: "ROCm"}
# The others, named for the error message.
_OTHER_DEVICES = {4: "OpenCL", 7: "Vulkan", 8: "Metal", 9: "VPI", 12: "ExtDev",
                  14: "oneAPI", 15: "WebGPU", 16: "Hexagon", 17: "MAIA"}


def from_dlpack(obj, requires_grad: bool = True) -> Variable:
    """A Variable whose array shares memory with ``obj`` (a torch tensor, a CuPy, JAX or
    NumPy array, a Variable: anything with ``__dlpack__`` and ``__dlpack_device__``).

    ``v = from_dlpack(t)``: ``v.data`` is a NumPy array over ``t``'s memory when ``t`` lives
    where the CPU can read it, a CuPy array over it when ``t`` is on a GPU. A write through
    either is seen by the other. ``requires_grad`` as for ``Variable(array)``: True by default,
    so gradients flow to it in zerograd; only the memory is shared, never a graph (a torch
    tensor that requires grad must be ``.detach()``-ed first, as PyTorch itself insists).

    Raises TypeError if ``obj`` does not speak DLPack, BufferError if its memory or dtype
    cannot be read here (a GPU array without CuPy, a Metal tensor, bfloat16), naming the
    device or the producer's refusal.
    """
    missing = [name for name in ("__dlpack__", "__dlpack_device__") if not hasattr(obj, name)]
    if missing:
        raise TypeError(
            f"from_dlpack: a {_type_name(obj)} has no {' or '.join(missing)}; expected an "
            "array that supports DLPack (a torch tensor, a CuPy, JAX or NumPy array, a "
            "Variable). Wrap a list or a plain buffer with Variable(np.asarray(...)) instead"
        )
    device_type, device_id = (int(n) for n in obj.__dlpack_device__())
    if device_type in _NUMPY_DEVICES:
        consume = np.from_dlpack
    elif device_type in _CUPY_DEVICES:
        cp = cupy_module()
        if cp is None:
            raise BufferError(
                f"from_dlpack: the {_type_name(obj)} lives on {_CUPY_DEVICES[device_type]} "
                f"device {device_id} (DLPack device type {device_type}); zerograd reads GPU "
                "memory through CuPy, which cannot be loaded here or sees no GPU. Install CuPy "
                "for your CUDA version (pip install cupy-cuda12x), or move the array to the "
                "CPU first (tensor.cpu())"
            )
        consume = cp.from_dlpack
    else:
        name = _OTHER_DEVICES.get(device_type, "an unknown device")
        raise BufferError(
            f"from_dlpack: the {_type_name(obj)} lives on {name} device {device_id} (DLPack "
            f"device type {device_type}); zerograd holds arrays in CPU memory (NumPy) or on "
            "CUDA/ROCm GPUs (CuPy). Move the array to the CPU first"
        )
    try:
        data = consume(obj)
    except (BufferError, RuntimeError, TypeError, ValueError) as e:
        # The producer refused to export (PyTorch: a tensor that requires grad) or the
        # consumer cannot read what it got (NumPy: bfloat16). The message of the library
        # that refused says why; this one says what was being read.
        raise BufferError(
            f"from_dlpack: could not read the {_type_name(obj)}{_described(obj)} through "
            f"DLPack: {e}"
        ) from e
    return Variable(data, requires_grad=requires_grad)


def _type_name(obj) -> str:
    cls = type(obj)
    module = cls.__module__.split(".")[0]
    return cls.__name__ if module == "builtins" else f"{module}.{cls.__name__}"


def _described(obj) -> str:
    """' (float32 (2, 3))' where the object tells its dtype and shape, else ''."""
    dtype, shape = getattr(obj, "dtype", None), getattr(obj, "shape", None)
    if dtype is None or shape is None:
        return ""
    return f" ({dtype} {tuple(shape)})"
