"""Exchanging weights with PyTorch: ``from_torch_state_dict`` and ``to_torch_state_dict``.

A PyTorch ``state_dict`` names its arrays by module path (``features.0.weight``); a zerograd
model names its own by layer path (``conv1/W``, see ``Layer.state_dict``). The two functions
here translate between them, layer by layer, for the layers that have a PyTorch counterpart:

==============================  ==================================  =========================
zerograd layer                  PyTorch module                      conversion
==============================  ==================================  =========================
``Linear``                      ``nn.Linear``                       weight = W.T
``Conv1d`` / ``Conv2d``         ``nn.Conv1d`` / ``nn.Conv2d``       same layout
``Deconv2d``                    ``nn.ConvTranspose2d``              same layout
``BatchNorm``                   ``nn.BatchNorm1d/2d/3d``            running statistics too
``LayerNorm``, ``GroupNorm``    ``nn.LayerNorm``, ``nn.GroupNorm``  gamma/beta = weight/bias
``Embedding`` (``EmbedID``)     ``nn.Embedding``                    same layout
``MultiHeadAttention``          ``nn.MultiheadAttention``           q, k, v packed in rows
``RNN``, ``LSTM``, ``GRU``      ``nn.RNNCell``, ``LSTMCell``, ...   gates reordered
``RNNSeq``, ``LSTMSeq``, ...    ``nn.RNN``, ``nn.LSTM``, ``nn.GRU`` per cell, ``_l{k}``
==============================  ==================================  =========================

Each of these layers is converted as a whole (its sub-layers, such as the LSTM's ``x2f``,
are part of it). A Parameter or buffer of any other layer is copied as it is, under its own
name. Names: a layer at zerograd path ``a/b`` meets the PyTorch module ``a.b`` unless a
``mapping`` says otherwise. ``docs/interop.md`` describes every layout, the BatchNorm and
recurrent-bias notes, and the errors.

``import zerograd`` does not import PyTorch: tensors are recognised only when the caller has
imported torch already, and ``to_torch_state_dict`` imports it when it is called.
"""

from __future__ import annotations

import sys
import types
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Generic, NamedTuple, Protocol, TypeVar

import numpy as np

from zerograd.backend import as_numpy
from zerograd.core.variable import Variable
from zerograd.errors import DTypeError, ShapeError
from zerograd.nn.attention import MultiHeadAttention
from zerograd.nn.batchnorm import BatchNorm, GroupNorm
from zerograd.nn.conv import Conv1d, Conv2d, Deconv2d, _ConvBase
from zerograd.nn.embedding import Embedding
from zerograd.nn.layer import Layer, StateDictError
from zerograd.nn.linear import Linear
from zerograd.nn.normalization import LayerNorm
from zerograd.nn.rnn import GRU, LSTM, RNN, GRUSeq, LSTMSeq, RNNSeq, _Cell, _Seq

__all__ = ["TorchLoadResult", "TorchStateDictError", "from_torch_state_dict",
           "to_torch_state_dict"]

NameMapping = Mapping[str, str | None] | Callable[[str], str | None] | None


class TorchStateDictError(StateDictError, ShapeError):
    """A PyTorch state_dict does not fit a zerograd model: keys missing or unexpected, or
    shapes that differ. Caught as ``StateDictError`` (a KeyError) or as ``ShapeError``."""


class TorchLoadResult(NamedTuple):
    """What ``from_torch_state_dict`` left out (both empty after a strict load)."""

    missing_keys: list[str]  # PyTorch keys the model wanted and the state_dict lacked
    unexpected_keys: list[str]  # state_dict keys that no part of the model took


class _Entry(NamedTuple):
    """One PyTorch array of a layer: its key under the module (``weight``,
    ``out_proj.bias``), its shape in PyTorch's layout (None for a size the zerograd layer does
    not know yet, or None for the whole shape), and whether PyTorch may leave it out."""

    key: str
    shape: tuple[int | None, ...] | None
    optional: bool = False


def _t(a: np.ndarray) -> np.ndarray:
    """The transpose of a 2-D array: zerograd's Linear keeps W as (in, out), PyTorch's
    weight is (out, in)."""
    return a.T


# -- the conversions, one per kind of layer ---------------------------------------------------
# Each rule has ``entries(layer, present)`` (the PyTorch arrays the layer corresponds to, in
# PyTorch's order; ``present`` is the set of keys the state_dict has under the module, or
# None when exporting), ``export(layer, get)`` (PyTorch key -> array, from ``get(path)``,
# the layer's own arrays by relative zerograd path) and ``load(layer, arrays)`` (relative
# zerograd path -> array, from the PyTorch arrays). ``torch_name`` and ``layout`` go into
# error messages.
Arrays = dict[str, np.ndarray]
Getter = Callable[[str], np.ndarray]  # the layer's own array at a relative zerograd path


