"""``squeezed`` (Squeezed Attention) and ``recency`` (the same key budget spent on the most recent keys).

Both act only on queries against a frozen fixed context (``Decoder.prefill`` then ``cache.fork()``):
the new tokens attend to a subset of the context's keys plus every key of the new tokens. A
forward without a fixed context (plain forwards, the prefill itself) is dense softmax attention.
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Any, ClassVar

import torch
from splice.errors import DataError
from splice.kinds import AttentionMethod, AttentionModule, AttentionSite
from splice.method import Paper
from splice.model import SDPA, KVCache
from splice.model.context import AttnContext, repeat_kv

from .config import RecencyConfig, SqueezedConfig
from .kernels import selected_attention
from .lookup import (
    STATE_KEY,
    PrefixClusters,
    calibrate_thresholds,
    cluster_prefix,
    pooled_thresholds,
    select,
    signature_mismatch,
    to_indices,
)

RECENT_QUERIES = "squeezed_recent_queries"
SCALE = "squeezed_scale"

PAPER = Paper(
    title="Squeezed Attention: Accelerating Long Context Length LLM Inference", arxiv="2411.09688",
    claim="keeping every key cluster is exact attention; at a 3x smaller KV budget retrieval accuracy and "
          "fixed-prefix perplexity stay close to dense and clearly above keeping the most recent keys (paper: "
          "LongBench accuracy kept at a 3.1x KV-budget cut, within 0.5 points at 8x)",
    url="https://github.com/SqueezeAILab/SqueezedAttention")


def masked_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, ctx: AttnContext,
                     prefix_keys: torch.Tensor) -> torch.Tensor:
    """Softmax attention under ctx's masks (padding, causal, window) with only ``prefix_keys``
    (B×H×T×P bool) of the fixed context visible; records the probabilities when asked."""
    b, h, t, _ = q.shape
    s = k.shape[-2]
    p = prefix_keys.shape[-1]
    groups = h // k.shape[1]
    allowed = torch.cat([prefix_keys, torch.ones(b, h, t, s - p, dtype=torch.bool, device=q.device)], dim=-1)
    base = ctx.allowed(t, s, q.device)
    if base is not None:
        allowed = allowed & base
    scores = torch.matmul(q.float(), repeat_kv(k, groups).float().transpose(-1, -2)) * ctx.scale
    probs = torch.nan_to_num(torch.softmax(scores.masked_fill(~allowed, float("-inf")), dim=-1))
    ctx.record(probs)
    return torch.matmul(probs, repeat_kv(v, groups).float()).to(q.dtype)


class _FixedContextAttention(AttentionModule):
    """Shared plumbing: dense attention without a fixed context, counters, validation."""

    def __init__(self, site: AttentionSite) -> None:
        super().__init__()
        self.layer = site.layer
        self.dense = SDPA()
        self.stats: Counter = Counter()

    def reset_stats(self) -> None:
        """Counters since the last reset, summed over (batch, query head, query) of prefix forwards:
        ``queries``, ``prefix_keys`` (keys the fixed context offered), ``selected`` (keys attended),
        ``comparisons`` (centroids each query was compared with)."""
        self.stats.clear()

    def _count(self, keys_per_group: torch.Tensor, group_size: int, prefix: int,
               comparisons: torch.Tensor | None = None) -> None:
        n = keys_per_group.numel() * group_size
        self.stats["queries"] += n
        self.stats["prefix_keys"] += n * prefix
        self.stats["selected"] += int(keys_per_group.sum()) * group_size
        if comparisons is not None:
            self.stats["comparisons"] += float(comparisons.sum()) * group_size

    @staticmethod
    def _check_prefix_mask(ctx: AttnContext) -> None:
        if ctx.key_mask is not None and not bool(ctx.key_mask[:, :ctx.prefix_length].all()):
            raise DataError("fixed-context attention: the fixed context contains padding; prefill contexts of "
                            "equal length (one cache per context)")

    def _attend(self, q, k, v, ctx: AttnContext, keys: torch.Tensor, group_size: int) -> torch.Tensor:
        """Attention over the selected fixed-context keys (B×H×G×P) plus all new keys."""
        if ctx.need_weights or ctx.key_mask is not None or ctx.sliding_window:
            per_query = keys.repeat_interleave(group_size, dim=2)
            return masked_attention(q, k, v, ctx, per_query)
        return selected_attention(q, k, v, to_indices(keys), prefix_length=ctx.prefix_length,
                                  group_size=group_size, scale=ctx.scale, key_offset=ctx.key_offset)


class SqueezedAttention(_FixedContextAttention):
    """Squeezed Attention for one layer (see the package README for the algorithm)."""

    def __init__(self, config: SqueezedConfig, site: AttentionSite) -> None:
        super().__init__(site)
        self.config = config
        # calibration='model': the global thresholds calibrate() sets (NaN until then); saved with the model.
        self.register_buffer("threshold", torch.tensor(float("nan")))
        self.register_buffer("coarse_threshold", torch.tensor(float("nan")))

    def extra_repr(self) -> str:
        c = self.config
        return (f"layer={self.layer}, budget={c.budget}, clusters={c.clusters}, hierarchical={c.hierarchical}, "
                f"window={c.observation_window}, selection={c.selection}, calibration={c.calibration}")

    # -- offline ------------------------------------------------------------------------------
    def on_prefix(self, k: torch.Tensor, v: torch.Tensor, state: dict[str, Any], layer: int) -> None:
        """Cluster this layer's fixed-context keys (k-means per KV head, one or two levels)."""
        queries = state.get(RECENT_QUERIES)  # kept: another clustering of this context may need them
        scale = state.get(SCALE, k.shape[-1] ** -0.5)
        with torch.no_grad():
            state[STATE_KEY] = cluster_prefix(k, queries, self.config, scale)

    # -- online -------------------------------------------------------------------------------
    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, ctx: AttnContext) -> torch.Tensor:
        if ctx.prefix_length == 0:
            if ctx.cache is None:
                if self.config.no_prefix == "error":
                    raise DataError("squeezed: no fixed context. Prefill one with model.prefill(context_ids) "
                                    "and run queries on cache.fork() (or set no_prefix='dense')")
            else:  # the cache is being filled: keep the last queries, the observation window's
                self._remember(q, ctx)
            return self.dense(q, k, v, ctx)
        pc = self._prefix(ctx)
        self._check_prefix_mask(ctx)
        t = q.shape[2]
        gs = t if self.config.selection == "shared" else 1
        thr_fine, thr_coarse = self._thresholds(ctx, pc)
        with torch.no_grad():
            sel = select(q.detach(), pc, thr_fine.to(q.device), thr_coarse.to(q.device), gs,
                         self.config.hierarchical)
        self._count(sel.keys.sum(-1), gs, pc.length, sel.comparisons)
        return self._attend(q, k, v, ctx, sel.keys, gs)

    def _remember(self, q: torch.Tensor, ctx: AttnContext) -> None:
        state = ctx.layer_state
        w = self.config.observation_window
        prev = state.get(RECENT_QUERIES)
        new = q.detach()[:, :, -w:]
        if prev is not None and prev.shape[:2] == new.shape[:2]:
            new = torch.cat([prev, new], dim=2)[:, :, -w:]
        state[RECENT_QUERIES] = new.clone()
        state[SCALE] = ctx.scale

    def _prefix(self, ctx: AttnContext) -> PrefixClusters:
        pc = ctx.layer_state.get(STATE_KEY)
        if pc is None:
            raise DataError("squeezed: this fixed context was prefilled without squeezed (no key clusters); "
                            "install squeezed first, then prefill the context again")
        mismatch = signature_mismatch(pc.signature, self.config)
        if mismatch is not None:
            raise DataError(f"squeezed: the fixed context was clustered with {mismatch}; prefill it again "
                            "with this configuration")
        if self.config.hierarchical and pc.fine is not None and pc.coarse is None:
            raise DataError("squeezed: hierarchical=True but the fixed context was clustered on one level; "
                            "prefill it again with the hierarchical config")
        return pc

    def _thresholds(self, ctx: AttnContext, pc: PrefixClusters) -> tuple[torch.Tensor, torch.Tensor]:
        c = self.config
        batch = pc.window_queries.shape[0]
        if c.calibration == "model" and c.budget < 1:
            if math.isnan(float(self.threshold)):
                raise DataError("squeezed: calibration='model' needs calibrated thresholds: run "
                                "Squeezed.calibrate(lm, windows) (compose does) or use calibration='context'")
            return (torch.full((batch,), float(self.threshold)), torch.full((batch,), float(self.coarse_threshold)))
        key = (c.budget, c.selection, c.hierarchical, c.coarse_factor)
        if key not in pc.thresholds:  # once per context and budget; shared by every fork
            assert ctx.cache is not None
            states = [s.get(STATE_KEY) for s in ctx.cache.layer_state]
            if any(s is None for s in states):
                raise DataError("squeezed: every layer must use squeezed to calibrate its global threshold")
            found = calibrate_thresholds(states, c.budget, c.selection, c.hierarchical, c.coarse_factor)
            for s in states:
                s.thresholds[key] = found
        return pc.thresholds[key]


