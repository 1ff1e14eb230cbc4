"""Weight quantizers on ``splice.quant.QuantLinear``'s grid: round-to-nearest and GPTQ (Frantar et
al., arXiv 2210.17323), per output channel or per group, with an optional MSE search of the
clipping range (the GPTQ repository's grid of 100 shrink factors down to 0.2, L2.4 error);
``sequential_gptq`` runs GPTQ over a decoder block by block, as QuaRot's and FlatQuant's
``gptq_fwrd`` do. Symmetric grids: codes 0..2^b-1 around zero point 2^(b-1); asymmetric: min/max.

Scales are rounded to fp16 *before* codes are chosen, so what is stored is exactly what was used.
"""

from __future__ import annotations

import math

import torch


def grid_params(w: torch.Tensor, bits: int, asym: bool, shrink: torch.Tensor | float = 1.0):
    """Per-row scale and zero point (each rows x 1) of ``w`` for a shrink factor of its range."""
    if asym:
        hi = w.amax(-1, keepdim=True).clamp(min=0) * shrink
        lo = w.amin(-1, keepdim=True).clamp(max=0) * shrink
        scale = ((hi - lo) / (2**bits - 1)).clamp(min=1e-8)
    else:
        scale = (w.abs().amax(-1, keepdim=True) * shrink / (2 ** (bits - 1) - 1)).clamp(min=1e-8)
    scale = scale.half().float().clamp(min=float(torch.finfo(torch.float16).tiny))
    zero = torch.round(-lo / scale) if asym else torch.full_like(scale, 2 ** (bits - 1))
    return scale, zero.clamp(0, 2**bits - 1)


def to_codes(w: torch.Tensor, scale: torch.Tensor, zero: torch.Tensor, bits: int) -> torch.Tensor:
    return torch.clamp(torch.round(w / scale) + zero, 0, 2**bits - 1)


def dequant(codes: torch.Tensor, scale: torch.Tensor, zero: torch.Tensor) -> torch.Tensor:
    return (codes - zero) * scale


def find_params(w: torch.Tensor, bits: int, asym: bool, mse: bool, grid: int = 100, max_shrink: float = 0.8,
                norm: float = 2.4):
    """Scale/zero per row; with ``mse`` the shrink factor of the range minimising sum |q - w|^2.4."""
    w = w.float()
    scale, zero = grid_params(w, bits, asym)
    if not mse:
        return scale, zero
    best = torch.full((w.shape[0], 1), math.inf, device=w.device)
    for i in range(int(max_shrink * grid)):
        s, z = grid_params(w, bits, asym, 1 - i / grid)
        err = (dequant(to_codes(w, s, z, bits), s, z) - w).abs().pow(norm).sum(-1, keepdim=True)
        better = err < best
        best = torch.where(better, err, best)
        scale, zero = torch.where(better, s, scale), torch.where(better, z, zero)
    return scale, zero


def _grouped(w: torch.Tensor, group_size: int) -> int:
    g = w.shape[1] if group_size in (-1, 0) else group_size
    if w.shape[1] % g:
        raise ValueError(f"in_features {w.shape[1]} is not a multiple of group_size {g}")
    return g


def rtn(w: torch.Tensor, bits: int, asym: bool, group_size: int = -1, mse: bool = False):
    """Round-to-nearest: (codes out x in, scale out x groups, zero out x groups)."""
    g = _grouped(w, group_size)
    wg = w.float().reshape(w.shape[0], -1, g)
    scale, zero = find_params(wg.reshape(-1, g), bits, asym, mse)
    scale, zero = scale.reshape(w.shape[0], -1, 1), zero.reshape(w.shape[0], -1, 1)
    codes = to_codes(wg, scale, zero, bits).reshape(w.shape)
    return codes, scale[..., 0], zero[..., 0]


class Hessian:
    """Running H = 2/N sum x x^T over the rows of a layer's inputs (GPTQ's proxy Hessian)."""

    def __init__(self, n: int) -> None:
        self.h = torch.zeros(n, n, dtype=torch.float32)
        self.count = 0

    def add(self, x: torch.Tensor) -> None:
        x = x.detach().reshape(-1, x.shape[-1]).float()
        m = x.shape[0]
        self.h *= self.count / (self.count + m)
        self.count += m
        x = x * math.sqrt(2 / self.count)
        self.h += x.T @ x


