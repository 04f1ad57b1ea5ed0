"""``zerograd export``: a run of ``zerograd train`` written as ONNX, run in ONNX Runtime and
compared with ``zerograd predict``; default output path, opset choice, and the errors."""

import builtins
import gzip

import numpy as np
import pytest

from zerograd import cli

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")


def run_main(args, capsys):
    status = cli.main(args)
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def _train(tmp_path, capsys, name, *args):
    out = str(tmp_path / name)
    status, _, stderr = run_main(["train", "--out", out, "--epochs", "1", "--no-progress",
                                  *args], capsys)
    assert status == 0, stderr
    return out


def _onnx_outputs(path, x):
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["input"]
    assert [o.name for o in session.get_outputs()] == ["output"]
    return session.run(None, {"input": x})[0]


def _predicted(run, tmp_path, x):
    """What ``zerograd predict`` computes for the batch x (a .npy file)."""
    batch = tmp_path / "batch.npy"
    np.save(batch, x)
    (y,) = cli.predict_files(run, [str(batch)], {}, log=lambda text: None)
    return y


def _idx(array):
    header = bytes([0, 0, 8, array.ndim]) + b"".join(n.to_bytes(4, "big") for n in array.shape)
    return gzip.compress(header + array.astype(np.uint8).tobytes())


@pytest.fixture
def mnist_like(tmp_path):
    """A small folder of MNIST-format files (28x28 images), read as fashion-mnist."""
    rng = np.random.default_rng(0)
    data = tmp_path / "fashion"
    data.mkdir()
    for prefix, n in (("train", 40), ("t10k", 10)):
        (data / f"{prefix}-images-idx3-ubyte.gz").write_bytes(
            _idx(rng.integers(0, 256, (n, 28, 28))))
        (data / f"{prefix}-labels-idx1-ubyte.gz").write_bytes(_idx(rng.integers(0, 10, n)))
    return str(data)


def test_spiral_mlp_export_equals_predict(tmp_path, capsys):
    run = _train(tmp_path, capsys, "spiral", "--dataset", "spiral", "--hidden", "10")
    path = tmp_path / "mlp.onnx"
    status, stdout, stderr = run_main(["export", "--weights", f"{run}/weights.npz", "--format",
                                       "onnx", "--out", str(path)], capsys)
    assert status == 0, stderr
    assert f"wrote {path}" in stdout and "(batch, 2) -> output 'output' (batch, 3)" in stdout
    onnx.checker.check_model(onnx.load(str(path)), full_check=True)
    x = np.random.default_rng(1).uniform(-1, 1, (7, 2)).astype(np.float32)
    np.testing.assert_allclose(_onnx_outputs(path, x), _predicted(run, tmp_path, x),
                               rtol=1e-5, atol=1e-5)


def test_mnist_like_cnn_export_equals_predict(tmp_path, capsys, mnist_like):
    run = _train(tmp_path, capsys, "cnn", "--dataset", "fashion-mnist", "--data-dir",
                 mnist_like, "--model", "cnn", "--hidden", "8")
    status, stdout, stderr = run_main(["export", "--weights", run], capsys)  # the directory
    assert status == 0, stderr
    path = tmp_path / "cnn" / "model.onnx"  # the default: next to the weights
    assert f"wrote {path}" in stdout and "(batch, 1, 28, 28)" in stdout
    proto = onnx.load(str(path))
    assert {"Conv", "MaxPool"} <= {node.op_type for node in proto.graph.node}
    for batch in (1, 5):  # any batch size
        x = np.random.default_rng(batch).uniform(0, 1, (batch, 1, 28, 28)).astype(np.float32)
        np.testing.assert_allclose(_onnx_outputs(path, x), _predicted(run, tmp_path, x),
                                   rtol=1e-5, atol=1e-5)


