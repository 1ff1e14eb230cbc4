"""Fake quantization in plain PyTorch: the definition every other backend must reproduce."""

from __future__ import annotations

import torch

from .args import SCALE_FLOOR, grouping


class _RoundSTE(torch.autograd.Function):
    """round() forward, identity backward (the straight-through estimator)."""

    @staticmethod
    def forward(ctx: torch.autograd.function.FunctionCtx, t: torch.Tensor) -> torch.Tensor:
        return torch.round(t)

    @staticmethod
    def backward(ctx: torch.autograd.function.FunctionCtx, grad: torch.Tensor) -> torch.Tensor:
        return grad


def round_ste(t: torch.Tensor) -> torch.Tensor:
    return _RoundSTE.apply(t)


def fake_quant_reference(
    x: torch.Tensor,
    bits: int = 4,
    *,
    symmetric: bool = True,
    group_size: int | None = None,
    clip_max: torch.Tensor | None = None,
    clip_min: torch.Tensor | None = None,
) -> torch.Tensor:
    """Quantize-dequantize ``x`` to a ``bits``-bit grid along its last dimension.

    Groups are ``group_size`` consecutive elements of the last dim; ``None`` means the whole row,
    which is per-output-channel for an (out, in) weight and per-token for (..., hidden)
    activations. Each group gets its own scale (and zero point if asymmetric):

    - symmetric: ``s = sigmoid(clip_max) * max|x| / (2^(b-1)-1)``, ``q = clamp(round(x/s), -2^(b-1), 2^(b-1)-1)``
    - asymmetric: range ``[sigmoid(clip_min) * min(x, 0), sigmoid(clip_max) * max(x, 0)]``,
      ``s = range / (2^b-1)``, ``z = round(-lo/s)``, ``q = clamp(round(x/s) + z, 0, 2^b-1)``,
      output ``(q - z) * s``.

    ``clip_max``/``clip_min`` are learnable clipping logits (OmniQuant LWC, FlatQuant LAC),
    broadcastable to the per-group statistics ``x.shape[:-1] + (groups,)``; None means no
    clipping. Rounding passes gradients straight through, so gradients reach ``x`` (including
    through the group's max/min) and the clipping logits. Math is in float32; the result has
    ``x``'s dtype.
    """
    g = grouping(x, bits, symmetric, group_size, clip_max, clip_min)
    xg = x.float().reshape(*g.stats_shape, g.group_size)
    if symmetric:
        amax = xg.abs().amax(-1)
        if clip_max is not None:
            amax = amax * torch.sigmoid(clip_max.float())
        scale = (amax / g.levels).clamp_min(SCALE_FLOOR).unsqueeze(-1)
        q = round_ste(xg / scale).clamp(g.qmin, g.qmax)
        y = q * scale
    else:
        hi = xg.amax(-1).clamp_min(0.0)
        lo = xg.amin(-1).clamp_max(0.0)
        if clip_max is not None:
            hi = hi * torch.sigmoid(clip_max.float())
        if clip_min is not None:
            lo = lo * torch.sigmoid(clip_min.float())
        scale = ((hi - lo) / g.levels).clamp_min(SCALE_FLOOR).unsqueeze(-1)
        zero = round_ste(-lo.unsqueeze(-1) / scale).clamp(g.qmin, g.qmax)
        q = (round_ste(xg / scale) + zero).clamp(g.qmin, g.qmax)
        y = (q - zero) * scale
    return y.reshape(x.shape).to(x.dtype)
