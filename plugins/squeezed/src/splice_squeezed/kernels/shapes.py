"""Argument checks shared by every backend of the two Squeezed Attention kernels."""

from __future__ import annotations

import torch
from splice.kernels import KernelArgumentError


def check_lookup(q: torch.Tensor, centroids: torch.Tensor, log_sizes: torch.Tensor,
                 group_size: int) -> tuple[int, int, int, int, int, int]:
    """(B, H, T, D, K, G) after checking the centroid-lookup arguments."""
    if q.dim() != 4 or centroids.dim() != 4 or log_sizes.dim() != 4:
        raise KernelArgumentError("squeezed_centroid_scores: q, centroids, log_sizes must be 4-D")
    b, h, t, d = q.shape
    cb, hkv, k, cd = centroids.shape
    if cb != b or cd != d or hkv == 0 or h % hkv:
        raise KernelArgumentError(f"squeezed_centroid_scores: centroids {tuple(centroids.shape)} do not fit q "
                                  f"{tuple(q.shape)} (batch, head_dim equal; query heads a multiple of KV heads)")
    if not isinstance(group_size, int) or group_size <= 0 or t % group_size:
        raise KernelArgumentError(f"squeezed_centroid_scores: group_size {group_size!r} must be a positive "
                                  f"divisor of the {t} queries")
    g = t // group_size
    if tuple(log_sizes.shape) != (b, h, g, k):
        raise KernelArgumentError(f"squeezed_centroid_scores: log_sizes {tuple(log_sizes.shape)} must be "
                                  f"B×H×G×K = {(b, h, g, k)}")
    if not q.is_floating_point() or not centroids.is_floating_point():
        raise KernelArgumentError("squeezed_centroid_scores: q and centroids must be floating point")
    return b, h, t, d, k, g


def check_selected(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, idx: torch.Tensor, prefix_length: int,
                   group_size: int, key_offset: int | None) -> tuple[int, int, int, int, int, int]:
    """(B, H, T, D, S, key_offset) after checking the selected-attention arguments."""
    if q.dim() != 4 or k.dim() != 4 or v.dim() != 4 or idx.dim() != 4:
        raise KernelArgumentError("squeezed_selected_attention: q, k, v, idx must be 4-D")
    b, h, t, d = q.shape
    kb, hkv, s, kd = k.shape
    if v.shape != k.shape or kb != b or kd != d or hkv == 0 or h % hkv:
        raise KernelArgumentError(f"squeezed_selected_attention: k {tuple(k.shape)} / v {tuple(v.shape)} do not "
                                  f"fit q {tuple(q.shape)}")
    if not (q.dtype == k.dtype == v.dtype) or not q.is_floating_point():
        raise KernelArgumentError("squeezed_selected_attention: q, k, v must share one float dtype")
    if not 0 <= prefix_length <= s:
        raise KernelArgumentError(f"squeezed_selected_attention: prefix_length {prefix_length} outside [0, {s}]")
    if not isinstance(group_size, int) or group_size <= 0 or t % group_size:
        raise KernelArgumentError(f"squeezed_selected_attention: group_size {group_size!r} must be a positive "
                                  f"divisor of the {t} queries")
    if idx.shape[:3] != (b, h, t // group_size) or idx.dtype.is_floating_point or idx.dtype == torch.bool:
        raise KernelArgumentError(f"squeezed_selected_attention: idx {tuple(idx.shape)} {idx.dtype} must be an "
                                  f"integer B×H×G×n tensor with G = {t // group_size}")
    if idx.numel() and (int(idx.max()) >= prefix_length or int(idx.min()) < -1):
        raise KernelArgumentError(f"squeezed_selected_attention: selected keys must lie in [0, {prefix_length}) "
                                  "or be -1 (padding)")
    offset = s - t if key_offset is None else int(key_offset)
    return b, h, t, d, s, offset
