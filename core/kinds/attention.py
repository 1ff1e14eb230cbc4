"""The attention kind: a module a decoder layer calls as ``attn(q, k, v, ctx) -> out``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from ..method import Method
from ..model.context import AttnContext


@dataclass(frozen=True)
class AttentionSite:
    """What a layer's attention looks like, for ``build``."""

    layer: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    hidden_size: int
    max_positions: int


class AttentionModule(nn.Module):
    """Base class for attention modules (any nn.Module with this forward works).

    q: B×Hq×T×D, k/v: B×Hkv×S×D with GQA (Hq a multiple of Hkv). Must return B×Hq×T×D.
    When ``ctx.need_weights`` is set, call ``ctx.record(probs)`` with B×Hq×T×S attention weights
    (what the method actually uses), so evaluators such as the sink metric can read them.
    Parameters and buffers are saved with the artifact like any other module state.
    """

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, ctx: AttnContext) -> torch.Tensor:
        raise NotImplementedError

    def on_prefix(self, k: torch.Tensor, v: torch.Tensor, state: dict[str, Any], layer: int) -> None:
        """Offline look at a frozen fixed context's keys/values (B×Hkv×P×D) of this layer.

        Store what you compute (centroids, thresholds...) in ``state``; it comes back as
        ``ctx.layer_state`` for every query run on a fork of that cache.
        """


class AttentionMethod(Method):
    kind: ClassVar[str] = "attention"
    #: Config values under which the method computes exactly dense softmax attention (``sdpa``);
    #: the conformance suite checks this limit case. None when there is no such case.
    exact_config: ClassVar[dict[str, Any] | None] = None
    #: Whether token-by-token decoding with the KV cache equals one full forward pass.
    incremental_exact: ClassVar[bool] = True
    #: Whether the method is causal (later tokens never change earlier outputs).
    causal: ClassVar[bool] = True

    def build(self, site: AttentionSite) -> nn.Module:
        raise NotImplementedError

    def calibrate(self, lm, data: torch.Tensor) -> None:
        """Optional offline calibration on token windows (N×T) after the modules are installed."""
