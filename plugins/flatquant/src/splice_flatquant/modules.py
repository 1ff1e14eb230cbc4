"""The modules FlatQuant installs at the decoder's sites once calibrated (inference form).

- ``FlatQuantLinear`` (q, k, v, o, gate, up, down): the online transform ``x @ kron(P1, P2)``
  fused with per-token activation quantization (the ``flatquant_kron_quant`` kernel op), then a
  ``QuantLinear`` holding the packed transformed weight ``W P^{-T}`` (or an ``nn.Linear`` in full
  precision). The per-channel scaling of q/k/v and gate/up inputs lives in the RMSNorm weight
  before them, that of down's input in up's output rows, so no diagonal runs online.
- ``FlatKV`` (kv_path): queries times P_k^{-T} and keys times P_k after RoPE (``q k^T`` unchanged),
  then asymmetric per-head (or per-group) quantization of keys and values with learnt clipping.
  The value transform P_v is folded into v's output rows and o's input columns.
"""

from __future__ import annotations

import torch
from torch import nn

from .kernels import dequantize, kron_quant
from .quantizers import lac_fake_quant
from .transforms import kron_apply

FULL = 16
NO_CLIP = float("inf")  # sigmoid(inf) = 1: the full range


class FlatQuantLinear(nn.Module):
    """``inner(quantize(x @ kron(left, right)))``; ``right`` None = identity (the o_proj transform
    across heads). Weight bits are reported by ``inner``."""

    def __init__(self, inner: nn.Module, n1: int, n2: int | None, a_bits: int, a_symmetric: bool,
                 diag: int | None = None) -> None:
        super().__init__()
        self.inner = inner
        self.a_bits, self.a_symmetric = a_bits, a_symmetric
        self.register_buffer("left", torch.eye(n1))
        self.register_buffer("right", torch.eye(n2) if n2 is not None else None)
        self.register_buffer("clip", torch.full((2,), NO_CLIP))  # LAC logits (max, min); inf = none
        self.register_buffer("diag", torch.ones(diag) if diag is not None else None)

    @property
    def in_features(self) -> int:
        return self.inner.in_features

    @property
    def out_features(self) -> int:
        return self.inner.out_features

    def transform(self, x: torch.Tensor) -> torch.Tensor:
        """The online transform alone (no quantization)."""
        if self.diag is not None:
            x = x * self.diag.to(x.dtype)
        return kron_apply(x, self.left, self.right)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.a_bits >= FULL:
            return self.inner(self.transform(x))
        if self.diag is not None:
            x = x * self.diag.to(x.dtype)
        codes, scale, zero = kron_quant(x, self.left, self.right, bits=self.a_bits, symmetric=self.a_symmetric,
                                        clip_max=self.clip[:1], clip_min=self.clip[1:])
        return self.inner(dequantize(codes, scale, zero, x.dtype))

    def extra_repr(self) -> str:
        r = "I" if self.right is None else str(self.right.shape[0])
        return f"kron({self.left.shape[0]}, {r}), a{self.a_bits}{'' if self.a_symmetric else ' asym'}"


class FlatKV(nn.Module):
    """KV path: the learnt per-head key transform and quantization of keys and values."""

    def __init__(self, head_dim: int, k_bits: int, v_bits: int, group_size: int = -1, asym: bool = True) -> None:
        super().__init__()
        self.k_bits, self.v_bits, self.group_size, self.asym = k_bits, v_bits, group_size, asym
        self.bits = (k_bits + v_bits) / 2  # bits per cached element (Decoder.kv_bits)
        self.register_buffer("k_mat", torch.eye(head_dim))
        self.register_buffer("k_mat_inv_t", torch.eye(head_dim))
        self.register_buffer("k_clip", torch.full((2,), NO_CLIP))
        self.register_buffer("v_clip", torch.full((2,), NO_CLIP))

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor):
        q = torch.matmul(q, self.k_mat_inv_t.to(q.dtype))
        k = torch.matmul(k, self.k_mat.to(k.dtype))
        k = lac_fake_quant(k, self.k_bits, not self.asym, self.k_clip[:1], self.k_clip[1:], self.group_size)
        v = lac_fake_quant(v, self.v_bits, not self.asym, self.v_clip[:1], self.v_clip[1:], self.group_size)
        return q, k, v

    def extra_repr(self) -> str:
        return f"k{self.k_bits} v{self.v_bits} g{self.group_size}{' asym' if self.asym else ''}"
