"""Dequantize-then-matmul in plain PyTorch."""

from __future__ import annotations

import torch

from ..errors import KernelArgumentError
from .storage import dequantize_weight


def dequant_matmul_reference(
    x: torch.Tensor,
    packed: torch.Tensor,
    scales: torch.Tensor,
    zeros: torch.Tensor | None,
    group_size: int | None,
    bits: int,
) -> torch.Tensor:
    """``x @ W.T`` for a packed (N, K) weight W (see ``splice.kernels.packed.storage``).

    x is (..., K); the result is (..., N) in x's dtype, accumulated in float32. Differentiable
    with respect to x (and, in this reference, scales and zeros).
    """
    w = dequantize_weight(packed, scales, zeros, group_size, bits)
    if x.shape[-1] != w.shape[1]:
        raise KernelArgumentError(f"dequant_matmul: x has {x.shape[-1]} features, the weight expects {w.shape[1]}")
    return (x.float() @ w.T).to(x.dtype)