def test_mnist_like_mlp_takes_flat_vectors(tmp_path, capsys, mnist_like):
    run = _train(tmp_path, capsys, "mlp", "--dataset", "fashion-mnist", "--data-dir",
                 mnist_like, "--hidden", "16")
    path = tmp_path / "mlp.onnx"
    status, stdout, stderr = run_main(["export", "--weights", run, "--out", str(path)], capsys)
    assert status == 0, stderr
    assert "(batch, 784) -> output 'output' (batch, 10)" in stdout
    x = np.random.default_rng(2).uniform(0, 1, (3, 784)).astype(np.float32)
    np.testing.assert_allclose(_onnx_outputs(path, x), _predicted(run, tmp_path, x),
                               rtol=1e-5, atol=1e-5)


def test_regression_run_and_opset(tmp_path, capsys):
    run = _train(tmp_path, capsys, "sin", "--dataset", "sincurve", "--hidden", "8")
    path = tmp_path / "sin.onnx"
    status, stdout, stderr = run_main(["export", "--weights", run, "--out", str(path),
                                       "--opset", "15"], capsys)
    assert status == 0, stderr
    assert "opset 15" in stdout
    proto = onnx.load(str(path))
    assert [o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")] == [15]
    x = np.linspace(-1, 1, 6, dtype=np.float32).reshape(6, 1)
    np.testing.assert_allclose(_onnx_outputs(path, x), _predicted(run, tmp_path, x),
                               rtol=1e-5, atol=1e-5)


def test_export_weights_returns_the_path_and_names_the_parameters(tmp_path, capsys):
    run = _train(tmp_path, capsys, "spiral", "--dataset", "spiral", "--hidden", "6")
    lines = []
    path = cli.export_weights(run, str(tmp_path / "m.onnx"), log=lines.append)
    assert path == str(tmp_path / "m.onnx") and len(lines) == 1
    names = {t.name for t in onnx.load(path).graph.initializer}
    assert {"l0/W", "l0/b", "l1/W", "l1/b"} <= names


# -- errors -------------------------------------------------------------------------------------
def test_missing_run_is_a_clear_error(tmp_path, capsys):
    missing = tmp_path / "nothing" / "weights.npz"
    status, _, stderr = run_main(["export", "--weights", str(missing)], capsys)
    assert status == 2
    assert f"no such file: {missing}" in stderr and "zerograd train" in stderr
    assert not (tmp_path / "nothing").exists()


def test_unknown_format_is_refused(tmp_path, capsys):
    with pytest.raises(SystemExit) as stop:
        cli.main(["export", "--weights", str(tmp_path), "--format", "tflite"])
    assert stop.value.code == 2
    assert "invalid choice: 'tflite' (choose from 'onnx')" in capsys.readouterr().err
    with pytest.raises(cli.CLIError, match="unknown --format 'tflite'; supported: onnx"):
        cli.export_weights(str(tmp_path), None, fmt="tflite")


def test_missing_onnx_names_the_extra(tmp_path, capsys, monkeypatch):
    run = _train(tmp_path, capsys, "spiral", "--dataset", "spiral", "--hidden", "4")
    real_import = builtins.__import__

    def without_onnx(name, *args, **kwargs):
        if name == "onnx" or name.startswith("onnx."):
            raise ImportError("No module named 'onnx'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", without_onnx)
    status, _, stderr = run_main(["export", "--weights", run, "--out",
                                  str(tmp_path / "m.onnx")], capsys)
    assert status == 2
    assert "needs the onnx package: pip install 'zerograd[onnx]'" in stderr
    assert not (tmp_path / "m.onnx").exists()


def test_bad_opset_and_mismatched_settings(tmp_path, capsys):
    run = _train(tmp_path, capsys, "spiral", "--dataset", "spiral", "--hidden", "4")
    status, _, stderr = run_main(["export", "--weights", run, "--opset", "5"], capsys)
    assert status == 2 and "opset must be an int from 13" in stderr and "got 5" in stderr
    # Settings given on the command line win over the run's: weights that do not fit them.
    status, _, stderr = run_main(["export", "--weights", run, "--hidden", "9"], capsys)
    assert status == 2 and "does not fit" in stderr
