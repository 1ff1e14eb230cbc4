"""Sample inputs for fake_quant's backend checks: every granularity, both grids, bits 2..8,
clipping logits of several broadcast shapes, ties at the group extremes and an all-zero group."""

from __future__ import annotations

from collections.abc import Iterator

import torch

from ..sample import Sample

DTYPES = (torch.float32, torch.bfloat16, torch.float16)


def fake_quant_samples(device: torch.device) -> Iterator[Sample]:
    gen = torch.Generator().manual_seed(1234)

    def randn(*shape: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        return torch.randn(*shape, generator=gen).to(device=device, dtype=dtype)

    def logits(*shape: int) -> torch.Tensor:
        # OmniQuant initialises LWC logits at 4 (sigmoid ~ 0.98); spread them to clip differently.
        return (4.0 + 1.5 * randn(*shape)).requires_grad_(True)

    for dtype in DTYPES:
        tag = str(dtype).removeprefix("torch.")
        yield Sample((randn(8, 64, dtype=dtype).requires_grad_(), 4), {"symmetric": True},
                     f"{tag} per-channel sym 4b")
        yield Sample((randn(8, 64, dtype=dtype).requires_grad_(), 8),
                     {"symmetric": False, "clip_max": logits(8, 1), "clip_min": logits(8, 1)},
                     f"{tag} per-channel asym 8b lwc")
        yield Sample((randn(2, 3, 96, dtype=dtype).requires_grad_(), 3),
                     {"symmetric": False, "group_size": 32, "clip_max": logits(2, 3, 3), "clip_min": logits(1)},
                     f"{tag} per-group(32) asym 3b lwc")
        yield Sample((randn(16, 128, dtype=dtype).requires_grad_(), 2),
                     {"symmetric": True, "group_size": 16, "clip_max": logits(16, 8)},
                     f"{tag} per-group(16) sym 2b lwc")
        yield Sample((randn(3, 5, 60, dtype=dtype).requires_grad_(), 6),
                     {"symmetric": True, "group_size": 20, "clip_max": logits(1)},
                     f"{tag} per-token group 20 sym 6b lac")
        ties = torch.randint(-3, 4, (6, 32), generator=gen).to(device=device, dtype=dtype)
        ties[0] = 0.0  # an all-zero group: the scale floor, no gradient to the clip
        yield Sample((ties.requires_grad_(), 5), {"symmetric": False, "clip_max": logits(6, 1)},
                     f"{tag} ties+zero-row asym 5b")
        yield Sample((randn(4, 7, 256, dtype=dtype).requires_grad_(), 7), {"symmetric": False},
                     f"{tag} per-token asym 7b")
