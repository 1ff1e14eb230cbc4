"""Attention whose state does not survive an artifact: per-head temperatures drawn at build time
and kept as plain attributes (neither parameters nor buffers), so saving drops them and loading
draws new ones."""

from __future__ import annotations

import torch
from splice import Paper, hookimpl
from splice.kinds import AttentionMethod, AttentionModule
from splice.model import dense_attention
from torch import nn


class ForgetfulModule(AttentionModule):
    def __init__(self, num_heads: int) -> None:
        super().__init__()
        self.temperature = 0.75 + 0.5 * torch.rand(num_heads)  # the defect: not a buffer

    def forward(self, q, k, v, ctx):
        t = self.temperature.to(q.device, q.dtype)[None, :, None, None]
        out, probs = dense_attention(q * t, k, v, ctx, return_probs=True)
        ctx.record(probs)
        return out


class Forgetful(AttentionMethod):
    """Softmax attention with random per-head temperatures that are never saved."""

    name = "forgetful"
    paper = Paper(title="A broken attention for the conformance suite's own tests", claim="none")
    exact_config = None

    def build(self, site) -> nn.Module:
        return ForgetfulModule(site.num_heads)


@hookimpl
def register_attention(register):
    register(Forgetful)
