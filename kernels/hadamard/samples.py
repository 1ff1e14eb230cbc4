"""Sample inputs for the Hadamard transform: powers of two and each Paley core, with and
without a power-of-two factor, both normalisations."""

from __future__ import annotations

from collections.abc import Iterator

import torch

from ..sample import Sample

DTYPES = (torch.float32, torch.bfloat16, torch.float16)
# (leading shape, n, normalize)
GRID = (
    ((4,), 64, True),
    ((2, 3), 256, False),
    ((5,), 12, True),
    ((3,), 48, True),      # 12 * 4
    ((2, 2), 80, False),   # 20 * 4
    ((3,), 28, True),
    ((2,), 112, True),     # 28 * 4
    ((7,), 1, True),
)


def hadamard_samples(device: torch.device) -> Iterator[Sample]:
    gen = torch.Generator().manual_seed(99)
    for dtype in DTYPES:
        tag = str(dtype).removeprefix("torch.")
        for lead, n, normalize in GRID:
            x = torch.randn(*lead, n, generator=gen).to(device=device, dtype=dtype).requires_grad_()
            yield Sample((x,), {"normalize": normalize}, f"{tag} n={n} {'orthonormal' if normalize else 'raw'}")
