"""The attention-sink metric of Gu et al. (When Attention Sink Emerges in Language Models, Sec. 3).

For layer l, head h and a sequence of T tokens with attention weights A (T×T, causal), the
importance of token k is the mean attention it receives from the queries that can see it:

    alpha_k^{l,h} = (1 / (T - k)) * sum_{i >= k} A^{l,h}_{i,k}       (k = 0 .. T-1, 0-indexed)

    Sink_k^eps = mean over sequences, layers and heads of 1[alpha_k^{l,h} > eps]   (x 100, in %)

with eps = 0.3. The paper writes Sink_1 for the first token; here positions are 0-indexed, so
``sink_0`` is the paper's Sink_1. Each query row is first normalised, |A_i| / sum_j |A_ij|, as
the official evaluation does: a no-op for softmax, and what makes methods without normalisation
(sigmoid attention) comparable.
"""

from __future__ import annotations

import torch


def row_normalize(weights: torch.Tensor) -> torch.Tensor:
    w = weights.abs().float()
    return w / (w.sum(-1, keepdim=True) + 1e-8)


def importance(weights: torch.Tensor) -> torch.Tensor:
    """...×T×T attention weights -> ...×T importance of each key position (mean over its queries)."""
    t = weights.shape[-1]
    if weights.shape[-2] != t:
        raise ValueError(f"importance needs square T×T weights (got {tuple(weights.shape[-2:])})")
    seen_by = torch.arange(t, 0, -1, device=weights.device, dtype=torch.float32)  # T - k queries see key k
    return row_normalize(weights).sum(-2) / seen_by


@torch.no_grad()
def sink_rates(model, windows: torch.Tensor, epsilon: float = 0.3, batch_size: int = 8) -> torch.Tensor:
    """L×H×T fraction of sequences in which each (layer, head) gives position k importance > epsilon."""
    counts: torch.Tensor | None = None
    n = 0
    for i in range(0, len(windows), batch_size):
        x = windows[i:i + batch_size].to(model.device)
        out = model(x, need_weights=True)
        if not out.attentions or len(out.attentions) != len(model.blocks):
            missing = [j for j in range(len(model.blocks)) if j not in out.attentions]
            core = type(model.blocks[missing[0] if missing else 0].attn.core).__name__
            raise RuntimeError(f"sink: attention module {core} did not record its weights for layers {missing} "
                               "(attention modules must call ctx.record(weights) when ctx.need_weights)")
        att = torch.stack([out.attentions[j] for j in range(len(model.blocks))], dim=1)  # B×L×H×T×T
        hit = (importance(att) > epsilon).float().sum(0)  # L×H×T
        counts = hit if counts is None else counts + hit
        n += x.shape[0]
    assert counts is not None
    return counts / n
