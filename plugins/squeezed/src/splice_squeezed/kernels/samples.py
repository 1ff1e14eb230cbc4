"""Sample inputs every backend of the two kernels is checked on (``splice.kernels.testing``):
MHA and GQA, shared and per-query selections, excluded clusters, padded index lists, a decode
step, a head dim that is not a power of two, float32 and bfloat16."""

from __future__ import annotations

from collections.abc import Iterator

import torch
from splice.kernels import Sample

DTYPES = (torch.float32, torch.bfloat16)


def _gen() -> torch.Generator:
    return torch.Generator().manual_seed(11)


def centroid_scores_samples(device: torch.device) -> Iterator[Sample]:
    gen = _gen()

    def rnd(*shape: int, dtype=torch.float32) -> torch.Tensor:
        return torch.randn(*shape, generator=gen).to(device=device, dtype=dtype)

    for dtype in DTYPES:
        tag = str(dtype).removeprefix("torch.")
        # Shared selection (one group of 20 queries), GQA 4:2, 37 clusters (two cluster blocks).
        q, c = rnd(1, 4, 20, 32, dtype=dtype), rnd(1, 2, 37, 32, dtype=dtype)
        sizes = torch.randint(1, 30, (1, 4, 1, 37), generator=gen).float().to(device)
        yield Sample((q, c, sizes.log()), {"group_size": 20, "scale": 32 ** -0.5}, f"{tag} shared GQA")
        # Per-query groups, MHA, head dim 24, some clusters excluded (-inf), one row all excluded.
        q, c = rnd(2, 2, 5, 24, dtype=dtype), rnd(2, 2, 9, 24, dtype=dtype)
        ls = torch.rand(2, 2, 5, 9, generator=gen).mul(3).to(device)
        ls[torch.rand(2, 2, 5, 9, generator=gen).to(device) < 0.3] = float("-inf")
        ls[1, 0, 2] = float("-inf")
        yield Sample((q, c, ls), {"group_size": 1, "scale": 0.4}, f"{tag} per-query excluded")


def selected_attention_samples(device: torch.device) -> Iterator[Sample]:
    gen = _gen()

    def rnd(*shape: int, dtype=torch.float32) -> torch.Tensor:
        return torch.randn(*shape, generator=gen).to(device=device, dtype=dtype)

    for dtype in DTYPES:
        tag = str(dtype).removeprefix("torch.")
        # Shared selection over a 50-key prefix, 6 new tokens (causal among them), GQA.
        q, k, v = rnd(1, 4, 6, 32, dtype=dtype), rnd(1, 2, 56, 32, dtype=dtype), rnd(1, 2, 56, 32, dtype=dtype)
        idx = torch.stack([torch.randperm(50, generator=gen)[:40] for _ in range(4)]).view(1, 4, 1, 40)
        idx[0, 1, 0, 30:] = -1
        yield Sample((q, k, v, idx.to(device)), {"prefix_length": 50, "group_size": 6, "scale": 32 ** -0.5},
                     f"{tag} shared GQA")
        # Per-query selections (group_size 1), head dim 24, one query with no selected key; a decode
        # step later in a cache (key_offset beyond the prefix: earlier generated tokens are attended).
        q, k, v = rnd(2, 2, 3, 24, dtype=dtype), rnd(2, 2, 40, 24, dtype=dtype), rnd(2, 2, 40, 24, dtype=dtype)
        idx = torch.stack([torch.randperm(33, generator=gen)[:7] for _ in range(12)]).view(2, 2, 3, 7)
        idx[0, 0, 1] = -1
        yield Sample((q, k, v, idx.to(device)), {"prefix_length": 33, "group_size": 1, "scale": 0.3,
                                                 "key_offset": 37}, f"{tag} per-query offset")
        # Decode: one query, MQA, everything selected.
        q, k, v = rnd(1, 4, 1, 16, dtype=dtype), rnd(1, 1, 70, 16, dtype=dtype), rnd(1, 1, 70, 16, dtype=dtype)
        idx = torch.arange(69).view(1, 1, 1, 69).expand(1, 4, 1, 69).contiguous()
        yield Sample((q, k, v, idx.to(device)), {"prefix_length": 69, "group_size": 1, "scale": 0.25},
                     f"{tag} decode MQA all selected")
