"""Block-sparse attention over selected key blocks per (batch, head, query block)."""

from __future__ import annotations

from typing import Any

import torch

from ..availability import triton_available
from ..dispatch import define_op, register_backend
from ..sample import Tolerance
from .blocks import AttnShape, attn_shape, block_mask, causal_blocks, mask_to_indices, token_mask
from .reference import block_sparse_attention_reference
from .samples import block_sparse_attention_samples

TRITON_BLOCKS = (16, 32, 64, 128)


def _triton_supports(q: Any, k: Any, v: Any, blocks: Any, *, block_size: int = 64, block_q: int | None = None,
                     **kwargs: Any) -> str | None:
    bq = block_size if block_q is None else block_q
    if block_size not in TRITON_BLOCKS or bq not in TRITON_BLOCKS:
        return f"block sizes ({bq} queries, {block_size} keys) must be one of {TRITON_BLOCKS}"
    if q.shape[-1] > 256:
        return f"head_dim {q.shape[-1]} > 256"
    if q.dtype not in (torch.float32, torch.float16, torch.bfloat16):
        return f"dtype {q.dtype} is not float32/float16/bfloat16"
    return None


block_sparse_attention = define_op(
    "block_sparse_attention",
    block_sparse_attention_reference,
    samples=block_sparse_attention_samples,
    differentiable=True,
    tol={torch.float32: Tolerance(2e-5, 2e-5), torch.bfloat16: Tolerance(1.6e-2, 1.6e-2)},
    grad_tol={torch.float32: Tolerance(1e-4, 1e-4), torch.bfloat16: Tolerance(3e-2, 3e-2)},
    description="attention restricted to selected key blocks (mask or indices), GQA, causal+offset, lse",
)

register_backend("block_sparse_attention", "triton",
                 "splice.kernels.sparse_attention.triton:block_sparse_attention_triton",
                 available=triton_available, supports=_triton_supports)

__all__ = [
    "AttnShape", "attn_shape", "block_mask", "block_sparse_attention", "block_sparse_attention_reference",
    "causal_blocks", "mask_to_indices", "token_mask",
]
