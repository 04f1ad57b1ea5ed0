"""``zerograd.layers`` (import as ``L``): DeZero's layer module. Re-exports only."""

from zerograd.core.variable import Parameter
from zerograd.nn import init
from zerograd.nn.dropout import Dropout
from zerograd.nn.embedding import Embedding, EmbedID
from zerograd.nn.flatten import Flatten
from zerograd.nn.layer import Layer
from zerograd.nn.linear import Linear
from zerograd.nn.normalization import LayerNorm

__all__ = ["Dropout", "EmbedID", "Embedding", "Flatten", "Layer", "LayerNorm", "Linear",
           "Parameter", "init"]
