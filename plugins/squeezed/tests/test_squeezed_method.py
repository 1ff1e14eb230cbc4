"""squeezed and recency in a model: exact limits, budgets, the lookup finding what recency misses,
model-level calibration, the Triton path, and clear errors."""

from __future__ import annotations

import copy

import pytest
import torch
from splice.errors import ConfigError, DataError
from splice.install import install_attention
from splice.kernels import use_backends
from splice.kinds import AttentionSite
from splice.model import Decoder, DecoderConfig, KVCache, generate
from splice.model.context import AttnContext, dense_attention
from splice_squeezed import Recency, Squeezed, SqueezedAttention, recluster
from splice_squeezed.lookup import STATE_KEY, clustered_fraction, select, weighted_cut


@pytest.fixture(scope="module")
def model() -> Decoder:
    torch.manual_seed(0)
    cfg = DecoderConfig(vocab_size=300, hidden_size=64, intermediate_size=96, num_hidden_layers=3,
                        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=1024)
    return Decoder(cfg).eval()


def with_method(model: Decoder, method) -> Decoder:
    m = copy.deepcopy(model)
    install_attention(m, method)
    return m


def ids(n: int, seed: int = 0) -> torch.Tensor:
    return torch.randint(0, 300, (1, n), generator=torch.Generator().manual_seed(seed))


@torch.no_grad()
def fixed_context_logits(m: Decoder, x: torch.Tensor, p: int) -> torch.Tensor:
    cache = m.prefill(x[:, :p])
    return m(x[:, p:], cache=cache.fork()).logits


@pytest.mark.parametrize("opts", [{}, {"hierarchical": True}, {"selection": "per_query"}])
def test_budget_one_is_dense(model: Decoder, opts: dict) -> None:
    x = ids(330)
    with torch.no_grad():
        dense = model(x).logits[:, 300:]
    m = with_method(model, Squeezed({"budget": 1.0, **opts}))
    assert torch.allclose(fixed_context_logits(m, x, 300), dense, atol=1e-4)
    cache = m.prefill(x[:, :300])  # and greedy decoding on the fork equals dense decoding
    a = generate(m, x[:, 300:310], 6, cache=cache.fork())
    b = generate(model, x[:, :310], 6)[:, 300:]
    assert torch.equal(a, b)


def test_plain_forward_without_fixed_context_is_dense(model: Decoder) -> None:
    x = ids(64, 1)
    m = with_method(model, Squeezed({"budget": 0.25}))
    with torch.no_grad():
        assert torch.allclose(m(x).logits, model(x).logits, atol=1e-5)


def test_recency_keeps_exactly_the_budget_of_recent_keys(model: Decoder) -> None:
    x = ids(212, 2)
    m = with_method(model, Recency({"budget": 0.25}))
    cache = m.prefill(x[:, :200])
    with torch.no_grad():
        m(x[:, 200:], cache=cache.fork())
    st = m.blocks[0].attn.core.stats
    assert st["selected"] == st["queries"] * 50 and st["prefix_keys"] == st["queries"] * 200
    assert torch.allclose(fixed_context_logits(with_method(model, Recency({"budget": 1.0})), x, 200),
                          model(x).logits[:, 200:].detach(), atol=1e-4)


@pytest.mark.parametrize("selection", ["shared", "per_query"])
def test_keys_touched_track_the_budget(model: Decoder, selection: str) -> None:
    x = ids(420, 3)
    m = with_method(model, Squeezed({"budget": 0.5, "selection": selection}))
    cache = m.prefill(x[:, :400])  # one clustering serves every budget
    fractions = []
    for budget in (0.5, 0.25, 0.125):
        install_attention(m, Squeezed({"budget": budget, "selection": selection}))
        with torch.no_grad():
            m(x[:, 400:], cache=cache.fork())
        st = [b.attn.core.stats for b in m.blocks]
        fractions.append(sum(s["selected"] for s in st) / sum(s["prefix_keys"] for s in st))
    assert fractions[0] > fractions[1] > fractions[2] > 0
    for got, budget in zip(fractions, (0.5, 0.25, 0.125)):
        assert abs(got - budget) < 0.12, (got, budget)


