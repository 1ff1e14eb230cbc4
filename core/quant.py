"""Quantized modules shared by quantizers: round-to-nearest weight codes, per-token activations, KV.

The arithmetic is round-to-nearest on a uniform grid, symmetric (zero point fixed at the grid's
middle) or asymmetric (min/max), over groups along the input dimension (group_size = -1: one
group per output channel). Weight codes are stored as integers (two 4-bit codes per byte where
bits <= 4) with fp16 scales and zero points, so the saved state is the real packed model.
Packing, dequantization and fake quantization are splice.kernels' shared primitives.
"""

from __future__ import annotations

import torch
from torch import nn

import splice.kernels as kernels
import splice.kernels.packed

from .kinds.quantizer import QuantizedModule

FULL = 16  # bits meaning "not quantized"


def qparams(x: torch.Tensor, bits: int, asym: bool, clip: float | torch.Tensor = 1.0,
            scale_dtype: torch.dtype | None = None):
    """Scale and zero point per row of ``x`` (last dim reduced) for a ``bits``-bit grid.

    ``scale_dtype``: the scale is rounded to the dtype it will be stored in *before* the zero
    point is chosen, so the stored grid is the one the error bounds hold for.
    """
    if asym:
        hi = x.amax(-1, keepdim=True).clamp(min=0) * clip
        lo = x.amin(-1, keepdim=True).clamp(max=0) * clip
        scale = ((hi - lo) / (2**bits - 1)).clamp(min=1e-8)
    else:
        m = x.abs().amax(-1, keepdim=True) * clip
        scale = (m / (2 ** (bits - 1) - 1)).clamp(min=1e-8)
    if scale_dtype is not None:  # round up, so the stored grid still spans [lo, hi]
        low = scale.to(scale_dtype)
        up = torch.nextafter(low, torch.full_like(low, float("inf")))
        scale = torch.where(low.float() < scale, up, low).float().clamp(min=torch.finfo(scale_dtype).tiny)
    zero = torch.round(-lo / scale) if asym else torch.full_like(scale, 2 ** (bits - 1))
    return scale, zero


def quantize_codes(x: torch.Tensor, scale: torch.Tensor, zero: torch.Tensor, bits: int) -> torch.Tensor:
    return torch.clamp(torch.round(x / scale) + zero, 0, 2**bits - 1)


def _clip_logit(ratio: float) -> torch.Tensor | None:
    """splice.kernels takes learnable clipping as a logit (sigmoid(l) = ratio); 1.0 = no clipping."""
    if ratio >= 1.0:
        return None
    return torch.logit(torch.tensor(ratio))


def fake_quant(x: torch.Tensor, bits: int, asym: bool, group_size: int = -1, clip: float = 1.0) -> torch.Tensor:
    """Quantize-dequantize along the last dim in groups (straight-through gradient); 16 bits = off.

    The arithmetic is splice.kernels' ``fake_quant`` op (reference or an accelerated backend).
    """
    if bits >= FULL:
        return x
    logit = _clip_logit(clip)
    return kernels.fake_quant(x, bits, symmetric=not asym, group_size=None if group_size in (-1, 0) else group_size,
                              clip_max=logit, clip_min=logit if asym else None)


def pack_codes(codes: torch.Tensor, bits: int) -> torch.Tensor:
    """Pack ``bits``-bit integer codes into their storage container (see ``storage_bits``)."""
    return kernels.pack(codes.to(torch.uint8), storage_bits(bits))


def storage_bits(bits: int) -> int:
    """The packed container for ``bits``-bit codes (2, 4, 8 pack densely; 3, 5-7 take a byte each)."""
    return bits if bits in kernels.packed.PACKABLE_BITS else 8