def gptq(w: torch.Tensor, h: torch.Tensor, bits: int, asym: bool, group_size: int = -1, mse: bool = False,
         percdamp: float = 0.01, block_size: int = 128, act_order: bool = False):
    """GPTQ (Frantar et al. 2022): quantize columns one at a time, spreading each column's error
    over the columns not yet quantized through the Cholesky factor of H^-1.

    Returns (codes out x in, scale out x groups, zero out x groups) on QuantLinear's grid.
    """
    w = w.detach().float().clone()
    h = h.detach().float().clone()
    rows, cols = w.shape
    g = _grouped(w, group_size)
    dead = torch.diagonal(h) == 0
    h[dead, dead] = 1
    w[:, dead] = 0
    if act_order and g != cols:
        raise ValueError("GPTQ act_order with grouped weights is not supported (use group_size=-1)")
    perm = None
    if act_order:
        perm = torch.argsort(torch.diagonal(h), descending=True)
        w, h = w[:, perm], h[perm][:, perm]
    damp = percdamp * torch.mean(torch.diagonal(h))
    h += damp * torch.eye(cols)
    hinv = torch.linalg.cholesky(torch.cholesky_inverse(torch.linalg.cholesky(h)), upper=True)

    n_groups = cols // g
    scales = torch.zeros(rows, n_groups)
    zeros = torch.zeros(rows, n_groups)
    codes = torch.zeros(rows, cols)
    s, z = find_params(w, bits, asym, mse) if g == cols else (None, None)
    for i1 in range(0, cols, block_size):
        i2 = min(i1 + block_size, cols)
        w1 = w[:, i1:i2].clone()
        err1 = torch.zeros_like(w1)
        hinv1 = hinv[i1:i2, i1:i2]
        for i in range(i2 - i1):
            col = i1 + i
            if col % g == 0:
                if g != cols:  # the group's range from its columns as they stand now (error-updated)
                    current = torch.cat([w1[:, i:min(i2 - i1, i + g)], w[:, i2:col + g]], 1)
                    s, z = find_params(current, bits, asym, mse)
                scales[:, col // g:col // g + 1], zeros[:, col // g:col // g + 1] = s, z
            x = w1[:, i:i + 1]
            c = to_codes(x, s, z, bits)
            codes[:, col:col + 1] = c
            e = (x - dequant(c, s, z)) / hinv1[i, i]
            w1[:, i:] -= e @ hinv1[i:i + 1, i:]
            err1[:, i:i + 1] = e
        w[:, i2:] -= err1 @ hinv[i1:i2, i2:]
    if perm is not None:
        inv = torch.argsort(perm)
        codes = codes[:, inv]
    return codes, scales, zeros


# -- a whole decoder, block by block ---------------------------------------------------------------
#: GPTQ's sequential groups inside a block: the first member's input is probed for the Hessian the
#: whole group shares (q/k/v read the same normed stream, gate/up too)
GROUPS = (("attn.q", ("attn.q", "attn.k", "attn.v")), ("attn.o", ("attn.o",)),
          ("mlp.up", ("mlp.gate", "mlp.up")), ("mlp.down", ("mlp.down",)))


class _Stop(Exception):
    """Raised by a probe hook once the layer it watches has seen its input: the rest of the block
    need not run."""


@torch.no_grad()
def sequential_gptq(model, data: torch.Tensor, bits: int, asym: bool, group_size: int = -1,
                    mse: bool = False, percdamp: float = 0.01, act_order: bool = False, batch_size: int = 4,
                    linear_of=lambda site: site.inner, label: str = "gptq"
                    ) -> dict[str, tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """GPTQ over every block of ``model`` (a ``splice.model.Decoder`` whose sites wrap an
    ``nn.Linear``, reached with ``linear_of``), on the calibration windows ``data`` (N x T token ids).

    Each block's inputs are the previous, already quantized blocks' outputs, and inside a block the
    groups are fitted in order (q/k/v, o, gate/up, down), each from inputs produced with the earlier
    groups' weights quantized. Whatever else the sites do in their forward (online transforms,
    activation quantization) is in effect while the Hessians are collected. Each fitted weight is
    written back dequantized into its ``nn.Linear``; returns ``{"blocks.i.site": (codes, scale, zero)}``.
    """
    from splice.blockwise import BlockRunner
    from splice.progress import progress

    runner = BlockRunner(model, data.shape[1])
    x = runner.embed(data)
    out: dict[str, tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = {}
    b = batch_size
    with progress(label, len(model.blocks)) as bar:
        for i, blk in enumerate(model.blocks):
            for probe, members in GROUPS:
                lin = linear_of(blk.get_submodule(probe))
                hess = Hessian(lin.in_features)

                def hook(_mod, args, hess=hess):
                    hess.add(args[0])
                    raise _Stop

                handle = lin.register_forward_pre_hook(hook)
                try:
                    for j in range(0, len(x), b):
                        try:
                            runner(i, x[j:j + b])
                        except _Stop:
                            pass
                finally:
                    handle.remove()
                for m in members:
                    site = getattr(getattr(blk, m.split(".")[0]), m.split(".")[1], None)
                    if site is None:  # a non-gated MLP has no gate
                        continue
                    target = linear_of(site)
                    codes, scale, zero = gptq(target.weight, hess.h, bits, asym, group_size, mse, percdamp,
                                              act_order=act_order)
                    out[f"blocks.{i}.{m}"] = (codes, scale, zero)
                    g = codes.shape[1] // scale.shape[1]
                    w = (codes - zero.repeat_interleave(g, 1)) * scale.repeat_interleave(g, 1)
                    target.weight.data = w.to(target.weight.dtype)  # later groups see it quantized
            x = torch.cat([runner(i, x[j:j + b]) for j in range(0, len(x), b)])
            bar.advance()
    return out
