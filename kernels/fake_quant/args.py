"""Argument checks and the grouping arithmetic shared by every fake-quant backend."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..errors import KernelArgumentError

# Floor on the step so an all-zero group divides by something; small enough (vs. OmniQuant's 1e-5)
# that 8-bit grids of small weights (|w| ~ 1e-3) are not coarsened by it.
SCALE_FLOOR = 1e-8

# A group is held whole in one Triton program's registers.
MAX_GROUP = 65536


@dataclass(frozen=True)
class Grouping:
    """x viewed as ``rows`` groups of ``group_size`` consecutive elements of its last dim."""

    group_size: int
    groups_per_row: int
    rows: int
    stats_shape: torch.Size  # x.shape[:-1] + (groups_per_row,): one (scale, zero) per entry
    qmin: float
    qmax: float
    # Symmetric grids use [-2^(b-1), 2^(b-1)-1] but scale amax to 2^(b-1)-1; asymmetric use [0, 2^b-1].
    levels: float


def grouping(
    x: torch.Tensor,
    bits: int,
    symmetric: bool,
    group_size: int | None,
    clip_max: torch.Tensor | None,
    clip_min: torch.Tensor | None,
) -> Grouping:
    if not isinstance(bits, int) or not 2 <= bits <= 8:
        raise KernelArgumentError(f"fake_quant: bits must be an int in 2..8, got {bits!r}")
    if not x.is_floating_point():
        raise KernelArgumentError(f"fake_quant: x must be floating point, got {x.dtype}")
    if x.dim() == 0:
        raise KernelArgumentError("fake_quant: x must have at least one dimension")
    k = x.shape[-1]
    gs = k if group_size in (None, -1) else group_size
    if not isinstance(gs, int) or gs <= 0 or k % gs != 0:
        raise KernelArgumentError(
            f"fake_quant: group_size must divide the last dim ({k}); got {group_size!r}"
        )
    stats_shape = torch.Size((*x.shape[:-1], k // gs))
    if symmetric and clip_min is not None:
        raise KernelArgumentError("fake_quant: clip_min only applies to asymmetric quantization")
    for name, clip in (("clip_max", clip_max), ("clip_min", clip_min)):
        if clip is None:
            continue
        if not clip.is_floating_point():
            raise KernelArgumentError(f"fake_quant: {name} must be floating point, got {clip.dtype}")
        try:
            torch.broadcast_shapes(clip.shape, stats_shape)
        except RuntimeError:
            raise KernelArgumentError(
                f"fake_quant: {name} of shape {tuple(clip.shape)} does not broadcast to the "
                f"per-group statistics {tuple(stats_shape)}"
            ) from None
        if torch.broadcast_shapes(clip.shape, stats_shape) != stats_shape:
            raise KernelArgumentError(
                f"fake_quant: {name} of shape {tuple(clip.shape)} is larger than the per-group "
                f"statistics {tuple(stats_shape)}"
            )
    if symmetric:
        qmin, qmax, levels = -(2.0 ** (bits - 1)), 2.0 ** (bits - 1) - 1, 2.0 ** (bits - 1) - 1
    else:
        qmin, qmax, levels = 0.0, 2.0**bits - 1, 2.0**bits - 1
    rows = stats_shape.numel()
    return Grouping(gs, k // gs, rows, stats_shape, qmin, qmax, levels)
