"""zerograd.onnx.export's interface: names, dynamic batch, opsets, functions, several inputs
and outputs, the errors, the optional dependency, atomic writes and path=None."""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import zerograd
import zerograd.functions as F
import zerograd.layers as L
from tests.onnx._check import check_export, onnx, run_onnx, zerograd_outputs
from zerograd import Function, Model, Variable
from zerograd.models import MLP
from zerograd.onnx import DEFAULT_OPSET, ExportError, export


def _x(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


class Encoder(Model):
    def __init__(self):
        super().__init__()
        self.l1 = L.Linear(6)
        self.l2 = L.Linear(5)

    def forward(self, x):
        return self.l2(F.tanh(self.l1(x)))


class Net(Model):
    def __init__(self):
        super().__init__()
        self.encoder = Encoder()
        self.head = L.Linear(2)

    def forward(self, x):
        return self.head(F.relu(self.encoder(x)))


# -- names ------------------------------------------------------------------------------------
def test_parameters_are_initializers_named_by_their_parameter_names():
    model = Net()
    proto = check_export(model, _x(3, 4))
    names = [t.name for t in proto.graph.initializer]
    expected = [key for key, _ in model.named_params()]
    assert expected == ["encoder/l1/W", "encoder/l1/b", "encoder/l2/W", "encoder/l2/b",
                        "head/W", "head/b"]
    assert set(expected) <= set(names)
    for key, param in model.named_params():
        stored = next(t for t in proto.graph.initializer if t.name == key)
        np.testing.assert_array_equal(onnx.numpy_helper.to_array(stored), param.data)


def test_default_input_and_output_names():
    proto = check_export(MLP((5, 2)), _x(3, 4))
    assert [i.name for i in proto.graph.input] == ["input0"]
    assert [o.name for o in proto.graph.output] == ["output0"]


def test_given_input_and_output_names():
    proto = export(MLP((5, 2)), _x(3, 4), None, input_names=["pixels"], output_names=["logits"])
    assert [i.name for i in proto.graph.input] == ["pixels"]
    assert [o.name for o in proto.graph.output] == ["logits"]


def test_wrong_number_of_names_is_refused():
    with pytest.raises(ValueError, match="2 input_names given .* for 1 input"):
        export(MLP((2,)), _x(3, 4), None, input_names=["a", "b"])
    with pytest.raises(ValueError, match="output_names must be distinct"):
        export(lambda x: (x * 2, x * 3), _x(3, 4), None, output_names=["y", "y"])


def test_constants_and_buffers_get_names():
    class Scaled(Model):
        def __init__(self):
            super().__init__()
            self.register_buffer("scale", np.array([1.0, 2.0, 3.0, 4.0], np.float32))

        def forward(self, x):
            # A constant array operand (not a Parameter, not a buffer) becomes const_N.
            return x * self.scale + np.float32(0.5) * np.ones(4, np.float32)

    proto = check_export(Scaled(), _x(3, 4))
    names = {t.name for t in proto.graph.initializer}
    assert "scale" in names
    assert any(n.startswith("const_") for n in names)


# -- dynamic batch ----------------------------------------------------------------------------
def _first_dim(value_info):
    return value_info.type.tensor_type.shape.dim[0]


def test_dynamic_batch_makes_the_first_dimension_symbolic():
    proto = check_export(MLP((5, 2)), _x(3, 4))  # runs batch 3 and batch 5
    assert _first_dim(proto.graph.input[0]).dim_param == "batch"
    assert _first_dim(proto.graph.output[0]).dim_param == "batch"


def test_static_batch_keeps_the_example_size(tmp_path):
    model = MLP((5, 2))
    path = tmp_path / "static.onnx"
    proto = export(model, _x(3, 4), path, dynamic_batch=False)
    assert _first_dim(proto.graph.input[0]).dim_value == 3
    assert _first_dim(proto.graph.output[0]).dim_value == 3
    x = _x(3, 4, seed=1)
    np.testing.assert_allclose(run_onnx(path, [x])[0], zerograd_outputs(model, [x])[0],
                               atol=1e-5, rtol=1e-5)
    ort = pytest.importorskip("onnxruntime")
    with pytest.raises(ort.capi.onnxruntime_pybind11_state.InvalidArgument):
        run_onnx(path, [_x(5, 4)])


def test_reshape_with_the_batch_in_it_runs_on_another_batch():
    # flatten reshapes to (N, -1): the batch must not be baked into the shape constant.
    check_export(lambda x: F.flatten(x) * 2.0, _x(3, 2, 2))
    check_export(lambda x: F.reshape(x, (x.shape[0] * 2, 2)), _x(3, 4))


# -- opsets -----------------------------------------------------------------------------------
def test_default_opset_is_17():
    proto = export(MLP((2,)), _x(3, 4), None)
    assert DEFAULT_OPSET == 17
    assert [(o.domain, o.version) for o in proto.opset_import] == [("", 17)]


@pytest.mark.parametrize("opset", [13, 18, 20])
def test_opset_choice(opset):
    proto = check_export(lambda x: F.gelu(F.softmax(x)).sum(axis=1), _x(3, 4), opset=opset)
    assert proto.opset_import[0].version == opset
    ops = {node.op_type for node in proto.graph.node}
    assert ("Gelu" in ops) == (opset >= 20)


@pytest.mark.parametrize("opset", [12, 10_000, "17", 17.0, True])
def test_unsupported_opset_is_refused(opset):
    with pytest.raises(ValueError, match="opset must be an int from 13 to"):
        export(MLP((2,)), _x(3, 4), None, opset=opset)


# -- functions, several inputs and outputs ----------------------------------------------------
def test_a_function_exports():
    def f(x, y):
        return F.sigmoid(x) * y + 1.0

    proto = check_export(f, [_x(3, 4), _x(3, 4, seed=1)])
    assert [i.name for i in proto.graph.input] == ["input0", "input1"]
    assert proto.graph.initializer  # the scalar 1.0, typed
    assert not [t for t in proto.graph.initializer if "/" in t.name]


def test_several_inputs_and_outputs():
    class TwoHeads(Model):
        def __init__(self):
            super().__init__()
            self.a = L.Linear(3)
            self.b = L.Linear(2)

        def forward(self, x, z):
            h = F.relu(self.a(x))
            return self.b(h), h + z, F.sum(h, axis=1)

    proto = check_export(TwoHeads(), [_x(3, 4), _x(3, 3, seed=1)],
                         input_names=["x", "z"], output_names=["head", "skip", "total"])
    assert [o.name for o in proto.graph.output] == ["head", "skip", "total"]
    assert [i.name for i in proto.graph.input] == ["x", "z"]


def test_an_output_that_is_an_input_or_repeated():
    proto = check_export(lambda x, y: (x, F.exp(y), F.exp(y) * 1.0), [_x(3, 2), _x(3, 2, 1)])
    assert len(proto.graph.output) == 3


def test_example_inputs_may_be_variables_and_are_left_alone():
    x = Variable(_x(3, 4))
    check_export(MLP((3,)), x)
    assert x.creator is None and x.grad is None


def test_float64_input_to_a_float32_model_promotes_like_numpy():
    model = MLP((3,))
    model(_x(1, 4))  # float32 weights
    check_export(model, _x(3, 4).astype(np.float64))


def test_dropout_is_the_identity_in_the_export():
    class Net2(Model):
        def __init__(self):
            super().__init__()
            self.l = L.Linear(3)

        def forward(self, x):
            return F.dropout(self.l(x), 0.5)

    proto = check_export(Net2(), _x(3, 4))
    assert "Dropout" not in {n.op_type for n in proto.graph.node}


# -- errors -----------------------------------------------------------------------------------
class Cube(Function):
    """An op of a user's own without an ONNX lowering."""

    def forward(self, x):
        return x ** 3

    def backward(self, gy):
        (x,) = self.inputs
        return gy * 3 * x ** 2


class CubeLayer(Model):
    def __init__(self):
        super().__init__()
        self.l1 = L.Linear(3)

    def forward(self, x):
        return Cube()(self.l1(x))  # CUBE CALL


class Deep(Model):
    def __init__(self):
        super().__init__()
        self.encoder = CubeLayer()
        self.out = L.Linear(2)

    def forward(self, x):
        return self.out(self.encoder(x))


def _line_of(marker):
    with open(__file__) as f:
        return next(i for i, line in enumerate(f, 1) if marker in line and "_line_of" not in line)


def test_op_without_lowering_names_op_layer_path_and_line():
    with pytest.raises(ExportError) as info:
        export(Deep(), _x(3, 4), None)
    message = str(info.value)
    assert message.startswith("no ONNX lowering for Cube (in 'Deep/encoder'")
    assert f"created at {__file__}:{_line_of('# CUBE CALL')}" in message
    assert "ops with lowerings: " in message and "MatMul" in message and "Linear" in message
    assert isinstance(info.value, zerograd.errors.ZerogradError)


def test_the_layer_path_is_the_innermost_layer_that_ran_the_op():
    class Outer(Model):
        def __init__(self):
            super().__init__()
            self.encoder = Encoder()
            self.head = L.Linear(2)

        def forward(self, x):
            h = self.encoder(self.encoder(x)[:, :4])  # a sub-layer called twice
            return self.head(Cube()(h))  # the root's own op, between sub-layers

    with pytest.raises(ExportError, match=r"no ONNX lowering for Cube \(in 'Outer',"):
        export(Outer(), _x(3, 4), None)


def test_op_without_lowering_in_a_function_names_the_function():
    def my_fn(x):
        return Cube()(x) + 1.0

    with pytest.raises(ExportError, match=r"no ONNX lowering for Cube \(in '.*my_fn'"):
        export(my_fn, _x(3, 4), None)


def test_unsupported_index_is_an_export_error_naming_the_op():
    with pytest.raises(ExportError, match=r"ONNX lowering of GetItem \(in .*\) failed: .*"
                                          r"only basic indices"):
        export(lambda x: x[np.array([0, 1]), np.array([1, 2])], _x(3, 4), None)


def test_an_input_that_does_not_reach_the_outputs_is_an_error():
    with pytest.raises(ExportError, match=r"input 1 \('input1', float32 \(3, 4\)\) does not "
                                          r"reach any output"):
        export(lambda x, y: x * 2.0, [_x(3, 4), _x(3, 4)], None)


def test_non_variable_output_is_an_error():
    with pytest.raises(ExportError, match="output 0 of the forward pass is a ndarray"):
        export(lambda x: x.data, _x(3, 4), None)


def test_example_input_of_the_wrong_type_is_refused():
    with pytest.raises(TypeError, match="example input 0 is a list"):
        export(MLP((2,)), [[1.0, 2.0]], None)


# -- the optional dependency ------------------------------------------------------------------
def test_import_zerograd_does_not_import_onnx():
    code = textwrap.dedent("""
        import sys
        import zerograd, zerograd.onnx, zerograd.functions, zerograd.layers, zerograd.models
        assert "onnx" not in sys.modules, "onnx imported"
        assert "onnxruntime" not in sys.modules, "onnxruntime imported"
        print("ok")
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_export_without_onnx_raises_an_import_error_naming_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)  # makes `import onnx` raise ImportError
    with pytest.raises(ImportError, match=r"pip install 'zerograd\[onnx\]'"):
        export(MLP((2,)), _x(3, 4), None)


# -- writing ----------------------------------------------------------------------------------
def test_path_none_writes_nothing_and_returns_the_model(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    proto = export(MLP((2,)), _x(3, 4), None)
    assert isinstance(proto, onnx.ModelProto)
    assert os.listdir(tmp_path) == []
    onnx.checker.check_model(proto)


def test_the_file_holds_the_returned_model(tmp_path):
    path = tmp_path / "m.onnx"
    proto = export(MLP((2,)), _x(3, 4), str(path))
    assert path.read_bytes() == proto.SerializeToString()
    assert os.listdir(tmp_path) == ["m.onnx"]  # no temporary file left behind


def test_a_failed_export_leaves_an_existing_file_untouched(tmp_path, monkeypatch):
    path = tmp_path / "m.onnx"
    path.write_bytes(b"previous model")
    with pytest.raises(ExportError):
        export(Deep(), _x(3, 4), path)
    assert path.read_bytes() == b"previous model"

    def failing_write(*args, **kwargs):
        raise OSError("disk full")

    # A failure in the middle of the write: the temporary file goes, the old file stays.
    proto = export(MLP((2,)), _x(3, 4), None)
    monkeypatch.setattr(type(proto), "SerializeToString", failing_write)
    with pytest.raises(OSError, match="disk full"):
        export(MLP((2,)), _x(3, 4), path)
    assert path.read_bytes() == b"previous model"
    assert os.listdir(tmp_path) == ["m.onnx"]


# -- checkpointed segments ----------------------------------------------------------------------
class Checkpointed(Model):
    def __init__(self, inner=None):
        super().__init__()
        self.a = L.Linear(5)
        self.b = L.Linear(2)
        self.inner = inner or (lambda h: F.tanh(h) * 2.0)

    def forward(self, x):
        h = zerograd.checkpoint(lambda v: self.inner(self.a(v)), x)
        return self.b(h)


def test_a_checkpointed_segment_exports_as_its_ops():
    proto = check_export(Checkpointed(), _x(3, 4))
    assert [n.op_type for n in proto.graph.node] == ["Gemm", "Tanh", "Mul", "Gemm", "Identity"]
    assert {"a/W", "a/b", "b/W", "b/b"} <= {t.name for t in proto.graph.initializer}


def test_an_op_without_lowering_inside_a_checkpoint_is_named():
    with pytest.raises(ExportError, match=r"no ONNX lowering for Cube \(in 'checkpoint\("):
        export(Checkpointed(lambda h: Cube()(h)), _x(3, 4), None)


# -- PyTorch in, ONNX out ---------------------------------------------------------------------
@pytest.mark.torch
def test_pytorch_weights_exported_give_pytorch_outputs():
    # A PyTorch model's weights loaded into zerograd and exported: ONNX Runtime computes what
    # PyTorch computes (zerograd is the bridge, checked at both ends).
    torch = pytest.importorskip("torch")
    from zerograd.nn import from_torch_state_dict

    torch.manual_seed(0)
    twin = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.GELU(), torch.nn.Linear(8, 3),
                               torch.nn.LogSoftmax(dim=1)).eval()

    class Net3(Model):
        def __init__(self):
            super().__init__()
            self.l0 = L.Linear(8, in_size=4)
            self.l2 = L.Linear(3, in_size=8)

        def forward(self, x):
            return F.log_softmax(self.l2(F.gelu(self.l0(x))))

    model = Net3()
    from_torch_state_dict(model, twin.state_dict(), mapping={"l0": "0", "l2": "2"})
    x = _x(3, 4)
    proto = check_export(model, x)
    ort_out = run_onnx_proto(proto, _x(6, 4, seed=5))
    with torch.no_grad():
        expected = twin(torch.from_numpy(_x(6, 4, seed=5))).numpy()
    np.testing.assert_allclose(ort_out, expected, atol=1e-5, rtol=1e-5)


def run_onnx_proto(proto, x):
    ort = pytest.importorskip("onnxruntime")
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x})[0]


def test_no_initializer_is_left_that_no_node_reads():
    # An LSTM cell from no state: its constant zero state is replaced by zeros of the
    # runtime batch, so the constant itself must not stay in the file.
    layer = L.LSTM(3, in_size=2)
    layer.reset_state()
    model = export(layer, [np.zeros((4, 2), np.float32)], None)
    layer.reset_state()
    read = {name for node in model.graph.node for name in node.input}
    names = [t.name for t in model.graph.initializer]
    assert names and all(name in read for name in names)


def test_zerograd_onnx_is_reached_from_the_package_and_imports_onnx_only_on_export():
    code = ("import sys, zerograd; export = zerograd.onnx.export; "
            "print('onnx' in sys.modules, 'onnxruntime' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True)
    assert result.stdout.split() == ["False", "False"]
