"""Fake quantization limit cases, on every backend: error bounds, exactness on the grid, the
straight-through gradient, clipping, degenerate groups, argument checks."""

from __future__ import annotations

import pytest
import torch
from splice.kernels import KernelArgumentError, get_op

BACKENDS = ["reference", "triton"]


def fq(backend: str, *args, **kwargs) -> torch.Tensor:
    return get_op("fake_quant").run(backend, *args, **kwargs)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("symmetric", [True, False])
@pytest.mark.parametrize("group_size", [None, 32])
def test_8bit_error_is_at_most_half_a_step(backend: str, symmetric: bool, group_size: int | None) -> None:
    x = torch.randn(16, 128)
    y = fq(backend, x, 8, symmetric=symmetric, group_size=group_size)
    xg = x.reshape(16, -1, group_size or 128)
    if symmetric:
        step = xg.abs().amax(-1) / 127
    else:
        step = (xg.amax(-1).clamp_min(0) - xg.amin(-1).clamp_max(0)) / 255
    step = step.repeat_interleave(group_size or 128, dim=1)
    assert ((y - x).abs() <= step / 2 * (1 + 1e-5)).all()


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("bits", [2, 4, 8])
def test_identity_on_symmetric_grid(backend: str, bits: int) -> None:
    qmax = 2 ** (bits - 1) - 1
    s = 2.0**-5
    q = torch.randint(-qmax, qmax + 1, (6, 40)).float()
    q[:, 0] = qmax  # the group max sits on the top level, so the scale is exactly s
    x = q * s
    assert torch.equal(fq(backend, x, bits, symmetric=True), x)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("bits", [3, 4, 8])
def test_identity_on_asymmetric_grid(backend: str, bits: int) -> None:
    top = 2**bits - 1
    s, z = 2.0**-4, 2 ** (bits - 2)
    q = torch.randint(0, top + 1, (5, 3, 2, 16)).float()
    q[..., 0], q[..., 1] = 0, top  # each group spans the whole grid: range = top * s, zero point = z
    x = ((q - z) * s).reshape(5, 3, 32)
    assert torch.equal(fq(backend, x, bits, symmetric=False, group_size=16), x)


@pytest.mark.parametrize("backend", BACKENDS)
def test_straight_through_gradient_and_clipping(backend: str) -> None:
    x = torch.randn(4, 64, requires_grad=True)
    g = torch.randn(4, 64)
    fq(backend, x, 4, symmetric=True).backward(g)
    not_max = x.detach().abs() < x.detach().abs().amax(-1, keepdim=True)
    assert torch.allclose(x.grad[not_max], g[not_max], atol=1e-6)  # rounding is transparent

    x.grad = None
    clip = torch.full((4, 1), -2.0, requires_grad=True)  # keep ~12% of the range: most values clip
    fq(backend, x, 4, symmetric=True, clip_max=clip).backward(g)
    a = x.detach().abs().amax(-1, keepdim=True) * torch.sigmoid(clip.detach())
    clipped = (x.detach().abs() > a * 1.25) & not_max  # beyond round-then-clamp reach: 8.5/7 of a
    assert clipped.any()
    assert torch.equal(x.grad[clipped], torch.zeros_like(x.grad[clipped]))
    assert torch.isfinite(clip.grad).all() and (clip.grad != 0).all()


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("symmetric", [True, False])
def test_all_zero_group(backend: str, symmetric: bool) -> None:
    x = torch.zeros(2, 16, requires_grad=True)
    clip = torch.zeros(2, 1, requires_grad=True)
    y = fq(backend, x, 4, symmetric=symmetric, clip_max=clip)
    assert torch.equal(y, torch.zeros_like(y))
    y.sum().backward()
    assert torch.isfinite(x.grad).all() and torch.equal(clip.grad, torch.zeros_like(clip))


@pytest.mark.parametrize("backend", BACKENDS)
def test_dtype_and_shape_preserved(backend: str) -> None:
    x = torch.randn(2, 3, 64, dtype=torch.bfloat16)
    y = fq(backend, x, 4, symmetric=False, group_size=16)
    assert y.dtype == torch.bfloat16 and y.shape == x.shape


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"bits": 1}, "bits"),
    ({"bits": 9}, "bits"),
    ({"bits": 4.0}, "bits"),
    ({"bits": 4, "group_size": 24}, "group_size"),
    ({"bits": 4, "symmetric": True, "clip_min": torch.zeros(1)}, "clip_min"),
    ({"bits": 4, "clip_max": torch.zeros(3, 1)}, "clip_max"),
    ({"bits": 4, "clip_max": torch.zeros(2, 4, 2)}, "larger"),
])
@pytest.mark.parametrize("backend", BACKENDS)
def test_argument_errors(backend: str, kwargs: dict, match: str) -> None:
    x = torch.randn(4, 64)
    kwargs = dict(kwargs)  # parametrize shares the dict between backends
    bits = kwargs.pop("bits")
    with pytest.raises(KernelArgumentError, match=match):
        fq(backend, x, bits, **kwargs)


def test_integer_input_rejected() -> None:
    with pytest.raises(KernelArgumentError, match="floating"):
        get_op("fake_quant")(torch.ones(2, 4, dtype=torch.int32), 4)
