"""``zerograd.layers`` (import as ``L``): DeZero's layer module. Re-exports only."""

from zerograd import cuda
from zerograd import functions as F  # noqa: F401 - DeZero's layers module has L.F
from zerograd.backend.array_utils import pair
from zerograd.core.variable import Parameter
from zerograd.nn import init
from zerograd.nn.attention import MultiHeadAttention, TransformerEncoderLayer, causal_mask
from zerograd.nn.batchnorm import BatchNorm, GroupNorm
from zerograd.nn.conv import Conv1d, Conv2d, Deconv2d
from zerograd.nn.dropout import Dropout
from zerograd.nn.embedding import Embedding, EmbedID
from zerograd.nn.flatten import Flatten
from zerograd.nn.layer import Layer
from zerograd.nn.linear import Linear
from zerograd.nn.normalization import LayerNorm
from zerograd.nn.pooling import AdaptiveAvgPool2d, AvgPool2d, MaxPool2d
from zerograd.nn.rnn import GRU, LSTM, RNN, GRUSeq, LSTMSeq, RNNSeq

__all__ = [
    "GRU", "LSTM", "RNN", "MultiHeadAttention", "TransformerEncoderLayer", "causal_mask",
    "AdaptiveAvgPool2d", "AvgPool2d", "BatchNorm", "Conv1d", "Conv2d",
    "Deconv2d", "Dropout", "EmbedID", "Embedding", "Flatten", "GRUSeq", "GroupNorm", "LSTMSeq",
    "Layer", "LayerNorm", "Linear", "MaxPool2d", "Parameter", "RNNSeq", "cuda", "init", "pair",
]
