"""The ``polycom`` activation method: PolyNorm (default) or PolyReLU at every MLP site."""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import Field, model_validator
from splice.kinds.activation import ActivationMethod, MLPSite
from splice.method import MethodConfig, Paper
from torch import nn

from .modules import PolyNorm, PolyReLU, rms_normalize


class PolyComConfig(MethodConfig):
    variant: Literal["polynorm", "polyrelu"] = Field(
        "polynorm", description="polynorm: sum a_i N(x^i) + a_0; polyrelu: sum a_i ReLU(x)^i + a_0")
    order: int = Field(3, ge=1, le=8, description="polynomial order r (paper: 3)")
    eps: float = Field(1e-6, gt=0, description="PolyNorm's RMS-normalisation epsilon (official code: 1e-6)")
    weights: list[float] | None = Field(
        None, description="initial a_r..a_1, highest power first (default: 1/r each, the paper's init)")
    bias: float = Field(0.0, description="initial a_0 (paper: 0)")

    @model_validator(mode="after")
    def _weights_match_order(self) -> PolyComConfig:
        if self.weights is not None and len(self.weights) != self.order:
            raise ValueError(f"weights has {len(self.weights)} entries; order {self.order} needs {self.order} "
                             "(highest power first)")
        return self


class PolyCom(ActivationMethod):
    """Polynomial composition activations: PolyNorm / PolyReLU, learnable per MLP site."""

    name = "polycom"
    replaces = "act"
    Config = PolyComConfig
    paper = Paper(title="Polynomial Composition Activations: Unleashing the Dynamics of Large Language Models",
                  arxiv="2411.03884",
                  claim="PolyNorm/PolyReLU converge faster and reach lower loss than SwiGLU at equal parameters")

    def build(self, site: MLPSite) -> nn.Module:
        c = self.config
        if c.variant == "polynorm":
            return PolyNorm(c.order, c.eps, c.weights, c.bias)
        return PolyReLU(c.order, c.weights, c.bias)

    @classmethod
    def limit_case(cls):
        # PolyNorm with (a_3, a_2, a_1) = (0, 0, 1), a_0 = 0 is the RMS normalisation of x.
        return ({"variant": "polynorm", "weights": [0.0, 0.0, 1.0], "bias": 0.0},
                lambda x: rms_normalize(x.to(torch.promote_types(x.dtype, torch.float32)), 1e-6).to(x.dtype))
