"""Fake quantization (quantize-dequantize) with learnable clipping and straight-through rounding."""

from __future__ import annotations

from typing import Any

import torch

from ..availability import triton_available
from ..dispatch import define_op, register_backend
from ..sample import Tolerance
from .args import MAX_GROUP, SCALE_FLOOR
from .reference import fake_quant_reference, round_ste
from .samples import fake_quant_samples


def _triton_supports(x: Any, *args: Any, group_size: int | None = None, **kwargs: Any) -> str | None:
    size = x.shape[-1] if group_size in (None, -1) else group_size
    if isinstance(size, int) and size > MAX_GROUP:
        return f"group of {size} elements exceeds the triton kernel's {MAX_GROUP}"
    return None


fake_quant = define_op(
    "fake_quant",
    fake_quant_reference,
    samples=fake_quant_samples,
    differentiable=True,
    # Both backends do the same fp32 operations, so agreement is to rounding, except where a
    # quotient sits on a rounding tie and two correct kernels pick different grid points.
    tol={torch.float32: Tolerance(1e-5, 1e-6), torch.bfloat16: Tolerance(1.6e-2, 1e-2)},
    grad_tol={torch.float32: Tolerance(1e-4, 1e-5), torch.bfloat16: Tolerance(1.6e-2, 1e-2)},
    mismatch_budget=2e-3,
    description="quantize-dequantize, sym/asym, per-channel/group/token, learnable clipping, STE",
)

register_backend("fake_quant", "triton", "splice.kernels.fake_quant.triton:fake_quant_triton",
                 available=triton_available, supports=_triton_supports)

__all__ = ["SCALE_FLOOR", "fake_quant", "fake_quant_reference", "round_ste"]