def test_threshold_hits_the_budget_on_the_calibration_queries(model: Decoder) -> None:
    """Per-query selection of the observation window's own queries keeps the budget's share of keys."""
    m = with_method(model, Squeezed({"budget": 0.3, "selection": "per_query", "clusters": 0.2}))
    cache = m.prefill(ids(500, 4))
    with torch.no_grad():
        m(ids(2, 5), cache=cache.fork())  # first query: thresholds are calibrated for this budget
    kept = total = 0
    for state in cache.layer_state:
        pc = state[STATE_KEY]
        fine_t, coarse_t = next(iter(pc.thresholds.values()))
        sel = select(pc.window_queries, pc, fine_t, coarse_t, 1, hierarchical=False)
        kept += int(sel.keys[..., :pc.clustered].sum())
        total += sel.keys[..., :pc.clustered].numel()
    target = clustered_fraction(0.3, pc.length, pc.window)
    assert abs(kept / total - target) < 0.03, (kept / total, target)


def test_weighted_cut() -> None:
    s, w = torch.tensor([5.0, 4.0, 3.0, 2.0, 1.0]), torch.tensor([1.0, 1.0, 1.0, 1.0, 1.0])
    assert weighted_cut(s, w, 0.4) == 3.0  # keep scores > 3: two of five
    assert weighted_cut(s, w, 1.0) == float("-inf")
    assert weighted_cut(s, w, 0.0) == 5.0
    assert weighted_cut(s, torch.tensor([3.0, 1.0, 1.0, 1.0, 1.0]), 0.5) == 3.0  # weights count, not items


def _one_layer_query(module, keys, values, q, new_k, new_v, scale):
    """Run one attention module as a decoder layer would, on a frozen fixed context of ``keys``."""
    cache = KVCache(1)
    p = keys.shape[2]
    ctx = AttnContext(layer=0, scale=scale, query_positions=torch.arange(p)[None], cache=cache)
    context_queries = torch.randn(1, q.shape[1], p, q.shape[-1], generator=torch.Generator().manual_seed(0))
    module(context_queries, *cache.append(0, keys, values), ctx)  # the prefill forward (dense)
    module.on_prefix(cache.keys[0], cache.values[0], cache.layer_state[0], 0)
    cache.freeze()
    fork = cache.fork()
    ctx = AttnContext(layer=0, scale=scale, query_positions=torch.tensor([[p]]), key_offset=p, cache=fork)
    k_all, v_all = fork.append(0, new_k, new_v)
    return module(q, k_all, v_all, ctx), dense_attention(q, k_all, v_all, ctx)


def test_lookup_finds_a_far_needle_that_recency_misses() -> None:
    """An old key the query matches strongly: squeezed keeps its cluster, recency drops it."""
    g = torch.Generator().manual_seed(6)
    d, p = 16, 400
    keys = torch.randn(1, 1, p, d, generator=g)
    values = torch.randn(1, 1, p, d, generator=g)
    needle = torch.nn.functional.normalize(torch.randn(d, generator=g), dim=0)
    keys[0, 0, 40:44] = needle * 6 + 0.05 * torch.randn(4, d, generator=g)  # far back in the context
    values[0, 0, 40:44] = 5.0
    q = (needle * 3).view(1, 1, 1, d)
    site = AttentionSite(layer=0, num_heads=1, num_kv_heads=1, head_dim=d, hidden_size=d, max_positions=2048)
    new_k, new_v = torch.randn(1, 1, 1, d, generator=g), torch.randn(1, 1, 1, d, generator=g)
    sq, dense = _one_layer_query(Squeezed({"budget": 0.125}).build(site), keys, values, q, new_k, new_v, 1.0)
    rec, _ = _one_layer_query(Recency({"budget": 0.125}).build(site), keys, values, q, new_k, new_v, 1.0)
    def err(out: torch.Tensor) -> float:
        return float((out - dense).norm() / dense.norm())

    assert err(sq) < 0.05
    assert err(rec) > 0.5


def test_hierarchical_compares_fewer_centroids(model: Decoder) -> None:
    x = ids(520, 7)
    opts = {"budget": 0.125, "clusters": 0.1, "coarse_clusters": 0.01}
    m = with_method(model, Squeezed({**opts, "hierarchical": True}))
    cache = m.prefill(x[:, :500])
    counts = {}
    for hier in (False, True):
        install_attention(m, Squeezed({**opts, "hierarchical": hier}))
        with torch.no_grad():
            m(x[:, 500:], cache=cache.fork())
        st = m.blocks[1].attn.core.stats
        counts[hier] = st["comparisons"] / st["queries"]
    k_fine = int(0.1 * (500 - 31))
    assert counts[False] == k_fine
    assert counts[True] < 0.8 * k_fine


