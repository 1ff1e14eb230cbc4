"""Fake quantization in Triton: one program quantizes BLOCK_R groups, each held whole in registers,
so the group statistics, the rounding and (in backward) the group gradient sums never leave the
chip. Matches ``reference.fake_quant_reference`` including its autograd gradients."""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from ..availability import interpreter_enabled
from .args import SCALE_FLOOR, Grouping, grouping

# Adding then subtracting 1.5 * 2**23 rounds an fp32 half-to-even, exactly like torch.round, on
# the GPU and in the interpreter alike (libdevice.rint is not available in the interpreter). It
# needs |t| < 2**22: larger quotients are clamped first, which the grid clamp makes harmless.
_MAGIC: tl.constexpr = tl.constexpr(12582912.0)
_R_LIMIT: tl.constexpr = tl.constexpr(4194304.0)
_FLOOR: tl.constexpr = tl.constexpr(SCALE_FLOOR)


@triton.jit
def _rint(t):
    t = tl.minimum(tl.maximum(t, -_R_LIMIT), _R_LIMIT)
    return (t + _MAGIC) - _MAGIC


@triton.jit
def _group_params(x, mask, rows, row_ok, cmax_ptr, cmin_ptr, qmin, qmax, levels,
                  SYMMETRIC: tl.constexpr, HAS_CMAX: tl.constexpr, HAS_CMIN: tl.constexpr,
                  BLOCK_R: tl.constexpr):
    # Same operations in the same order as the reference, so scales agree bit for bit in fp32.
    sig_hi = tl.full((BLOCK_R,), 1.0, tl.float32)
    sig_lo = tl.full((BLOCK_R,), 1.0, tl.float32)
    if HAS_CMAX:
        sig_hi = tl.sigmoid(tl.load(cmax_ptr + rows, mask=row_ok, other=0.0).to(tl.float32))
    if HAS_CMIN:
        sig_lo = tl.sigmoid(tl.load(cmin_ptr + rows, mask=row_ok, other=0.0).to(tl.float32))
    if SYMMETRIC:
        hi_raw = tl.max(tl.where(mask, tl.abs(x), 0.0), axis=1)
        lo_raw = hi_raw
        hi0 = hi_raw
        lo0 = hi_raw
        scale_raw = tl.math.div_rn(hi_raw * sig_hi, levels)
        scale = tl.maximum(scale_raw, _FLOOR)
        zero = tl.zeros((BLOCK_R,), tl.float32)
        zero_in = tl.full((BLOCK_R,), 1, tl.int1)
    else:
        hi_raw = tl.max(tl.where(mask, x, float("-inf")), axis=1)
        lo_raw = tl.min(tl.where(mask, x, float("inf")), axis=1)
        hi0 = tl.maximum(hi_raw, 0.0)
        lo0 = tl.minimum(lo_raw, 0.0)
        scale_raw = tl.math.div_rn(hi0 * sig_hi - lo0 * sig_lo, levels)
        scale = tl.maximum(scale_raw, _FLOOR)
        zero_r = _rint(tl.math.div_rn(-(lo0 * sig_lo), scale))
        zero_in = (zero_r >= qmin) & (zero_r <= qmax)
        zero = tl.minimum(tl.maximum(zero_r, qmin), qmax)
    return scale, scale_raw, zero, zero_in, hi_raw, lo_raw, hi0, lo0, sig_hi, sig_lo


@triton.jit
def _fake_quant_fwd(x_ptr, y_ptr, cmax_ptr, cmin_ptr, n_rows, group_size, qmin, qmax, levels,
                    SYMMETRIC: tl.constexpr, HAS_CMAX: tl.constexpr, HAS_CMIN: tl.constexpr,
                    BLOCK_R: tl.constexpr, BLOCK_C: tl.constexpr):
    rows = tl.program_id(0) * BLOCK_R + tl.arange(0, BLOCK_R)
    cols = tl.arange(0, BLOCK_C)
    row_ok = rows < n_rows
    mask = row_ok[:, None] & (cols[None, :] < group_size)
    offs = rows[:, None].to(tl.int64) * group_size + cols[None, :]
    x = tl.load(x_ptr + offs, mask=mask, other=0.0).to(tl.float32)
    scale, _sr, zero, _zi, _h, _l, _h0, _l0, _sh, _sl = _group_params(
        x, mask, rows, row_ok, cmax_ptr, cmin_ptr, qmin, qmax, levels,
        SYMMETRIC, HAS_CMAX, HAS_CMIN, BLOCK_R)
    q = tl.minimum(tl.maximum(_rint(tl.math.div_rn(x, scale[:, None])) + zero[:, None], qmin), qmax)
    y = (q - zero[:, None]) * scale[:, None]
    tl.store(y_ptr + offs, y.to(y_ptr.dtype.element_ty), mask=mask)