@torch.no_grad()
def recluster(cache: KVCache, config: SqueezedConfig | dict | None = None) -> KVCache:
    """A fork of the frozen fixed context ``cache`` clustered anew with ``config`` (other cluster
    counts, window, levels), without running the model again. The context must have been prefilled
    with squeezed installed (that is when its observation-window queries are seen)."""
    cfg = Squeezed.make_config(config)
    if cache.prefix_length == 0:
        raise DataError("squeezed.recluster: the cache holds no frozen fixed context (use model.prefill)")
    states = []
    for i, st in enumerate(cache.layer_state):
        if RECENT_QUERIES not in st:
            raise DataError("squeezed.recluster: the context was prefilled without squeezed installed")
        new = {RECENT_QUERIES: st[RECENT_QUERIES], SCALE: st[SCALE]}
        new[STATE_KEY] = cluster_prefix(cache.keys[i], st[RECENT_QUERIES], cfg, st[SCALE])  # type: ignore[arg-type]
        states.append(new)
    fork = cache.fork()
    fork.layer_state = states
    return fork


class RecencyAttention(_FixedContextAttention):
    """The naive baseline: the same key budget spent on the most recent keys of the fixed context."""

    def __init__(self, config: RecencyConfig, site: AttentionSite) -> None:
        super().__init__(site)
        self.config = config

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, ctx: AttnContext) -> torch.Tensor:
        p = ctx.prefix_length
        if p == 0:
            return self.dense(q, k, v, ctx)
        self._check_prefix_mask(ctx)
        b, h, t, _ = q.shape
        n = min(p, max(1, round(self.config.budget * p)))
        keys = torch.zeros(b, h, 1, p, dtype=torch.bool, device=q.device)
        keys[..., p - n:] = True
        self._count(keys.sum(-1), t, p)
        return self._attend(q, k, v, ctx, keys, t)


