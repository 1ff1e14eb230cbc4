"""Fake quantizers with FlatQuant's learnable clipping, used while calibrating.

- LAC (learnable activation clipping): one pair of logits per quantizer (c_max, c_min), initialised
  at 4 (sigmoid 0.982); each token's range is [sigmoid(c_min) min(x, 0), sigmoid(c_max) max(x, 0)].
  Symmetric grids take the larger side: s = max(-lo, hi) / (2^(b-1) - 1); asymmetric ones the
  range: s = (hi - lo) / (2^b - 1), z = round(-lo / s). Used per token for linear inputs and per
  (token, head[, group]) for keys and values.
- LWC (learnable weight clipping): per output channel logits, initialised at 4, clamp each row of
  the transformed weight to [sigmoid(c_min) min(w), sigmoid(c_max) max(w)] before per-channel
  round-to-nearest; the step size follows the clamped range, so gradients reach the logits.

Rounding is straight-through; gradients also flow through the range statistics (as in the paper's
code). ``lac_codes`` is the inference-time form: integer codes and per-row scale/zero.
"""

from __future__ import annotations

import torch
from splice.kernels import fake_quant as kernel_fake_quant
from splice.kernels.fake_quant import round_ste
from torch import nn

INIT_CLIP = 4.0  # the paper's initial clipping logit: sigmoid(4) = 0.982


def lac_range(x: torch.Tensor, clip_max: torch.Tensor | None, clip_min: torch.Tensor | None):
    hi = x.amax(-1, keepdim=True).clamp(min=0)
    lo = x.amin(-1, keepdim=True).clamp(max=0)
    if clip_max is not None:
        hi = hi * torch.sigmoid(clip_max)
    if clip_min is not None:
        lo = lo * torch.sigmoid(clip_min)
    return hi, lo


def lac_params(x: torch.Tensor, bits: int, symmetric: bool, clip_max=None, clip_min=None):
    """Per-row (last dim) scale and zero point; rows of zeros get scale 1."""
    hi, lo = lac_range(x, clip_max, clip_min)
    if symmetric:
        top = torch.maximum(-lo, hi)
        scale = top / (2 ** (bits - 1) - 1)
        scale = torch.where(top == 0, torch.ones_like(scale), scale)
        zero = torch.zeros_like(scale)
    else:
        flat = (hi == 0) & (lo == 0)
        hi = torch.where(flat, torch.ones_like(hi), hi)
        lo = torch.where(flat, -torch.ones_like(lo), lo)
        scale = (hi - lo) / (2**bits - 1)
        zero = torch.round(-lo / scale).detach()
    return scale, zero


def lac_fake_quant(x: torch.Tensor, bits: int, symmetric: bool, clip_max=None, clip_min=None,
                   group_size: int = -1) -> torch.Tensor:
    """Quantize-dequantize per row (or per group of ``group_size`` along the last dim)."""
    if bits >= 16:
        return x
    shape = x.shape
    g = shape[-1] if group_size in (-1, 0) else group_size
    xg = x.float().reshape(*shape[:-1], shape[-1] // g, g)
    scale, zero = lac_params(xg, bits, symmetric, clip_max, clip_min)
    if symmetric:
        q = torch.clamp(round_ste(xg / scale), -(2 ** (bits - 1)), 2 ** (bits - 1) - 1) * scale
    else:
        q = (torch.clamp(round_ste(xg / scale) + zero, 0, 2**bits - 1) - zero) * scale
    return q.reshape(shape).to(x.dtype)


class LAC(nn.Module):
    """A learnable-activation-clipping quantizer (trainable during calibration)."""

    def __init__(self, bits: int, symmetric: bool, group_size: int = -1, learnable: bool = True) -> None:
        super().__init__()
        self.bits, self.symmetric, self.group_size = bits, symmetric, group_size
        if learnable:
            self.clip_max = nn.Parameter(torch.full((1,), INIT_CLIP))
            self.clip_min = nn.Parameter(torch.full((1,), INIT_CLIP))
        else:
            self.clip_max = self.clip_min = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return lac_fake_quant(x, self.bits, self.symmetric, self.clip_max, self.clip_min, self.group_size)


class LWC(nn.Module):
    """Learnable weight clipping for a weight of ``rows`` output channels."""

    def __init__(self, rows: int) -> None:
        super().__init__()
        self.clip_max = nn.Parameter(torch.full((rows, 1), INIT_CLIP))
        self.clip_min = nn.Parameter(torch.full((rows, 1), INIT_CLIP))

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        hi = w.amax(1, keepdim=True) * torch.sigmoid(self.clip_max.to(w.dtype))
        lo = w.amin(1, keepdim=True) * torch.sigmoid(self.clip_min.to(w.dtype))
        return torch.maximum(torch.minimum(w, hi), lo)


def weight_fake_quant(w: torch.Tensor, bits: int, symmetric: bool) -> torch.Tensor:
    """Per-output-channel round-to-nearest with straight-through rounding (splice.kernels)."""
    if bits >= 16:
        return w
    return kernel_fake_quant(w, bits, symmetric=symmetric)
