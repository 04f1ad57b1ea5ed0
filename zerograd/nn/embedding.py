"""``Embedding`` / ``EmbedID``: a lookup table of trainable vectors."""

from __future__ import annotations

import numpy as np

from zerograd import functions as F
from zerograd.core.variable import Parameter, Variable
from zerograd.nn import init
from zerograd.nn.layer import Layer, LazySize

__all__ = ["Embedding", "EmbedID"]


class Embedding(Layer):
    """Integer ids x (any shape) -> W[x], shape x.shape + (embedding_dim,).

    ``W`` is (num_embeddings, embedding_dim), drawn as DeZero's ``EmbedID`` draws it
    (``np.random.randn(num, dim)``, unscaled) but stored in ``dtype`` (float32 by default;
    DeZero's is float64). ``initializer`` selects another :mod:`zerograd.nn.init` scheme.
    The sizes are read from ``W``, so a table set by hand or loaded is the layer's table
    (and its repr says so). Ids stay integers: they are never cast.
    """

    num_embeddings = LazySize("W", read=lambda layer, shape: shape[0])
    embedding_dim = LazySize("W", read=lambda layer, shape: shape[1])

    def __init__(self, num_embeddings: int, embedding_dim: int, dtype=np.float32,
                 initializer=None) -> None:
        super().__init__()
        self.num_embeddings = int(num_embeddings)
        self.embedding_dim = int(embedding_dim)
        self.dtype = np.dtype(dtype)
        make = init.get_initializer(initializer, default=init.normal(1.0))
        shape = (self.num_embeddings, self.embedding_dim)
        self.W = Parameter(make(shape, self.dtype, fan_in=shape[0], fan_out=shape[1]), name="W")

    def forward(self, x) -> Variable:
        return F.embed_id(x, self.W)

    def extra_repr(self) -> str:
        return f"{self.num_embeddings}, {self.embedding_dim}"


class EmbedID(Embedding):
    """DeZero's name and arguments: ``EmbedID(in_size, out_size)`` (vocabulary, dimension)."""

    def __init__(self, in_size: int, out_size: int, dtype=np.float32, initializer=None) -> None:
        super().__init__(in_size, out_size, dtype=dtype, initializer=initializer)
