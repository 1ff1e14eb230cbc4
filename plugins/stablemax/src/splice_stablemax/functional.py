"""StableMax, its log and its cross-entropy.

    s(x) = x + 1        for x >= 0
           1 / (1 - x)  for x <  0
    StableMax(x)_i = s(x_i) / sum_j s(x_j)

s grows linearly instead of exponentially, so the probability of the correct class stays away
from 1 in floating point far longer than softmax's, and the cross-entropy gradient does not
round to exactly zero ("softmax collapse"). Both branches are evaluated on clamped inputs, so
neither produces inf/NaN that could leak into the gradient through ``torch.where``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def s(x: torch.Tensor) -> torch.Tensor:
    """The StableMax kernel: x + 1 for x >= 0, 1/(1 - x) for x < 0 (continuous, C^1 at 0)."""
    return torch.where(x >= 0, x.clamp(min=0) + 1, 1 / (1 - x.clamp(max=0)))


def log_s(x: torch.Tensor) -> torch.Tensor:
    """log s(x), without forming s(x): log1p(x) for x >= 0, -log1p(-x) for x < 0."""
    return torch.where(x >= 0, torch.log1p(x.clamp(min=0)), -torch.log1p((-x).clamp(min=0)))


def log_stablemax(x: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """log StableMax(x) = log s(x) - log sum s(x)."""
    return log_s(x) - torch.log(s(x).sum(dim=dim, keepdim=True))


def stablemax(x: torch.Tensor, dim: int = -1) -> torch.Tensor:
    sx = s(x)
    return sx / sx.sum(dim=dim, keepdim=True)


def stablemax_cross_entropy(logits: torch.Tensor, labels: torch.Tensor, *, ignore_index: int = -100,
                            reduction: str = "mean", dtype: torch.dtype | None = torch.float64) -> torch.Tensor:
    """The paper's StableMax cross-entropy, -log StableMax(logits)[label].

    ``logits``: N×C (or any ...×C with labels ...). The official code computes it in float64
    (``dtype``); pass ``dtype=None`` to compute in the logits' own precision. The result has the
    logits' dtype.
    """
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"reduction must be mean, sum or none (got {reduction!r})")
    x = logits if dtype is None else logits.to(dtype)
    lp = log_stablemax(x, dim=-1)
    loss = F.nll_loss(lp.reshape(-1, lp.shape[-1]), labels.reshape(-1).long(), ignore_index=ignore_index,
                      reduction=reduction)
    if reduction == "none":
        loss = loss.view(labels.shape)
    return loss.to(logits.dtype)
