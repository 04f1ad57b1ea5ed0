"""zerograd.utils: numerical differentiation, gradient_check, DOT graphs."""

import shutil
import sys
import types
import warnings

import numpy as np
import pytest

import zerograd.functions as F
import zerograd.utils.graphviz as graphviz_module
from zerograd import Function, Variable
from zerograd.utils import (
    GraphvizNotFoundWarning,
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


# --- plot_dot_graph -------------------------------------------------------------------------
def small_graph():
    return F.sin(Variable(np.ones(2), name="x")) * 2.0


def fake_ipython(monkeypatch) -> list:
    """Injects a minimal IPython whose Image, like the real one, embeds only raster formats."""
    made = []

    class Image:
        def __init__(self, filename):
            if not filename.lower().endswith((".png", ".jpg", ".jpeg", ".gif")):
                raise ValueError(f"Cannot embed the {filename.rsplit('.', 1)[-1]!r} image format")
            with open(filename, "rb") as f:  # the real one reads the file, so it must exist
                self.data = f.read()
            self.filename = filename
            made.append(self)

    class SVG(Image):
        def __init__(self, filename):
            with open(filename) as f:
                self.data = f.read()
            self.filename = filename
            made.append(self)

    display = types.ModuleType("IPython.display")
    display.Image, display.SVG = Image, SVG
    package = types.ModuleType("IPython")
    package.display = display
    monkeypatch.setitem(sys.modules, "IPython", package)
    monkeypatch.setitem(sys.modules, "IPython.display", display)
    return made


@pytest.fixture
def no_dot(monkeypatch, tmp_path):
    """A PATH on which there is no 'dot', and a fresh warn-once flag."""
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    monkeypatch.setattr(graphviz_module, "_warned_missing_dot", False)
    assert shutil.which("dot") is None


def test_plot_without_dot_writes_the_source_and_warns_once(no_dot, tmp_path):
    y = small_graph()
    target = tmp_path / "g.png"
    with pytest.warns(GraphvizNotFoundWarning) as record:
        assert plot_dot_graph(y, verbose=False, to_file=str(target)) is None
    assert len(record) == 1
    message = str(record[0].message)
    assert "'dot' is not on PATH" in message and str(target) in message
    assert "apt-get install graphviz" in message and "conda install graphviz" in message
    assert not target.exists()
    assert (tmp_path / "g.dot").read_text() == get_dot_graph(y, verbose=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a second call must not warn again
        assert plot_dot_graph(y, to_file=str(tmp_path / "h.svg")) is None
    assert (tmp_path / "h.dot").read_text() == get_dot_graph(y, verbose=True)


def test_plot_without_dot_returns_none_under_ipython(no_dot, tmp_path, monkeypatch):
    made = fake_ipython(monkeypatch)
    with pytest.warns(GraphvizNotFoundWarning):
        assert plot_dot_graph(small_graph(), to_file=str(tmp_path / "g.png")) is None
    assert made == [] and (tmp_path / "g.dot").is_file()


needs_dot = pytest.mark.skipif(shutil.which("dot") is None,
                               reason="Graphviz 'dot' is not installed")


@needs_dot
def test_plot_dot_graph_renders(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "IPython", None)  # no IPython: DeZero returns None
    target = tmp_path / "graph.png"
    assert plot_dot_graph(small_graph(), to_file=str(target)) is None
    assert target.read_bytes()[:4] == b"\x89PNG"


@needs_dot
@pytest.mark.parametrize("extension, kind, magic", [
    ("png", "Image", b"\x89PNG"), ("jpg", "Image", b"\xff\xd8"), ("svg", "SVG", b"<"),
    ("pdf", None, b"%PDF"),
])
def test_plot_returns_what_a_notebook_displays(tmp_path, monkeypatch, extension, kind, magic):
    made = fake_ipython(monkeypatch)
    target = tmp_path / f"g.{extension}"
    shown = plot_dot_graph(small_graph(), to_file=str(target))
    content = target.read_bytes()
    assert content.lstrip()[:len(magic)] == magic
    if kind is None:  # pdf: written, nothing to embed
        assert shown is None and made == []
    else:
        assert type(shown).__name__ == kind and shown.filename == str(target)
        assert made == [shown]
    if extension == "svg":
        assert b"<svg" in content and "Sin" in shown.data


@needs_dot
def test_plot_svg_with_real_ipython(tmp_path):
    display = pytest.importorskip("IPython.display")
    shown = plot_dot_graph(small_graph(), to_file=str(tmp_path / "g.svg"))
    assert isinstance(shown, display.SVG) and "<svg" in shown.data
    assert isinstance(plot_dot_graph(small_graph(), to_file=str(tmp_path / "g.png")),
                      display.Image)
    assert plot_dot_graph(small_graph(), to_file=str(tmp_path / "g.pdf")) is None


@needs_dot
def test_plot_unknown_format_names_file_and_format(tmp_path):
    target = tmp_path / "g.notaformat"
    with pytest.raises(RuntimeError, match=r"dot failed to render .*g\.notaformat.* 'notaformat'"):
        plot_dot_graph(small_graph(), to_file=str(target))


def test_dezero_download_names(monkeypatch, tmp_path):
    import zerograd.utils as utils

    monkeypatch.setenv("ZEROGRAD_DATA", str(tmp_path))
    assert utils.cache_dir == str(tmp_path)
    assert callable(utils.get_file)
