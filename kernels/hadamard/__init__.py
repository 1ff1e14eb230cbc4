"""Fast Walsh-Hadamard transform (sizes 2^k and 2^k * {12, 20, 28}) and its dense matrix."""

from __future__ import annotations

from typing import Any

import torch

from ..availability import triton_available
from ..dispatch import define_op, register_backend
from ..sample import Tolerance
from .matrices import (
    CORES,
    core_matrix,
    hadamard_matrix,
    is_supported_size,
    paley_i,
    paley_ii,
    split_size,
    sylvester,
)
from .reference import hadamard_reference
from .samples import hadamard_samples

# One program holds a whole row (padded core x power of two) in registers.
MAX_TILE = 1 << 16


def _triton_supports(x: Any, *args: Any, **kwargs: Any) -> str | None:
    if not is_supported_size(x.shape[-1]):
        return None  # let the kernel raise the same argument error as the reference
    m, p = split_size(x.shape[-1])
    padded = (1 << (m - 1).bit_length()) * p
    if padded > MAX_TILE:
        return f"row of {x.shape[-1]} (padded {padded}) exceeds the triton kernel's tile of {MAX_TILE}"
    return None


hadamard_transform = define_op(
    "hadamard",
    hadamard_reference,
    samples=hadamard_samples,
    differentiable=True,
    tol={torch.float32: Tolerance(1e-5, 1e-5), torch.bfloat16: Tolerance(1.6e-2, 1e-2)},
    description="Walsh-Hadamard transform along the last dim, n = 2^k or 2^k*{12,20,28}",
)

register_backend("hadamard", "triton", "splice.kernels.hadamard.triton:hadamard_triton",
                 available=triton_available, supports=_triton_supports)

__all__ = [
    "CORES", "core_matrix", "hadamard_matrix", "hadamard_reference", "hadamard_transform",
    "is_supported_size", "paley_i", "paley_ii", "split_size", "sylvester",
]
