"""What a decoder layer tells its attention module besides q, k and v."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from .cache import KVCache


@dataclass
class AttnContext:
    """Per-call facts for ``attn(q, k, v, ctx)``.

    q is B×Hq×T×D for the T new tokens; k and v are B×Hkv×S×D for all S keys (cached ones first),
    so query i sits at key index ``key_offset + i``.
    """

    layer: int
    scale: float
    query_positions: torch.Tensor  # B×T rotary positions of the queries
    key_offset: int = 0
    key_mask: torch.Tensor | None = None  # B×S bool, True = real token (None: no padding)
    causal: bool = True
    sliding_window: int | None = None
    cache: KVCache | None = None
    need_weights: bool = False
    weights: dict[int, torch.Tensor] = field(default_factory=dict)  # layer -> B×Hq×T×S probabilities

    @property
    def prefix_length(self) -> int:
        return 0 if self.cache is None else self.cache.prefix_length

    @property
    def layer_state(self) -> dict:
        """State an attention method attached to this layer's frozen prefix (empty without one)."""
        return {} if self.cache is None else self.cache.layer_state[self.layer]

    def allowed(self, t: int, s: int, device: torch.device) -> torch.Tensor | None:
        """Boolean mask B×1×T×S (or 1×1×T×S) of the keys each query may see; None = all of them."""
        mask = None
        if self.causal or self.sliding_window:
            qi = torch.arange(t, device=device)[:, None] + self.key_offset
            kj = torch.arange(s, device=device)[None, :]
            mask = kj <= qi if self.causal else torch.ones(t, s, dtype=torch.bool, device=device)
            if self.sliding_window:
                mask = mask & (qi - kj < self.sliding_window)
            mask = mask[None, None]
        if self.key_mask is not None:
            pad = self.key_mask[:, None, None, :].to(device)
            mask = pad if mask is None else mask & pad
        return mask

    def record(self, probs: torch.Tensor) -> None:
        """Attention modules call this with their probabilities when ``need_weights`` is set."""
        if self.need_weights:
            self.weights[self.layer] = probs.detach()


def repeat_kv(x: torch.Tensor, groups: int) -> torch.Tensor:
    """B×Hkv×S×D -> B×(Hkv·groups)×S×D, each kv head serving ``groups`` query heads."""
    if groups == 1:
        return x
    b, h, s, d = x.shape
    return x[:, :, None].expand(b, h, groups, s, d).reshape(b, h * groups, s, d)


def dense_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, ctx: AttnContext,
                    return_probs: bool = False):
    """Reference softmax attention written out (used for probabilities and as a test oracle)."""
    groups = q.shape[1] // k.shape[1]
    k, v = repeat_kv(k, groups), repeat_kv(v, groups)
    scores = torch.matmul(q, k.transpose(-1, -2)).float() * ctx.scale
    mask = ctx.allowed(q.shape[-2], k.shape[-2], q.device)
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    probs = torch.softmax(scores, dim=-1)
    probs = torch.nan_to_num(probs)  # fully masked rows (padding queries) give zeros, not NaN
    out = torch.matmul(probs.to(v.dtype), v)
    return (out, probs) if return_probs else out
