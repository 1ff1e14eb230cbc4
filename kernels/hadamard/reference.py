"""Fast Walsh-Hadamard transform in plain PyTorch, O(n log n): the core H_m as a small matmul,
then log2(p) butterfly stages over the power-of-two factor."""

from __future__ import annotations

import torch

from .matrices import core_matrix, split_size


def hadamard_reference(x: torch.Tensor, *, normalize: bool = True) -> torch.Tensor:
    """Hadamard transform along the last dim: ``x @ hadamard_matrix(n).T`` (times 1/sqrt(n) if
    ``normalize``, which makes it orthonormal and self-inverse up to transpose).

    n = x.shape[-1] must be 2^k or 2^k * {12, 20, 28}. Computed in float32; returns x's dtype.
    Linear, so gradients are the transposed transform.
    """
    n = x.shape[-1]
    m, p = split_size(n)
    lead = x.shape[:-1]
    y = x.float().reshape(-1, m, p)
    if m > 1:
        y = torch.matmul(core_matrix(m).to(device=x.device, dtype=torch.float32), y)
    h = 1
    while h < p:
        y = y.reshape(-1, m, p // (2 * h), 2, h)
        a, b = y[..., 0, :], y[..., 1, :]
        y = torch.stack((a + b, a - b), dim=-2)
        h *= 2
    y = y.reshape(*lead, n)
    if normalize:
        y = y * n**-0.5
    return y.to(x.dtype)
