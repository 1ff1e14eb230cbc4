"""The fused online transform + activation quantization, in plain PyTorch (the definition)."""

from __future__ import annotations

import torch


def _check(x: torch.Tensor, left: torch.Tensor, right: torch.Tensor | None, bits: int) -> tuple[int, int]:
    if not isinstance(bits, int) or not 2 <= bits <= 8:
        raise ValueError(f"kron_quant: bits must be an int in 2..8, got {bits!r}")
    if left.dim() != 2 or left.shape[0] != left.shape[1]:
        raise ValueError(f"kron_quant: left must be square, got {tuple(left.shape)}")
    n1 = left.shape[0]
    n = x.shape[-1]
    if n % n1:
        raise ValueError(f"kron_quant: last dim {n} is not a multiple of left's size {n1}")
    n2 = n // n1
    if right is not None and tuple(right.shape) != (n2, n2):
        raise ValueError(f"kron_quant: right must be {n2} x {n2} for a last dim of {n}, got {tuple(right.shape)}")
    return n1, n2


def kron_quant_reference(
    x: torch.Tensor,
    left: torch.Tensor,
    right: torch.Tensor | None = None,
    *,
    bits: int = 4,
    symmetric: bool = True,
    clip_max: torch.Tensor | None = None,
    clip_min: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Transform each row of ``x`` by ``kron(left, right)`` and quantize it per row (per token).

    ``y = x @ kron(left, right)`` is computed as ``left^T X right`` on the n1 x n2 reshape of each
    row (``right`` None = identity). Each row gets FlatQuant's clipped range
    ``hi = sigmoid(clip_max) * max(y, 0)``, ``lo = sigmoid(clip_min) * min(y, 0)`` (logits: 1-element
    tensors; None = no clipping) and:

    - symmetric: ``s = max(-lo, hi) / (2^(b-1) - 1)`` (1 for an all-zero row), codes
      ``q = clamp(round(y / s), -2^(b-1), 2^(b-1) - 1)`` (int8), zero point 0;
    - asymmetric: ``s = (hi - lo) / (2^b - 1)``, ``z = round(-lo / s)``, codes
      ``q = clamp(round(y / s) + z, 0, 2^b - 1)`` (uint8).

    Returns ``(codes, scale, zero)``: codes shaped like x, scale and zero float32 of shape
    ``x.shape[:-1] + (1,)``; ``(codes - zero) * scale`` dequantizes. Math in float32; round half to even.
    """
    n1, n2 = _check(x, left, right, bits)
    shape = x.shape
    xm = x.float().reshape(-1, n1, n2)
    if right is not None:
        xm = torch.matmul(xm, right.float())
    y = torch.matmul(left.float().T, xm).reshape(-1, n1 * n2)
    hi = y.amax(-1, keepdim=True).clamp(min=0)
    lo = y.amin(-1, keepdim=True).clamp(max=0)
    if clip_max is not None:
        hi = hi * torch.sigmoid(clip_max.float().reshape(1, 1))
    if clip_min is not None:
        lo = lo * torch.sigmoid(clip_min.float().reshape(1, 1))
    if symmetric:
        top = torch.maximum(-lo, hi)
        scale = torch.where(top == 0, torch.ones_like(top), top / (2 ** (bits - 1) - 1))
        codes = torch.clamp(torch.round(y / scale), -(2 ** (bits - 1)), 2 ** (bits - 1) - 1).to(torch.int8)
        zero = torch.zeros_like(scale)
    else:
        flat = (hi == 0) & (lo == 0)
        hi = torch.where(flat, torch.ones_like(hi), hi)
        lo = torch.where(flat, -torch.ones_like(lo), lo)
        scale = (hi - lo) / (2**bits - 1)
        zero = torch.round(-lo / scale)
        codes = torch.clamp(torch.round(y / scale) + zero, 0, 2**bits - 1).to(torch.uint8)
    lead = shape[:-1]
    return codes.reshape(shape), scale.reshape(*lead, 1), zero.reshape(*lead, 1)


def dequantize(codes: torch.Tensor, scale: torch.Tensor, zero: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    return ((codes.float() - zero) * scale).to(dtype)