def _under(get: Getter, prefix: str) -> Getter:
    """``get`` for the arrays below the sub-layer ``prefix``: path -> get('prefix/path')."""
    return lambda path: get(_join(prefix, path, "/"))


class _Rule(Protocol):
    """What every conversion has. ``layer`` is Any here: each rule takes the layers of its
    own class (a Linear, a Conv2d, ...), which ``_RULES`` pairs it with at run time."""

    torch_name: str
    layout: str

    def entries(self, layer: Any, present: set[str] | None) -> list[_Entry]: ...

    def export(self, layer: Any, get: Getter) -> Arrays: ...

    def load(self, layer: Any, arrays: Arrays) -> Arrays: ...


class _LinearRule:
    torch_name = "torch.nn.Linear"
    layout = "weight (out_features, in_features) = W.T, bias = b"

    def entries(self, layer: Linear, present: set[str] | None) -> list[_Entry]:
        entries = [_Entry("weight", (layer.out_size, layer.in_size))]
        if layer.b is not None:
            entries.append(_Entry("bias", (layer.out_size,)))
        return entries

    def export(self, layer: Linear, get: Getter) -> Arrays:
        arrays = {"weight": _t(get("W"))}
        if layer.b is not None:
            arrays["bias"] = get("b")
        return arrays

    def load(self, layer: Linear, arrays: Arrays) -> Arrays:
        state = {"W": _t(arrays["weight"])}
        if "bias" in arrays:
            state["b"] = arrays["bias"]
        return state


