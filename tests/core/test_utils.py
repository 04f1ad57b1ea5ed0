"""zerograd.utils: numerical differentiation, gradient_check, DOT graphs."""

import shutil

import numpy as np
import pytest

import zerograd.functions as F
from zerograd import Function, Variable
from zerograd.utils import (
    array_allclose,
    array_equal,
    get_dot_graph,
    gradient_check,
    numerical_diff,
    numerical_grad,
    plot_dot_graph,
)


def test_numerical_diff_of_square():
    x = Variable(np.array(2.0))
    assert numerical_diff(F.square, x) == pytest.approx(4.0, rel=1e-8)


def test_numerical_grad_of_sum_of_outputs():
    x = np.array([[1.0, 2.0], [3.0, 4.0]])
    g = numerical_grad(lambda v: v * v, x)
    np.testing.assert_allclose(g, 2 * x, rtol=1e-7)
    np.testing.assert_array_equal(x, [[1.0, 2.0], [3.0, 4.0]])  # restored


def test_gradient_check_passes_for_correct_ops():
    x = Variable(np.random.rand(3, 4))
    w = Variable(np.random.rand(4, 2))
    assert gradient_check(F.matmul, x, w)


class WrongGradForSecondInput(Function):
    def forward(self, a, b):
        return a * b

    def backward(self, gy):
        a, b = self.inputs
        return gy * b, gy * b  # wrong for b


def test_gradient_check_checks_every_variable_argument(capsys):
    a = Variable(np.array([1.0, 2.0]))
    b = Variable(np.array([3.0, 5.0]))
    assert not gradient_check(lambda x, y: WrongGradForSecondInput()(x, y), a, b)
    assert "argument 1" in capsys.readouterr().out


def test_gradient_check_leaves_callers_data_alone():
    x = Variable(np.ones(3, dtype=np.float32))
    assert gradient_check(F.sin, x, rtol=1e-3, atol=1e-4)
    assert x.data.dtype == np.float32 and x.grad is None


def test_array_comparisons_accept_variables():
    a = Variable(np.array([1.0, 2.0]))
    assert array_equal(a, np.array([1.0, 2.0]))
    assert array_allclose(a, np.array([1.0, 2.0 + 1e-7]))
    assert not array_allclose(a, np.array([1.0, 2.1]))


def test_dot_graph_has_nodes_labels_and_edges():
    x = Variable(np.ones((2, 3), dtype=np.float32), name="x")
    y = F.exp(x) * 2.0
    y.name = "y"
    text = get_dot_graph(y, verbose=True)
    assert text.startswith("digraph g {") and text.endswith("}")
    assert f'{id(x)} [label="x: (2, 3) float32", color=orange' in text
    assert f"{id(y.creator)} [label=\"MulConstant\"" in text
    exp_f = y.creator.inputs[0].creator
    assert f"{id(x)} -> {id(exp_f)}" in text
    assert f"{id(y.creator)} -> {id(y)}" in text
    brief = get_dot_graph(y, verbose=False)
    assert '[label="x", color=orange' in brief


def test_plot_dot_graph_names_missing_program(monkeypatch, tmp_path):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    y = Variable(np.ones(2)) * 2.0
    with pytest.raises(RuntimeError, match="Graphviz program 'dot'"):
        plot_dot_graph(y, to_file=str(tmp_path / "g.png"))


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz 'dot' is not installed")
def test_plot_dot_graph_renders(tmp_path):
    y = F.sin(Variable(np.ones(2), name="x"))
    target = tmp_path / "graph.png"
    plot_dot_graph(y, to_file=str(target))
    assert target.read_bytes()[:4] == b"\x89PNG"


def test_dezero_download_names(monkeypatch, tmp_path):
    import zerograd.utils as utils

    monkeypatch.setenv("ZEROGRAD_DATA", str(tmp_path))
    assert utils.cache_dir == str(tmp_path)
    assert callable(utils.get_file)
