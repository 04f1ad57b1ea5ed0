"""``zerograd.nn``: the Layer base class, initialisers and the layers (one module each).

``zerograd.layers`` (``import zerograd.layers as L``) re-exports these under DeZero's names.
"""

from zerograd.nn import init
from zerograd.nn.attention import MultiHeadAttention, TransformerEncoderLayer, causal_mask
from zerograd.nn.batchnorm import BatchNorm, GroupNorm
from zerograd.nn.conv import Conv1d, Conv2d, Deconv2d
from zerograd.nn.dropout import Dropout
from zerograd.nn.embedding import Embedding, EmbedID
from zerograd.nn.flatten import Flatten
from zerograd.nn.layer import Layer, StateDictError
from zerograd.nn.linear import Linear
from zerograd.nn.normalization import LayerNorm
from zerograd.nn.pooling import AdaptiveAvgPool2d, AvgPool2d, MaxPool2d
from zerograd.nn.rnn import GRU, LSTM, RNN, GRUSeq, LSTMSeq, RNNSeq
from zerograd.nn.torch_weights import from_torch_state_dict, to_torch_state_dict

__all__ = [
    "GRU", "LSTM", "RNN", "MultiHeadAttention", "TransformerEncoderLayer", "causal_mask",
    "AdaptiveAvgPool2d", "AvgPool2d", "BatchNorm", "Conv1d", "Conv2d",
    "Deconv2d", "Dropout", "EmbedID", "Embedding", "Flatten", "GRUSeq", "GroupNorm", "LSTMSeq",
    "Layer", "LayerNorm", "Linear", "MaxPool2d", "RNNSeq",
    "StateDictError", "from_torch_state_dict", "init", "to_torch_state_dict",
]
