"""``zerograd.nn``: the Layer base class, initialisers and the basic layers.

``zerograd.layers`` (``import zerograd.layers as L``) re-exports these under DeZero's names.
"""

from zerograd.nn import init
from zerograd.nn.dropout import Dropout
from zerograd.nn.embedding import Embedding, EmbedID
from zerograd.nn.flatten import Flatten
from zerograd.nn.layer import Layer, StateDictError
from zerograd.nn.linear import Linear
from zerograd.nn.normalization import LayerNorm

__all__ = ["Dropout", "EmbedID", "Embedding", "Flatten", "Layer", "LayerNorm", "Linear",
           "StateDictError", "init"]
