"""Pure-PyTorch references of Squeezed Attention's two kernels (float32 math, any device).

``centroid_scores``: the centroid lookup. For every query and cluster i of its KV head the
paper's size-weighted softmax estimate

    S_i = exp(q·C_i·scale) / sum_j N_j exp(q·C_j·scale)

(the attention probability a single key of cluster i would get if every key equalled its
centroid), averaged over each group of consecutive queries that shares one selection.

``selected_attention``: exact softmax attention of each query over the fixed-context keys its
group selected plus every key of the new tokens (causal), as one softmax.
"""

from __future__ import annotations

import torch

from .shapes import check_lookup, check_selected


def _repeat_heads(x: torch.Tensor, heads: int) -> torch.Tensor:
    return x.repeat_interleave(heads // x.shape[1], dim=1)


def centroid_scores_reference(q: torch.Tensor, centroids: torch.Tensor, log_sizes: torch.Tensor, *,
                              group_size: int, scale: float) -> torch.Tensor:
    """Mean size-weighted softmax estimate per query group and cluster.

    q: B×H×T×D queries; centroids: B×Hkv×K×D (query head h reads KV head h // (H/Hkv));
    log_sizes: B×H×G×K float, log N_j of cluster j for the queries of group g, -inf for a
    cluster that is empty or excluded (hierarchical lookup: its coarse parent was dropped), so it
    neither counts in the denominator nor gets a score; T = G·group_size. Returns B×H×G×K float32,
    0 for excluded clusters.
    """
    b, h, _t, _, k, g = check_lookup(q, centroids, log_sizes, group_size)
    c = _repeat_heads(centroids.float(), h)
    s = torch.matmul(q.float(), c.transpose(-1, -2)) * scale  # B×H×T×K
    ls = log_sizes.float().repeat_interleave(group_size, dim=2)
    lse = torch.logsumexp(s + ls, dim=-1, keepdim=True)
    p = torch.exp(s - torch.where(torch.isneginf(lse), torch.zeros_like(lse), lse))
    p = torch.where(torch.isneginf(ls), torch.zeros_like(p), p)
    return p.view(b, h, g, group_size, k).mean(dim=3)


def selection_mask(idx: torch.Tensor, prefix_length: int) -> torch.Tensor:
    """B×H×G×n key indices (-1 = padding) -> B×H×G×P boolean mask of the selected prefix keys."""
    mask = torch.zeros(*idx.shape[:3], prefix_length + 1, dtype=torch.bool, device=idx.device)
    mask.scatter_(-1, torch.where(idx < 0, prefix_length, idx.long()), True)
    return mask[..., :prefix_length]


def selected_attention_reference(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, idx: torch.Tensor, *,
                                 prefix_length: int, group_size: int, scale: float,
                                 key_offset: int | None = None) -> torch.Tensor:
    """Attention of q (B×H×T×D) over the selected prefix keys and all new keys of k, v (B×Hkv×S×D).

    ``idx`` (B×H×G×n, int, -1 padded) lists the distinct fixed-context key positions
    (< prefix_length) selected for each group of ``group_size`` consecutive queries (a position
    listed twice would count twice in the accelerated backends: callers pass distinct ones). Keys at positions
    prefix_length..S-1 (the new tokens) are all attended, causally: query t sees key j when
    j <= key_offset + t (default key_offset = S - T). A query that sees no key gets zeros.
    """
    b, h, t, _, s, offset = check_selected(q, k, v, idx, prefix_length, group_size, key_offset)
    sel = selection_mask(idx, prefix_length).repeat_interleave(group_size, dim=2)  # B×H×T×P
    qpos = torch.arange(t, device=q.device)[:, None] + offset
    kpos = torch.arange(prefix_length, s, device=q.device)[None, :]
    new = (kpos <= qpos).expand(b, h, t, s - prefix_length)
    allowed = torch.cat([sel, new], dim=-1)
    kf, vf = _repeat_heads(k.float(), h), _repeat_heads(v.float(), h)
    scores = torch.matmul(q.float(), kf.transpose(-1, -2)) * scale
    scores = scores.masked_fill(~allowed, float("-inf"))
    peak = scores.amax(-1, keepdim=True)
    peak = torch.where(torch.isneginf(peak), torch.zeros_like(peak), peak)
    e = torch.exp(scores - peak)
    total = e.sum(-1, keepdim=True)
    probs = e / torch.where(total == 0, torch.ones_like(total), total)
    return torch.matmul(probs, vf).to(q.dtype)
