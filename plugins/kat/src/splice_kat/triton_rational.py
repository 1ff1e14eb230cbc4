"""The group-wise safe Padé rational in Triton, forward and backward.

Grid: (row blocks, groups). One program holds a BLOCK_R × C tile of one group's channels
(C = D / G, padded to a power of two), so the group's coefficients are loaded once as scalars.
Forward computes P/Q by Horner. Backward computes dx elementwise and reduces the tile's
contributions to dL/da_i and dL/db_j to one partial sum per program; the partials are summed
over row blocks on the host (no atomics, so the result is deterministic).

Derivatives (F = P/Q):
    dF/dx   = P'/Q - P Q'/Q^2
    dF/da_i = x^i / Q
    dF/db_j = -P/Q^2 * dQ/db_j,  dQ/db_j = sign(B) x^j        (paper:  Q = 1 + |B(x)|, B = sum b_j x^j)
                                 dQ/db_j = sign(b_j) |x|^j    (pau_a:  Q = 1 + sum |b_j| |x|^j)
|v| is differentiated with sign(0) = +1 (the official kernel's copysign), as in the reference.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl
from splice.kernels import interpreter_enabled

from .rational import check_args


@triton.jit
def _sign(v):
    return tl.where(v >= 0, 1.0, -1.0)


@triton.jit
def _num_den(x, a_ptr, b_ptr, g, M: tl.constexpr, N: tl.constexpr, PAPER: tl.constexpr):
    """P, P', Q, dQ/dx and the polynomial B (paper form; |x|-polynomial for pau_a) at x."""
    p = tl.zeros_like(x) + tl.load(a_ptr + g * (M + 1) + M)
    dp = tl.zeros_like(x)
    for k in tl.static_range(M):
        i = M - 1 - k
        dp = dp * x + p
        p = p * x + tl.load(a_ptr + g * (M + 1) + i)
    if PAPER:
        # B(x) = sum_{j=1..N} b_j x^j as Horner over coefficients (0, b_1, ..., b_N)
        s = tl.zeros_like(x) + tl.load(b_ptr + g * N + N - 1)
        ds = tl.zeros_like(x)
        for k in tl.static_range(N - 1):
            j = N - 2 - k
            ds = ds * x + s
            s = s * x + tl.load(b_ptr + g * N + j)
        ds = ds * x + s
        s = s * x
        q = 1.0 + tl.abs(s)
        dq = _sign(s) * ds
    else:
        ax = tl.abs(x)
        s = tl.zeros_like(x) + tl.abs(tl.load(b_ptr + g * N + N - 1))
        ds = tl.zeros_like(x)
        for k in tl.static_range(N - 1):
            j = N - 2 - k
            ds = ds * ax + s
            s = s * ax + tl.abs(tl.load(b_ptr + g * N + j))
        ds = ds * ax + s
        s = s * ax
        q = 1.0 + s
        dq = _sign(x) * ds
    return p, dp, q, dq, s


@triton.jit
def _rational_fwd(x_ptr, a_ptr, b_ptr, y_ptr, rows, D, C,
                  M: tl.constexpr, N: tl.constexpr, PAPER: tl.constexpr, BLOCK_R: tl.constexpr,
                  BLOCK_C: tl.constexpr):
    pid_r = tl.program_id(0)
    g = tl.program_id(1)
    r = pid_r * BLOCK_R + tl.arange(0, BLOCK_R)
    c = tl.arange(0, BLOCK_C)
    mask = (r < rows)[:, None] & (c < C)[None, :]
    offs = r.to(tl.int64)[:, None] * D + g * C + c[None, :]
    x = tl.load(x_ptr + offs, mask=mask, other=0.0).to(tl.float32)
    p, _dp, q, _dq, _s = _num_den(x, a_ptr, b_ptr, g, M, N, PAPER)
    tl.store(y_ptr + offs, (p / q).to(y_ptr.dtype.element_ty), mask=mask)


