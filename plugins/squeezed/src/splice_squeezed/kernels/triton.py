"""Triton kernels of Squeezed Attention: the centroid lookup and attention over selected keys.

``centroid_scores_triton``: one program per (query group, batch·head). For each block of the
group's queries it makes two passes over the centroids: the first finds the row maximum and the
size-weighted denominator sum_j N_j exp(s_j) with an online rescaling, the second turns every
score into exp(s_i - m) / l and adds its mean over the group's queries to the output row. Work is
T·K·D per head; nothing of size T×K is written to memory.

``selected_attention_triton``: one program per (query block, query group, batch·head). It walks
the group's list of selected fixed-context key positions in blocks of BN (gathering those rows of
K and V) and then the contiguous keys of the new tokens with the causal limit, keeping a
FlashAttention-style online softmax; work and memory traffic scale with the number of selected
keys, not with the fixed context's length.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl
from splice.kernels import interpreter_enabled

from .shapes import check_lookup, check_selected


@triton.jit
def _dot(a, b, UPCAST: tl.constexpr):
    if UPCAST:  # float32 inputs keep IEEE products; the interpreter cannot dot bfloat16
        return tl.dot(a.to(tl.float32), b.to(tl.float32), input_precision="ieee")
    else:
        return tl.dot(a.to(b.dtype), b)


@triton.jit
def _centroid_scores_kernel(q_ptr, c_ptr, ls_ptr, out_ptr,
                            K, D, H, GROUP, GS, scale, inv_gs,
                            sqb, sqh, sqt, scb, sch, sck, slb, slh, slg, sob, soh, sog,
                            UPCAST: tl.constexpr, BM: tl.constexpr, BK: tl.constexpr, BD: tl.constexpr):
    g = tl.program_id(0)
    bh = tl.program_id(1)
    b = (bh // H).to(tl.int64)
    h = bh % H
    hk = h // GROUP
    rd = tl.arange(0, BD)
    d_ok = rd < D
    c_base = c_ptr + b * scb + hk * sch
    ls_base = ls_ptr + b * slb + h * slh + g * slg
    o_base = out_ptr + b * sob + h * soh + g * sog
    for m0 in range(0, GS, BM):
        rm = m0 + tl.arange(0, BM)
        m_ok = rm < GS
        rq = g * GS + rm
        qv = tl.load(q_ptr + b * sqb + h * sqh + rq[:, None] * sqt + rd[None, :],
                     mask=m_ok[:, None] & d_ok[None, :], other=0.0)
        m_i = tl.full((BM,), float("-inf"), tl.float32)
        l_i = tl.zeros((BM,), tl.float32)
        for k0 in range(0, K, BK):  # pass 1: max and size-weighted denominator
            rk = k0 + tl.arange(0, BK)
            k_ok = rk < K
            cv = tl.load(c_base + rk[:, None] * sck + rd[None, :], mask=k_ok[:, None] & d_ok[None, :], other=0.0)
            s = _dot(qv, tl.trans(cv), UPCAST) * scale
            lsz = tl.load(ls_base + rk, mask=k_ok, other=float("-inf"))
            z = s + lsz[None, :]
            m_new = tl.maximum(m_i, tl.max(z, 1))
            m_safe = tl.where(m_new == float("-inf"), 0.0, m_new)
            l_i = l_i * tl.exp(m_i - m_safe) + tl.sum(tl.exp(z - m_safe[:, None]), 1)
            m_i = m_new
        m_safe = tl.where(m_i == float("-inf"), 0.0, m_i)
        l_safe = tl.where(l_i == 0.0, 1.0, l_i)
        for k0 in range(0, K, BK):  # pass 2: scores, averaged over the group's queries
            rk = k0 + tl.arange(0, BK)
            k_ok = rk < K
            cv = tl.load(c_base + rk[:, None] * sck + rd[None, :], mask=k_ok[:, None] & d_ok[None, :], other=0.0)
            s = _dot(qv, tl.trans(cv), UPCAST) * scale
            lsz = tl.load(ls_base + rk, mask=k_ok, other=float("-inf"))
            p = tl.exp(s - m_safe[:, None]) / l_safe[:, None]
            p = tl.where(m_ok[:, None] & (lsz[None, :] != float("-inf")), p, 0.0)
            col = tl.sum(p, 0) * inv_gs
            prev = tl.load(o_base + rk, mask=k_ok, other=0.0)
            tl.store(o_base + rk, prev + col, mask=k_ok)


@triton.jit
def _selected_attention_kernel(q_ptr, k_ptr, v_ptr, idx_ptr, o_ptr,
                               S, D, H, GROUP, GS, P, NSEL, key_offset, scale,
                               sqb, sqh, sqt, skb, skh, sks, svb, svh, svs, sib, sih, sig, sob, soh, sot,
                               UPCAST: tl.constexpr, BM: tl.constexpr, BN: tl.constexpr, BD: tl.constexpr):
    mb = tl.program_id(0)
    g = tl.program_id(1)
    bh = tl.program_id(2)
    b = (bh // H).to(tl.int64)
    h = bh % H
    hk = h // GROUP
    rm = mb * BM + tl.arange(0, BM)
    m_ok = rm < GS
    rq = g * GS + rm  # query index among the T new tokens
    rd = tl.arange(0, BD)
    d_ok = rd < D
    qv = tl.load(q_ptr + b * sqb + h * sqh + rq[:, None] * sqt + rd[None, :],
                 mask=m_ok[:, None] & d_ok[None, :], other=0.0)
    k_base = k_ptr + b * skb + hk * skh
    v_base = v_ptr + b * svb + hk * svh
    i_base = idx_ptr + b * sib + h * sih + g * sig
    m_i = tl.full((BM,), float("-inf"), tl.float32)
    l_i = tl.zeros((BM,), tl.float32)
    acc = tl.zeros((BM, BD), tl.float32)
    for n0 in range(0, NSEL, BN):  # the selected keys of the fixed context (gathered rows)
        rn = n0 + tl.arange(0, BN)
        kid = tl.load(i_base + rn, mask=rn < NSEL, other=-1)
        k_ok = kid >= 0
        kid = tl.where(k_ok, kid, 0).to(tl.int64)
        kt = tl.load(k_base + kid[:, None] * sks + rd[None, :], mask=k_ok[:, None] & d_ok[None, :], other=0.0)
        s = _dot(qv, tl.trans(kt), UPCAST) * scale
        s = tl.where(m_ok[:, None] & k_ok[None, :], s, float("-inf"))
        m_new = tl.maximum(m_i, tl.max(s, 1))
        m_safe = tl.where(m_new == float("-inf"), 0.0, m_new)
        alpha = tl.exp(m_i - m_safe)
        p = tl.exp(s - m_safe[:, None])
        l_i = l_i * alpha + tl.sum(p, 1)
        vt = tl.load(v_base + kid[:, None] * svs + rd[None, :], mask=k_ok[:, None] & d_ok[None, :], other=0.0)
        acc = acc * alpha[:, None] + _dot(p, vt, UPCAST)
        m_i = m_new
    for n0 in range(P, S, BN):  # every key of the new tokens, causally
        rn = n0 + tl.arange(0, BN)
        k_ok = rn < S
        kt = tl.load(k_base + rn[:, None] * sks + rd[None, :], mask=k_ok[:, None] & d_ok[None, :], other=0.0)
        s = _dot(qv, tl.trans(kt), UPCAST) * scale
        valid = m_ok[:, None] & k_ok[None, :] & (rn[None, :] <= rq[:, None] + key_offset)
        s = tl.where(valid, s, float("-inf"))
        m_new = tl.maximum(m_i, tl.max(s, 1))
        m_safe = tl.where(m_new == float("-inf"), 0.0, m_new)
        alpha = tl.exp(m_i - m_safe)
        p = tl.exp(s - m_safe[:, None])
        l_i = l_i * alpha + tl.sum(p, 1)
        vt = tl.load(v_base + rn[:, None] * svs + rd[None, :], mask=k_ok[:, None] & d_ok[None, :], other=0.0)
        acc = acc * alpha[:, None] + _dot(p, vt, UPCAST)
        m_i = m_new
    out = acc / tl.where(l_i == 0.0, 1.0, l_i)[:, None]
    tl.store(o_ptr + b * sob + h * soh + rq[:, None] * sot + rd[None, :], out.to(o_ptr.dtype.element_ty),
             mask=m_ok[:, None] & d_ok[None, :])


def _block_d(d: int) -> int:
    return max(16, triton.next_power_of_2(d))


def _upcast(dtype: torch.dtype) -> bool:
    return dtype == torch.float32 or interpreter_enabled()


def _last_dim_contiguous(*ts: torch.Tensor) -> list[torch.Tensor]:
    return [t if t.stride(-1) == 1 else t.contiguous() for t in ts]


def centroid_scores_triton(q: torch.Tensor, centroids: torch.Tensor, log_sizes: torch.Tensor, *,
                           group_size: int, scale: float) -> torch.Tensor:
    b, h, _t, d, k, g = check_lookup(q, centroids, log_sizes, group_size)
    q, centroids = _last_dim_contiguous(q, centroids)
    if centroids.dtype != q.dtype:
        centroids = centroids.to(q.dtype)
    ls = log_sizes.float().contiguous()
    out = torch.zeros(b, h, g, k, dtype=torch.float32, device=q.device)
    if out.numel() == 0:
        return out
    bk = min(64, max(16, triton.next_power_of_2(k)))
    _centroid_scores_kernel[(g, b * h)](
        q, centroids, ls, out, k, d, h, h // centroids.shape[1], group_size, float(scale), 1.0 / group_size,
        q.stride(0), q.stride(1), q.stride(2), centroids.stride(0), centroids.stride(1), centroids.stride(2),
        ls.stride(0), ls.stride(1), ls.stride(2), out.stride(0), out.stride(1), out.stride(2),
        UPCAST=_upcast(q.dtype), BM=16, BK=bk, BD=_block_d(d), num_warps=4,
    )
    return out


def selected_attention_triton(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, idx: torch.Tensor, *,
                              prefix_length: int, group_size: int, scale: float,
                              key_offset: int | None = None) -> torch.Tensor:
    b, h, t, d, s, offset = check_selected(q, k, v, idx, prefix_length, group_size, key_offset)
    q, k, v = _last_dim_contiguous(q, k, v)
    idx = idx.to(torch.int32).contiguous()
    out = torch.empty(b, h, t, d, dtype=q.dtype, device=q.device)
    if out.numel() == 0:
        return out
    bm = 16 if group_size <= 16 else 32
    grid = (triton.cdiv(group_size, bm), t // group_size, b * h)
    _selected_attention_kernel[grid](
        q, k, v, idx, out, s, d, h, h // k.shape[1], group_size, prefix_length, idx.shape[-1], offset,
        float(scale),
        q.stride(0), q.stride(1), q.stride(2), k.stride(0), k.stride(1), k.stride(2),
        v.stride(0), v.stride(1), v.stride(2), idx.stride(0), idx.stride(1), idx.stride(2),
        out.stride(0), out.stride(1), out.stride(2),
        UPCAST=_upcast(q.dtype), BM=bm, BN=32, BD=_block_d(d), num_warps=4,
    )
    return out
