"""Packaging facts: NumPy-only import, DeZero's module names, stage-2 core."""

import subprocess
import sys

import numpy as np


def test_import_needs_numpy_only():
    code = (
        "import sys, zerograd, zerograd.functions, zerograd.utils, zerograd.cuda\n"
        "heavy = {'matplotlib', 'tqdm', 'sklearn', 'torch', 'PIL', 'cupy', 'scipy'}\n"
        "print(sorted(heavy & set(m.split('.')[0] for m in sys.modules)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_dezero_names_exist():
    import zerograd

    for name in ("Variable", "Parameter", "Function", "Config", "using_config", "no_grad",
                 "test_mode", "as_array", "as_variable", "setup_variable"):
        assert hasattr(zerograd, name), name
    assert zerograd.is_simple_core is False


def test_core_simple_offers_stage_two_names():
    from zerograd import core_simple

    for name in ("Variable", "Function", "using_config", "no_grad", "as_array", "as_variable",
                 "setup_variable", "Config"):
        assert hasattr(core_simple, name), name
    x = core_simple.Variable(np.array(2.0))
    y = x * x + x
    y.backward()
    assert x.grad.data == 5.0


def test_cuda_module_without_gpu():
    import zerograd.cuda as cuda

    assert isinstance(cuda.gpu_enable, bool)
    a = np.ones(2)
    assert cuda.get_array_module(a) is np
    assert cuda.as_numpy(a) is a
    assert isinstance(cuda.as_numpy(3.0), np.ndarray)
