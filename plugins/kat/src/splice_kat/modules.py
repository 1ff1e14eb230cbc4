"""GR-KAN layers and the KAT MLP (Yang & Wang, Kolmogorov-Arnold Transformer, arXiv 2409.10594).

A GR-KAN layer is a group-wise learnable rational followed by a linear map:
    GR-KAN(x) = W F(x) (+ bias),
where the input channels are split into G groups and the channels of a group share one safe
Padé rational F_g (m = 5, n = 4). KAT replaces the transformer MLP by two GR-KAN layers:

    KATMLP(x) = down( F2( up( F1(x) ) ) )

with F1 initialised to the identity and F2 to Swish (the paper's kat_*_swish models), and the
linears initialised variance-preserving: Var[W] = 1 / (fan_in * E[F(z)^2]), z ~ N(0, 1), so the
second moment of the activations is kept from layer to layer (E[F(z)^2] by Gauss-Hermite
quadrature of the actual initial rational).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .init import INITS
from .kernels import kat_rational
from .rational import Form, mean_square_under_normal


class GroupRational(nn.Module):
    """F_g(x) on the channels of group g of the last dimension; G×6 numerator, G×4 denominator."""

    def __init__(self, channels: int, groups: int = 8, init: str = "swish", form: Form = "paper") -> None:
        super().__init__()
        if channels % groups:
            raise ValueError(f"{channels} channels do not split into {groups} groups")
        if init not in INITS[form]:
            raise ValueError(f"unknown rational init {init!r} (known: {', '.join(INITS[form])})")
        self.channels, self.groups, self.init, self.form = channels, groups, init, form
        a, b = INITS[form][init]
        self.numerator = nn.Parameter(torch.empty(groups, len(a)))
        self.denominator = nn.Parameter(torch.empty(groups, len(b)))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        a, b = INITS[self.form][self.init]
        with torch.no_grad():
            self.numerator.copy_(torch.tensor(a, dtype=self.numerator.dtype).expand_as(self.numerator))
            self.denominator.copy_(torch.tensor(b, dtype=self.denominator.dtype).expand_as(self.denominator))

    def init_mean_square(self) -> float:
        """E[F(z)^2], z ~ N(0, 1), of the initial rational."""
        a, b = INITS[self.form][self.init]
        return mean_square_under_normal(a, b, self.form)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return kat_rational(x, self.numerator, self.denominator, form=self.form)

    def extra_repr(self) -> str:
        return f"channels={self.channels}, groups={self.groups}, init={self.init}, form={self.form}"


class KATMLP(nn.Module):
    """hidden -> hidden: down(F2(up(F1(x)))), two GR-KAN layers (the KAT MLP)."""

    def __init__(self, hidden: int, intermediate: int, groups: int = 8, init: str = "swish", form: Form = "paper",
                 bias: bool = False, variance_preserving: bool = True) -> None:
        super().__init__()
        self.variance_preserving = variance_preserving
        self.act1 = GroupRational(hidden, groups, "identity", form)
        self.up = nn.Linear(hidden, intermediate, bias=bias)
        self.act2 = GroupRational(intermediate, groups, init, form)
        self.down = nn.Linear(intermediate, hidden, bias=bias)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        self.act1.reset_parameters()
        self.act2.reset_parameters()
        for lin, act in ((self.up, self.act1), (self.down, self.act2)):
            if self.variance_preserving:
                std = 1.0 / math.sqrt(lin.in_features * act.init_mean_square())
            else:  # the decoder's default init, for ablations
                std = 0.02
            nn.init.normal_(lin.weight, std=std)
            if lin.bias is not None:
                nn.init.zeros_(lin.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down(self.act2(self.up(self.act1(x))))
