"""Block-sparse flash attention in Triton.

Forward: one program per (query block, batch*head) walks only its selected key blocks with an
online softmax, so work and memory scale with the number of selected blocks, never with T*S.
Backward: the same walk recomputes the probabilities from the saved log-sum-exp; dq accumulates
in registers, dk/dv are scattered with float32 atomics (a key block may be selected by many query
blocks and, under GQA, by several query heads).
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from ..availability import interpreter_enabled
from .blocks import AttnShape, attn_shape, block_mask, causal_blocks, mask_to_indices


@triton.jit
def _dot(a, b, UPCAST: tl.constexpr):
    if UPCAST:
        # fp32 inputs keep IEEE products (TF32 would be 1e-3 off); the interpreter cannot dot bf16.
        return tl.dot(a.to(tl.float32), b.to(tl.float32), input_precision="ieee")
    else:
        return tl.dot(a.to(b.dtype), b)


@triton.jit
def _scores(q, kt, rq, rs, q_ok, s_ok, key_offset, sm_scale, CAUSAL: tl.constexpr, UPCAST: tl.constexpr):
    s = _dot(q, tl.trans(kt), UPCAST) * sm_scale
    valid = q_ok[:, None] & s_ok[None, :]
    if CAUSAL:
        valid = valid & (rs[None, :] <= rq[:, None] + key_offset)
    return s, valid


@triton.jit
def _bsa_fwd(q_ptr, k_ptr, v_ptr, idx_ptr, cnt_ptr, o_ptr, lse_ptr,
             T, S, D, H, GROUP, n_qblocks, n_sel, key_offset, sm_scale,
             sqb, sqh, sqt, skb, skh, sks, svb, svh, svs,
             CAUSAL: tl.constexpr, UPCAST: tl.constexpr,
             BQ: tl.constexpr, BK: tl.constexpr, BD: tl.constexpr):
    qb = tl.program_id(0)
    bh = tl.program_id(1)
    b = bh // H
    h = bh % H
    hk = h // GROUP
    rq = qb * BQ + tl.arange(0, BQ)
    rd = tl.arange(0, BD)
    rk = tl.arange(0, BK)
    q_ok = rq < T
    d_ok = rd < D
    b64 = b.to(tl.int64)
    q = tl.load(q_ptr + b64 * sqb + h * sqh + rq[:, None] * sqt + rd[None, :],
                mask=q_ok[:, None] & d_ok[None, :], other=0.0)
    k_base = k_ptr + b64 * skb + hk * skh
    v_base = v_ptr + b64 * svb + hk * svh
    row = bh * n_qblocks + qb
    count = tl.load(cnt_ptr + row)
    m_i = tl.full((BQ,), float("-inf"), tl.float32)
    l_i = tl.zeros((BQ,), tl.float32)
    acc = tl.zeros((BQ, BD), tl.float32)
    for j in range(count):
        kb = tl.load(idx_ptr + row * n_sel + j)
        rs = kb * BK + rk
        s_ok = rs < S
        kv_mask = s_ok[:, None] & d_ok[None, :]
        kt = tl.load(k_base + rs[:, None] * sks + rd[None, :], mask=kv_mask, other=0.0)
        vt = tl.load(v_base + rs[:, None] * svs + rd[None, :], mask=kv_mask, other=0.0)
        s, valid = _scores(q, kt, rq, rs, q_ok, s_ok, key_offset, sm_scale, CAUSAL, UPCAST)
        s = tl.where(valid, s, float("-inf"))
        m_new = tl.maximum(m_i, tl.max(s, axis=1))
        # A row that has seen no visible key yet keeps max -inf; shift by 0 so exp gives 0, not NaN.
        m_use = tl.where(m_new == float("-inf"), 0.0, m_new)
        p = tl.exp(s - m_use[:, None])
        alpha = tl.exp(m_i - m_use)
        l_i = l_i * alpha + tl.sum(p, axis=1)
        acc = acc * alpha[:, None] + _dot(p, vt, UPCAST)
        m_i = m_new
    empty = l_i == 0.0
    l_safe = tl.where(empty, 1.0, l_i)
    out = acc / l_safe[:, None]
    lse = tl.where(empty, float("-inf"), m_i + tl.log(l_safe))
    o_offs = bh.to(tl.int64) * T * D + rq[:, None] * D + rd[None, :]
    tl.store(o_ptr + o_offs, out.to(o_ptr.dtype.element_ty), mask=q_ok[:, None] & d_ok[None, :])
    tl.store(lse_ptr + bh.to(tl.int64) * T + rq, lse, mask=q_ok)


@triton.jit
def _bsa_bwd(q_ptr, k_ptr, v_ptr, o_ptr, do_ptr, lse_ptr, idx_ptr, cnt_ptr, dq_ptr, dk_ptr, dv_ptr,
             T, S, D, H, HKV, GROUP, n_qblocks, n_sel, key_offset, sm_scale,
             sqb, sqh, sqt, skb, skh, sks, svb, svh, svs,
             CAUSAL: tl.constexpr, UPCAST: tl.constexpr,
             BQ: tl.constexpr, BK: tl.constexpr, BD: tl.constexpr):
    qb = tl.program_id(0)
    bh = tl.program_id(1)
    b = bh // H
    h = bh % H
    hk = h // GROUP
    rq = qb * BQ + tl.arange(0, BQ)
    rd = tl.arange(0, BD)
    rk = tl.arange(0, BK)
    q_ok = rq < T
    d_ok = rd < D
    qd_mask = q_ok[:, None] & d_ok[None, :]
    b64 = b.to(tl.int64)
    q = tl.load(q_ptr + b64 * sqb + h * sqh + rq[:, None] * sqt + rd[None, :], mask=qd_mask, other=0.0)
    o_offs = bh.to(tl.int64) * T * D + rq[:, None] * D + rd[None, :]
    o = tl.load(o_ptr + o_offs, mask=qd_mask, other=0.0).to(tl.float32)
    do = tl.load(do_ptr + o_offs, mask=qd_mask, other=0.0)
    lse = tl.load(lse_ptr + bh.to(tl.int64) * T + rq, mask=q_ok, other=0.0)
    lse = tl.where(lse == float("-inf"), 0.0, lse)  # such rows have no visible key: p = 0 below
    delta = tl.sum(o * do.to(tl.float32), axis=1)
    k_base = k_ptr + b64 * skb + hk * skh
    v_base = v_ptr + b64 * svb + hk * svh
    kv_out = (b * HKV + hk).to(tl.int64) * S * D
    row = bh * n_qblocks + qb
    count = tl.load(cnt_ptr + row)
    dq = tl.zeros((BQ, BD), tl.float32)
    for j in range(count):
        kb = tl.load(idx_ptr + row * n_sel + j)
        rs = kb * BK + rk
        s_ok = rs < S
        kv_mask = s_ok[:, None] & d_ok[None, :]
        kt = tl.load(k_base + rs[:, None] * sks + rd[None, :], mask=kv_mask, other=0.0)
        vt = tl.load(v_base + rs[:, None] * svs + rd[None, :], mask=kv_mask, other=0.0)
        s, valid = _scores(q, kt, rq, rs, q_ok, s_ok, key_offset, sm_scale, CAUSAL, UPCAST)
        p = tl.where(valid, tl.exp(s - lse[:, None]), 0.0)
        dv_part = _dot(tl.trans(p), do, UPCAST)
        dp = _dot(do, tl.trans(vt), UPCAST)
        ds = p * (dp - delta[:, None])
        dq += _dot(ds, kt, UPCAST)
        dk_part = _dot(tl.trans(ds), q, UPCAST) * sm_scale
        kv_offs = kv_out + rs[:, None] * D + rd[None, :]
        tl.atomic_add(dv_ptr + kv_offs, dv_part, mask=kv_mask)
        tl.atomic_add(dk_ptr + kv_offs, dk_part, mask=kv_mask)
    tl.store(dq_ptr + o_offs, (dq * sm_scale).to(dq_ptr.dtype.element_ty), mask=qd_mask)


def _launch(a: AttnShape, dtype: torch.dtype) -> tuple[tuple[int, int], int, bool, int]:
    grid = (a.q_blocks, a.batch * a.heads)
    block_d = max(16, triton.next_power_of_2(a.head_dim))
    upcast = dtype == torch.float32 or interpreter_enabled()
    num_warps = 8 if a.block_q * block_d >= 128 * 128 else 4
    return grid, block_d, upcast, num_warps


class _BlockSparseAttention(torch.autograd.Function):
    @staticmethod
    def forward(ctx, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, idx: torch.Tensor, counts: torch.Tensor,
                a: AttnShape, causal: bool) -> tuple[torch.Tensor, torch.Tensor]:
        out = torch.empty(a.batch, a.heads, a.q_len, a.head_dim, dtype=q.dtype, device=q.device)
        lse = torch.empty(a.batch, a.heads, a.q_len, dtype=torch.float32, device=q.device)
        grid, block_d, upcast, warps = _launch(a, q.dtype)
        if out.numel():
            _bsa_fwd[grid](
                q, k, v, idx, counts, out, lse,
                a.q_len, a.kv_len, a.head_dim, a.heads, a.heads // a.kv_heads, a.q_blocks, idx.shape[-1],
                a.key_offset, a.scale,
                q.stride(0), q.stride(1), q.stride(2), k.stride(0), k.stride(1), k.stride(2),
                v.stride(0), v.stride(1), v.stride(2),
                CAUSAL=causal, UPCAST=upcast, BQ=a.block_q, BK=a.block_k, BD=block_d, num_warps=warps,
            )
        ctx.save_for_backward(q, k, v, out, lse, idx, counts)
        ctx.a, ctx.causal = a, causal
        ctx.mark_non_differentiable(lse)
        return out, lse

    @staticmethod
    def backward(ctx, d_out: torch.Tensor, _d_lse: torch.Tensor | None):
        q, k, v, out, lse, idx, counts = ctx.saved_tensors
        a: AttnShape = ctx.a
        d_out = d_out.contiguous()
        dq = torch.empty_like(out)
        dk = torch.zeros(a.batch, a.kv_heads, a.kv_len, a.head_dim, dtype=torch.float32, device=q.device)
        dv = torch.zeros_like(dk)
        grid, block_d, upcast, warps = _launch(a, q.dtype)
        if out.numel():
            _bsa_bwd[grid](
                q, k, v, out, d_out, lse, idx, counts, dq, dk, dv,
                a.q_len, a.kv_len, a.head_dim, a.heads, a.kv_heads, a.heads // a.kv_heads, a.q_blocks,
                idx.shape[-1], a.key_offset, a.scale,
                q.stride(0), q.stride(1), q.stride(2), k.stride(0), k.stride(1), k.stride(2),
                v.stride(0), v.stride(1), v.stride(2),
                CAUSAL=ctx.causal, UPCAST=upcast, BQ=a.block_q, BK=a.block_k, BD=block_d, num_warps=warps,
            )
        return dq.to(q.dtype), dk.to(k.dtype), dv.to(v.dtype), None, None, None, None


def block_sparse_attention_triton(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    blocks: torch.Tensor,
    *,
    block_size: int = 64,
    block_q: int | None = None,
    causal: bool = False,
    key_offset: int | None = None,
    scale: float | None = None,
    return_lse: bool = False,
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    a = attn_shape(q, k, v, block_size, block_q, key_offset, scale)
    mask = block_mask(blocks, a)
    if causal:
        mask = mask & causal_blocks(a, mask.device)  # never visit blocks causality hides entirely
    idx, counts = mask_to_indices(mask)
    # The kernels index the last dim with unit stride.
    q, k, v = (t if t.stride(-1) == 1 else t.contiguous() for t in (q, k, v))
    out, lse = _BlockSparseAttention.apply(q, k, v, idx, counts, a, causal)
    return (out, lse) if return_lse else out
