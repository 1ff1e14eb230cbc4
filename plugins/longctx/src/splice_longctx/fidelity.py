"""Attention fidelity against dense attention, layer by layer, for any attention method.

While active, every layer's attention module is wrapped: it runs as usual (asked for its
attention weights, which the attention contract requires it to record), and beside it dense
softmax attention runs on the *same* q, k, v. Per layer, over the fixed context's keys:

* keys touched: fraction of the context's keys with a non-zero weight (what the method attended);
* top-k recall: fraction of the k keys dense attention weighs most that the method attended;
* mass recall: share of dense attention's weight on the context that falls on attended keys;
* output error: ||out - out_dense|| / ||out_dense|| of each query's attention output.

Comparing on the same inputs isolates each layer's own approximation from errors of earlier layers.
"""

from __future__ import annotations

import contextlib
from collections import defaultdict
from collections.abc import Iterator

import torch
from splice.model.context import AttnContext, dense_attention
from torch import nn

FIELDS = ("keys_touched", "topk_recall", "mass_recall", "output_error")


class FidelityStats:
    def __init__(self) -> None:
        self.sums: dict[int, dict[str, float]] = defaultdict(lambda: dict.fromkeys(FIELDS, 0.0))
        self.counts: dict[int, int] = defaultdict(int)

    def add(self, layer: int, values: dict[str, torch.Tensor]) -> None:
        n = int(values["output_error"].numel())
        for f in FIELDS:
            self.sums[layer][f] += float(values[f].sum())
        self.counts[layer] += n

    def per_layer(self) -> dict[int, dict[str, float]]:
        return {layer: {f: s[f] / max(self.counts[layer], 1) for f in FIELDS} for layer, s in sorted(self.sums.items())}

    def overall(self) -> dict[str, float]:
        rows = self.per_layer()
        if not rows:
            return {}
        return {f: sum(r[f] for r in rows.values()) / len(rows) for f in FIELDS}


class FidelityProbe(nn.Module):
    """Wraps one layer's attention module; see the module docstring."""

    def __init__(self, inner: nn.Module, stats: FidelityStats, topk: int) -> None:
        super().__init__()
        self.inner, self.stats, self.topk = inner, stats, topk

    def on_prefix(self, *args, **kwargs):
        hook = getattr(self.inner, "on_prefix", None)
        return None if hook is None else hook(*args, **kwargs)

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, ctx: AttnContext) -> torch.Tensor:
        wanted = ctx.need_weights
        ctx.need_weights = True
        try:
            out = self.inner(q, k, v, ctx)
        finally:
            ctx.need_weights = wanted
        probs = ctx.weights.get(ctx.layer) if wanted else ctx.weights.pop(ctx.layer, None)
        p = ctx.prefix_length
        if probs is None or p == 0:
            return out
        ref_out, ref_probs = dense_attention(q, k, v, ctx, return_probs=True)
        attended = probs[..., :p] > 0
        dense = ref_probs[..., :p]
        kk = min(self.topk, p)
        top = dense.topk(kk, dim=-1).indices
        mass = dense.sum(-1)
        err = (out.float() - ref_out.float()).norm(dim=-1) / ref_out.float().norm(dim=-1).clamp_min(1e-12)
        self.stats.add(ctx.layer, {
            "keys_touched": attended.float().mean(-1),
            "topk_recall": attended.gather(-1, top).float().mean(-1),
            "mass_recall": (dense * attended).sum(-1) / mass.clamp_min(1e-30),
            "output_error": err,
        })
        return out


@contextlib.contextmanager
def probing(model, stats: FidelityStats, topk: int) -> Iterator[None]:
    """Wrap every layer's attention module in a FidelityProbe for the duration of the block."""
    originals = [blk.attn.core for blk in model.blocks]
    try:
        for blk, core in zip(model.blocks, originals):
            blk.attn.core = FidelityProbe(core, stats, topk)
        yield
    finally:
        for blk, core in zip(model.blocks, originals):
            blk.attn.core = core