class QuantLinear(QuantizedModule):
    """A linear layer with RTN-quantized weights (packed) and optionally fake-quantized inputs."""

    def __init__(self, in_features: int, out_features: int, bias: bool, w_bits: int, group_size: int = -1,
                 w_asym: bool = False, a_bits: int = FULL, a_asym: bool = False, a_clip: float = 1.0) -> None:
        super().__init__()
        if not 2 <= w_bits <= 8:
            raise ValueError(f"w_bits must be in 2..8 (got {w_bits})")
        g = in_features if group_size in (-1, 0) else group_size
        if in_features % g:
            raise ValueError(f"in_features {in_features} is not a multiple of group_size {g}")
        self.in_features, self.out_features = in_features, out_features
        self.w_bits, self.group_size, self.w_asym = w_bits, g, w_asym
        self.a_bits, self.a_asym, self.a_clip = a_bits, a_asym, a_clip
        n_groups = in_features // g
        self.storage_bits = storage_bits(w_bits)
        width = in_features * self.storage_bits // 8
        self.register_buffer("qweight", torch.zeros(out_features, width, dtype=torch.uint8))
        self.register_buffer("scale", torch.ones(out_features, n_groups, dtype=torch.float16))
        self.register_buffer("zero", torch.zeros(out_features, n_groups, dtype=torch.float16))
        self.bias = nn.Parameter(torch.zeros(out_features)) if bias else None
        self._dequant: torch.Tensor | None = None  # cache of the dequantized weight (not saved)

    @classmethod
    def from_linear(cls, lin: nn.Linear, **kw) -> "QuantLinear":
        q = cls(lin.in_features, lin.out_features, lin.bias is not None, **kw)
        q.set_weight(lin.weight.data)
        if lin.bias is not None:
            q.bias = nn.Parameter(lin.bias.data.clone())
        return q.to(lin.weight.device)

    @classmethod
    def from_codes(cls, lin: nn.Module, codes: torch.Tensor, scale: torch.Tensor, zero: torch.Tensor, w_bits: int,
                   w_asym: bool = False) -> "QuantLinear":
        """A QuantLinear for ``lin``'s shape and bias holding codes chosen elsewhere (GPTQ); the group
        size follows from ``scale``'s columns (see ``set_codes``)."""
        q = cls(lin.in_features, lin.out_features, lin.bias is not None, w_bits, lin.in_features // scale.shape[1],
                w_asym).to(lin.weight.device)
        q.set_codes(codes, scale, zero)
        if lin.bias is not None:
            q.bias = nn.Parameter(lin.bias.detach().clone())
        return q

    def set_weight(self, w: torch.Tensor, clip: float | torch.Tensor = 1.0) -> None:
        wg = w.detach().float().reshape(self.out_features, -1, self.group_size)
        scale, zero = qparams(wg, self.w_bits, self.w_asym, clip, scale_dtype=torch.float16)
        codes = quantize_codes(wg, scale, zero, self.w_bits).reshape(self.out_features, -1)
        self.qweight.copy_(pack_codes(codes, self.w_bits))
        self.scale.copy_(scale[..., 0].half())
        self.zero.copy_(zero[..., 0].half())
        self._dequant = None

    def set_codes(self, codes: torch.Tensor, scale: torch.Tensor, zero: torch.Tensor) -> None:
        """Store integer codes chosen elsewhere (GPTQ; out x in, on this grid: ``w = (code - zero) *
        scale``) with their per-group scales and zero points (out x groups, representable in fp16).
        Checks the module dequantizes to exactly that, so a storage change fails loudly here."""
        if codes.shape != (self.out_features, self.in_features) or scale.shape != self.scale.shape:
            raise ValueError(f"codes {tuple(codes.shape)} / scale {tuple(scale.shape)} do not fit this layer "
                             f"({self.out_features} x {self.in_features}, {self.scale.shape[1]} groups)")
        self.qweight.copy_(pack_codes(codes, self.w_bits))
        self.scale.copy_(scale.half())
        self.zero.copy_(zero.half())
        self._dequant = None
        g = self.group_size
        want = ((codes.float() - zero.half().float().repeat_interleave(g, 1))
                * scale.half().float().repeat_interleave(g, 1))
        if not torch.equal(self.dequantized_weight().float(), want):
            raise RuntimeError("QuantLinear does not reproduce the stored codes: its storage layout changed")

    def dequantized_weight(self) -> torch.Tensor:
        return kernels.dequantize_weight(self.qweight, self.scale, self.zero, self.group_size, self.storage_bits)

    def _apply(self, fn, recurse=True):  # a dtype/device move invalidates the cache
        self._dequant = None
        return super()._apply(fn, recurse)

    def _load_from_state_dict(self, *args, **kwargs):
        self._dequant = None
        return super()._load_from_state_dict(*args, **kwargs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = fake_quant(x, self.a_bits, self.a_asym, -1, self.a_clip)
        bias = None if self.bias is None else self.bias.to(x.dtype)
        if x.is_cuda:  # the fused dequantize-matmul kernel reads the packed codes directly
            y = kernels.dequant_matmul(x, self.qweight, self.scale, self.zero, self.group_size, self.storage_bits)
            return y if bias is None else y + bias
        # on CPU the reference would dequantize on every call: keep the dequantized weight instead
        if self._dequant is None or self.training:
            self._dequant = self.dequantized_weight()
        return nn.functional.linear(x, self._dequant.to(x.dtype), bias)

    def weight_bits(self) -> int:
        n_groups = self.scale.numel()
        meta = 16 * n_groups * (2 if self.w_asym else 1)
        return self.out_features * self.in_features * self.w_bits + meta

    def weight_count(self) -> int:
        return self.out_features * self.in_features

    def extra_repr(self) -> str:
        return (f"{self.in_features}->{self.out_features}, w{self.w_bits} g{self.group_size}"
                f"{' asym' if self.w_asym else ''}, a{self.a_bits}")


class KVQuant(nn.Module):
    """KV-path fake quantization: asymmetric, per token and head, in groups along head_dim."""

    def __init__(self, bits: int, group_size: int = -1, asym: bool = True) -> None:
        super().__init__()
        self.bits, self.group_size, self.asym = bits, group_size, asym

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor):
        return (q, fake_quant(k, self.bits, self.asym, self.group_size),
                fake_quant(v, self.bits, self.asym, self.group_size))

    def extra_repr(self) -> str:
        return f"kv{self.bits} g{self.group_size}"
