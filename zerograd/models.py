"""``zerograd.models``: Model and the ready-made architectures.

``Model`` is a Layer that can draw its graph; ``Sequential`` chains layers and plain
functions; ``MLP`` is DeZero's multi-layer perceptron.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from zerograd import functions as F
from zerograd import layers as L  # noqa: F401 - DeZero's models module has L too
from zerograd import utils
from zerograd.core.variable import Variable
from zerograd.nn.layer import Layer
from zerograd.nn.linear import Linear

__all__ = ["Model", "Sequential", "MLP"]


class Model(Layer):
    """A Layer that is a whole network; adds ``plot``."""

    def plot(self, *inputs: Variable | np.ndarray, to_file: str = "model.png") -> Any:
        """Run ``forward(*inputs)`` and draw its graph to ``to_file`` (needs Graphviz).

        Returns what ``utils.plot_dot_graph`` returns (an image a notebook displays, when
        IPython is installed)."""
        y = self.forward(*inputs)
        return utils.plot_dot_graph(y, verbose=True, to_file=to_file)


class Sequential(Model):
    """Apply ``layers`` in order: ``Sequential(L.Linear(100), F.relu, L.Linear(10))``.

    Each entry is a Layer or any callable taking and returning one value (``F.relu``, a
    lambda). They are stored as attributes ``l0``, ``l1``, ... (only Layers are registered,
    so only they own parameters) and in the list ``self.layers``.
    """

    # DeZero's models keep their layers in a list named ``layers``, and programs written for
    # DeZero read ``model.layers[0]``; on these models the list shadows Layer.layers() (the
    # sub-layer iterator), so the two declarations cannot agree.
    layers: list[Layer | Callable[[Any], Any]]  # type: ignore[assignment]

    def __init__(self, *layers: Layer | Callable[[Any], Any]) -> None:
        super().__init__()
        self.layers = []
        for i, layer in enumerate(layers):
            if not callable(layer):
                raise TypeError(f"Sequential: entry {i} is a {type(layer).__name__}, which is "
                                "not callable; give Layers or functions such as F.relu")
            setattr(self, f"l{i}", layer)
            self.layers.append(layer)

    def forward(self, x: Any) -> Any:
        for layer in self.layers:
            x = layer(x)
        return x

    def __len__(self) -> int:
        return len(self.layers)

    def __getitem__(self, index: int) -> Layer | Callable[[Any], Any]:
        return self.layers[index]

    def __iter__(self) -> Iterator[Layer | Callable[[Any], Any]]:
        return iter(self.layers)

    def _repr_children(self) -> list[tuple[str, object]]:
        return [(f"l{i}", layer) for i, layer in enumerate(self.layers)]


class MLP(Model):
    """Multi-layer perceptron: one ``Linear`` per entry of ``fc_output_sizes`` (input size
    inferred), ``activation`` between consecutive layers and none after the last.

    x (N, in) -> (N, fc_output_sizes[-1]). Layers are ``l0``, ``l1``, ... as in DeZero.
    """

    layers: list[Linear]  # type: ignore[assignment]  # DeZero's list: see Sequential

    def __init__(self, fc_output_sizes: Sequence[int],
                 activation: Callable[[Variable], Variable] = F.sigmoid) -> None:
        super().__init__()
        self.activation = activation
        self.layers = []
        for i, out_size in enumerate(fc_output_sizes):
            layer = Linear(out_size)
            setattr(self, f"l{i}", layer)
            self.layers.append(layer)

    def forward(self, x: Variable | np.ndarray) -> Variable:
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

if TYPE_CHECKING:  # a type checker sees the real classes (at run time __getattr__ loads them)
    from zerograd.models_vision import (  # noqa: F401
        VGG16,
        BasicBlock,
        BasicStage,
        BottleneckA,
        BottleneckB,
        BuildingBlock,
        LeNet,
        PretrainedWeightsError,
        ResNet,
        ResNet50,
        ResNet101,
        ResNet152,
        SmallResNet,
    )


def __getattr__(name: str) -> type:
    if name in _VISION_MODELS:
        from zerograd import models_vision

        return getattr(models_vision, name)
    raise AttributeError(f"module 'zerograd.models' has no attribute {name!r}")
