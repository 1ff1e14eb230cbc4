"""The KV cache: what every layer has attended to so far, and the fixed-context workflow.

Keys and values are stored after RoPE and after the layer's KV path (so a KV quantizer's
effect is what is cached). ``key_mask`` marks real (non-padding) positions. A cache can be
*frozen* after prefilling a long fixed context: attention methods then get one offline look at
each layer's prefix keys (``on_prefix``) and keep what they computed in ``layer_state``; every
query then runs on a ``fork()`` that shares the prefix without copying it.
"""

from __future__ import annotations

from typing import Any

import torch


class KVCache:
    def __init__(self, num_layers: int) -> None:
        self.num_layers = num_layers
        self.keys: list[torch.Tensor | None] = [None] * num_layers
        self.values: list[torch.Tensor | None] = [None] * num_layers
        self.key_mask: torch.Tensor | None = None  # B×S bool, True = a real token
        self.prefix_length = 0  # positions that belong to a frozen fixed context
        self.layer_state: list[dict[str, Any]] = [{} for _ in range(num_layers)]
        self.kv_bits: float = 16.0  # bits per cached element as stored (a KV quantizer sets it)

    @property
    def length(self) -> int:
        k = self.keys[0]
        return 0 if k is None else int(k.shape[-2])

    def append(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Add this step's keys/values (B×Hkv×T×D) to ``layer`` and return everything cached."""
        if self.keys[layer] is None:
            self.keys[layer], self.values[layer] = k, v
        else:
            self.keys[layer] = torch.cat([self.keys[layer], k], dim=-2)
            self.values[layer] = torch.cat([self.values[layer], v], dim=-2)
        return self.keys[layer], self.values[layer]  # type: ignore[return-value]

    def extend_mask(self, mask: torch.Tensor) -> torch.Tensor:
        """Append this step's padding mask (B×T bool) and return the mask of all keys (B×S)."""
        mask = mask.bool()
        self.key_mask = mask if self.key_mask is None else torch.cat([self.key_mask, mask], dim=-1)
        return self.key_mask

    def freeze(self) -> "KVCache":
        """Mark everything cached so far as the fixed context (prefix)."""
        self.prefix_length = self.length
        return self

    def fork(self) -> "KVCache":
        """A cache that shares the (frozen) contents without copying; appends do not touch self."""
        other = KVCache(self.num_layers)
        other.keys, other.values = list(self.keys), list(self.values)
        other.key_mask = self.key_mask
        other.prefix_length = self.prefix_length
        other.layer_state = self.layer_state  # offline state of the prefix is shared, read-only
        other.kv_bits = self.kv_bits
        return other

    def nbytes(self) -> int:
        """Bytes the cached keys and values take at ``kv_bits`` per element."""
        n = sum(t.numel() for t in self.keys if t is not None) + sum(t.numel() for t in self.values if t is not None)
        return int(n * self.kv_bits / 8)
