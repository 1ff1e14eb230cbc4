"""``silu``, ``gelu``, ``relu``: the standard elementwise activations as baselines."""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import Field
from torch import nn

from ..kinds.activation import ActivationMethod, MLPSite
from ..method import MethodConfig, Paper


class SiLU(ActivationMethod):
    """SiLU / Swish, x·σ(x) (the SwiGLU MLP of Llama when the site is gated)."""

    name = "silu"
    paper = Paper(title="Sigmoid-Weighted Linear Units for Neural Network Function Approximation in RL",
                  arxiv="1702.03118", claim="baseline activation")

    def build(self, site: MLPSite) -> nn.Module:
        return nn.SiLU()

    @classmethod
    def limit_case(cls):
        return {}, lambda x: x * torch.sigmoid(x)


class GELUConfig(MethodConfig):
    approximate: Literal["none", "tanh"] = Field("none", description="tanh approximation as in GPT-2")


class GELU(ActivationMethod):
    """GELU, x·Φ(x)."""

    name = "gelu"
    Config = GELUConfig
    paper = Paper(title="Gaussian Error Linear Units (GELUs)", arxiv="1606.08415", claim="baseline activation")

    def build(self, site: MLPSite) -> nn.Module:
        return nn.GELU(approximate=self.config.approximate)

    @classmethod
    def limit_case(cls):
        return {"approximate": "none"}, lambda x: 0.5 * x * (1 + torch.erf(x / 2**0.5))


class ReLU(ActivationMethod):
    """ReLU, max(x, 0)."""

    name = "relu"
    paper = Paper(title="Rectified Linear Units Improve Restricted Boltzmann Machines",
                  claim="baseline activation")

    def build(self, site: MLPSite) -> nn.Module:
        return nn.ReLU()

    @classmethod
    def limit_case(cls):
        return {}, lambda x: torch.clamp(x, min=0)
