"""PolyNorm and PolyReLU as modules (Zhuo et al., ICLR 2025, arXiv 2411.03884).

With order r and learnable coefficients a_0..a_r:

    PolyReLU(x) = sum_{i=1..r} a_i ReLU(x)^i + a_0
    PolyNorm(x) = sum_{i=1..r} a_i N(x^i)    + a_0,   N(y) = y / sqrt(mean(y^2 over the last dim) + eps)

N is the RMS normalisation over the last (intermediate) dimension, as in the official code. The
coefficients are stored highest power first (``weight[0]`` multiplies the r-th power), the
official layout; the paper initialises a_i = 1/r (i >= 1) and a_0 = 0.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


def _compute_dtype(x: torch.Tensor) -> torch.dtype:
    """Half-precision inputs are computed in float32 (x^3 and its RMS overflow bf16/fp16 easily)."""
    return torch.promote_types(x.dtype, torch.float32)


def rms_normalize(y: torch.Tensor, eps: float) -> torch.Tensor:
    """y / sqrt(mean(y^2, last dim) + eps)."""
    return y * torch.rsqrt(y.pow(2).mean(-1, keepdim=True) + eps)


class _Poly(nn.Module):
    def __init__(self, order: int, weights: Sequence[float] | None = None, bias: float = 0.0) -> None:
        super().__init__()
        self.order = order
        self._init_w = list(weights) if weights is not None else [1.0 / order] * order
        if len(self._init_w) != order:
            raise ValueError(f"{len(self._init_w)} initial weights for a polynomial of order {order}")
        self._init_b = float(bias)
        self.weight = nn.Parameter(torch.empty(order))
        self.bias = nn.Parameter(torch.empty(1))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        with torch.no_grad():
            self.weight.copy_(torch.tensor(self._init_w, dtype=self.weight.dtype))
            self.bias.fill_(self._init_b)

    def extra_repr(self) -> str:
        return f"order={self.order}"


class PolyNorm(_Poly):
    """sum_i a_i N(x^i) + a_0 with N the RMS normalisation over the last dimension."""

    def __init__(self, order: int = 3, eps: float = 1e-6, weights: Sequence[float] | None = None,
                 bias: float = 0.0) -> None:
        super().__init__(order, weights, bias)
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dt = _compute_dtype(x)
        h = x.to(dt)
        out = self.bias.to(dt).expand_as(h)
        power = h
        for i in range(1, self.order + 1):  # weight[order - i] multiplies N(x^i)
            if i > 1:
                power = power * h
            out = out + self.weight[self.order - i].to(dt) * rms_normalize(power, self.eps)
        return out.to(x.dtype)


class PolyReLU(_Poly):
    """sum_i a_i ReLU(x)^i + a_0."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dt = _compute_dtype(x)
        r = torch.relu(x.to(dt))
        out = self.bias.to(dt).expand_as(r)
        power = r
        for i in range(1, self.order + 1):
            if i > 1:
                power = power * r
            out = out + self.weight[self.order - i].to(dt) * power
        return out.to(x.dtype)
