"""What an op declares about its own testing: sample inputs and per-dtype tolerances."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import torch


@dataclass
class Sample:
    """One call of an op: ``op(*args, **kwargs)``. Tensors that should receive gradients in the
    gradient check are created with ``requires_grad=True``."""

    args: tuple[Any, ...]
    kwargs: dict[str, Any] = field(default_factory=dict)
    label: str = ""


SampleFn = Callable[[torch.device], Iterable[Sample]]


class Tolerance(NamedTuple):
    rtol: float
    atol: float


# bfloat16 has 8 significant bits: a correct kernel that rounds once differently is 2**-8 off.
DEFAULT_TOL: Mapping[torch.dtype, Tolerance] = {
    torch.float32: Tolerance(1e-5, 1e-5),
    torch.float16: Tolerance(1e-3, 1e-3),
    torch.bfloat16: Tolerance(1.6e-2, 1e-2),
}


def tolerance_for(table: Mapping[torch.dtype, Tolerance], dtype: torch.dtype) -> Tolerance:
    if dtype in table:
        return table[dtype]
    if dtype in DEFAULT_TOL:
        return DEFAULT_TOL[dtype]
    return Tolerance(0.0, 0.0)  # integer / bool outputs must match exactly
