"""``sdpa``: exact softmax attention, the baseline every attention method is compared against."""

from __future__ import annotations

from torch import nn

from ..kinds.attention import AttentionMethod, AttentionSite
from ..method import Paper
from ..model.decoder import SDPA


class SDPAAttention(AttentionMethod):
    """Exact scaled dot-product softmax attention (torch's fused kernel)."""

    name = "sdpa"
    paper = Paper(title="Attention Is All You Need", arxiv="1706.03762",
                  claim="the dense softmax attention baseline")
    exact_config = {}

    def build(self, site: AttentionSite) -> nn.Module:
        return SDPA()
