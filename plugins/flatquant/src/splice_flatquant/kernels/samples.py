"""Inputs the kernels' conformance check (``splice.kernels.testing.check_backend``) runs on."""

from __future__ import annotations

from collections.abc import Iterator

import torch
from splice.kernels import Sample


def kron_quant_samples(device: torch.device) -> Iterator[Sample]:
    gen = torch.Generator().manual_seed(7)

    def randn(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=gen).to(device)

    def logit(v: float) -> torch.Tensor:
        return torch.tensor([v], device=device)

    # SmolLM2's shapes: hidden 576 = 24 x 24, intermediate 1536 = 32 x 48, 9 heads x head_dim 64
    yield Sample((randn(2, 5, 576), randn(24, 24), randn(24, 24)), {"bits": 4},
                 "576=24x24 sym 4b, no clip")
    yield Sample((randn(7, 1536), randn(32, 32), randn(48, 48)),
                 {"bits": 4, "clip_max": logit(4.0), "clip_min": logit(2.5)}, "1536=32x48 sym 4b LAC")
    yield Sample((randn(3, 4, 576), randn(9, 9), None), {"bits": 4, "clip_max": logit(3.0)},
                 "heads 9 x 64, right=identity")
    yield Sample((randn(6, 128), randn(8, 8), randn(16, 16)),
                 {"bits": 8, "symmetric": False, "clip_max": logit(4.0), "clip_min": logit(1.0)},
                 "128=8x16 asym 8b LAC")
    x = randn(5, 384)
    x[2] = 0.0  # an all-zero token: scale 1 (sym) / range [-1, 1] (asym)
    yield Sample((x, randn(16, 16), randn(24, 24)), {"bits": 3, "symmetric": False}, "384=16x24 asym 3b zero row")
    yield Sample((x, randn(16, 16), randn(24, 24)), {"bits": 4}, "384=16x24 sym 4b zero row")
