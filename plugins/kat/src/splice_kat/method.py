"""The ``kat`` activation method: the whole MLP of every block becomes a KAT (GR-KAN) MLP."""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from splice.errors import ConfigError
from splice.kinds.activation import ActivationMethod, MLPSite
from splice.method import MethodConfig, Paper
from torch import nn

from .modules import KATMLP


class KATConfig(MethodConfig):
    groups: int = Field(8, gt=0, description="rational groups per GR-KAN layer (paper: 8)")
    init: Literal["swish", "identity"] = Field("swish", description="initial function of the second rational "
                                                                     "(the first is the identity)")
    form: Literal["paper", "pau_a"] = Field(
        "paper", description="denominator: paper = 1+|sum b_j x^j| (the paper's equation); pau_a = 1+sum |b_j||x|^j "
                             "(the official CUDA kernel)")
    width: Literal["param_matched", "site"] = Field(
        "param_matched", description="param_matched: intermediate size giving the site's MLP parameter count "
                                     "(x1.5 for a gated site, whose MLP has 3 matrices); site: the site's size")
    variance_preserving: bool = Field(True, description="variance-preserving init of the linears (paper); "
                                                        "False: N(0, 0.02)")


class KAT(ActivationMethod):
    """Kolmogorov-Arnold Transformer MLP: two group-rational KAN layers (safe Padé, Swish init)."""

    name = "kat"
    replaces = "mlp"
    Config = KATConfig
    paper = Paper(title="Kolmogorov-Arnold Transformer", arxiv="2409.10594",
                  claim="GR-KAN MLPs (group rationals, variance-preserving init) train at least as well as MLPs")

    @classmethod
    def limit_case(cls):
        """Default config: the module equals down(F2(up(F1(x)))) with each group's rational written
        out term by term, sum a_i x^i / (1 + |sum b_j x^j|) (the closed form, not the kernel's Horner)."""

        def rational(r, h: torch.Tensor) -> torch.Tensor:
            g = r.groups
            hg = h.reshape(*h.shape[:-1], g, h.shape[-1] // g)
            a, b = r.numerator.to(h.dtype), r.denominator.to(h.dtype)
            p = sum(a[:, i, None] * hg**i for i in range(a.shape[1]))
            if r.form == "paper":
                q = 1 + sum(b[:, j, None] * hg ** (j + 1) for j in range(b.shape[1])).abs()
            else:
                q = 1 + sum(b[:, j, None].abs() * hg.abs() ** (j + 1) for j in range(b.shape[1]))
            return (p / q).reshape(h.shape)

        def closed_form(m, x: torch.Tensor) -> torch.Tensor:
            return m.down(rational(m.act2, m.up(rational(m.act1, x))))

        return {}, closed_form

    def intermediate_size(self, site: MLPSite) -> int:
        c = self.config
        size = site.intermediate_size
        if c.width == "param_matched" and site.gated:
            size = round(1.5 * size / c.groups) * c.groups
        return size

    def build(self, site: MLPSite) -> nn.Module:
        c = self.config
        inter = self.intermediate_size(site)
        for what, n in (("hidden_size", site.hidden_size), ("intermediate size", inter)):
            if n % c.groups:
                raise ConfigError(f"kat: groups: {c.groups} does not divide the {what} {n} of layer {site.layer}")
        return KATMLP(site.hidden_size, inter, c.groups, c.init, c.form, bias=site.bias,
                      variance_preserving=c.variance_preserving)