class Squeezed(AttentionMethod):
    """Squeezed Attention: offline k-means of a fixed context's keys; queries pick the clusters they need."""

    name = "squeezed"
    Config = SqueezedConfig
    paper = PAPER
    exact_config: ClassVar[dict[str, Any] | None] = {"budget": 1.0}
    # With a fixed context, the new tokens of one forward share one key selection (the paper's
    # prefill): splitting them differently, or changing a later one, changes the keys the earlier
    # ones see. Without a fixed context it is dense attention (causal, incremental-exact), and with
    # selection='per_query' it is causal and incremental-exact on a fixed context too.
    incremental_exact: ClassVar[bool] = False
    causal: ClassVar[bool] = False

    def build(self, site: AttentionSite) -> SqueezedAttention:
        return SqueezedAttention(self.config, site)  # type: ignore[arg-type]

    @torch.no_grad()
    def calibrate(self, lm, data: torch.Tensor) -> None:
        """calibration='model': prefill each calibration window as a fixed context and set one absolute
        threshold (per level) for all layers and heads that keeps the budget's share of keys on them."""
        c = self.config
        if c.calibration != "model":
            return
        modules = [blk.attn.core for blk in lm.model.blocks if isinstance(blk.attn.core, SqueezedAttention)]
        if not modules:
            raise DataError("squeezed.calibrate: the model has no squeezed attention installed")
        runs = []
        for row in data:
            cache = lm.model.prefill(row[None].to(lm.model.device))
            runs.append([s[STATE_KEY] for s in cache.layer_state])
        fine, coarse = pooled_thresholds(runs, c.budget, c.selection, c.hierarchical, c.coarse_factor)
        for m in modules:
            m.threshold.fill_(fine)
            m.coarse_threshold.fill_(coarse)


class Recency(AttentionMethod):
    """Fixed-context baseline: attend to the most recent budget·P keys of the context (a sliding window)."""

    name = "recency"
    Config = RecencyConfig
    paper = Paper(title="Squeezed Attention: Accelerating Long Context Length LLM Inference", arxiv="2411.09688",
                  claim="the naive baseline Squeezed Attention must beat at an equal KV budget: keep the most "
                        "recent keys of the fixed context")
    exact_config: ClassVar[dict[str, Any] | None] = {"budget": 1.0}

    def build(self, site: AttentionSite) -> RecencyAttention:
        return RecencyAttention(self.config, site)  # type: ignore[arg-type]
