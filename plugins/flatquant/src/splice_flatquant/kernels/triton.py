"""The fused online Kronecker transform + per-token quantization as one Triton kernel.

One program takes BLOCK_M rows (tokens). Each row is loaded once as its n1 x n2 tile X; two
matmuls (``tl.dot``, fp32 "ieee" precision) give ``Y^T = (X R)^T L`` without writing the
transformed activation back to memory; the row's clipped range, scale and zero point, the rounding
and the clamp happen in registers, and only the integer codes and one scale/zero per row are
stored (what a W4A4 GEMM consumes). Tiles are padded to powers of two >= 16 (``tl.dot``'s minimum);
padding is zero, which leaves the clamped range [min(y, 0), max(y, 0)] unchanged.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl
from splice.kernels import interpreter_enabled

from .reference import _check

# fp32 round-half-to-even by adding and subtracting 1.5 * 2^23 (exact for |t| < 2^22; larger
# quotients are clamped first, which the grid clamp makes harmless). libdevice.rint is not
# available in the interpreter.
_MAGIC: tl.constexpr = tl.constexpr(12582912.0)
_LIMIT: tl.constexpr = tl.constexpr(4194304.0)


@triton.jit
def _rint(t):
    t = tl.minimum(tl.maximum(t, -_LIMIT), _LIMIT)
    return (t + _MAGIC) - _MAGIC


@triton.jit
def _kron_quant_kernel(x_ptr, l_ptr, r_ptr, sig_ptr, codes_ptr, scale_ptr, zero_ptr, n_rows,
                       N1: tl.constexpr, N2: tl.constexpr, N1P: tl.constexpr, N2P: tl.constexpr,
                       BLOCK_M: tl.constexpr, HAS_RIGHT: tl.constexpr, SYMMETRIC: tl.constexpr,
                       HAS_CMAX: tl.constexpr, HAS_CMIN: tl.constexpr,
                       QMIN: tl.constexpr, QMAX: tl.constexpr, LEVELS: tl.constexpr):
    rows = tl.program_id(0) * BLOCK_M + tl.arange(0, BLOCK_M)
    row_ok = rows < n_rows
    ii = tl.arange(0, N1P)
    jj = tl.arange(0, N2P)
    base = rows.to(tl.int64) * (N1 * N2)
    in_mask = row_ok[:, None, None] & (ii < N1)[None, :, None] & (jj < N2)[None, None, :]
    x = tl.load(x_ptr + base[:, None, None] + ii[None, :, None] * N2 + jj[None, None, :],
                mask=in_mask, other=0.0).to(tl.float32)  # BLOCK_M x N1P x N2P
    if HAS_RIGHT:
        r = tl.load(r_ptr + jj[:, None] * N2 + jj[None, :], mask=(jj < N2)[:, None] & (jj < N2)[None, :],
                    other=0.0).to(tl.float32)
        t = tl.dot(tl.reshape(x, (BLOCK_M * N1P, N2P)), r, input_precision="ieee")
        t = tl.reshape(t, (BLOCK_M, N1P, N2P))
    else:
        t = x
    lmat = tl.load(l_ptr + ii[:, None] * N1 + ii[None, :], mask=(ii < N1)[:, None] & (ii < N1)[None, :],
                   other=0.0).to(tl.float32)
    tt = tl.reshape(tl.permute(t, (0, 2, 1)), (BLOCK_M * N2P, N1P))
    yt = tl.reshape(tl.dot(tt, lmat, input_precision="ieee"), (BLOCK_M, N2P, N1P))  # (L^T X R)^T per row
    hi = tl.maximum(tl.max(tl.max(yt, axis=2), axis=1), 0.0)
    lo = tl.minimum(tl.min(tl.min(yt, axis=2), axis=1), 0.0)
    if HAS_CMAX:
        hi = hi * tl.load(sig_ptr)
    if HAS_CMIN:
        lo = lo * tl.load(sig_ptr + 1)
    if SYMMETRIC:
        top = tl.maximum(-lo, hi)
        scale = tl.where(top == 0.0, 1.0, tl.math.div_rn(top, QMAX))
        zero = tl.zeros((BLOCK_M,), tl.float32)
        q = _rint(tl.math.div_rn(yt, scale[:, None, None]))
    else:
        flat = (hi == 0.0) & (lo == 0.0)
        hi = tl.where(flat, 1.0, hi)
        lo = tl.where(flat, -1.0, lo)
        scale = tl.math.div_rn(hi - lo, LEVELS)
        zero = _rint(tl.math.div_rn(-lo, scale))
        q = _rint(tl.math.div_rn(yt, scale[:, None, None])) + zero[:, None, None]
    q = tl.minimum(tl.maximum(q, QMIN), QMAX)
    out_mask = row_ok[:, None, None] & (jj < N2)[None, :, None] & (ii < N1)[None, None, :]
    tl.store(codes_ptr + base[:, None, None] + jj[None, :, None] + ii[None, None, :] * N2,
             q.to(codes_ptr.dtype.element_ty), mask=out_mask)
    tl.store(scale_ptr + rows, scale, mask=row_ok)
    tl.store(zero_ptr + rows, zero, mask=row_ok)


def _pad(n: int) -> int:
    return max(16, triton.next_power_of_2(n))


def kron_quant_triton(
    x: torch.Tensor,
    left: torch.Tensor,
    right: torch.Tensor | None = None,
    *,
    bits: int = 4,
    symmetric: bool = True,
    clip_max: torch.Tensor | None = None,
    clip_min: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    n1, n2 = _check(x, left, right, bits)
    shape = x.shape
    xc = x.detach().reshape(-1, n1 * n2).contiguous()
    rows = xc.shape[0]
    codes = torch.empty(xc.shape, dtype=torch.int8 if symmetric else torch.uint8, device=x.device)
    scale = torch.empty(rows, dtype=torch.float32, device=x.device)
    zero = torch.empty(rows, dtype=torch.float32, device=x.device)
    lead = shape[:-1]
    if rows == 0:
        return codes.reshape(shape), scale.reshape(*lead, 1), zero.reshape(*lead, 1)
    # sigmoid of the clipping logits on the host, with torch: the reference's exact factors
    sig = torch.ones(2, dtype=torch.float32, device=x.device)
    if clip_max is not None:
        sig[0] = torch.sigmoid(clip_max.detach().float().reshape(()))
    if clip_min is not None:
        sig[1] = torch.sigmoid(clip_min.detach().float().reshape(()))
    lc = left.detach().float().contiguous()
    rc = right.detach().float().contiguous() if right is not None else lc
    n1p, n2p = _pad(n1), _pad(n2)
    budget = 1 << 16 if interpreter_enabled() else 8192
    block_m = max(1, min(budget // (n1p * n2p), triton.next_power_of_2(rows)))
    if symmetric:
        qmin, qmax, levels = -(2.0 ** (bits - 1)), 2.0 ** (bits - 1) - 1, 2.0 ** (bits - 1) - 1
    else:
        qmin, qmax, levels = 0.0, 2.0**bits - 1, 2.0**bits - 1
    _kron_quant_kernel[(triton.cdiv(rows, block_m),)](
        xc, lc, rc, sig, codes, scale, zero, rows,
        N1=n1, N2=n2, N1P=n1p, N2P=n2p, BLOCK_M=block_m, HAS_RIGHT=right is not None, SYMMETRIC=symmetric,
        HAS_CMAX=clip_max is not None, HAS_CMIN=clip_min is not None, QMIN=qmin, QMAX=qmax, LEVELS=levels,
    )
    return codes.reshape(shape), scale.reshape(*lead, 1), zero.reshape(*lead, 1)
