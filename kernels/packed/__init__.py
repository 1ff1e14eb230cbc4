"""Packed int2/int4/int8 weights and the dequantize-matmul op on them."""

from __future__ import annotations

from typing import Any

import torch

from ..availability import triton_available
from ..dispatch import define_op, register_backend
from ..sample import Tolerance
from .reference import dequant_matmul_reference
from .samples import dequant_matmul_samples
from .storage import PACKABLE_BITS, PackedWeight, dequantize_weight, pack, quantize_weight, unpack


def _triton_supports(x: Any, packed: Any = None, scales: Any = None, zeros: Any = None, *args: Any,
                     **kwargs: Any) -> str | None:
    if x.dtype not in (torch.float32, torch.float16, torch.bfloat16):
        return f"x dtype {x.dtype} is not float32/float16/bfloat16"
    grads = [t for t in (scales, zeros) if isinstance(t, torch.Tensor) and t.requires_grad]
    if torch.is_grad_enabled() and grads:
        return "the triton backend differentiates x only; scales/zeros require grad"
    return None


dequant_matmul = define_op(
    "dequant_matmul",
    dequant_matmul_reference,
    samples=dequant_matmul_samples,
    differentiable=True,
    # Same products, different summation order over K.
    tol={torch.float32: Tolerance(1e-4, 1e-5), torch.bfloat16: Tolerance(1.6e-2, 1e-2)},
    description="x @ W.T for packed 2/4/8-bit weights with per-group scales and zero points",
)

register_backend("dequant_matmul", "triton", "splice.kernels.packed.triton:dequant_matmul_triton",
                 available=triton_available, supports=_triton_supports)

__all__ = [
    "PACKABLE_BITS", "PackedWeight", "dequant_matmul", "dequant_matmul_reference", "dequantize_weight",
    "pack", "quantize_weight", "unpack",
]
