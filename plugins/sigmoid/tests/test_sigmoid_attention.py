"""Sigmoid attention and its variants against independent formulas; the softmax limit; recording weights."""

from __future__ import annotations

import math

import pytest
import torch
from splice.errors import ConfigError
from splice.install import install_attention
from splice.kinds.attention import AttentionSite
from splice.model.context import AttnContext, dense_attention
from splice_sigmoid import SigmoidAttention, SimilarityAttention

SITE = AttentionSite(layer=0, num_heads=4, num_kv_heads=2, head_dim=8, hidden_size=32, max_positions=64)


def _qkv(b=2, t=6, s=None, seed=0):
    g = torch.Generator().manual_seed(seed)
    s = s or t
    return (torch.randn(b, 4, t, 8, generator=g), torch.randn(b, 2, s, 8, generator=g),
            torch.randn(b, 2, s, 8, generator=g))


def _ctx(t, s=None, key_mask=None, need_weights=False):
    s = s or t
    return AttnContext(layer=0, scale=8 ** -0.5, query_positions=torch.arange(s - t, s).expand(2, t),
                       key_offset=s - t, key_mask=key_mask, need_weights=need_weights)


def _loop_reference(q, k, v, sim, normalize, offset=0):
    """Written out query by query and key by key (GQA: query head h uses kv head h // 2)."""
    b, hq, t, d = q.shape
    out = torch.zeros_like(q)
    for bi in range(b):
        for h in range(hq):
            for i in range(t):
                ws, vs = [], []
                for j in range(offset + i + 1):
                    sc = float(q[bi, h, i] @ k[bi, h // 2, j]) / math.sqrt(d)
                    ws.append({"sigmoid": 1 / (1 + math.exp(-sc)), "elu": (sc + 1 if sc > 0 else math.exp(sc)),
                               "exp": math.exp(sc)}[sim])
                    vs.append(v[bi, h // 2, j])
                z = sum(ws) if normalize else 1.0
                out[bi, h, i] = sum(w / z * vv for w, vv in zip(ws, vs))
    return out


@pytest.mark.parametrize("sim,normalize", [("sigmoid", False), ("sigmoid", True), ("elu", False), ("elu", True),
                                           ("exp", True)])
def test_matches_loop_reference(sim, normalize):
    q, k, v = _qkv()
    mod = SigmoidAttention({"similarity": sim, "normalize": normalize}).build(SITE)
    torch.testing.assert_close(mod(q, k, v, _ctx(6)), _loop_reference(q, k, v, sim, normalize), rtol=1e-4, atol=1e-5)


def test_exact_config_is_softmax_attention_with_cache_offset_and_padding():
    q, k, v = _qkv(t=3, s=7, seed=1)
    mod = SigmoidAttention(SigmoidAttention.exact_config).build(SITE)
    mask = torch.ones(2, 7, dtype=torch.bool)
    mask[1, :2] = False  # left padding in the second sequence
    for km in (None, mask):
        ctx = _ctx(3, 7, key_mask=km)
        torch.testing.assert_close(mod(q, k, v, ctx), dense_attention(q, k, v, ctx), rtol=1e-5, atol=1e-6)


def test_sigmoid_default_with_cache_offset():
    q, k, v = _qkv(t=2, s=5, seed=2)
    mod = SigmoidAttention().build(SITE)
    torch.testing.assert_close(mod(q, k, v, _ctx(2, 5)), _loop_reference(q, k, v, "sigmoid", False, offset=3),
                               rtol=1e-4, atol=1e-5)


def test_weights_are_recorded_masked_and_normalised_when_asked():
    q, k, v = _qkv(seed=3)
    for normalize in (False, True):
        ctx = _ctx(6, need_weights=True)
        SigmoidAttention({"normalize": normalize}).build(SITE)(q, k, v, ctx)
        w = ctx.weights[0]
        assert w.shape == (2, 4, 6, 6)
        lower = torch.ones(6, 6, dtype=torch.bool).tril()
        assert (w[..., ~lower] == 0).all() and (w[..., lower] > 0).all()
        if normalize:
            torch.testing.assert_close(w.sum(-1), torch.ones(2, 4, 6))
        else:  # raw sigmoid scores: in (0, 1), rows do not sum to 1
            assert (w < 1).all() and not torch.allclose(w.sum(-1), torch.ones(2, 4, 6))


def test_fully_masked_queries_give_zero_not_nan():
    q, k, v = _qkv(t=3, seed=4)
    mask = torch.tensor([[False, False, True], [True, True, True]])
    for cfg in ({}, {"normalize": True}, {"similarity": "exp", "normalize": True}):
        out = SigmoidAttention(cfg).build(SITE)(q, k, v, _ctx(3, key_mask=mask))
        assert torch.isfinite(out).all()
        assert (out[0, :, :2] == 0).all()


@pytest.mark.parametrize("sim", ["linear", "elu_kernel", "mlp_kernel"])
def test_kernel_variants(sim):
    q, k, v = _qkv(seed=5)
    for normalize in (False, True):
        mod = SimilarityAttention(sim, normalize, head_dim=8)
        ctx = _ctx(6, need_weights=True)
        out = mod(q, k, v, ctx)
        phi = mod._phi
        kk = k.repeat_interleave(2, dim=1)
        w = (phi(q) @ phi(kk).transpose(-1, -2)) * 8 ** -0.5
        w = w.masked_fill(~torch.ones(6, 6, dtype=torch.bool).tril(), 0)
        if normalize:
            z = w.sum(-1, keepdim=True)
            w = w / (z + 1e-8) if sim == "elu_kernel" else w / z.abs().clamp(min=1)
        torch.testing.assert_close(ctx.weights[0], w, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(out, w @ v.repeat_interleave(2, dim=1), rtol=1e-5, atol=1e-5)
    assert len(list(SimilarityAttention("mlp_kernel", head_dim=8).parameters())) == 2


def test_in_decoder_causal_incremental_and_records(lm_factory):
    lm = lm_factory()
    install_attention(lm.model, SigmoidAttention())
    ids = torch.randint(3, lm.config.vocab_size, (2, 10))
    full = lm.model(ids, need_weights=True)
    assert sorted(full.attentions) == [0, 1] and full.attentions[0].shape == (2, 4, 10, 10)
    ids2 = ids.clone()
    ids2[:, 7:] = 5
    torch.testing.assert_close(lm.model(ids2).logits[:, :7], full.logits[:, :7])  # causal
    cache = lm.model.new_cache()
    steps = [lm.model(ids[:, :6], cache=cache).logits]
    for t in range(6, 10):
        steps.append(lm.model(ids[:, t:t + 1], cache=cache).logits)
    torch.testing.assert_close(torch.cat(steps, 1), full.logits, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("bad,field", [({"similarity": "tanh"}, "similarity"),
                                       ({"similarity": "exp"}, "normalize"), ({"norm": True}, "norm")])
def test_bad_config(bad, field):
    with pytest.raises(ConfigError, match=field):
        SigmoidAttention(bad)
