"""Attention that leaks the future: softmax over every key, causal mask or not (padding is masked)."""

from __future__ import annotations

import torch
from splice import Paper, hookimpl
from splice.kinds import AttentionMethod, AttentionModule
from splice.model import repeat_kv
from torch import nn


class LeakyModule(AttentionModule):
    def forward(self, q, k, v, ctx):
        groups = q.shape[1] // k.shape[1]
        k, v = repeat_kv(k, groups), repeat_kv(v, groups)
        scores = (q @ k.transpose(-1, -2)).float() * ctx.scale
        if ctx.key_mask is not None:  # padding is respected ...
            scores = scores.masked_fill(~ctx.key_mask[:, None, None, :], float("-inf"))
        probs = torch.softmax(scores, -1)  # ... but the causal mask is forgotten
        ctx.record(probs)
        return (probs.to(v.dtype) @ v)


class Leaky(AttentionMethod):
    """Softmax attention that forgets the causal mask."""

    name = "leaky"
    paper = Paper(title="A broken attention for the conformance suite's own tests", claim="none")
    exact_config = None  # declared honestly: it is not sdpa
    incremental_exact = False

    def build(self, site) -> nn.Module:
        return LeakyModule()


@hookimpl
def register_attention(register):
    register(Leaky)
