"""Attention layers (zerograd/nn/attention.py) against PyTorch with copied weights, masks,
causality, dtypes and errors."""

import numpy as np
import pytest

from zerograd import Variable, test_mode
from zerograd.errors import ShapeError
from zerograd.nn.attention import MultiHeadAttention, TransformerEncoderLayer, causal_mask


def _copy_linear(ours, weight, bias):
    ours.W.data = np.ascontiguousarray(weight.detach().numpy().T).astype(ours.dtype)
    ours.in_size = ours.W.shape[0]
    ours.b.data = bias.detach().numpy().astype(ours.dtype)


def _copy_mha(ours, theirs):
    E = ours.embed_dim
    w, b = theirs.in_proj_weight, theirs.in_proj_bias
    for k, proj in enumerate((ours.q_proj, ours.k_proj, ours.v_proj)):
        _copy_linear(proj, w[k * E:(k + 1) * E], b[k * E:(k + 1) * E])
    _copy_linear(ours.out_proj, theirs.out_proj.weight, theirs.out_proj.bias)


@pytest.mark.parametrize("masked", [False, True], ids=["no_mask", "causal"])
def test_self_attention_matches_torch_values_and_grads(masked):
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    theirs = torch.nn.MultiheadAttention(8, 2, batch_first=True).double()
    ours = MultiHeadAttention(8, 2, dtype=np.float64)
    _copy_mha(ours, theirs)
    x = torch.randn(3, 5, 8, dtype=torch.float64, requires_grad=True)
    mask = causal_mask(5) if masked else None
    y_t, _ = theirs(x, x, x, attn_mask=None if mask is None else torch.from_numpy(~mask),
                    need_weights=False)
    xv = Variable(x.detach().numpy().copy())
    y = ours(xv, mask=mask)
    np.testing.assert_allclose(y.data, y_t.detach().numpy(), rtol=1e-10, atol=1e-12)

    w = torch.randn(3, 5, 8, dtype=torch.float64)
    (y_t * w).sum().backward()
    (y * w.numpy()).sum().backward()
    np.testing.assert_allclose(xv.grad.data, x.grad.numpy(), rtol=1e-9, atol=1e-11)
    np.testing.assert_allclose(ours.out_proj.W.grad.data, theirs.out_proj.weight.grad.numpy().T,
                               rtol=1e-9, atol=1e-11)
    np.testing.assert_allclose(ours.q_proj.W.grad.data,
                               theirs.in_proj_weight.grad[:8].numpy().T, rtol=1e-9, atol=1e-11)


def test_cross_attention_with_a_key_padding_mask_matches_torch():
    torch = pytest.importorskip("torch")
    torch.manual_seed(1)
    theirs = torch.nn.MultiheadAttention(6, 3, batch_first=True).double()
    ours = MultiHeadAttention(6, 3, dtype=np.float64)
    _copy_mha(ours, theirs)
    q = torch.randn(2, 4, 6, dtype=torch.float64)
    kv = torch.randn(2, 7, 6, dtype=torch.float64)
    keep = np.ones((2, 7), dtype=bool)
    keep[0, 5:] = False  # the first sequence has two padded keys
    y_t, _ = theirs(q, kv, kv, key_padding_mask=torch.from_numpy(~keep), need_weights=False)
    y = ours(q.numpy(), kv.numpy(), mask=keep[:, None, None, :])
    assert y.shape == (2, 4, 6)
    np.testing.assert_allclose(y.data, y_t.detach().numpy(), rtol=1e-10, atol=1e-12)


def _copy_encoder(ours, theirs):
    _copy_mha(ours.self_attn, theirs.self_attn)
    _copy_linear(ours.linear1, theirs.linear1.weight, theirs.linear1.bias)
    _copy_linear(ours.linear2, theirs.linear2.weight, theirs.linear2.bias)
    for mine, norm in ((ours.norm1, theirs.norm1), (ours.norm2, theirs.norm2)):
        mine.gamma.data = norm.weight.detach().numpy().astype(mine.dtype)
        mine.beta.data = norm.bias.detach().numpy().astype(mine.dtype)


@pytest.mark.parametrize("norm_first, activation", [(False, "relu"), (True, "gelu")],
                         ids=["post_norm_relu", "pre_norm_gelu"])
def test_encoder_layer_matches_torch_in_eval_mode(norm_first, activation):
    torch = pytest.importorskip("torch")
    torch.manual_seed(2)
    theirs = torch.nn.TransformerEncoderLayer(8, 2, dim_feedforward=16, dropout=0.1,
                                              activation=activation, batch_first=True,
                                              norm_first=norm_first).double().eval()
    ours = TransformerEncoderLayer(8, 2, dim_feedforward=16, dropout=0.1,
                                   activation=activation, norm_first=norm_first,
                                   dtype=np.float64)
    _copy_encoder(ours, theirs)
    x = torch.randn(2, 5, 8, dtype=torch.float64)
    mask = causal_mask(5)
    with torch.no_grad():
        expected = theirs(x, src_mask=torch.from_numpy(~mask)).numpy()
    ours.eval()
    y = ours(x.numpy(), mask=mask)
    np.testing.assert_allclose(y.data, expected, rtol=1e-9, atol=1e-11)
    with test_mode():
        ours.train()
        np.testing.assert_allclose(ours(x.numpy(), mask=mask).data, expected, rtol=1e-9,
                                   atol=1e-11)


def test_causal_mask_hides_the_future():
    np.random.seed(3)
    layer = TransformerEncoderLayer(8, 2, dim_feedforward=16, dropout=0.0)
    x = np.random.randn(1, 6, 8).astype(np.float32)
    y = layer(x, mask=causal_mask(6)).data
    x2 = x.copy()
    x2[0, 4:] += 10.0  # change the last two positions only
    y2 = layer(x2, mask=causal_mask(6)).data
    np.testing.assert_allclose(y2[0, :4], y[0, :4], rtol=1e-5, atol=1e-6)
    assert not np.allclose(y2[0, 4:], y[0, 4:])


def test_float32_in_float32_out_and_grads():
    np.random.seed(4)
    layer = TransformerEncoderLayer(8, 4, dim_feedforward=16, dropout=0.2)
    y = layer(np.random.randn(2, 3, 8).astype(np.float32))
    assert y.dtype == np.float32 and y.shape == (2, 3, 8)
    y.sum().backward()
    assert all(p.grad is not None and p.grad.dtype == np.float32 for p in layer.params())


def test_errors_name_the_layer_and_shapes():
    with pytest.raises(ValueError, match="not divisible"):
        MultiHeadAttention(10, 3)
    with pytest.raises(ShapeError, match=r"MultiHeadAttention: query must be \(N, L, E\)"):
        MultiHeadAttention(4, 2)(np.zeros((3, 4), np.float32))
    with pytest.raises(ValueError, match="activation"):
        TransformerEncoderLayer(4, 2, activation="swish-ish")