@triton.jit
def _fake_quant_bwd(x_ptr, gy_ptr, gx_ptr, cmax_ptr, cmin_ptr, gcmax_ptr, gcmin_ptr,
                    n_rows, group_size, qmin, qmax, levels,
                    SYMMETRIC: tl.constexpr, HAS_CMAX: tl.constexpr, HAS_CMIN: tl.constexpr,
                    BLOCK_R: tl.constexpr, BLOCK_C: tl.constexpr):
    # Closed form of the reference's autograd graph: straight-through rounding, clamp masks,
    # the scale's dependence on the (clipped) group max/min, and amax/amin's rule of sharing the
    # gradient equally between tied extremes.
    rows = tl.program_id(0) * BLOCK_R + tl.arange(0, BLOCK_R)
    cols = tl.arange(0, BLOCK_C)
    row_ok = rows < n_rows
    mask = row_ok[:, None] & (cols[None, :] < group_size)
    offs = rows[:, None].to(tl.int64) * group_size + cols[None, :]
    x = tl.load(x_ptr + offs, mask=mask, other=0.0).to(tl.float32)
    g = tl.load(gy_ptr + offs, mask=mask, other=0.0).to(tl.float32)
    scale, scale_raw, zero, zero_in, hi_raw, lo_raw, hi0, lo0, sig_hi, sig_lo = _group_params(
        x, mask, rows, row_ok, cmax_ptr, cmin_ptr, qmin, qmax, levels,
        SYMMETRIC, HAS_CMAX, HAS_CMIN, BLOCK_R)
    x_over_s = tl.math.div_rn(x, scale[:, None])
    v = _rint(x_over_s) + zero[:, None]
    inside = ((v >= qmin) & (v <= qmax)).to(tl.float32)
    q = tl.minimum(tl.maximum(v, qmin), qmax)
    floor_ok = (scale_raw >= _FLOOR).to(tl.float32)
    if SYMMETRIC:
        dy_ds = q - inside * x_over_s
        d_range = tl.sum(tl.where(mask, g * dy_ds, 0.0), axis=1) * floor_ok / levels
        if HAS_CMAX:
            gc = d_range * hi_raw * (sig_hi * (1.0 - sig_hi))
            tl.store(gcmax_ptr + rows, gc, mask=row_ok)
        d_amax = d_range * sig_hi
        ties = mask & (tl.abs(x) == hi_raw[:, None])
        n_ties = tl.sum(ties.to(tl.float32), axis=1)
        sign = tl.where(x > 0, 1.0, tl.where(x < 0, -1.0, 0.0))
        share = d_amax / tl.maximum(n_ties, 1.0)
        gx = g * inside + tl.where(ties, sign * share[:, None], 0.0)
    else:
        zin = zero_in.to(tl.float32)
        lo = lo0 * sig_lo
        dy_ds = (q - zero[:, None]) - inside * x_over_s \
            + (inside - 1.0) * zin[:, None] * tl.math.div_rn(lo, scale)[:, None]
        d_scale = tl.sum(tl.where(mask, g * dy_ds, 0.0), axis=1) * floor_ok / levels
        d_lo_direct = tl.sum(tl.where(mask, g * (1.0 - inside), 0.0), axis=1) * zin
        d_hi = d_scale
        d_lo = d_lo_direct - d_scale
        if HAS_CMAX:
            tl.store(gcmax_ptr + rows, d_hi * hi0 * (sig_hi * (1.0 - sig_hi)), mask=row_ok)
        if HAS_CMIN:
            tl.store(gcmin_ptr + rows, d_lo * lo0 * (sig_lo * (1.0 - sig_lo)), mask=row_ok)
        d_hi_raw = d_hi * sig_hi * (hi_raw >= 0.0).to(tl.float32)
        d_lo_raw = d_lo * sig_lo * (lo_raw <= 0.0).to(tl.float32)
        ties_hi = mask & (x == hi_raw[:, None])
        ties_lo = mask & (x == lo_raw[:, None])
        share_hi = d_hi_raw / tl.maximum(tl.sum(ties_hi.to(tl.float32), axis=1), 1.0)
        share_lo = d_lo_raw / tl.maximum(tl.sum(ties_lo.to(tl.float32), axis=1), 1.0)
        gx = g * inside + tl.where(ties_hi, share_hi[:, None], 0.0) + tl.where(ties_lo, share_lo[:, None], 0.0)
    tl.store(gx_ptr + offs, gx.to(gx_ptr.dtype.element_ty), mask=mask)


