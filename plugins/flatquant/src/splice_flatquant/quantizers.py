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
from splice.kernels.fake_quant import SCALE_FLOOR, round_ste
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
        return lwc_clip(w, self.clip_max, self.clip_min)[0]


def lwc_clip(w: torch.Tensor, clip_max: torch.Tensor, clip_min: torch.Tensor):
    """Clamp each row of ``w`` to [sigmoid(clip_min) min(w), sigmoid(clip_max) max(w)] (the official
    ``apply_wclip``). Returns the clipped weight and its exact per-row max and min (the clamp is
    monotone, so max(clamp(w)) = clamp(max(w))), which spares the quantizer another pass over w.

    Row max/min take the gradient to one arg-max element (``torch.max(dim)``, as the official code);
    the clipping bounds are ordinary autograd tensors."""
    mx = w.max(1, keepdim=True)[0]
    mn = w.min(1, keepdim=True)[0]
    hi = mx * torch.sigmoid(clip_max.to(w.dtype))
    lo = mn * torch.sigmoid(clip_min.to(w.dtype))
    return torch.clamp(w, lo, hi), torch.clamp(mx, lo, hi), torch.clamp(mn, lo, hi)


def rows_fake_quant(w: torch.Tensor, bits: int, symmetric: bool, row_max: torch.Tensor,
                    row_min: torch.Tensor) -> torch.Tensor:
    """Per-row round-to-nearest of ``w`` given its (exact) per-row max and min: the same grid and
    straight-through rounding as ``splice.kernels.fake_quant`` (tested against it), without the
    reductions over w."""
    if bits >= 16:
        return w
    if symmetric:
        levels = 2.0 ** (bits - 1) - 1
        scale = (torch.maximum(row_max.abs(), row_min.abs()) / levels).clamp_min(SCALE_FLOOR)
        return round_ste(w / scale).clamp(-(2.0 ** (bits - 1)), levels) * scale
    levels = 2.0**bits - 1
    hi, lo = row_max.clamp_min(0.0), row_min.clamp_max(0.0)
    scale = ((hi - lo) / levels).clamp_min(SCALE_FLOOR)
    zero = round_ste(-lo / scale).clamp(0.0, levels)
    return ((round_ste(w / scale) + zero).clamp(0.0, levels) - zero) * scale


def weight_fake_quant(w: torch.Tensor, bits: int, symmetric: bool) -> torch.Tensor:
    """Per-output-channel round-to-nearest with straight-through rounding (splice.kernels)."""
    if bits >= 16:
        return w
    return kernel_fake_quant(w, bits, symmetric=symmetric)
