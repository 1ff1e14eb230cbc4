"""Hadamard transform in Triton. One program holds BLOCK_R rows as an (M_PAD x P) tile: the
Paley core H_m is applied as M outer-product updates (no tensor cores needed for a +-1 matrix
of order <= 28), then log2(P) butterfly stages run in registers via reshape/split/join."""

from __future__ import annotations

import functools

import torch
import triton
import triton.language as tl

from ..availability import interpreter_enabled
from .matrices import core_matrix, split_size


@triton.jit
def _hadamard_kernel(x_ptr, y_ptr, core_ptr, n_rows, n, scale,
                     M: tl.constexpr, M_PAD: tl.constexpr, P: tl.constexpr, LOG_P: tl.constexpr,
                     BLOCK_R: tl.constexpr, NORMALIZE: tl.constexpr):
    rows = tl.program_id(0) * BLOCK_R + tl.arange(0, BLOCK_R)
    row_ok = rows < n_rows
    base = rows.to(tl.int64) * n
    cols = tl.arange(0, P)
    core_rows = tl.arange(0, M_PAD)
    # Element b*P + a of a row is tile[b, a]: H = H_m (x) H_P acts as H_m on b and H_P on a.
    y = tl.zeros((BLOCK_R, M_PAD, P), tl.float32)
    for b in tl.static_range(M):
        xb = tl.load(x_ptr + base[:, None] + b * P + cols[None, :], mask=row_ok[:, None], other=0.0)
        h_col = tl.load(core_ptr + core_rows * M + b, mask=core_rows < M, other=0.0)
        y += h_col[None, :, None] * xb.to(tl.float32)[:, None, :]
    y = tl.reshape(y, (BLOCK_R * M_PAD, P))
    for s in tl.static_range(LOG_P):
        h: tl.constexpr = 1 << s
        # Butterfly on index bit s: pairs (i, i + h) -> (x_i + x_{i+h}, x_i - x_{i+h}).
        y = tl.permute(tl.reshape(y, (BLOCK_R * M_PAD, P // (2 * h), 2, h)), (0, 1, 3, 2))
        lo, hi = tl.split(y)
        y = tl.permute(tl.join(lo + hi, lo - hi), (0, 1, 3, 2))
        y = tl.reshape(y, (BLOCK_R * M_PAD, P))
    y = tl.reshape(y, (BLOCK_R, M_PAD, P))
    if NORMALIZE:
        y = y * scale
    offs = base[:, None, None] + core_rows[None, :, None] * P + cols[None, None, :]
    mask = row_ok[:, None, None] & (core_rows < M)[None, :, None]
    tl.store(y_ptr + offs, y.to(y_ptr.dtype.element_ty), mask=mask)


@functools.lru_cache(maxsize=32)
def _core_table(m: int, transposed: bool, device: torch.device) -> torch.Tensor:
    core = core_matrix(m)
    return (core.T if transposed else core).contiguous().to(device=device, dtype=torch.float32)


def _run(x: torch.Tensor, normalize: bool, transposed: bool) -> torch.Tensor:
    n = x.shape[-1]
    m, p = split_size(n)
    m_pad = triton.next_power_of_2(m)
    xc = x.contiguous()
    rows = xc.numel() // n if n else 0
    y = torch.empty_like(xc)
    if rows == 0:
        return y
    budget = 1 << 15 if interpreter_enabled() else 4096
    block_r = max(1, min(budget // (m_pad * p), triton.next_power_of_2(rows)))
    num_warps = 8 if block_r * m_pad * p >= 8192 else 4
    _hadamard_kernel[(triton.cdiv(rows, block_r),)](
        xc, y, _core_table(m, transposed, x.device), rows, n, n**-0.5,
        M=m, M_PAD=m_pad, P=p, LOG_P=p.bit_length() - 1, BLOCK_R=block_r, NORMALIZE=normalize,
        num_warps=num_warps,
    )
    return y


class _Hadamard(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, normalize: bool) -> torch.Tensor:
        ctx.normalize = normalize
        return _run(x.detach(), normalize, transposed=False)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        # y = x H^T, so dL/dx = g H: the same kernel with the transposed core (H_P is symmetric).
        return _run(grad, ctx.normalize, transposed=True), None


def hadamard_triton(x: torch.Tensor, *, normalize: bool = True) -> torch.Tensor:
    split_size(x.shape[-1])
    return _Hadamard.apply(x, normalize)