def _launch_shape(g: Grouping) -> tuple[int, int, int, int]:
    block_c = triton.next_power_of_2(g.group_size)
    # The interpreter pays per program, not per element: give it big tiles. On a GPU, ~4K
    # elements per program keeps a whole group in registers without spilling.
    budget = 1 << 16 if interpreter_enabled() else 4096
    block_r = max(1, min(budget // block_c, triton.next_power_of_2(g.rows)))
    num_warps = 8 if block_r * block_c >= 8192 else 4
    return block_r, block_c, triton.cdiv(g.rows, block_r), num_warps


def _flat_clip(clip: torch.Tensor | None, g: Grouping, like: torch.Tensor) -> torch.Tensor:
    if clip is None:
        return like  # never read: the HAS_* flag is off
    return clip.detach().expand(g.stats_shape).reshape(g.rows).contiguous()


class _FakeQuant(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, clip_max: torch.Tensor | None, clip_min: torch.Tensor | None,
                g: Grouping, symmetric: bool) -> torch.Tensor:
        xc = x.detach().contiguous()
        cmax, cmin = _flat_clip(clip_max, g, xc), _flat_clip(clip_min, g, xc)
        y = torch.empty_like(xc)
        block_r, block_c, grid, warps = _launch_shape(g)
        _fake_quant_fwd[(grid,)](
            xc, y, cmax, cmin, g.rows, g.group_size, g.qmin, g.qmax, g.levels,
            SYMMETRIC=symmetric, HAS_CMAX=clip_max is not None, HAS_CMIN=clip_min is not None,
            BLOCK_R=block_r, BLOCK_C=block_c, num_warps=warps,
        )
        ctx.save_for_backward(xc, cmax, cmin)
        ctx.clip_shapes = (
            None if clip_max is None else clip_max.shape, None if clip_min is None else clip_min.shape
        )
        ctx.g, ctx.symmetric = g, symmetric
        return y

    @staticmethod
    def backward(ctx, gy: torch.Tensor):
        xc, cmax, cmin = ctx.saved_tensors
        g: Grouping = ctx.g
        max_shape, min_shape = ctx.clip_shapes
        gx = torch.empty_like(xc)
        gcmax = torch.zeros(g.rows, dtype=torch.float32, device=xc.device)
        gcmin = torch.zeros(g.rows, dtype=torch.float32, device=xc.device)
        block_r, block_c, grid, warps = _launch_shape(g)
        _fake_quant_bwd[(grid,)](
            xc, gy.contiguous(), gx, cmax, cmin, gcmax, gcmin,
            g.rows, g.group_size, g.qmin, g.qmax, g.levels,
            SYMMETRIC=ctx.symmetric, HAS_CMAX=max_shape is not None, HAS_CMIN=min_shape is not None,
            BLOCK_R=block_r, BLOCK_C=block_c, num_warps=warps,
        )
        # Per-group gradients summed back over the dims the clipping logits were broadcast along.
        d_max = None if max_shape is None else gcmax.view(g.stats_shape).sum_to_size(max_shape).to(cmax.dtype)
        d_min = None if min_shape is None else gcmin.view(g.stats_shape).sum_to_size(min_shape).to(cmin.dtype)
        return gx, d_max, d_min, None, None


def fake_quant_triton(
    x: torch.Tensor,
    bits: int = 4,
    *,
    symmetric: bool = True,
    group_size: int | None = None,
    clip_max: torch.Tensor | None = None,
    clip_min: torch.Tensor | None = None,
) -> torch.Tensor:
    g = grouping(x, bits, symmetric, group_size, clip_max, clip_min)
    if x.numel() == 0:
        return x.clone()
    return _FakeQuant.apply(x, clip_max, clip_min, g, symmetric)
