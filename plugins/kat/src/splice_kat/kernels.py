"""The ``kat_rational`` kernel op: reference + Triton backend, registered with ``splice.kernels``.

``kat_rational(x, numerator, denominator, form=...)`` dispatches to the Triton kernel on CUDA
(or on CPU under TRITON_INTERPRET=1) and to the PyTorch reference otherwise;
``SPLICE_KERNELS=kat_rational=reference`` forces the reference.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from splice.kernels import Sample, Tolerance, define_op, get_op, register_backend, triton_available
from splice.kernels.errors import UnknownOp

from .rational import rational_reference

OP = "kat_rational"

# (leading shape, D, groups, form): non-power-of-two group widths, one group, many groups
GRID = (
    ((2, 5), 32, 8, "paper"),
    ((3, 7), 24, 8, "pau_a"),
    ((4,), 40, 4, "paper"),
    ((2, 3, 2), 12, 1, "pau_a"),
    ((130,), 64, 8, "paper"),
    ((1, 1), 8, 8, "pau_a"),
)


def rational_samples(device: torch.device) -> Iterator[Sample]:
    from .init import INITS

    gen = torch.Generator().manual_seed(7)
    for dtype in (torch.float32, torch.bfloat16):
        tag = str(dtype).removeprefix("torch.")
        for lead, d, groups, form in GRID if dtype == torch.float32 else GRID[:2]:
            x = (torch.randn(*lead, d, generator=gen) * 1.5).to(device=device, dtype=dtype)
            a0, b0 = INITS[form]["swish"]
            a = torch.tensor(a0).repeat(groups, 1) + 0.05 * torch.randn(groups, 6, generator=gen)
            b = torch.tensor(b0).repeat(groups, 1) + 0.05 * torch.randn(groups, 4, generator=gen)
            yield Sample((x.requires_grad_(), a.to(device).requires_grad_(), b.to(device).requires_grad_()),
                         {"form": form}, f"{tag} {lead}x{d} G={groups} {form}")


try:
    kat_rational = get_op(OP)
except UnknownOp:
    kat_rational = define_op(
        OP, rational_reference, samples=rational_samples, differentiable=True,
        tol={torch.float32: Tolerance(2e-5, 2e-5), torch.bfloat16: Tolerance(1.6e-2, 1e-2)},
        grad_tol={torch.float32: Tolerance(2e-4, 2e-4), torch.bfloat16: Tolerance(3e-2, 3e-2)},
        description="KAT group-wise safe Padé rational P(x)/Q(x) along the last dim (m=5, n=4)",
    )
    register_backend(OP, "triton", "splice_kat.triton_rational:rational_triton", available=triton_available)