class _ConvRule:
    """Conv1d/Conv2d (weight (out, in / groups, *kernel)) and Deconv2d (weight
    (in, out / groups, *kernel)): zerograd keeps PyTorch's layouts, so nothing moves."""

    def __init__(self, torch_name: str, transposed: bool) -> None:
        self.torch_name = torch_name
        self.transposed = transposed
        self.layout = ("weight (in_channels, out_channels / groups, *kernel) = W, bias = b"
                       if transposed else
                       "weight (out_channels, in_channels / groups, *kernel) = W, bias = b")

    def entries(self, layer: _ConvBase, present: set[str] | None) -> list[_Entry]:
        kernel = layer.kernel_size if isinstance(layer.kernel_size, tuple) else (
            layer.kernel_size,)
        C = layer.in_channels
        groups = layer.groups
        shape: tuple[int | None, ...]
        if self.transposed:
            shape = (C, layer.out_channels // groups, *kernel)
        else:
            shape = (layer.out_channels, None if C is None else C // groups, *kernel)
        entries = [_Entry("weight", shape)]
        if layer.b is not None:
            entries.append(_Entry("bias", (layer.out_channels,)))
        return entries

    def export(self, layer: _ConvBase, get: Getter) -> Arrays:
        arrays = {"weight": get("W")}
        if layer.b is not None:
            arrays["bias"] = get("b")
        return arrays

    def load(self, layer: _ConvBase, arrays: Arrays) -> Arrays:
        state = {"W": arrays["weight"]}
        if "bias" in arrays:
            state["b"] = arrays["bias"]
        return state


_Norm = TypeVar("_Norm", bound=LayerNorm | GroupNorm)


class _AffineRule(Generic[_Norm]):
    """LayerNorm and GroupNorm: gamma and beta are PyTorch's weight and bias."""

    def __init__(self, torch_name: str, size: Callable[[_Norm], tuple[int, ...] | None]) -> None:
        self.torch_name = torch_name
        self.size = size  # the layer -> the shape of gamma, or None while it is lazy
        self.layout = "weight = gamma, bias = beta"

    def entries(self, layer: _Norm, present: set[str] | None) -> list[_Entry]:
        shape = self.size(layer)
        return [_Entry("weight", shape), _Entry("bias", shape)]

    def export(self, layer: _Norm, get: Getter) -> Arrays:
        return {"weight": get("gamma"), "bias": get("beta")}

    def load(self, layer: _Norm, arrays: Arrays) -> Arrays:
        return {"gamma": arrays["weight"], "beta": arrays["bias"]}


class _BatchNormRule:
    torch_name = "torch.nn.BatchNorm1d/2d/3d"
    layout = ("weight = gamma, bias = beta, running_mean = avg_mean, running_var = avg_var; "
              "num_batches_tracked is written as 0 and ignored when read")
    # zerograd's BatchNorm has no batch counter: PyTorch reads it only with momentum=None
    # (a cumulative average), which zerograd's decay cannot express anyway.

    def entries(self, layer: BatchNorm, present: set[str] | None) -> list[_Entry]:
        shape = (layer.size,)
        return [_Entry("weight", shape), _Entry("bias", shape), _Entry("running_mean", shape),
                _Entry("running_var", shape), _Entry("num_batches_tracked", (), optional=True)]

    def export(self, layer: BatchNorm, get: Getter) -> Arrays:
        return {"weight": get("gamma"), "bias": get("beta"), "running_mean": get("avg_mean"),
                "running_var": get("avg_var"),
                "num_batches_tracked": np.array(0, dtype=np.int64)}

    def load(self, layer: BatchNorm, arrays: Arrays) -> Arrays:
        return {"gamma": arrays["weight"], "beta": arrays["bias"],
                "avg_mean": arrays["running_mean"], "avg_var": arrays["running_var"]}


class _EmbeddingRule:
    torch_name = "torch.nn.Embedding"
    layout = "weight (num_embeddings, embedding_dim) = W"

    def entries(self, layer: Embedding, present: set[str] | None) -> list[_Entry]:
        return [_Entry("weight", (layer.num_embeddings, layer.embedding_dim))]

    def export(self, layer: Embedding, get: Getter) -> Arrays:
        return {"weight": get("W")}

    def load(self, layer: Embedding, arrays: Arrays) -> Arrays:
        return {"W": arrays["weight"]}


class _AttentionRule:
    """PyTorch keeps the q, k, v projections as row blocks of one ``in_proj_weight``
    (3E, E) when key and value have embed_dim features, and as ``q_proj_weight``,
    ``k_proj_weight``, ``v_proj_weight`` otherwise (kdim, vdim); the biases are always one
    ``in_proj_bias`` (3E,). PyTorch's queries always have embed_dim features."""

    torch_name = "torch.nn.MultiheadAttention"
    layout = ("in_proj_weight (3E, E) = [q_proj.W.T; k_proj.W.T; v_proj.W.T] (or "
              "q_proj_weight, k_proj_weight, v_proj_weight when kdim/vdim differ), "
              "in_proj_bias = [q_proj.b, k_proj.b, v_proj.b], out_proj.weight = out_proj.W.T")
    _projections = ("q_proj", "k_proj", "v_proj")

    def _packed(self, layer: MultiHeadAttention, present: set[str] | None) -> bool:
        if present is not None:  # loading: whichever form the state_dict has
            return "in_proj_weight" in present or "q_proj_weight" not in present
        E = layer.embed_dim
        return all(getattr(layer, name).in_size == E for name in self._projections)

    @staticmethod
    def _has_bias(layer: MultiHeadAttention) -> bool:
        return layer.q_proj.b is not None

    def entries(self, layer: MultiHeadAttention, present: set[str] | None) -> list[_Entry]:
        E = layer.embed_dim
        if self._packed(layer, present):
            entries = [_Entry("in_proj_weight", (3 * E, E))]
        else:
            entries = [_Entry(f"{name}_weight", (E, E if name == "q_proj" else
                                                 getattr(layer, name).in_size))
                       for name in self._projections]
        if self._has_bias(layer):
            entries.append(_Entry("in_proj_bias", (3 * E,)))
        entries.append(_Entry("out_proj.weight", (E, E)))
        if layer.out_proj.b is not None:
            entries.append(_Entry("out_proj.bias", (E,)))
        return entries

    def export(self, layer: MultiHeadAttention, get: Getter) -> Arrays:
        E = layer.embed_dim
        if layer.q_proj.in_size != E:
            raise ShapeError(
                f"to_torch_state_dict: MultiHeadAttention's q_proj takes {layer.q_proj.in_size} "
                f"features, but torch.nn.MultiheadAttention's queries have embed_dim = {E} "
                "features; it has no counterpart for this layer")
        biases = [getattr(layer, name).b is not None for name in self._projections]
        if any(biases) and not all(biases):
            raise ShapeError(
                "to_torch_state_dict: MultiHeadAttention has biases on only some of q_proj, "
                "k_proj, v_proj; torch.nn.MultiheadAttention has one in_proj_bias for all "
                "three or none")
        if self._packed(layer, None):
            arrays = {"in_proj_weight": np.concatenate(
                [_t(get(f"{name}/W")) for name in self._projections], axis=0)}
        else:
            arrays = {f"{name}_weight": _t(get(f"{name}/W")) for name in self._projections}
        if all(biases):
            arrays["in_proj_bias"] = np.concatenate(
                [get(f"{name}/b") for name in self._projections])
        arrays["out_proj.weight"] = _t(get("out_proj/W"))
        if layer.out_proj.b is not None:
            arrays["out_proj.bias"] = get("out_proj/b")
        return arrays

    def load(self, layer: MultiHeadAttention, arrays: Arrays) -> Arrays:
        if "in_proj_weight" in arrays:
            weights = np.split(arrays["in_proj_weight"], 3, axis=0)
        else:
            weights = [arrays[f"{name}_weight"] for name in self._projections]
        state = {f"{name}/W": _t(W) for name, W in zip(self._projections, weights)}
        if "in_proj_bias" in arrays:
            for name, b in zip(self._projections, np.split(arrays["in_proj_bias"], 3)):
                state[f"{name}/b"] = b
        state["out_proj/W"] = _t(arrays["out_proj.weight"])
        if "out_proj.bias" in arrays:
            state["out_proj/b"] = arrays["out_proj.bias"]
        return state


class _CellRule:
    """A recurrent cell <-> PyTorch's ``weight_ih``, ``weight_hh``, ``bias_ih``, ``bias_hh``
    (with a suffix such as ``_l0`` inside nn.RNN/LSTM/GRU). PyTorch stacks the gates as row
    blocks of each weight in its own order; zerograd keeps one Linear per gate (LSTM) or the
    gates as column blocks of one W (GRU), ``x_gates``/``h_gates`` name them in PyTorch's
    order.

    ``fold_h_bias``: zerograd's RNN and LSTM have biases on the x side only (DeZero's
    ``h2h`` has none). PyTorch adds ``bias_ih + bias_hh`` inside the same sum, so they fold
    into one: read as their sum, written as (bias, zeros). The GRU cannot fold: PyTorch's
    n gate is tanh(W_in x + b_in + r * (W_hn h + b_hn)), the hidden bias inside the reset
    product, and zerograd's GRU has that very form with ``h2h.b`` as b_hh.
    """

    def __init__(self, torch_name: str, x_gates: tuple[str, ...], h_gates: tuple[str, ...],
                 blocks: int,
                 fold_h_bias: bool, layout: str) -> None:
        self.torch_name = torch_name
        self.x_gates = x_gates
        self.h_gates = h_gates
        self.blocks = blocks  # gate blocks inside one sub-layer's W (GRU: 3; else 1)
        self.fold_h_bias = fold_h_bias
        self.layout = layout

    @property
    def gates(self) -> int:
        return len(self.x_gates) * self.blocks

    def suffix(self, present: set[str] | None) -> str:
        """PyTorch's cell modules name their arrays ``weight_ih``; a one-layer nn.RNN/LSTM/
        GRU names the same arrays ``weight_ih_l0``. A cell reads either (the cell's names
        when both are there) and writes the cell's."""
        if present is not None and "weight_ih" not in present and "weight_ih_l0" in present:
            return "_l0"
        return ""

    def _has_bias(self, cell: _Cell, where: str) -> bool:
        biases = [cell.__dict__[name].b is not None for name in self.x_gates]
        if not self.fold_h_bias:
            biases += [cell.__dict__[name].b is not None for name in self.h_gates]
        if any(biases) and not all(biases):
            raise ShapeError(
                f"{where}: {type(cell).__name__} has biases on only some of "
                f"{', '.join(self.x_gates + (() if self.fold_h_bias else self.h_gates))}; "
                f"{self.torch_name} has them on every gate or on none")
        return all(biases)

    def cell_entries(self, cell: _Cell, suffix: str) -> list[_Entry]:
        GH = self.gates * cell.hidden_size
        entries = [_Entry(f"weight_ih{suffix}", (GH, cell.in_size)),
                   _Entry(f"weight_hh{suffix}", (GH, cell.hidden_size))]
        if self._has_bias(cell, "from_torch_state_dict"):
            entries += [_Entry(f"bias_ih{suffix}", (GH,)), _Entry(f"bias_hh{suffix}", (GH,))]
        return entries

    def entries(self, cell: _Cell, present: set[str] | None) -> list[_Entry]:
        return self.cell_entries(cell, self.suffix(present))

    def _join(self, names: tuple[str, ...], get: Getter, what: str) -> np.ndarray:
        """PyTorch's (gates * H, ...) array from the sub-layers ``names``' W (or b)."""
        if what == "W":
            return np.concatenate([_t(get(f"{name}/W")) for name in names], axis=0)
        return np.concatenate([get(f"{name}/b") for name in names])

    def _split(self, names: tuple[str, ...], array: np.ndarray, what: str) -> Arrays:
        parts = np.split(array, len(names), axis=0)
        return {f"{name}/{what}": _t(part) if what == "W" else part
                for name, part in zip(names, parts)}

    def cell_export(self, cell: _Cell, get: Getter, suffix: str) -> Arrays:
        arrays = {f"weight_ih{suffix}": self._join(self.x_gates, get, "W"),
                  f"weight_hh{suffix}": self._join(self.h_gates, get, "W")}
        if self._has_bias(cell, "to_torch_state_dict"):
            b_ih = self._join(self.x_gates, get, "b")
            arrays[f"bias_ih{suffix}"] = b_ih
            arrays[f"bias_hh{suffix}"] = (np.zeros_like(b_ih) if self.fold_h_bias else
                                          self._join(self.h_gates, get, "b"))
        return arrays

    def export(self, cell: _Cell, get: Getter) -> Arrays:
        return self.cell_export(cell, get, "")

    def cell_load(self, cell: _Cell, arrays: Arrays, suffix: str) -> Arrays:
        state = self._split(self.x_gates, arrays[f"weight_ih{suffix}"], "W")
        state.update(self._split(self.h_gates, arrays[f"weight_hh{suffix}"], "W"))
        if f"bias_ih{suffix}" in arrays:
            b_ih, b_hh = arrays[f"bias_ih{suffix}"], arrays[f"bias_hh{suffix}"]
            if self.fold_h_bias:
                state.update(self._split(self.x_gates, b_ih + b_hh, "b"))
            else:
                state.update(self._split(self.x_gates, b_ih, "b"))
                state.update(self._split(self.h_gates, b_hh, "b"))
        return state

    def load(self, cell: _Cell, arrays: Arrays) -> Arrays:
        suffix = "_l0" if "weight_ih_l0" in arrays else ""
        return self.cell_load(cell, arrays, suffix)


_RNN_CELL = _CellRule(
    "torch.nn.RNNCell", ("x2h",), ("h2h",), 1, fold_h_bias=True,
    layout="weight_ih = x2h.W.T, weight_hh = h2h.W.T; x2h.b = bias_ih + bias_hh "
           "(written as bias_ih = x2h.b, bias_hh = 0); tanh only")
# PyTorch's LSTM gate blocks are (i, f, g, o), g being zerograd's (and DeZero's) u.
_LSTM_CELL = _CellRule(
    "torch.nn.LSTMCell", ("x2i", "x2f", "x2u", "x2o"), ("h2i", "h2f", "h2u", "h2o"), 1,
    fold_h_bias=True,
    layout="weight_ih = [x2i.W.T; x2f.W.T; x2u.W.T; x2o.W.T] (PyTorch's gates i, f, g, o), "
           "weight_hh likewise from h2*; x2*.b = the blocks of bias_ih + bias_hh")
# zerograd's GRU keeps PyTorch's gate order (r, z, n) as column blocks of x2h.W and h2h.W.
_GRU_CELL = _CellRule(
    "torch.nn.GRUCell", ("x2h",), ("h2h",), 3, fold_h_bias=False,
    layout="weight_ih = x2h.W.T, weight_hh = h2h.W.T (gates r, z, n), bias_ih = x2h.b, "
           "bias_hh = h2h.b")


class _SeqRule:
    """RNNSeq/LSTMSeq/GRUSeq <-> nn.RNN/LSTM/GRU: cell ``l{k}`` (``l{k}_reverse``) holds
    PyTorch's ``*_l{k}`` (``*_l{k}_reverse``) arrays, converted as its cell rule says."""

    def __init__(self, torch_name: str, cell: _CellRule) -> None:
        self.torch_name = torch_name
        self.cell = cell
        self.layout = f"per cell l{{k}}[_reverse], as {cell.torch_name}: {cell.layout}"

    @staticmethod
    def _cells(layer: _Seq) -> Iterator[tuple[str, _Cell]]:
        """(cell name, cell): ``l0``, ``l0_reverse``, ``l1``, ... (PyTorch's suffixes)."""
        for k in range(layer.num_layers):
            for suffix in ("", "_reverse")[:layer.num_directions]:
                name = f"l{k}{suffix}"
                yield name, getattr(layer, name)

    def entries(self, layer: _Seq, present: set[str] | None) -> list[_Entry]:
        return [entry for name, cell in self._cells(layer)
                for entry in self.cell.cell_entries(cell, f"_{name}")]

    def export(self, layer: _Seq, get: Getter) -> Arrays:
        arrays: Arrays = {}
        for name, cell in self._cells(layer):
            arrays.update(self.cell.cell_export(
                cell, _under(get, name), f"_{name}"))
        return arrays

    def load(self, layer: _Seq, arrays: Arrays) -> Arrays:
        state: Arrays = {}
        for name, cell in self._cells(layer):
            for path, array in self.cell.cell_load(cell, arrays, f"_{name}").items():
                state[f"{name}/{path}"] = array
        return state


# Looked up along the layer's class hierarchy (EmbedID finds Embedding's rule).
_RULES: dict[type[Layer], _Rule] = {
    Linear: _LinearRule(),
    Conv1d: _ConvRule("torch.nn.Conv1d", transposed=False),
    Conv2d: _ConvRule("torch.nn.Conv2d", transposed=False),
    Deconv2d: _ConvRule("torch.nn.ConvTranspose2d", transposed=True),
    BatchNorm: _BatchNormRule(),
    LayerNorm: _AffineRule[LayerNorm]("torch.nn.LayerNorm",
                                      lambda layer: layer.normalized_shape),
    GroupNorm: _AffineRule[GroupNorm]("torch.nn.GroupNorm",
                                      lambda layer: (layer.num_channels,)),
    Embedding: _EmbeddingRule(),
    MultiHeadAttention: _AttentionRule(),
    RNN: _RNN_CELL,
    LSTM: _LSTM_CELL,
    GRU: _GRU_CELL,
    RNNSeq: _SeqRule("torch.nn.RNN", _RNN_CELL),
    LSTMSeq: _SeqRule("torch.nn.LSTM", _LSTM_CELL),
    GRUSeq: _SeqRule("torch.nn.GRU", _GRU_CELL),
}


def _rule_for(layer: Layer) -> _Rule | None:
    for cls in type(layer).__mro__:
        rule = _RULES.get(cls)
        if rule is not None:
            return rule
    return None


# -- the units exchanged, and their PyTorch names -----------------------------------------------
class _Unit(NamedTuple):
    """A layer converted by a rule (``rule`` set), or one Parameter/buffer of another layer
    copied as it is (``rule`` None, ``path`` its state key). ``name`` is its PyTorch module
    name (or key); None leaves it out."""

    path: str
    layer: Layer
    rule: _Rule | None
    name: str | None


def _join(prefix: str, key: str, sep: str) -> str:
    """'a' + 'b' -> 'a{sep}b'; an empty side is left out ('' names the module itself)."""
    return f"{prefix}{sep}{key}" if prefix and key else prefix or key


def _ancestors(path: str) -> Iterator[str]:
    """'a/b/c' -> 'a/b', 'a', '' (the model itself)."""
    while path:
        path = path.rpartition("/")[0]
        yield path


def _default_name(path: str) -> str:
    return path.replace("/", ".")


def _resolver(mapping: NameMapping, where: str,
              paths: dict[str, str]) -> Callable[[str], str | None]:
    """The function path -> PyTorch name (or None: left out) that ``mapping`` describes.

    ``paths`` maps every path a mapping key may name (units and the layers above them) to
    what it is, and the paths inside converted layers to ``"inside <layer path>"``."""
    if mapping is None:
        return _default_name
    if callable(mapping):
        def call(path: str) -> str | None:
            name = mapping(path)
            if name is not None and not isinstance(name, str):
                raise TypeError(f"{where}: the mapping function returned "
                                f"{type(name).__name__} {name!r} for {path!r}; expected a "
                                "PyTorch name (str) or None (leave it out)")
            return name
        return call
    if not isinstance(mapping, Mapping):
        raise TypeError(f"{where}: mapping must be a dict (zerograd path -> PyTorch name), a "
                        f"function or None, got {type(mapping).__name__}")
    for key, value in mapping.items():
        what = paths.get(key)
        if what is None:
            shown = ", ".join(repr(p) for p in list(paths)[:12] if not
                              paths[p].startswith("inside"))
            raise StateDictError(f"{where}: mapping key {key!r} is no path of the model; its "
                                 f"layers and entries are {shown}")
        if what.startswith("inside"):
            raise StateDictError(
                f"{where}: mapping key {key!r} lies {what}, which is converted as a whole; "
                f"map {what.split(' ', 1)[1]!r} instead")
        if value is not None and not isinstance(value, str):
            raise TypeError(f"{where}: mapping[{key!r}] is {type(value).__name__} {value!r}; "
                            "expected a PyTorch name (str) or None (leave it out)")

    def look_up(path: str) -> str | None:
        # The path itself, else its nearest mapped ancestor: {"enc": "features"} sends
        # "enc/conv1" to "features.conv1".
        for key in (path, *_ancestors(path)):
            if key in mapping:
                value = mapping[key]
                if value is None:
                    return None
                rest = _default_name(path[len(key):].lstrip("/"))
                return _join(value, rest, ".") if rest else value
        return _default_name(path)
    return look_up


def _units(model: Layer, mapping: NameMapping, where: str) -> list[_Unit]:
    """The model's parts in PyTorch's order, each with its PyTorch name: layer by layer
    (depth first, in definition order), a layer's own Parameters, then its buffers, then
    its sub-layers, where a converted layer is one part."""
    if not isinstance(model, Layer):
        raise TypeError(f"{where}: model must be a zerograd Layer, got "
                        f"{type(model).__name__}")
    own: dict[str, list[tuple[str, Layer]]] = {}  # layer path -> its own state entries
    for key, layer, _, _ in model._state_entries():
        own.setdefault(key.rpartition("/")[0], []).append((key, layer))
    converted: set[str] = set()
    paths: dict[str, str] = {}  # what a mapping key may name, or "inside <converted layer>"
    found: list[tuple[str, Layer, _Rule | None]] = []
    for path, layer in model.named_layers():
        inside = next((a for a in _ancestors(path) if a in converted), None)
        if inside is not None:
            paths[path] = f"inside {inside}"
            for key, _ in own.get(path, ()):
                paths[key] = f"inside {inside}"
            continue
        paths[path] = "layer"
        rule = _rule_for(layer)
        if rule is not None:
            converted.add(path)
            found.append((path, layer, rule))
            for key, _ in own.get(path, ()):
                paths[key] = f"inside {path}"
            continue
        for key, owner in own.get(path, ()):
            paths[key] = "entry"
            found.append((key, owner, None))
    name_of = _resolver(mapping, where, paths)
    return [_Unit(path, layer, rule, name_of(path)) for path, layer, rule in found]


# -- arrays in -----------------------------------------------------------------------------------
def _as_array(key: str, value: Any) -> np.ndarray:
    """A NumPy array from a torch tensor (on any device, any float width) or an array.

    ``value`` is Any: a torch.Tensor is a type mypy is not given (torch is optional)."""
    torch = sys.modules.get("torch")  # a tensor exists only where torch is imported
    if torch is not None and isinstance(value, torch.Tensor):
        value = value.detach().cpu()
        if value.is_floating_point() and value.dtype not in (torch.float16, torch.float32,
                                                             torch.float64):
            value = value.float()  # bfloat16 and the float8 types have no NumPy dtype
        array = value.numpy()
    else:
        array = as_numpy(value)
    if array.dtype.kind not in "biuf":
        raise DTypeError(f"from_torch_state_dict: state_dict[{key!r}] is a {array.dtype} "
                         f"{type(value).__name__}; expected numbers (a tensor or an ndarray)")
    return array


def _fits(shape: tuple[int, ...], expected: tuple[int | None, ...] | None) -> bool:
    if expected is None:
        return True
    return len(shape) == len(expected) and all(
        want is None or have == want for have, want in zip(shape, expected))


def _shape_text(shape: tuple[int | None, ...] | None) -> str:
    if shape is None:
        return "any shape"
    return "(" + ", ".join("?" if s is None else str(s) for s in shape) + (
        ",)" if len(shape) == 1 else ")")


def _read_unit(unit: _Unit, arrays: Arrays, current: Mapping[str, Variable | np.ndarray | None],
               missing: list[str], mismatched: list[str], taken: set[str]) -> Arrays:
    """The zerograd arrays (full path -> array) that ``unit`` takes from ``arrays``, or {}
    when some of its keys are missing or misshapen (or the mapping leaves it out); the keys
    it takes go into ``taken``, the problems into ``missing`` and ``mismatched``."""
    if unit.name is None:  # left out by the mapping: it takes nothing
        return {}
    what = (f"{type(unit.layer).__name__} {unit.path!r}" if unit.path else
            f"the model ({type(unit.layer).__name__})")
    if unit.rule is None:  # a plain Parameter or buffer, copied as it is: any shape
        entries, layout = [_Entry("", None)], ""
    else:
        prefix = unit.name + "." if unit.name else ""
        present = {key[len(prefix):] for key in arrays if key.startswith(prefix)}
        entries, layout = unit.rule.entries(unit.layer, present), f" ({unit.rule.layout})"
    complete, given = True, {}
    for entry in entries:
        key = _join(unit.name, entry.key, ".")
        if key not in arrays:
            if not entry.optional:
                missing.append(key)
                complete = False
            continue
        taken.add(key)
        given[entry.key] = array = arrays[key]
        if not _fits(array.shape, entry.shape):
            complete = False
            mismatched.append(f"{key!r} has shape {tuple(array.shape)}; {what} needs "
                              f"{_shape_text(entry.shape)}{layout}")
    if not complete:
        return {}
    state = ({unit.path: given[""]} if unit.rule is None else
             {_join(unit.path, path, "/"): array
              for path, array in unit.rule.load(unit.layer, given).items()})
    for path, array in state.items():
        # The converted arrays must also fit what the model has: sizes that the PyTorch
        # shapes alone do not fix (attention's key and value sizes in in_proj_weight).
        if path not in current:
            mismatched.append(f"{what}: the PyTorch entries give {path!r}, which the model "
                              "does not have (a layer without a bias?)")
            return {}
        have = current[path]
        if isinstance(have, Variable):  # a Parameter; a buffer is the array itself
            have = have.data
        if have is not None and tuple(have.shape) != tuple(array.shape):
            mismatched.append(f"{what}: the PyTorch entries give {path!r} the shape "
                              f"{tuple(array.shape)}, the model has {tuple(have.shape)}")
            return {}
    return {path: np.ascontiguousarray(array) for path, array in state.items()}


def from_torch_state_dict(model: Layer, state_dict: Mapping[str, object],
                          mapping: NameMapping = None,
                          strict: bool = True) -> TorchLoadResult:
    """Load a PyTorch ``state_dict`` (tensors or NumPy arrays) into a zerograd ``model``.

    Every layer with a PyTorch counterpart takes its module's arrays, converted to
    zerograd's layout (Linear's weight transposed, the LSTM's gate blocks reordered and
    split into ``x2f``..``h2u``, ...); any other Parameter or buffer takes the key of its
    own name. The zerograd layer at path ``a/b`` reads the PyTorch module ``a.b``, unless
    ``mapping`` names another: a dict {zerograd path: PyTorch name}, where a path also sends
    the layers below it (``{"enc": "features"}``: ``enc/conv1`` reads ``features.conv1``)
    and None leaves a part out; or a function path -> name (or None).

    ``strict=True``: every key the model wants must be there and every key of the
    state_dict must be taken; all missing keys, unexpected keys and shape mismatches are
    reported in one ``TorchStateDictError``. ``strict=False``: layers whose keys are not all
    there are left as they are and unexpected keys are ignored (both are returned); shape
    mismatches still raise. Nothing is changed unless every check passes. Arrays take each
    parameter's dtype and device; lazily sized layers take the shapes given.

    Returns ``TorchLoadResult(missing_keys, unexpected_keys)``.
    """
    where = "from_torch_state_dict"
    if not isinstance(state_dict, Mapping):
        raise TypeError(f"{where}: state_dict must be a mapping of names to tensors or arrays "
                        f"(module.state_dict(), torch.load(...) or np.load(...)), got "
                        f"{type(state_dict).__name__}")
    arrays = {str(key): _as_array(str(key), value) for key, value in state_dict.items()}
    units = _units(model, mapping, where)
    current = {key: layer.__dict__[name] for key, layer, name, _ in model._state_entries()}
    missing: list[str] = []
    mismatched: list[str] = []
    taken: set[str] = set()
    new_state: dict[str, np.ndarray] = {}
    for unit in units:
        new_state.update(_read_unit(unit, arrays, current, missing, mismatched, taken))
    unexpected = [key for key in arrays if key not in taken]
    if strict and (missing or unexpected or mismatched):
        lines = []
        if missing:
            lines.append(f"missing keys (the model needs them, the state_dict lacks them): "
                         f"{missing}")
        if unexpected:
            lines.append(f"unexpected keys (in the state_dict, no part of the model takes "
                         f"them): {unexpected}")
        lines += [f"shape mismatch: {text}" for text in mismatched]
        raise TorchStateDictError(
            f"{where}({type(model).__name__}): the state_dict does not fit the model; "
            "nothing was loaded\n  " + "\n  ".join(lines) + "\nPass mapping= when the names "
            "differ, or strict=False to load only the layers whose keys are all there")
    if mismatched:
        raise TorchStateDictError(
            f"{where}({type(model).__name__}): the state_dict does not fit the model; nothing "
            "was loaded\n  " + "\n  ".join(f"shape mismatch: {text}" for text in mismatched))
    model.load_state_dict(new_state, strict=False, source="the PyTorch state_dict")
    return TorchLoadResult(missing, unexpected)


# -- arrays out ----------------------------------------------------------------------------------
def _import_torch() -> types.ModuleType | None:
    """PyTorch, or None where it is not installed (it is optional, and only imported here)."""
    try:
        import torch
    except ImportError:
        return None
    return torch


# Any: torch's tensors where torch can be imported, else NumPy arrays; torch is optional
# and not given to mypy (analysing it would dwarf the package).
def to_torch_state_dict(model: Layer, mapping: NameMapping = None) -> dict[str, Any]:
    """The model's weights as a PyTorch ``state_dict``: {PyTorch key: tensor}.

    The inverse of :func:`from_torch_state_dict`, with the same names and ``mapping``: each
    layer with a PyTorch counterpart gives its module's arrays in PyTorch's layout and
    order, any other Parameter or buffer its own name. The values are new CPU tensors (the
    model's dtype) when torch can be imported, else NumPy arrays (``torch.from_numpy``
    turns them into tensors wherever torch is). Raises ValueError when lazily sized entries
    have no arrays yet (run one forward pass first).
    """
    where = "to_torch_state_dict"
    units = _units(model, mapping, where)
    state = model.state_dict()  # NumPy copies; names the entries still uninitialised
    out: dict[str, np.ndarray] = {}
    source: dict[str, str] = {}
    for unit in units:
        if unit.name is None:
            continue
        if unit.rule is None:
            arrays = {"": state[unit.path]}
        else:
            arrays = unit.rule.export(unit.layer, _under(state.__getitem__, unit.path))
        for key, array in arrays.items():
            full = _join(unit.name, key, ".")
            if full in out:
                raise StateDictError(f"{where}: {unit.path!r} and {source[full]!r} both map "
                                     f"to the PyTorch key {full!r}; give them distinct names "
                                     "in mapping=")
            source[full] = unit.path or "(the model)"
            # A copy in C order: a tensor must not share memory with the model's arrays.
            out[full] = np.array(array, order="C", copy=True)
    torch = _import_torch()
    if torch is None:
        return out
    return {key: torch.from_numpy(array) for key, array in out.items()}
