"""The CuPy path: every op spec and a small model run on the GPU and match NumPy.

Skipped on machines without CuPy and a GPU; without a GPU, ``to_gpu()`` must fail clearly.
"""

import numpy as np
import pytest

import zerograd
import zerograd.functions as F
from tests.ops.harness import _as_list, _diff_args, make_inputs
from tests.ops.test_op_specs import SPECS
from zerograd import Variable

gpu = pytest.mark.skipif(not zerograd.cuda.gpu_enable, reason="CuPy with a GPU is required")


def test_without_gpu_to_gpu_raises_a_clear_error():
    if zerograd.cuda.gpu_enable:
        pytest.skip("a GPU is present")
    with pytest.raises(RuntimeError, match="CuPy"):
        Variable(np.ones(2)).to_gpu()
    with pytest.raises(RuntimeError, match="CuPy"):
        zerograd.cuda.as_cupy(np.ones(2))


def _run(spec, arrays, diff, to_device):
    inputs = [Variable(to_device(a)) if i in diff else
              (to_device(a) if isinstance(a, np.ndarray) else a)
              for i, a in enumerate(arrays)]
    outputs = _as_list(spec.fn(*inputs, **spec.kwargs))
    total = None
    for k, y in enumerate(outputs):
        term = F.sum(y * float(k + 1))
        total = term if total is None else total + term
    total.backward()
    values = [zerograd.cuda.as_numpy(y.data) for y in outputs]
    grads = [zerograd.cuda.as_numpy(inputs[i].grad.data) for i in diff]
    return values, grads


@gpu
@pytest.mark.parametrize("spec", SPECS, ids=str)
def test_op_on_gpu_matches_numpy(spec):
    import cupy

    arrays = make_inputs(spec, spec.shapes[0], np.float32)
    diff = _diff_args(spec, arrays)
    cpu_values, cpu_grads = _run(spec, arrays, diff, lambda a: a)
    gpu_values, gpu_grads = _run(spec, arrays, diff, cupy.asarray)
    for got, want in zip(gpu_values + gpu_grads, cpu_values + cpu_grads):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


@gpu
def test_model_trains_on_gpu_like_on_cpu():
    import zerograd.layers as L
    import zerograd.optimizers as optimizers
    from zerograd.models import MLP

    def train(to_gpu):
        np.random.seed(0)
        model = MLP((16, 3), activation=F.relu)
        x = np.random.rand(32, 4).astype(np.float32)
        t = np.random.randint(0, 3, size=32)
        model(x)  # initialise the lazy weights on the CPU, identically in both runs
        if to_gpu:
            model.to_gpu()
            x, t = zerograd.cuda.as_cupy(x), zerograd.cuda.as_cupy(t)
        opt = optimizers.SGD(0.1).setup(model)
        for _ in range(5):
            loss = F.softmax_cross_entropy(model(x), t)
            model.cleargrads()
            loss.backward()
            opt.update()
        model.to_cpu()
        return float(zerograd.cuda.as_numpy(loss.data)), [p.data.copy() for p in model.params()]

    assert L.Linear  # the layers module imports without CuPy at module level
    cpu_loss, cpu_params = train(False)
    gpu_loss, gpu_params = train(True)
    assert gpu_loss == pytest.approx(cpu_loss, rel=1e-4)
    for a, b in zip(cpu_params, gpu_params):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
