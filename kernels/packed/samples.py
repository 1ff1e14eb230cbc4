"""Sample inputs for dequant_matmul: 2/4/8-bit codes, grouped and per-channel, symmetric (no
zeros) and asymmetric, decode-like (M=1) and ragged M/N/K tiles."""

from __future__ import annotations

from collections.abc import Iterator

import torch

from ..sample import Sample
from .storage import quantize_weight

DTYPES = (torch.float32, torch.bfloat16, torch.float16)
# (x shape, out_features, bits, group_size, symmetric)
GRID = (
    ((3, 64), 32, 4, 32, False),
    ((2, 5, 128), 48, 4, None, True),
    ((4, 96), 40, 8, 32, False),
    ((1, 128), 24, 2, 64, False),
    ((33, 64), 16, 4, 16, True),
)


def dequant_matmul_samples(device: torch.device) -> Iterator[Sample]:
    gen = torch.Generator().manual_seed(7)
    for dtype in DTYPES:
        tag = str(dtype).removeprefix("torch.")
        for x_shape, n, bits, gs, sym in GRID:
            w = torch.randn(n, x_shape[-1], generator=gen).to(device=device, dtype=dtype) * 0.05
            pw = quantize_weight(w, bits, gs, symmetric=sym)
            x = torch.randn(*x_shape, generator=gen).to(device=device, dtype=dtype).requires_grad_()
            label = f"{tag} x{tuple(x_shape)} N={n} int{bits} g={gs or 'row'} {'sym' if sym else 'asym'}"
            yield Sample((x, *pw), {}, label)
