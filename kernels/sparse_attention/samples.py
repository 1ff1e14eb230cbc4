"""Sample inputs for block-sparse attention: GQA/MQA, ragged sequence and head sizes, causal with
the default and a decode-style key offset, mask and index selections (broadcast, per KV head,
duplicates), and query blocks that select nothing."""

from __future__ import annotations

from collections.abc import Iterator

import torch

from ..sample import Sample

DTYPES = (torch.float32, torch.bfloat16, torch.float16)


def block_sparse_attention_samples(device: torch.device) -> Iterator[Sample]:
    gen = torch.Generator().manual_seed(5)

    def qkv(b: int, h: int, hkv: int, t: int, s: int, d: int, dtype: torch.dtype):
        make = lambda *shape: torch.randn(*shape, generator=gen).to(device=device, dtype=dtype).requires_grad_()
        return make(b, h, t, d), make(b, hkv, s, d), make(b, hkv, s, d)

    def rand_mask(*shape: int, density: float) -> torch.Tensor:
        return (torch.rand(*shape, generator=gen) < density).to(device)

    for dtype in DTYPES:
        tag = str(dtype).removeprefix("torch.")
        # Prefill, causal, one mask broadcast over batch and heads; the diagonal always selected.
        q, k, v = qkv(1, 2, 1, 48, 48, 32, dtype)
        mask = rand_mask(1, 1, 3, 3, density=0.5) | torch.eye(3, dtype=torch.bool, device=device)
        yield Sample((q, k, v, mask), {"block_size": 16, "causal": True, "return_lse": True},
                     f"{tag} causal prefill GQA mask")
        # Chunked prefill against a longer cache (key_offset = S - T), indices with -1 padding and a
        # duplicate, per (batch, head); head_dim 24 is padded inside the kernel.
        q, k, v = qkv(2, 4, 2, 20, 64, 24, dtype)
        idx = torch.randint(0, 4, (2, 4, 2, 3), generator=gen).to(device)
        idx[..., -1] = -1
        idx[0, 0, 0] = torch.tensor([2, 2, -1])
        yield Sample((q, k, v, idx), {"block_size": 16, "causal": True}, f"{tag} causal chunk indices")
        # Non-causal, different query/key block sizes, selection per KV head, an empty query block.
        q, k, v = qkv(1, 4, 2, 32, 40, 16, dtype)
        mask = rand_mask(1, 2, 2, 2, density=0.6)
        mask[0, 0, 1] = False
        yield Sample((q, k, v, mask), {"block_size": 32, "block_q": 16, "return_lse": True, "scale": 0.3},
                     f"{tag} bidirectional per-kv-head, empty block")
        # Decode: one query, MQA, explicit offset, a few selected blocks.
        q, k, v = qkv(1, 4, 1, 1, 64, 32, dtype)
        idx = torch.tensor([[[[0, 3]]]], device=device)
        yield Sample((q, k, v, idx), {"block_size": 16, "block_q": 16, "causal": True, "key_offset": 63},
                     f"{tag} decode MQA")
