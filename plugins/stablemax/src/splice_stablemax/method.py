"""The ``stablemax`` activation method: StableMax as the model's output normaliser.

It installs at ``Decoder.output_act`` and returns log StableMax(logits). Since
softmax(log p) = p, every softmax-based loss and evaluator downstream (``splice train``'s
cross-entropy, perplexity, answer probabilities) computes StableMax probabilities unchanged, and
``F.cross_entropy`` on these values is the StableMax cross-entropy, with the same gradient as
the paper's loss (tests/test_stablemax_numerics.py checks this against the float64 formula).
"""

from __future__ import annotations

import torch
from splice.kinds.activation import ActivationMethod, MLPSite
from splice.method import Paper
from torch import nn

from .functional import log_stablemax


class LogStableMax(nn.Module):
    """logits -> log StableMax(logits) over the last dimension (no parameters).

    Computed in float64 and returned in the input's dtype: log p of a class whose probability is
    close to 1 is a small difference of two large logarithms, which float32 would resolve only to
    ~1e-6; in float64 each log-probability is exact to the precision of the returned dtype. What
    remains is the float32 renormalisation inside a downstream ``F.cross_entropy`` (~1e-7
    absolute on the correct class's gradient); ``stablemax_cross_entropy`` is the paper's float64
    loss without it.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return log_stablemax(x.to(torch.promote_types(x.dtype, torch.float64)), dim=-1).to(x.dtype)


class StableMax(ActivationMethod):
    """StableMax output normaliser s(x)/sum s(x), s(x) = x+1 (x>=0), 1/(1-x) (x<0)."""

    name = "stablemax"
    replaces = "output"
    paper = Paper(title="Grokking at the Edge of Numerical Stability", arxiv="2501.04697",
                  claim="softmax cross-entropy gradients vanish in float32 (softmax collapse) where StableMax's do "
                        "not; with StableMax or ⊥Grad, modular addition groks without weight decay")

    def build(self, site: MLPSite) -> nn.Module:
        return LogStableMax()

    @classmethod
    def limit_case(cls):
        def closed_form(x: torch.Tensor) -> torch.Tensor:
            h = x.double()
            sx = torch.where(h >= 0, h.clamp(min=0) + 1, 1 / (1 - h.clamp(max=0)))
            return torch.log(sx / sx.sum(-1, keepdim=True)).to(x.dtype)

        return {}, closed_form
