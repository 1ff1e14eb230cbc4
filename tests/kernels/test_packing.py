"""Packed low-bit storage: layout, round trips, RTN quantization bounds, dequantize-matmul."""

from __future__ import annotations

import pytest
import splice.kernels as K
import torch
from splice.kernels import KernelArgumentError, dequantize_weight, get_op, pack, quantize_weight, unpack


@pytest.mark.parametrize("bits", [2, 4, 8])
def test_pack_unpack_round_trip(bits: int) -> None:
    codes = torch.randint(0, 1 << bits, (3, 5, 32), dtype=torch.uint8)
    packed = pack(codes, bits)
    assert packed.dtype == torch.uint8 and packed.shape == (3, 5, 32 * bits // 8)
    assert torch.equal(unpack(packed, bits), codes)


def test_pack_layout_is_low_bits_first() -> None:
    assert pack(torch.tensor([[1, 2]]), 4).tolist() == [[0x21]]
    assert pack(torch.tensor([[1, 2, 3, 0]]), 2).tolist() == [[1 | 2 << 2 | 3 << 4]]
    assert pack(torch.tensor([[200]]), 8).tolist() == [[200]]


@pytest.mark.parametrize(("codes", "bits", "match"), [
    (torch.tensor([[1, 2, 3]]), 4, "multiple of 2"),
    (torch.tensor([[16, 0]]), 4, "lie in"),
    (torch.tensor([[-1, 0]]), 4, "lie in"),
    (torch.tensor([[1.0, 2.0]]), 4, "integer"),
    (torch.tensor([[1, 2]]), 3, "bits=3"),
])
def test_pack_errors(codes: torch.Tensor, bits: int, match: str) -> None:
    with pytest.raises(KernelArgumentError, match=match):
        pack(codes, bits)


@pytest.mark.parametrize("bits", [2, 4, 8])
@pytest.mark.parametrize("symmetric", [False, True])
@pytest.mark.parametrize("group_size", [None, 32])
def test_quantize_weight_error_bound(bits: int, symmetric: bool, group_size: int | None) -> None:
    w = torch.randn(16, 128) * 0.02
    pw = quantize_weight(w, bits, group_size, symmetric=symmetric)
    deq = pw.dequantize()
    gs = group_size or 128
    step = pw.scales.float().repeat_interleave(gs, dim=1)
    assert ((deq - w).abs() <= step / 2 * (1 + 1e-5) + 1e-12).all()
    assert (pw.zeros is None) == symmetric


def test_dequant_matmul_reference_is_matmul_on_dequantized_weight() -> None:
    w = torch.randn(24, 64)
    pw = quantize_weight(w, 4, 16)
    x = torch.randn(2, 3, 64)
    y = K.dequant_matmul(x, *pw)
    assert y.shape == (2, 3, 24)
    assert torch.allclose(y, x @ dequantize_weight(*pw).T, atol=1e-5)


@pytest.mark.parametrize("backend", ["reference", "triton"])
def test_dequant_matmul_accepts_integer_zero_points_and_odd_shapes(backend: str) -> None:
    w = torch.randn(5, 48)
    pw = quantize_weight(w, 8, 16)
    zeros = pw.zeros.round().to(torch.int32)
    x = torch.randn(7, 48)
    y = get_op("dequant_matmul").run(backend, x, pw.packed, pw.scales, zeros, 16, 8)
    ref = x @ dequantize_weight(pw.packed, pw.scales, zeros, 16, 8).T
    assert torch.allclose(y, ref, atol=1e-4)


def test_layout_errors() -> None:
    pw = quantize_weight(torch.randn(8, 64), 4, 32)
    x = torch.randn(2, 64)
    with pytest.raises(KernelArgumentError, match="scales"):
        K.dequant_matmul(x, pw.packed, pw.scales[:, :1], pw.zeros, 32, 4)
    with pytest.raises(KernelArgumentError, match="group_size"):
        K.dequant_matmul(x, pw.packed, pw.scales, pw.zeros, 48, 4)
    with pytest.raises(KernelArgumentError, match="features"):
        K.dequant_matmul(torch.randn(2, 32), *pw)


def test_scales_with_grad_fall_back_to_reference() -> None:
    pw = quantize_weight(torch.randn(8, 64), 4, 32)
    scales = pw.scales.clone().requires_grad_()
    x = torch.randn(2, 64)
    op = get_op("dequant_matmul")
    assert op.select((x, pw.packed, scales, pw.zeros, 32, 4), {}).name == "reference"
    K.dequant_matmul(x, pw.packed, scales, pw.zeros, 32, 4).sum().backward()
    assert scales.grad is not None and scales.grad.abs().sum() > 0
