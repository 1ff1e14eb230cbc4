"""Packed low-bit weight storage: 8 // bits codes per uint8, first code in the lowest bits.

A quantized (N, K) weight is ``packed`` (N, K * bits / 8) uint8, ``scales`` (N, K / group_size)
and optional ``zeros`` (same shape, float, in code units); ``W = (code - zero) * scale``. Without
``zeros`` the grid is symmetric around the midpoint code 2^(bits-1).
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from ..errors import KernelArgumentError

PACKABLE_BITS = (2, 4, 8)


class PackedWeight(NamedTuple):
    """Arguments 2.. of ``dequant_matmul``, in order: ``dequant_matmul(x, *packed_weight)``."""

    packed: torch.Tensor
    scales: torch.Tensor
    zeros: torch.Tensor | None
    group_size: int
    bits: int

    def dequantize(self, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        return dequantize_weight(*self, dtype=dtype)


def _check_bits(bits: int) -> int:
    if bits not in PACKABLE_BITS:
        raise KernelArgumentError(f"packed weights hold {PACKABLE_BITS}-bit codes, got bits={bits!r}")
    return 8 // bits


def pack(codes: torch.Tensor, bits: int) -> torch.Tensor:
    """Pack integer codes in [0, 2^bits) along the last dim; (..., K) -> (..., K * bits / 8) uint8."""
    per_byte = _check_bits(bits)
    if codes.dtype.is_floating_point or codes.dtype == torch.bool:
        raise KernelArgumentError(f"pack: codes must be an integer tensor, got {codes.dtype}")
    if codes.shape[-1] % per_byte:
        raise KernelArgumentError(f"pack: last dim {codes.shape[-1]} is not a multiple of {per_byte} for {bits}-bit codes")
    if codes.numel() and (int(codes.min()) < 0 or int(codes.max()) >= 1 << bits):
        raise KernelArgumentError(f"pack: codes must lie in [0, {1 << bits}) for {bits}-bit storage")
    c = codes.to(torch.uint8).reshape(*codes.shape[:-1], -1, per_byte)
    out = torch.zeros(c.shape[:-1], dtype=torch.uint8, device=codes.device)
    for i in range(per_byte):
        out |= c[..., i] << (i * bits)
    return out


def unpack(packed: torch.Tensor, bits: int) -> torch.Tensor:
    """Inverse of ``pack``: (..., B) uint8 -> (..., B * 8 / bits) uint8 codes."""
    per_byte = _check_bits(bits)
    if packed.dtype != torch.uint8:
        raise KernelArgumentError(f"unpack: packed storage is uint8, got {packed.dtype}")
    mask = (1 << bits) - 1
    parts = [(packed >> (i * bits)) & mask for i in range(per_byte)]
    return torch.stack(parts, dim=-1).reshape(*packed.shape[:-1], packed.shape[-1] * per_byte)


def check_layout(
    packed: torch.Tensor, scales: torch.Tensor, zeros: torch.Tensor | None, group_size: int | None, bits: int
) -> tuple[int, int, int]:
    """(N, K, group_size) of a packed weight; raises KernelArgumentError on inconsistent parts."""
    per_byte = _check_bits(bits)
    if packed.dtype != torch.uint8 or packed.dim() != 2:
        raise KernelArgumentError(f"packed must be a 2-D uint8 tensor, got {packed.dtype} {tuple(packed.shape)}")
    n, k = packed.shape[0], packed.shape[1] * per_byte
    gs = k if group_size in (None, -1) else group_size
    if not isinstance(gs, int) or gs <= 0 or k % gs:
        raise KernelArgumentError(f"group_size must divide in_features ({k}), got {group_size!r}")
    want = (n, k // gs)
    if tuple(scales.shape) != want or not scales.is_floating_point():
        raise KernelArgumentError(f"scales must be floating point of shape {want}, got {scales.dtype} {tuple(scales.shape)}")
    if zeros is not None and tuple(zeros.shape) != want:
        raise KernelArgumentError(f"zeros must have shape {want}, got {tuple(zeros.shape)}")
    return n, k, gs


def dequantize_weight(
    packed: torch.Tensor,
    scales: torch.Tensor,
    zeros: torch.Tensor | None,
    group_size: int | None,
    bits: int,
    *,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """The (N, K) weight a packed triple stands for, computed in float32."""
    n, k, gs = check_layout(packed, scales, zeros, group_size, bits)
    codes = unpack(packed, bits).float().reshape(n, k // gs, gs)
    zero = zeros.float() if zeros is not None else torch.full_like(scales, 2.0 ** (bits - 1), dtype=torch.float32)
    w = (codes - zero.unsqueeze(-1)) * scales.float().unsqueeze(-1)
    return w.reshape(n, k).to(dtype)


def quantize_weight(
    w: torch.Tensor, bits: int = 4, group_size: int | None = None, *, symmetric: bool = False
) -> PackedWeight:
    """Round-to-nearest quantization of an (N, K) weight into packed storage (per output channel,
    or per group of ``group_size`` input features). Asymmetric grids store float zero points;
    symmetric ones store none (midpoint code)."""
    _check_bits(bits)
    if w.dim() != 2 or not w.is_floating_point():
        raise KernelArgumentError(f"quantize_weight: w must be a 2-D float tensor, got {w.dtype} {tuple(w.shape)}")
    n, k = w.shape
    gs = k if group_size in (None, -1) else group_size
    if not isinstance(gs, int) or gs <= 0 or k % gs:
        raise KernelArgumentError(f"quantize_weight: group_size must divide in_features ({k}), got {group_size!r}")
    wg = w.detach().float().reshape(n, k // gs, gs)
    top = 2.0**bits - 1
    if symmetric:
        mid = 2.0 ** (bits - 1)
        scale = (wg.abs().amax(-1) / (mid - 1)).clamp_min(1e-8)
        codes = (torch.round(wg / scale.unsqueeze(-1)) + mid).clamp(0, top)
        zeros = None
    else:
        hi, lo = wg.amax(-1).clamp_min(0), wg.amin(-1).clamp_max(0)
        scale = ((hi - lo) / top).clamp_min(1e-8)
        zero = torch.round(-lo / scale).clamp(0, top)
        codes = (torch.round(wg / scale.unsqueeze(-1)) + zero.unsqueeze(-1)).clamp(0, top)
        zeros = zero.to(w.dtype)
    packed = pack(codes.reshape(n, k).to(torch.uint8), bits)
    return PackedWeight(packed, scale.to(w.dtype), zeros, gs, bits)