def test_model_calibration_sets_saved_thresholds(model: Decoder) -> None:
    method = Squeezed({"budget": 0.25, "calibration": "model"})
    m = with_method(model, method)
    lm = type("LM", (), {"model": m})()
    with pytest.raises(DataError, match="calibrate"):
        fixed_context_logits(m, ids(300, 8), 280)
    method.calibrate(lm, torch.cat([ids(256, 9), ids(256, 10)]))
    t = [float(b.attn.core.threshold) for b in m.blocks]
    assert all(v == t[0] and 0 < v < 1 for v in t)  # one global threshold (an attention probability)
    sd = m.state_dict()
    assert "blocks.0.attn.core.threshold" in sd
    fresh = with_method(model, Squeezed({"budget": 0.25, "calibration": "model"}))
    fresh.load_state_dict(sd)
    assert torch.allclose(fixed_context_logits(fresh, ids(300, 8), 280), fixed_context_logits(m, ids(300, 8), 280))


def test_triton_path_matches_reference_path(model: Decoder) -> None:
    import os

    x = ids(140, 11)
    m = with_method(model, Squeezed({"budget": 0.3, "hierarchical": True, "clusters": 0.1, "coarse_clusters": 0.02}))
    with use_backends("reference"):
        ref = fixed_context_logits(m, x, 128)
    old = os.environ.get("TRITON_INTERPRET")
    os.environ["TRITON_INTERPRET"] = "1"
    try:
        with use_backends({"squeezed_centroid_scores": "triton", "squeezed_selected_attention": "triton"}):
            tri = fixed_context_logits(m, x, 128)
    finally:
        if old is None:
            os.environ.pop("TRITON_INTERPRET")
        else:
            os.environ["TRITON_INTERPRET"] = old
    assert torch.allclose(ref, tri, atol=1e-4)


def test_bad_config_is_refused() -> None:
    for bad, field in (({"budget": 0.0}, "budget"), ({"budget": 1.5}, "budget"), ({"clusters": 0}, "clusters"),
                       ({"clusters": 1.5}, "clusters"), ({"observation_window": 0}, "observation_window"),
                       ({"clusters": 8, "coarse_clusters": 8}, "coarse_clusters"),
                       ({"selection": "all"}, "selection")):
        with pytest.raises(ConfigError, match=field):
            Squeezed(bad)
    with pytest.raises(ConfigError, match="budget"):
        Recency({"budget": -0.1})


def test_input_errors(model: Decoder) -> None:
    x = ids(200, 12)
    with pytest.raises(DataError, match="clusters=500 exceeds"):
        with_method(model, Squeezed({"clusters": 500})).prefill(x)
    strict = with_method(model, Squeezed({"no_prefix": "error"}))
    with pytest.raises(DataError, match="no fixed context"), torch.no_grad():
        strict(x)
    plain = model.prefill(x)  # prefilled with dense attention: no clusters for squeezed to use
    m = with_method(model, Squeezed())
    with pytest.raises(DataError, match="prefilled without squeezed"), torch.no_grad():
        m(ids(3), cache=plain.fork())
    other = with_method(model, Squeezed({"clusters": 0.2})).prefill(x)
    with pytest.raises(DataError, match="clustered with clusters=0.2"), torch.no_grad():
        m(ids(3), cache=other.fork())


def test_module_state_is_only_the_thresholds() -> None:
    site = AttentionSite(layer=0, num_heads=4, num_kv_heads=2, head_dim=16, hidden_size=64, max_positions=128)
    module = Squeezed().build(site)
    assert isinstance(module, SqueezedAttention)
    assert set(module.state_dict()) == {"threshold", "coarse_threshold"}


def test_recluster_serves_other_settings_without_a_forward(model: Decoder) -> None:
    x = ids(420, 13)
    m = with_method(model, Squeezed({"budget": 0.25}))
    cache = m.prefill(x[:, :400])
    other = recluster(cache, {"clusters": 0.2})
    assert other.layer_state[0][STATE_KEY].fine.count == int(0.2 * (400 - 25))
    assert cache.layer_state[0][STATE_KEY].fine.count == int(0.05 * (400 - 25))  # the original is untouched
    direct = with_method(model, Squeezed({"budget": 0.25, "clusters": 0.2}))
    install_attention(m, Squeezed({"budget": 0.25, "clusters": 0.2}))
    with torch.no_grad():
        a = m(x[:, 400:], cache=other).logits
        b = direct(x[:, 400:], cache=direct.prefill(x[:, :400]).fork()).logits
    assert torch.allclose(a, b, atol=1e-5)
    with pytest.raises(DataError, match="prefilled without squeezed"):
        recluster(model.prefill(x[:, :400]), {})
