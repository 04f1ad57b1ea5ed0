"""Adam's update in one compiled pass (``zerograd._fast.optim.adam``): bitwise the NumPy
path's three lines, taken exactly where documented, and still an in-place write the engine
sees."""

from __future__ import annotations

import numpy as np
import pytest

import zerograd._fast as fast
import zerograd.functions as F
import zerograd.layers as L
from tests.fast._kernels import record_shapes
from zerograd import Parameter, optimizers
from zerograd.errors import InPlaceError

pytest.importorskip("numba")

from zerograd._fast import optim as fast_optim  # noqa: E402

LOW = fast.THRESHOLDS["adam"][0]


pytestmark = pytest.mark.usefixtures("kernels_on")


@pytest.fixture
def kernel_calls(monkeypatch):
    """The compiled kernel's calls: the parameter's shape for each."""
    return record_shapes(monkeypatch, fast_optim, "adam")


def _params(shape, dtype, seed=0):
    rng = np.random.default_rng(seed)
    return [Parameter(rng.standard_normal(shape).astype(dtype)) for _ in range(2)]


def _train(params, steps: int, numpy_only: bool, optimizer=None, seed=1):
    """``steps`` Adam steps on fixed random gradients; the parameters and moments after."""
    rng = np.random.default_rng(seed)
    opt = (optimizer or optimizers.Adam(alpha=0.01)).setup(params)
    grads = [[rng.standard_normal(p.shape).astype(p.dtype) for p in params]
             for _ in range(steps)]
    for step_grads in grads:
        for p, g in zip(params, step_grads):
            p.grad = Parameter(g)
        if numpy_only:
            with fast.numpy_only():
                opt.update()
        else:
            opt.update()
    state = [opt._state_for(p) for p in params]
    return [p.data.copy() for p in params] + [s[k].copy() for s in state for k in ("m", "v")]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(LOW,), (LOW - 1,), (64, 100), (3, 5000)])
def test_the_kernel_gives_the_numpy_paths_values_bitwise(shape, dtype, kernel_calls):
    compiled = _train(_params(shape, dtype), 5, numpy_only=False)
    plain = _train(_params(shape, dtype), 5, numpy_only=True)
    for a, b in zip(compiled, plain):
        assert a.dtype == dtype and np.array_equal(a, b)
    assert bool(kernel_calls) == (np.prod(shape) >= LOW)


def test_adamw_runs_the_same_step_after_its_decay(kernel_calls):
    compiled = _train(_params((64, 100), np.float32), 3, False,
                      optimizers.AdamW(alpha=0.01, weight_decay=0.1))
    plain = _train(_params((64, 100), np.float32), 3, True,
                   optimizers.AdamW(alpha=0.01, weight_decay=0.1))
    assert kernel_calls and all(np.array_equal(a, b) for a, b in zip(compiled, plain))


def test_numpy_scalar_hyperparameters_are_python_floats_so_the_kernel_agrees(kernel_calls):
    # The optimizer stores hyperparameters as Python floats, which NumPy rounds to the
    # arrays' dtype as the kernel does: a NumPy float64 alpha gives the same step.
    as_numpy = optimizers.Adam(alpha=np.float64(0.01), beta1=np.float32(0.9))
    assert type(as_numpy.alpha) is float and type(as_numpy.beta1) is float
    compiled = _train(_params((64, 100), np.float32), 2, False, as_numpy)
    plain = _train(_params((64, 100), np.float32), 2, True,
                   optimizers.Adam(alpha=0.01, beta1=float(np.float32(0.9))))
    assert kernel_calls and all(np.array_equal(a, b) for a, b in zip(compiled, plain))


@pytest.mark.parametrize("view", ["matrix block", "strided 3-d"])
def test_a_strided_parameter_keeps_the_numpy_path(view, kernel_calls):
    # The LSTM's gate weights are column blocks of its fused arrays.
    if view == "matrix block":
        base = np.ones((100, 400), np.float32)
        p = Parameter(base[:, 100:200])
        untouched = base[:, 200:]
    else:
        base = np.ones((20, 20, 40), np.float32)
        p = Parameter(base[:, :, ::2])
        untouched = base[:, :, 1::2]
    assert p.size >= LOW and not p.data.flags.c_contiguous
    opt = optimizers.Adam().setup([p])
    p.grad = Parameter(np.ones(p.shape, np.float32))
    opt.update()
    assert kernel_calls == []
    np.testing.assert_allclose(p.data, 1 - 0.001, rtol=1e-6)  # the first step is alpha
    np.testing.assert_array_equal(untouched, 1)


def test_the_compiled_update_is_an_in_place_write_the_engine_sees():
    layer = L.Linear(100, in_size=64)
    opt = optimizers.Adam().setup(layer)
    x = np.ones((2, 64), np.float32)
    loss = F.sum(layer(x))
    loss.backward()
    assert layer.W.size >= LOW
    opt.update()
    with pytest.raises(InPlaceError, match="changed in place"):
        loss.backward()  # through the kept graph, after the step changed W


def test_the_kernel_refuses_mixed_arrays():
    w = np.ones(8, np.float32)
    with pytest.raises(TypeError, match="zerograd._fast.adam"):
        fast_optim.adam(w, np.zeros(8, np.float64), np.zeros(8, np.float32), w, 0.1, 0.001,
                        0.001, 1e-8)
