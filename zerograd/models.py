"""``zerograd.models``: Model and the ready-made architectures.

``Model`` is a Layer that can draw its graph; ``Sequential`` chains layers and plain
functions; ``MLP`` is DeZero's multi-layer perceptron.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

from zerograd import functions as F
from zerograd import layers as L  # noqa: F401 - DeZero's models module has L too
from zerograd import utils
from zerograd.core.variable import Variable
from zerograd.nn.layer import Layer
from zerograd.nn.linear import Linear

__all__ = ["Model", "Sequential", "MLP"]


class Model(Layer):
    """A Layer that is a whole network; adds ``plot``."""

    def plot(self, *inputs, to_file: str = "model.png"):
        """Run ``forward(*inputs)`` and draw its graph to ``to_file`` (needs Graphviz)."""
        y = self.forward(*inputs)
        return utils.plot_dot_graph(y, verbose=True, to_file=to_file)


class Sequential(Model):
    """Apply ``layers`` in order: ``Sequential(L.Linear(100), F.relu, L.Linear(10))``.

    Each entry is a Layer or any callable taking and returning one value (``F.relu``, a
    lambda). They are stored as attributes ``l0``, ``l1``, ... (only Layers are registered,
    so only they own parameters) and in the list ``self.layers``.
    """

    def __init__(self, *layers: Layer | Callable) -> None:
        super().__init__()
        self.layers = []
        for i, layer in enumerate(layers):
            if not callable(layer):
                raise TypeError(f"Sequential: entry {i} is a {type(layer).__name__}, which is "
                                "not callable; give Layers or functions such as F.relu")
            setattr(self, f"l{i}", layer)
            self.layers.append(layer)

    def forward(self, x):
        for layer in self.layers:
            x = layer(x)
        return x

    def __len__(self) -> int:
        return len(self.layers)

    def __getitem__(self, index: int):
        return self.layers[index]

    def __iter__(self) -> Iterator:
        return iter(self.layers)

    def _repr_children(self) -> list[tuple[str, object]]:
        return [(f"l{i}", layer) for i, layer in enumerate(self.layers)]


class MLP(Model):
    """Multi-layer perceptron: one ``Linear`` per entry of ``fc_output_sizes`` (input size
    inferred), ``activation`` between consecutive layers and none after the last.

    x (N, in) -> (N, fc_output_sizes[-1]). Layers are ``l0``, ``l1``, ... as in DeZero.
    """

    def __init__(self, fc_output_sizes: Sequence[int],
                 activation: Callable[[Variable], Variable] = F.sigmoid) -> None:
        super().__init__()
        self.activation = activation
        self.layers = []
        for i, out_size in enumerate(fc_output_sizes):
            layer = Linear(out_size)
            setattr(self, f"l{i}", layer)
            self.layers.append(layer)

    def forward(self, x) -> Variable:
        for layer in self.layers[:-1]:
            x = self.activation(layer(x))
        return self.layers[-1](x)

    def extra_repr(self) -> str:
        return f"activation={getattr(self.activation, '__name__', self.activation)}"


# The vision models (VGG16, ResNet, LeNet, ...) live in zerograd.models_vision, which builds
# on Model above; they are loaded on first access, so either module may be imported first.
_VISION_MODELS = ("VGG16", "ResNet", "ResNet50", "ResNet101", "ResNet152", "BuildingBlock",
                  "BottleneckA", "BottleneckB", "LeNet", "SmallResNet", "BasicBlock",
                  "BasicStage", "PretrainedWeightsError")
__all__ += list(_VISION_MODELS)


def __getattr__(name: str):
    if name in _VISION_MODELS:
        from zerograd import models_vision

        return getattr(models_vision, name)
    raise AttributeError(f"module 'zerograd.models' has no attribute {name!r}")
