"""Block-sparse attention as masked dense attention in plain PyTorch (float32, O(T*S) memory)."""

from __future__ import annotations

import torch

from .blocks import attn_shape, block_mask, token_mask


def block_sparse_attention_reference(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    blocks: torch.Tensor,
    *,
    block_size: int = 64,
    block_q: int | None = None,
    causal: bool = False,
    key_offset: int | None = None,
    scale: float | None = None,
    return_lse: bool = False,
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """Attention of q (B, H, T, D) over k, v (B, Hkv, S, D) restricted to selected key blocks.

    Query block i (queries ``i*block_q ..``) attends to the keys of the key blocks (of
    ``block_size`` keys) selected for it in ``blocks``: a boolean mask (B|1, H|Hkv|1, T_blocks,
    S_blocks) or -1-padded indices (B|1, H|Hkv|1, T_blocks, n). GQA: query head h reads KV head
    h // (H / Hkv). ``causal`` also hides keys after ``query + key_offset`` (default offset
    S - T: the queries are the last T positions). The result equals softmax attention with every
    other key masked out; a query with no visible key gets zeros (and lse = -inf).
    ``return_lse`` also returns the natural-log sum of exp of the scaled scores (B, H, T) in
    float32, not differentiable. ``scale`` defaults to 1/sqrt(D).
    """
    a = attn_shape(q, k, v, block_size, block_q, key_offset, scale)
    allowed = token_mask(block_mask(blocks, a), a, causal)
    group = a.heads // a.kv_heads
    kf = k.float().repeat_interleave(group, dim=1)
    vf = v.float().repeat_interleave(group, dim=1)
    scores = (q.float() @ kf.transpose(-1, -2)) * a.scale
    scores = scores.masked_fill(~allowed, float("-inf"))
    peak = scores.detach().amax(-1, keepdim=True)
    peak = torch.where(torch.isneginf(peak), torch.zeros_like(peak), peak)  # empty rows: no NaN
    expd = torch.exp(scores - peak)
    total = expd.sum(-1, keepdim=True)
    probs = expd / torch.where(total == 0, torch.ones_like(total), total)
    out = (probs @ vf).to(q.dtype)
    if not return_lse:
        return out
    lse = (peak + torch.log(total)).squeeze(-1).detach()
    return out, lse
