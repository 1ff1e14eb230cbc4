"""Attention with the similarity operations of Gu et al. (When Attention Sink Emerges in Language
Models: An Empirical View, ICLR 2025, Sec. 7.3), written out densely.

For query i and key j (j <= i), with s_ij = q_i·k_j / sqrt(d):

    similarity "exp"        sim = exp(s_ij)                  (softmax when normalised)
               "sigmoid"    sim = sigmoid(s_ij)
               "elu"        sim = elu(s_ij) + 1
    kernels    "linear"     sim = phi(q_i)·phi(k_j) / sqrt(d), phi = identity
               "elu_kernel" phi(x) = elu(x) + 1
               "mlp_kernel" phi(x) = W2 relu(W1 x)   (learned, head_dim -> head_dim, shared by heads)

    output_i = sum_j w_ij v_j,  w_ij = sim_ij / Z_i

with Z_i = sum_j sim_ij when ``normalize`` (Z_i = sum_j sim_ij + 1e-8 for non-negative
similarities; |sum_j sim_ij| clamped at 1 for the signed linear/MLP kernels, as in the official
code) and Z_i = 1 without. Sigmoid attention without normalisation — the method's default — is
the setting in which the paper finds no attention sink.

The module records the weights w it actually uses (``ctx.record``) when asked; the sink metric
normalises each row of |w| itself, as the official evaluation does.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from splice.model.context import AttnContext, repeat_kv
from torch import nn

Similarity = Literal["sigmoid", "elu", "exp", "linear", "elu_kernel", "mlp_kernel"]
SIMILARITIES = ("sigmoid", "elu", "exp", "linear", "elu_kernel", "mlp_kernel")
KERNELS = ("linear", "elu_kernel", "mlp_kernel")


class SimilarityAttention(nn.Module):
    def __init__(self, similarity: Similarity = "sigmoid", normalize: bool = False, head_dim: int | None = None,
                 mlp_bias: bool = False) -> None:
        super().__init__()
        if similarity not in SIMILARITIES:
            raise ValueError(f"similarity must be one of {', '.join(SIMILARITIES)} (got {similarity!r})")
        if similarity == "exp" and not normalize:
            raise ValueError("similarity 'exp' needs normalize=True (it is softmax attention)")
        self.similarity, self.normalize = similarity, normalize
        if similarity == "mlp_kernel":
            if head_dim is None:
                raise ValueError("the mlp kernel needs head_dim")
            self.phi1 = nn.Linear(head_dim, head_dim, bias=mlp_bias)
            self.phi2 = nn.Linear(head_dim, head_dim, bias=mlp_bias)

    def extra_repr(self) -> str:
        return f"similarity={self.similarity}, normalize={self.normalize}"

    def _phi(self, x: torch.Tensor) -> torch.Tensor:
        if self.similarity == "elu_kernel":
            return F.elu(x) + 1
        if self.similarity == "mlp_kernel":
            return self.phi2(torch.relu(self.phi1(x)))
        return x

    def weights(self, q: torch.Tensor, k: torch.Tensor, ctx: AttnContext) -> torch.Tensor:
        """B×Hq×T×S attention weights (masked entries exactly 0)."""
        k = repeat_kv(k, q.shape[1] // k.shape[1])
        mask = ctx.allowed(q.shape[-2], k.shape[-2], q.device)
        if self.similarity in KERNELS:
            q, k = self._phi(q), self._phi(k)
        s = torch.matmul(q, k.transpose(-1, -2)).float() * ctx.scale
        if self.similarity == "exp":  # softmax, computed stably
            if mask is not None:
                s = s.masked_fill(~mask, float("-inf"))
            return torch.nan_to_num(torch.softmax(s, dim=-1))
        if self.similarity == "sigmoid":
            w = torch.sigmoid(s)
        elif self.similarity == "elu":
            w = F.elu(s) + 1
        else:
            w = s
        if mask is not None:
            w = w.masked_fill(~mask, 0.0)
        if self.normalize:
            total = w.sum(-1, keepdim=True)
            if self.similarity in ("linear", "mlp_kernel"):
                w = w / total.abs().clamp(min=1)
            else:
                w = w / (total + 1e-8)
        return w

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, ctx: AttnContext) -> torch.Tensor:
        w = self.weights(q, k, ctx)
        if ctx.need_weights:
            ctx.record(w)
        v = repeat_kv(v, q.shape[1] // v.shape[1])
        return torch.matmul(w.to(v.dtype), v)
