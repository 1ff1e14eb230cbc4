"""The modules QuaRot installs at the decoder's sites."""

from __future__ import annotations

import torch
from splice.quant import FULL, fake_quant
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

