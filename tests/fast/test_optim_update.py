"""The optimizers' update ``w += scale * x`` (``optim.optimizer.add_scaled``): the compiled
one-pass kernel (``zerograd._fast.optim``) and the NumPy path's blocks give the plain
expression's values bitwise; the dispatch takes the kernel exactly where documented; a
training step is the same on both paths and its update is still an in-place write the
engine sees."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import zerograd._fast as fast
import zerograd.functions as F
import zerograd.layers as L
import zerograd.optim.optimizer as optimizer_module
from tests.fast._kernels import record_shapes
from zerograd import optimizers
from zerograd.errors import InPlaceError
from zerograd.models import MLP
from zerograd.optim.optimizer import add_scaled

pytest.importorskip("numba")

from zerograd._fast import optim as fast_optim  # noqa: E402

LOW = fast.THRESHOLDS["add_scaled"][0]
# Sizes: a few elements, either side of the kernel's threshold, and more than one NumPy block
# (float32 and float64) with a partial last block.
SIZES = [7, LOW - 1, LOW, 3 * (optimizer_module._BLOCK_BYTES // 4) + 5]


pytestmark = pytest.mark.usefixtures("kernels_on")


@pytest.fixture
def kernel_calls(monkeypatch):
    """The compiled kernel's calls: w's shape for each."""
    return record_shapes(monkeypatch, fast_optim, "add_scaled")


def _operands(size, dtype, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(size).astype(dtype), rng.standard_normal(size).astype(dtype))


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=lambda d: d.__name__)
@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("scale", [-0.1, 3, -1e-3])
def test_both_paths_equal_the_plain_expression_bitwise(dtype, size, scale, kernel_calls):
    w, x = _operands(size, dtype)
    x_before = x.copy()
    expected = w.copy()
    expected += scale * x
    compiled = w.copy()
    add_scaled(compiled, scale, x)
    with fast.numpy_only():
        reference = w.copy()
        add_scaled(reference, scale, x)
    assert compiled.dtype == reference.dtype == dtype
    assert compiled.tobytes() == expected.tobytes()
    assert reference.tobytes() == expected.tobytes()
    np.testing.assert_array_equal(x, x_before)  # x is only read
    assert len(kernel_calls) == (1 if size >= LOW else 0)  # the numpy_only call never


def test_the_kernel_itself_equals_the_plain_expression_below_the_threshold():
    for dtype in (np.float32, np.float64):
        w, x = _operands((3, 5), dtype)
        expected = w + dtype(0.5) * x
        fast_optim.add_scaled(w, 0.5, x)
        assert w.tobytes() == expected.tobytes()


@pytest.mark.parametrize("case", ["numpy scalar", "other dtype", "strided", "transposed"])
def test_what_the_kernel_does_not_take_runs_numpy_with_the_plain_values(case, kernel_calls):
    """A NumPy float64 scale is not a weak Python scalar: its product is float64 (NEP 50),
    which the plain expression keeps until the sum; mixed dtypes and non-contiguous
    arrays go to the plain expression too."""
    w, x = _operands((LOW * 2,), np.float32)
    scale = -0.1
    if case == "numpy scalar":
        scale = np.float64(-0.1)
    elif case == "other dtype":
        x = x.astype(np.float64)
    elif case == "strided":
        x = np.repeat(x, 2)[::2]
    else:
        w, x = w.reshape(-1, 2).T, x.reshape(-1, 2).T
    expected = w.copy()
    expected += scale * x
    add_scaled(w, scale, x)
    assert w.tobytes() == expected.tobytes()
    assert kernel_calls == []


@pytest.mark.parametrize("shift", [0, 1, 1000])
def test_an_x_that_overlaps_w_gives_the_plain_values(shift, kernel_calls):
    size = 3 * LOW
    buffer = np.random.default_rng(0).standard_normal(size + shift).astype(np.float32)
    expected = buffer.copy()
    w_expected = expected[shift:]
    w_expected += -0.5 * expected[:size]
    add_scaled(buffer[shift:], -0.5, buffer[:size])
    assert buffer.tobytes() == expected.tobytes()
    assert kernel_calls == []  # views of one buffer take the plain expression
    w = buffer[shift:]
    expected = w + -0.5 * w
    add_scaled(w, -0.5, w)  # x is w: elementwise, so the kernel's
    assert w.tobytes() == expected.tobytes()
    assert kernel_calls == [w.shape]


def test_the_kernel_refuses_arrays_it_was_not_written_for():
    w, x = _operands(10, np.float32)
    with pytest.raises(TypeError, match=r"add_scaled.*float64 \(10,\)"):
        fast_optim.add_scaled(w, 1.0, x.astype(np.float64))
    with pytest.raises(TypeError, match="C-contiguous"):
        fast_optim.add_scaled(w[::2], 1.0, x[::2])


def _train(make_optimizer, steps=3):
    rng = np.random.default_rng(0)
    np.random.seed(0)
    model = MLP((300, 10), activation=F.relu)
    optimizer = make_optimizer().setup(model)
    for _ in range(steps):
        x = rng.random((20, 1000), dtype=np.float32)
        t = rng.integers(0, 10, 20)
        loss = F.softmax_cross_entropy(model(x), t)
        model.cleargrads()
        loss.backward()
        optimizer.update()
    return [p.data.copy() for p in model.params()]


@pytest.mark.parametrize("make", [lambda: optimizers.SGD(lr=0.1),
                                  lambda: optimizers.MomentumSGD(lr=0.1, momentum=0.9),
                                  lambda: optimizers.MomentumSGD(lr=0.1, nesterov=True)],
                         ids=["SGD", "MomentumSGD", "Nesterov"])
def test_training_steps_are_bitwise_the_same_on_both_paths(make, kernel_calls):
    compiled = _train(make)  # W0 is (1000, 300): 300,000 elements, the kernel's
    assert kernel_calls and all(shape == (1000, 300) for shape in kernel_calls)
    with fast.numpy_only():
        reference = _train(make)
    for a, b in zip(compiled, reference):
        assert a.dtype == np.float32
        assert a.tobytes() == b.tobytes()


def test_a_kernel_update_is_an_in_place_write_the_engine_sees(kernel_calls):
    layer = L.Linear(LOW, in_size=2)
    optimizer = optimizers.SGD(lr=0.1).setup(layer)
    loss = F.sum(layer(np.ones((1, 2), np.float32)) ** 2)
    loss.backward()
    optimizer.update()
    assert (2, LOW) in kernel_calls  # W went through the kernel
    layer.cleargrads()
    with pytest.raises(InPlaceError, match="Linear"):
        loss.backward()


def test_training_a_small_model_never_imports_numba():
    """Below the threshold the dispatch says no before it asks whether numba imports."""
    code = ("import sys, numpy as np, zerograd.functions as F\n"
            "from zerograd import optimizers\nfrom zerograd.models import MLP\n"
            "model = MLP((100, 10)); opt = optimizers.MomentumSGD(0.1).setup(model)\n"
            "for _ in range(2):\n"
            "    y = model(np.ones((4, 50), np.float32))\n"
            "    loss = F.softmax_cross_entropy(y, np.arange(4))\n"
            "    model.cleargrads(); loss.backward(); opt.update()\n"
            "print('numba' in sys.modules)")
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2]))
    env.pop("ZEROGRAD_FAST", None)
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"
