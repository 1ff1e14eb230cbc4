"""Shapes, block selections and causal limits shared by every block-sparse attention backend.

A selection is either a boolean mask (B|1, H|Hkv|1, T_blocks, S_blocks) or an index tensor
(B|1, H|Hkv|1, T_blocks, n) of key-block numbers padded with -1. A head dim of Hkv selects per
KV head (shared by the query heads of its GQA group). Either form is normalised to a full
(B, H, T_blocks, S_blocks) mask; duplicate indices select a block once.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..errors import KernelArgumentError


@dataclass(frozen=True)
class AttnShape:
    batch: int
    heads: int
    kv_heads: int
    q_len: int
    kv_len: int
    head_dim: int
    block_q: int
    block_k: int
    q_blocks: int
    k_blocks: int
    key_offset: int  # absolute position of query 0 among the keys (causal: query i sees keys <= i + offset)
    scale: float


def attn_shape(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    block_size: int,
    block_q: int | None,
    key_offset: int | None,
    scale: float | None,
) -> AttnShape:
    if q.dim() != 4 or k.dim() != 4 or v.dim() != 4:
        raise KernelArgumentError("block_sparse_attention: q, k, v must be 4-D (batch, heads, seq, head_dim)")
    b, h, t, d = q.shape
    bk_, hkv, s, dk = k.shape
    if v.shape != k.shape:
        raise KernelArgumentError(f"block_sparse_attention: v {tuple(v.shape)} must match k {tuple(k.shape)}")
    if bk_ != b or dk != d:
        raise KernelArgumentError(
            f"block_sparse_attention: k {tuple(k.shape)} does not fit q {tuple(q.shape)} (batch and head_dim must match)"
        )
    if hkv == 0 or h % hkv:
        raise KernelArgumentError(f"block_sparse_attention: {h} query heads are not a multiple of {hkv} KV heads")
    if not (q.dtype == k.dtype == v.dtype) or not q.is_floating_point():
        raise KernelArgumentError(f"block_sparse_attention: q, k, v must share one float dtype, got {q.dtype}, {k.dtype}, {v.dtype}")
    bq = block_size if block_q is None else block_q
    for name, val in (("block_size", block_size), ("block_q", bq)):
        if not isinstance(val, int) or val <= 0:
            raise KernelArgumentError(f"block_sparse_attention: {name} must be a positive int, got {val!r}")
    offset = s - t if key_offset is None else key_offset
    return AttnShape(b, h, hkv, t, s, d, bq, block_size, -(-t // bq), -(-s // block_size), int(offset),
                     d**-0.5 if scale is None else float(scale))


def block_mask(blocks: torch.Tensor, a: AttnShape) -> torch.Tensor:
    """The selection as a boolean (B, H, T_blocks, S_blocks) mask (possibly an expanded view)."""
    if blocks.dim() != 4:
        raise KernelArgumentError(f"block_sparse_attention: blocks must be 4-D, got shape {tuple(blocks.shape)}")
    nb, nh = blocks.shape[:2]
    if nb not in (1, a.batch) or nh not in (1, a.heads, a.kv_heads) or blocks.shape[2] != a.q_blocks:
        raise KernelArgumentError(
            f"block_sparse_attention: blocks of shape {tuple(blocks.shape)} do not fit (batch|1, heads|kv_heads|1, "
            f"{a.q_blocks} query blocks, ...) for q_len={a.q_len}, block_q={a.block_q}"
        )
    if blocks.dtype == torch.bool:
        if blocks.shape[3] != a.k_blocks:
            raise KernelArgumentError(
                f"block_sparse_attention: a block mask needs {a.k_blocks} key blocks (kv_len={a.kv_len}, "
                f"block_size={a.block_k}), got {blocks.shape[3]}"
            )
        mask = blocks
    elif not blocks.dtype.is_floating_point:
        idx = blocks.long()
        if idx.numel() and (int(idx.max()) >= a.k_blocks or int(idx.min()) < -1):
            raise KernelArgumentError(
                f"block_sparse_attention: block indices must lie in [0, {a.k_blocks}) or be -1 (padding)"
            )
        mask = torch.zeros(*idx.shape[:3], a.k_blocks + 1, dtype=torch.bool, device=idx.device)
        mask.scatter_(-1, torch.where(idx < 0, a.k_blocks, idx), True)  # -1 lands in a spare column
        mask = mask[..., : a.k_blocks]
    else:
        raise KernelArgumentError(f"block_sparse_attention: blocks must be bool (mask) or integer (indices), got {blocks.dtype}")
    if nh == a.kv_heads and nh != a.heads:
        mask = mask.repeat_interleave(a.heads // a.kv_heads, dim=1)
    return mask.expand(a.batch, a.heads, a.q_blocks, a.k_blocks)


def causal_blocks(a: AttnShape, device: torch.device) -> torch.Tensor:
    """(T_blocks, S_blocks): blocks holding at least one (query, key) pair causality allows."""
    last_query = torch.clamp((torch.arange(a.q_blocks, device=device) + 1) * a.block_q, max=a.q_len) - 1
    first_key = torch.arange(a.k_blocks, device=device) * a.block_k
    return first_key[None, :] <= (last_query + a.key_offset)[:, None]


def token_mask(mask: torch.Tensor, a: AttnShape, causal: bool) -> torch.Tensor:
    """(B, H, T, S) boolean mask of the (query, key) pairs that may attend."""
    allowed = mask.repeat_interleave(a.block_q, dim=2)[:, :, : a.q_len]
    allowed = allowed.repeat_interleave(a.block_k, dim=3)[..., : a.kv_len]
    if causal:
        qpos = torch.arange(a.q_len, device=mask.device) + a.key_offset
        kpos = torch.arange(a.kv_len, device=mask.device)
        allowed = allowed & (kpos[None, :] <= qpos[:, None])
    return allowed


def mask_to_indices(mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Sorted selected key blocks per (B, H, query block), -1 padded, and their counts (int32)."""
    n_blocks = mask.shape[-1]
    counts = mask.sum(-1, dtype=torch.int32)
    width = max(int(counts.max()) if counts.numel() else 0, 1)
    keyed = torch.where(mask, torch.arange(n_blocks, device=mask.device), n_blocks)
    idx = keyed.sort(dim=-1).values[..., :width]
    idx = torch.where(idx == n_blocks, -1, idx)
    return idx.to(torch.int32).contiguous(), counts.contiguous()
