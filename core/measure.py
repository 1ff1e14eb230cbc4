"""What compose puts side by side: bytes, bits per weight, KV-cache bytes."""

from __future__ import annotations

import torch

from .kinds.quantizer import bits_per_weight
from .model.decoder import Decoder


def parameter_bytes(model: Decoder) -> int:
    """Bytes of everything saved: parameters and persistent buffers, tied tensors once."""
    seen: set[int] = set()
    total = 0
    for t in model.state_dict(keep_vars=True).values():
        if t.data_ptr() in seen:
            continue
        seen.add(t.data_ptr())
        total += t.numel() * t.element_size()
    return total


@torch.no_grad()
def kv_cache_bytes(model: Decoder, tokens: int = 512) -> int:
    """Bytes the KV cache holds after ``tokens`` tokens of one sequence, as the model caches them."""
    tokens = min(tokens, model.config.max_position_embeddings)
    cache = model.new_cache()
    ids = torch.zeros(1, tokens, dtype=torch.long, device=model.device)
    model(ids, cache=cache)
    return cache.nbytes()


def footprint(model: Decoder) -> dict[str, float]:
    return {"parameter_bytes": parameter_bytes(model), "bits_per_weight": bits_per_weight(model),
            "kv_cache_bytes": kv_cache_bytes(model)}