@triton.jit
def _rational_bwd(x_ptr, go_ptr, a_ptr, b_ptr, dx_ptr, da_ptr, db_ptr, rows, D, C, G,
                  M: tl.constexpr, N: tl.constexpr, PAPER: tl.constexpr, BLOCK_R: tl.constexpr,
                  BLOCK_C: tl.constexpr):
    pid_r = tl.program_id(0)
    g = tl.program_id(1)
    r = pid_r * BLOCK_R + tl.arange(0, BLOCK_R)
    c = tl.arange(0, BLOCK_C)
    mask = (r < rows)[:, None] & (c < C)[None, :]
    offs = r.to(tl.int64)[:, None] * D + g * C + c[None, :]
    x = tl.load(x_ptr + offs, mask=mask, other=0.0).to(tl.float32)
    go = tl.load(go_ptr + offs, mask=mask, other=0.0).to(tl.float32)
    p, dp, q, dq, s = _num_den(x, a_ptr, b_ptr, g, M, N, PAPER)
    inv_q = 1.0 / q
    dx = go * (dp * inv_q - p * dq * inv_q * inv_q)
    tl.store(dx_ptr + offs, dx.to(dx_ptr.dtype.element_ty), mask=mask)
    # coefficient gradients: one partial sum per (row block, group, coefficient)
    base_a = (pid_r * G + g) * (M + 1)
    xp = tl.zeros_like(x) + 1.0
    gq = go * inv_q
    for i in tl.static_range(M + 1):
        tl.store(da_ptr + base_a + i, tl.sum(tl.sum(gq * xp, axis=1), axis=0))
        xp = xp * x
    base_b = (pid_r * G + g) * N
    common = -go * p * inv_q * inv_q
    if PAPER:
        common = common * _sign(s)
        xp = x
    else:
        xp = tl.abs(x)
    for j in tl.static_range(N):
        term = common * xp
        if not PAPER:
            term = term * _sign(tl.load(b_ptr + g * N + j))
        tl.store(db_ptr + base_b + j, tl.sum(tl.sum(term, axis=1), axis=0))
        if PAPER:
            xp = xp * x
        else:
            xp = xp * tl.abs(x)


def _blocks(rows: int, c: int) -> tuple[int, int]:
    block_c = triton.next_power_of_2(max(c, 1))
    budget = 1 << 14 if interpreter_enabled() else 2048
    block_r = max(1, min(budget // block_c, triton.next_power_of_2(max(rows, 1))))
    return block_r, block_c


class _Rational(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, numerator, denominator, paper: bool):
        groups = numerator.shape[0]
        d = x.shape[-1]
        x2 = x.detach().contiguous().view(-1, d)
        a = numerator.detach().float().contiguous()
        b = denominator.detach().float().contiguous()
        y = torch.empty_like(x2)
        rows, c = x2.shape[0], d // groups
        if rows and d:
            block_r, block_c = _blocks(rows, c)
            _rational_fwd[(triton.cdiv(rows, block_r), groups)](
                x2, a, b, y, rows, d, c, M=a.shape[1] - 1, N=b.shape[1], PAPER=paper,
                BLOCK_R=block_r, BLOCK_C=block_c)
        ctx.save_for_backward(x2, a, b)
        ctx.paper, ctx.shape = paper, x.shape
        ctx.dtypes = (numerator.dtype, denominator.dtype)
        return y.view(x.shape)

    @staticmethod
    def backward(ctx, grad):
        x2, a, b = ctx.saved_tensors
        groups, d = a.shape[0], x2.shape[1]
        rows, c = x2.shape[0], d // groups
        go = grad.contiguous().view(-1, d)
        dx = torch.empty_like(x2)
        block_r, block_c = _blocks(rows, c)
        n_rb = triton.cdiv(rows, block_r) if rows else 0
        da = torch.zeros(max(n_rb, 1), groups, a.shape[1], device=x2.device, dtype=torch.float32)
        db = torch.zeros(max(n_rb, 1), groups, b.shape[1], device=x2.device, dtype=torch.float32)
        if rows and d:
            _rational_bwd[(n_rb, groups)](
                x2, go, a, b, dx, da, db, rows, d, c, groups, M=a.shape[1] - 1, N=b.shape[1], PAPER=ctx.paper,
                BLOCK_R=block_r, BLOCK_C=block_c)
        return (dx.view(ctx.shape), da.sum(0).to(ctx.dtypes[0]), db.sum(0).to(ctx.dtypes[1]), None)


def rational_triton(x: torch.Tensor, numerator: torch.Tensor, denominator: torch.Tensor, *,
                    form: str = "paper") -> torch.Tensor:
    """Same contract as ``rational_reference``: group-wise P(x)/Q(x) along the last dimension."""
    check_args(x, numerator, denominator, form)
    return _Rational.apply(x, numerator, denominator, form == "paper")
