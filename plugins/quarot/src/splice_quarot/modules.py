"""The modules QuaRot installs at the decoder's sites."""

from __future__ import annotations

import torch
from splice.quant import FULL, QuantLinear, fake_quant
from torch import nn

from .rotations import Rotation


class RotatedLinear(nn.Module):
    """``inner(quant(rotate(x)))``: an optional online rotation, per-token activation quantization,
    then the linear layer (a packed ``QuantLinear`` or, in full precision, an ``nn.Linear``).

    The bits this layer's weights cost are reported by ``inner`` (a QuantizedModule), so this
    wrapper is a plain module and ``bits_per_weight`` counts each weight once.
    """

    def __init__(self, inner: nn.Module, rotate: nn.Module | None = None, a_bits: int = FULL,
                 a_asym: bool = False, a_clip: float = 1.0) -> None:
        super().__init__()
        self.inner = inner
        self.rotate = rotate
        self.a_bits, self.a_asym, self.a_clip = a_bits, a_asym, a_clip

    @property
    def in_features(self) -> int:
        return self.inner.in_features

    @property
    def out_features(self) -> int:
        return self.inner.out_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.rotate is not None:
            x = self.rotate(x)
        x = fake_quant(x, self.a_bits, self.a_asym, -1, self.a_clip)
        return self.inner(x)

    def extra_repr(self) -> str:
        return f"a{self.a_bits}{' asym' if self.a_asym else ''} clip {self.a_clip}"


def _pack(q: QuantLinear, codes: torch.Tensor) -> torch.Tensor:
    """Codes in QuantLinear's own storage layout (whichever splice's core uses)."""
    codes = codes.to(torch.uint8)
    if hasattr(q, "storage_bits"):  # storage delegated to splice.kernels' packing
        from splice import kernels

        return kernels.pack(codes, q.storage_bits)
    from splice import quant

    return quant.pack_codes(codes, q.w_bits)


def load_codes(q: QuantLinear, codes: torch.Tensor, scale: torch.Tensor, zero: torch.Tensor) -> None:
    """Store integer codes (out x in, on QuantLinear's grid: ``w = (code - zero) * scale``) and their
    per-group scales and zero points (out x groups, already representable in fp16). Checks that
    the module dequantizes to exactly that (a changed storage layout fails loudly here)."""
    q.qweight.copy_(_pack(q, codes))
    q.scale.copy_(scale.half())
    q.zero.copy_(zero.half())
    q._dequant = None
    g = codes.shape[1] // scale.shape[1]
    want = (codes.float() - zero.half().float().repeat_interleave(g, 1)) * scale.half().float().repeat_interleave(g, 1)
    if not torch.equal(q.dequantized_weight().float(), want):
        raise RuntimeError("QuantLinear does not reproduce the stored codes: its storage layout changed")


class QuaRotKV(nn.Module):
    """The KV path: an online Hadamard on queries and keys (after RoPE; ``q k^T`` is unchanged),
    then asymmetric per-head (or per-group along head_dim) quantization of keys and values with a
    fixed clipping ratio. Values arrive already rotated: the head_dim Hadamard is folded into v."""

    def __init__(self, head_dim: int, k_bits: int, v_bits: int, group_size: int = -1, asym: bool = True,
                 clip: float = 1.0, prefer: str = "hadamard", seed: int = 0) -> None:
        super().__init__()
        self.rot = Rotation(head_dim, prefer, seed)
        self.k_bits, self.v_bits, self.group_size, self.asym, self.clip = k_bits, v_bits, group_size, asym, clip
        self.bits = (k_bits + v_bits) / 2  # what the cache stores per element (Decoder.kv_bits)

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor):
        q, k = self.rot(q), self.rot(k)
        k = fake_quant(k, self.k_bits, self.asym, self.group_size, self.clip)
        v = fake_quant(v, self.v_bits, self.asym, self.group_size, self.clip)
        return q, k, v

    def extra_repr(self) -> str:
        return f"k{self.k_bits} v{self.v_bits} g{self.group_size} clip {self.clip}"

