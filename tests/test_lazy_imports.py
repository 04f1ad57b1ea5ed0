"""``import zerograd`` loads only what Variable and its operators need; every other public
name is loaded on first use and works as before (DeZero's names included).

Each check runs in a fresh interpreter: the test process has imported everything already.
"""

import json
import subprocess
import sys

import pytest

# Optional heavy dependencies: none may be imported by ``import zerograd``.
OPTIONAL = ["numba", "onnx", "onnxruntime", "torch", "mpi4py", "matplotlib", "cupy"]
# Standard-library modules zerograd's tools use (signature checks, drawing, the explorer
# page) that a program computing with Variables does not need. NumPy imports some of them
# itself (NumPy 2.4 imports inspect), so only what zerograd adds on top of NumPy is checked.
STDLIB_TOOLS = ["inspect", "subprocess", "json", "html", "dataclasses"]
# zerograd's own modules that load on first use.
LAZY = ["zerograd.functions", "zerograd.utils", "zerograd.autograd", "zerograd.core.autograd",
        "zerograd.core.engine", "zerograd.nn", "zerograd.layers", "zerograd.optim",
        "zerograd.data", "zerograd.training", "zerograd.distributed", "zerograd.cli",
        "zerograd.models", "zerograd.serialization"]


def run_fresh(code: str):
    """The JSON that ``code`` prints, run in a new interpreter."""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout)


def test_import_zerograd_loads_no_optional_dependency_and_no_tool():
    loaded = run_fresh(
        "import sys\n"
        "import numpy\n"
        "before = set(sys.modules)\n"
        "import zerograd\n"
        "loaded = {'all': sorted(sys.modules), 'added': sorted(set(sys.modules) - before)}\n"
        "import json\n"  # only now: json is one of the modules checked
        "print(json.dumps(loaded))\n")
    everything, added = set(loaded["all"]), set(loaded["added"])
    assert not everything & {m for name in OPTIONAL for m in everything
                             if m == name or m.startswith(name + ".")}
    assert not added & set(STDLIB_TOOLS)
    assert not added & set(LAZY)
    assert "zerograd.ops.arithmetic" in added  # what Variable's operators need is there


def test_variable_alone_computes_and_backpropagates():
    got = run_fresh(
        "import json, numpy as np\n"
        "from zerograd import Variable\n"
        "x = Variable(np.array([1.0, 2.0, 3.0]))\n"
        "y = (x * x + x[0]).sum() / 2\n"
        "y.backward()\n"
        "print(json.dumps([float(y.data), x.grad.data.tolist()]))\n")
    # y = (1 + 4 + 9 + 3 * 1) / 2 = 8.5; dy/dx = x + [3/2, 0, 0]
    assert got == [8.5, [2.5, 2.0, 3.0]]


@pytest.mark.parametrize("expression, expected", [
    ("zerograd.functions.relu(zerograd.Variable(np.array([-1.0, 2.0]))).data.tolist()",
     [0.0, 2.0]),
    ("type(zerograd.layers.Linear(3)).__name__", "Linear"),
    ("zerograd.utils.graph.__module__", "zerograd.utils.graph"),
    ("zerograd.utils.check_function.__name__", "check_function"),
    ("zerograd.utils.sum_to(np.ones((2, 3)), (1, 3)).tolist()", [[2.0, 2.0, 2.0]]),
    ("zerograd.checkpoint.__module__", "zerograd.core.autograd"),
    ("(lambda x: float(zerograd.autograd.grad(x ** 3, x)[0].data))"
     "(zerograd.Variable(np.array(2.0)))", 12.0),
    ("zerograd.core.autograd.__name__", "zerograd.core.autograd"),
    ("zerograd.cuda.gpu_enable", False),
    ("zerograd.dezero is zerograd", True),
])
def test_public_names_load_on_first_use(expression, expected):
    assert run_fresh("import json, numpy as np, zerograd\n"
                     f"print(json.dumps({expression}))\n") == expected


def test_utils_graph_stays_the_function_when_its_module_is_imported_later():
    """Importing a submodule sets the package's attribute of its name: ``utils.graph`` (the
    function) must survive ``import zerograd.utils.graph`` by the checker or a user."""
    got = run_fresh("import json, zerograd.utils\n"
                    "import zerograd.utils.check, zerograd.utils.graph\n"
                    "print(json.dumps(callable(zerograd.utils.graph) and "
                    "type(zerograd.utils.graph).__name__))\n")
    assert got == "function"


def test_star_imports_give_the_lazy_names():
    got = run_fresh("import json\n"
                    "ns = {}\n"
                    "exec('from zerograd import *', ns)\n"
                    "exec('from zerograd.utils import *', ns)\n"
                    "print(json.dumps([ns['functions'].__name__, ns['utils'].__name__, "
                    "ns['autograd'].__name__, ns['check_function'].__name__, "
                    "ns['checkpoint'].__name__, ns['Layer'].__name__]))\n")
    assert got == ["zerograd.functions", "zerograd.utils", "zerograd.autograd",
                   "check_function", "checkpoint", "Layer"]
