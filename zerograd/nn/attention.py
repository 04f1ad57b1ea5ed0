"""Attention layers: multi-head attention and a Transformer encoder block.

Both are compositions of the op library (``F.linear``, ``F.scaled_dot_product_attention``,
``F.layer_norm`` through ``LayerNorm``, ``F.dropout`` through ``Dropout``), so they are
differentiable to any order and run on NumPy or CuPy. Inputs are batch first: (N, L, E).
Masks follow ``F.scaled_dot_product_attention``: boolean with True = may attend (PyTorch's
``attn_mask`` uses the opposite convention: pass ``~mask``), or a float array added to the
scores.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from zerograd import functions as F
from zerograd.core.variable import Variable
from zerograd.errors import ShapeError
from zerograd.nn.dropout import Dropout
from zerograd.nn.layer import Layer
from zerograd.nn.linear import Linear
from zerograd.nn.normalization import LayerNorm

__all__ = ["MultiHeadAttention", "TransformerEncoderLayer", "causal_mask"]


def causal_mask(length: int, xp=np) -> np.ndarray:
    """(length, length) boolean mask, True on and below the diagonal: position t attends to
    positions 0..t only (autoregressive models)."""
    return xp.tril(xp.ones((length, length), dtype=bool))


class MultiHeadAttention(Layer):
    """Multi-head scaled dot-product attention (Vaswani et al., 2017).

    For each head j: head_j = softmax(q_j k_j^T / sqrt(d) + mask) v_j with q = query Wq + bq,
    k = key Wk + bk, v = value Wv + bv split into ``num_heads`` slices of d = embed_dim /
    num_heads features; the heads are concatenated and projected: y = [head_1 ... head_h]
    Wo + bo.

    query: (N, Lq, Eq), key: (N, Lk, Ek), value: (N, Lk, Ev) (key and value default to the
    query: self-attention) -> (N, Lq, embed_dim). The input sizes are inferred at the first
    call. ``mask`` broadcasts to (N, num_heads, Lq, Lk); an (Lq, Lk) mask applies to every
    sequence and head, an (N, 1, 1, Lk) one masks padded keys. Projections ``q_proj``,
    ``k_proj``, ``v_proj``, ``out_proj`` are :class:`Linear` layers.
    """

    def __init__(self, embed_dim: int, num_heads: int, nobias: bool = False, dtype=np.float32,
                 initializer=None) -> None:
        super().__init__()
        if embed_dim % num_heads:
            raise ValueError(f"MultiHeadAttention: embed_dim {embed_dim} is not divisible by "
                             f"num_heads {num_heads}")
        self.embed_dim = int(embed_dim)
        self.num_heads = int(num_heads)
        self.head_dim = self.embed_dim // self.num_heads
        kwargs = {"nobias": nobias, "dtype": dtype, "initializer": initializer}
        self.q_proj = Linear(embed_dim, **kwargs)
        self.k_proj = Linear(embed_dim, **kwargs)
        self.v_proj = Linear(embed_dim, **kwargs)
        self.out_proj = Linear(embed_dim, **kwargs)

    def _heads(self, x: Variable) -> Variable:
        """(N, L, E) -> (N, heads, L, head_dim)."""
        N, L, _ = x.shape
        return F.transpose(F.reshape(x, (N, L, self.num_heads, self.head_dim)), (0, 2, 1, 3))

    def __call__(self, query, key=None, value=None, mask=None) -> Variable:
        # Layer.__call__ takes positional inputs only; this accepts mask=... by keyword.
        return super().__call__(query, key, value, mask)

    def forward(self, query, key=None, value=None, mask=None) -> Variable:
        key = query if key is None else key
        value = key if value is None else value
        for name, a in (("query", query), ("key", key), ("value", value)):
            if a.ndim != 3:
                raise ShapeError(f"MultiHeadAttention: {name} must be (N, L, E), got "
                                 f"{a.dtype} {tuple(a.shape)}")
        if key.shape[:2] != value.shape[:2] or key.shape[0] != query.shape[0]:
            raise ShapeError(
                f"MultiHeadAttention: query {tuple(query.shape)}, key {tuple(key.shape)}, value "
                f"{tuple(value.shape)}; expected (N, Lq, .), (N, Lk, .), (N, Lk, .)")
        N, Lq = query.shape[:2]
        q = self._heads(self.q_proj(query))
        k = self._heads(self.k_proj(key))
        v = self._heads(self.v_proj(value))
        y = F.scaled_dot_product_attention(q, k, v, mask=mask)
        y = F.reshape(F.transpose(y, (0, 2, 1, 3)), (N, Lq, self.embed_dim))
        return self.out_proj(y)

    def extra_repr(self) -> str:
        return f"embed_dim={self.embed_dim}, num_heads={self.num_heads}"


_ACTIVATIONS: dict[str, Callable] = {"relu": F.relu, "gelu": F.gelu}


class TransformerEncoderLayer(Layer):
    """One Transformer encoder block: self-attention and a feed-forward network, each with a
    residual connection, dropout and LayerNorm (PyTorch's ``TransformerEncoderLayer``).

    Post-norm (``norm_first=False``, the original paper):
        x = norm1(x + dropout(self_attn(x, mask)));  x = norm2(x + dropout(ff(x)))
    Pre-norm (``norm_first=True``, steadier for deep stacks):
        x = x + dropout(self_attn(norm1(x), mask));  x = x + dropout(ff(norm2(x)))
    with ff(x) = linear2(dropout(activation(linear1(x)))). x: (N, L, d_model) -> same shape.
    """

    def __init__(self, d_model: int, nhead: int, dim_feedforward: int = 2048,
                 dropout: float = 0.1, activation: str | Callable = "relu",
                 layer_norm_eps: float = 1e-5, norm_first: bool = False,
                 dtype=np.float32) -> None:
        super().__init__()
        if isinstance(activation, str):
            try:
                activation = _ACTIVATIONS[activation]
            except KeyError:
                raise ValueError(
                    f"TransformerEncoderLayer: activation must be one of {sorted(_ACTIVATIONS)} "
                    f"or a function, got {activation!r}") from None
        self.activation = activation
        self.norm_first = bool(norm_first)
        self.self_attn = MultiHeadAttention(d_model, nhead, dtype=dtype)
        self.linear1 = Linear(dim_feedforward, in_size=d_model, dtype=dtype)
        self.linear2 = Linear(d_model, in_size=dim_feedforward, dtype=dtype)
        self.norm1 = LayerNorm(d_model, eps=layer_norm_eps, dtype=dtype)
        self.norm2 = LayerNorm(d_model, eps=layer_norm_eps, dtype=dtype)
        self.dropout = Dropout(dropout)
        self.dropout1 = Dropout(dropout)
        self.dropout2 = Dropout(dropout)

    @staticmethod
    def _drop(layer: Dropout, x) -> Variable:
        # A zero ratio skips the layer, so that no random numbers are drawn for nothing.
        return layer(x) if layer.ratio > 0 else x

    def _feed_forward(self, x) -> Variable:
        return self.linear2(self._drop(self.dropout, self.activation(self.linear1(x))))

    def __call__(self, x, mask=None) -> Variable:
        return super().__call__(x, mask)

    def forward(self, x, mask=None) -> Variable:
        drop = self._drop
        if self.norm_first:
            x = x + drop(self.dropout1, self.self_attn(self.norm1(x), mask=mask))
            return x + drop(self.dropout2, self._feed_forward(self.norm2(x)))
        x = self.norm1(x + drop(self.dropout1, self.self_attn(x, mask=mask)))
        return self.norm2(x + drop(self.dropout2, self._feed_forward(x)))

    def extra_repr(self) -> str:
        return f"norm_first={self.norm_first}"
