"""Dequantize-matmul in Triton: weight tiles are unpacked and scaled in registers right before
the dot, so the full-precision weight never exists in memory."""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from ..availability import interpreter_enabled
from ..errors import KernelArgumentError
from .storage import check_layout


@triton.jit
def _weight_tile(packed_ptr, scales_ptr, zeros_ptr, n_idx, k_idx, mask, stride_pn, n_groups, group_size,
                 BITS: tl.constexpr, HAS_ZEROS: tl.constexpr):
    PER_BYTE: tl.constexpr = 8 // BITS
    byte = tl.load(packed_ptr + n_idx * stride_pn + k_idx // PER_BYTE, mask=mask, other=0).to(tl.int32)
    code = (byte >> ((k_idx % PER_BYTE) * BITS)) & ((1 << BITS) - 1)
    group = n_idx * n_groups + k_idx // group_size
    scale = tl.load(scales_ptr + group, mask=mask, other=0.0).to(tl.float32)
    if HAS_ZEROS:
        zero = tl.load(zeros_ptr + group, mask=mask, other=0.0).to(tl.float32)
    else:
        zero = tl.full(code.shape, 1 << (BITS - 1), tl.float32)
    return (code.to(tl.float32) - zero) * scale


@triton.jit
def _dot(a, b, UPCAST: tl.constexpr):
    if UPCAST:
        # fp32 inputs keep IEEE products (TF32 would be 1e-3 off); the interpreter cannot dot bf16.
        return tl.dot(a.to(tl.float32), b.to(tl.float32), input_precision="ieee")
    else:
        return tl.dot(a, b.to(a.dtype))


@triton.jit
def _dequant_matmul_fwd(x_ptr, packed_ptr, scales_ptr, zeros_ptr, y_ptr, M, N, K, n_groups, group_size,
                        stride_xm, stride_pn, stride_ym,
                        BITS: tl.constexpr, HAS_ZEROS: tl.constexpr, UPCAST: tl.constexpr,
                        BM: tl.constexpr, BN: tl.constexpr, BK: tl.constexpr):
    rm = tl.program_id(0) * BM + tl.arange(0, BM)
    rn = tl.program_id(1) * BN + tl.arange(0, BN)
    rk = tl.arange(0, BK)
    acc = tl.zeros((BM, BN), tl.float32)
    for k0 in range(0, K, BK):
        kk = k0 + rk
        x = tl.load(x_ptr + rm[:, None].to(tl.int64) * stride_xm + kk[None, :],
                    mask=(rm < M)[:, None] & (kk < K)[None, :], other=0.0)
        w = _weight_tile(packed_ptr, scales_ptr, zeros_ptr, rn[:, None], kk[None, :],
                         (rn < N)[:, None] & (kk < K)[None, :], stride_pn, n_groups, group_size, BITS, HAS_ZEROS)
        acc += _dot(x, tl.trans(w), UPCAST)
    tl.store(y_ptr + rm[:, None].to(tl.int64) * stride_ym + rn[None, :], acc.to(y_ptr.dtype.element_ty),
             mask=(rm < M)[:, None] & (rn < N)[None, :])


@triton.jit
def _dequant_matmul_bwd(g_ptr, packed_ptr, scales_ptr, zeros_ptr, gx_ptr, M, N, K, n_groups, group_size,
                        stride_gm, stride_pn, stride_xm,
                        BITS: tl.constexpr, HAS_ZEROS: tl.constexpr, UPCAST: tl.constexpr,
                        BM: tl.constexpr, BN: tl.constexpr, BK: tl.constexpr):
    # dL/dx = dL/dy @ W: the same weight tiles, walked along N instead of K.
    rm = tl.program_id(0) * BM + tl.arange(0, BM)
    rk = tl.program_id(1) * BK + tl.arange(0, BK)
    rn = tl.arange(0, BN)
    acc = tl.zeros((BM, BK), tl.float32)
    for n0 in range(0, N, BN):
        nn = n0 + rn
        g = tl.load(g_ptr + rm[:, None].to(tl.int64) * stride_gm + nn[None, :],
                    mask=(rm < M)[:, None] & (nn < N)[None, :], other=0.0)
        w = _weight_tile(packed_ptr, scales_ptr, zeros_ptr, nn[:, None], rk[None, :],
                         (nn < N)[:, None] & (rk < K)[None, :], stride_pn, n_groups, group_size, BITS, HAS_ZEROS)
        acc += _dot(g, w, UPCAST)
    tl.store(gx_ptr + rm[:, None].to(tl.int64) * stride_xm + rk[None, :], acc.to(gx_ptr.dtype.element_ty),
             mask=(rm < M)[:, None] & (rk < K)[None, :])


def _blocks(rows: int) -> tuple[int, int, int]:
    if interpreter_enabled():
        return max(16, min(64, triton.next_power_of_2(rows))), 64, 64
    return (16 if rows <= 16 else 64), 64, 64


class _DequantMatmul(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, packed: torch.Tensor, scales: torch.Tensor, zeros: torch.Tensor | None,
                group_size: int, bits: int) -> torch.Tensor:
        n, k = packed.shape[0], x.shape[-1]
        x2 = x.detach().reshape(-1, k).contiguous()
        m = x2.shape[0]
        packed, scales = packed.contiguous(), scales.detach().contiguous()
        zeros = zeros.detach().contiguous() if zeros is not None else None
        y = torch.empty(m, n, dtype=x.dtype, device=x.device)
        upcast = x.dtype == torch.float32 or interpreter_enabled()
        bm, bn, bk = _blocks(m)
        if m and n:
            _dequant_matmul_fwd[(triton.cdiv(m, bm), triton.cdiv(n, bn))](
                x2, packed, scales, zeros if zeros is not None else scales, y, m, n, k, scales.shape[1], group_size,
                x2.stride(0), packed.stride(0), y.stride(0),
                BITS=bits, HAS_ZEROS=zeros is not None, UPCAST=upcast, BM=bm, BN=bn, BK=bk,
            )
        ctx.save_for_backward(packed, scales, zeros)
        ctx.meta = (x.shape, group_size, bits, upcast)
        return y.reshape(*x.shape[:-1], n)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        packed, scales, zeros = ctx.saved_tensors
        x_shape, group_size, bits, upcast = ctx.meta
        n, k = packed.shape[0], x_shape[-1]
        g2 = grad.reshape(-1, n).contiguous()
        m = g2.shape[0]
        gx = torch.empty(m, k, dtype=grad.dtype, device=grad.device)
        bm, bn, bk = _blocks(m)
        if m and k:
            _dequant_matmul_bwd[(triton.cdiv(m, bm), triton.cdiv(k, bk))](
                g2, packed, scales, zeros if zeros is not None else scales, gx, m, n, k, scales.shape[1], group_size,
                g2.stride(0), packed.stride(0), gx.stride(0),
                BITS=bits, HAS_ZEROS=zeros is not None, UPCAST=upcast, BM=bm, BN=bn, BK=bk,
            )
        return gx.reshape(x_shape), None, None, None, None, None


def dequant_matmul_triton(
    x: torch.Tensor,
    packed: torch.Tensor,
    scales: torch.Tensor,
    zeros: torch.Tensor | None,
    group_size: int | None,
    bits: int,
) -> torch.Tensor:
    _, k, gs = check_layout(packed, scales, zeros, group_size, bits)
    if x.shape[-1] != k:
        raise KernelArgumentError(f"dequant_matmul: x has {x.shape[-1]} features, the weight expects {k}")
    return _DequantMatmul.apply(x, packed, scales, zeros, gs, bits)
