"""The fused Kronecker transform + quantization kernel: Triton (interpreter) vs reference vs an
independent float64 computation, and agreement with the calibration-time fake quantizer."""

from __future__ import annotations

import pytest
import torch
from splice.kernels import isolated_registry, register_backend
from splice.kernels.testing import check_backend
from splice_flatquant.kernels import OP, dequantize, kron_quant, kron_quant_reference, op
from splice_flatquant.quantizers import lac_fake_quant


def test_triton_kernel_matches_reference_under_interpreter():
    op()  # registered on first use
    results = check_backend(OP, "triton", device="cpu")  # sets TRITON_INTERPRET=1 for its duration
    assert len(results) >= 6
    assert all(r.mismatches == 0 or r.mismatches <= 1e-3 * r.numel for r in results)


def _wrong(x, left, right=None, **kw):  # transposed left factor: a plausible bug
    return kron_quant_reference(x, left.T.contiguous(), right, **kw)


def test_backend_check_catches_a_wrong_kernel():
    op()
    with isolated_registry():
        register_backend(OP, "wrong", _wrong)
        with pytest.raises(AssertionError):
            check_backend(OP, "wrong", device="cpu")


@pytest.mark.parametrize("symmetric,bits", [(True, 4), (False, 4), (True, 8), (False, 3)])
def test_reference_against_float64_loop(symmetric, bits):
    g = torch.Generator().manual_seed(3)
    x = torch.randn(6, 96, generator=g)
    left, right = torch.randn(8, 8, generator=g), torch.randn(12, 12, generator=g)
    cmax, cmin = torch.tensor([2.0]), torch.tensor([3.0])
    codes, scale, zero = kron_quant_reference(x, left, right, bits=bits, symmetric=symmetric, clip_max=cmax,
                                              clip_min=cmin)
    y = x.double() @ torch.kron(left.double(), right.double())
    for r in range(6):
        hi = max(float(y[r].max()), 0.0) * float(torch.sigmoid(cmax.double()))
        lo = min(float(y[r].min()), 0.0) * float(torch.sigmoid(cmin.double()))
        if symmetric:
            s = max(-lo, hi) / (2 ** (bits - 1) - 1)
            q = torch.clamp(torch.round(y[r] / s), -(2 ** (bits - 1)), 2 ** (bits - 1) - 1)
            z = 0.0
        else:
            s = (hi - lo) / (2**bits - 1)
            z = round(-lo / s)
            q = torch.clamp(torch.round(y[r] / s) + z, 0, 2**bits - 1)
        assert abs(float(scale[r]) - s) <= 1e-5 * s
        assert float(zero[r]) == z
        assert (codes[r].double() != q).sum() <= 1  # a float32 tie may round the other way
    assert codes.dtype == (torch.int8 if symmetric else torch.uint8)


def test_kernel_equals_the_calibration_fake_quantizer():
    """What calibration optimised (lac_fake_quant on x P) is what inference computes."""
    g = torch.Generator().manual_seed(4)
    x = torch.randn(4, 10, 64, generator=g)
    left, right = torch.randn(8, 8, generator=g), torch.randn(8, 8, generator=g)
    cmax, cmin = torch.tensor([1.5]), torch.tensor([3.5])
    y = x @ torch.kron(left, right)
    for symmetric in (True, False):
        fake = lac_fake_quant(y, 4, symmetric, cmax, cmin)
        codes, scale, zero = kron_quant(x, left, right, bits=4, symmetric=symmetric, clip_max=cmax, clip_min=cmin)
        got = dequantize(codes, scale, zero, x.dtype)
        step = scale.expand_as(got)
        assert ((got - fake).abs() > 1e-4 * step).float().mean() < 1e-3  # ties only
        assert (got - fake).abs().max() <= step.max() + 1e-6


def test_bad_arguments():
    x = torch.randn(2, 12)
    with pytest.raises(ValueError, match="bits"):
        kron_quant_reference(x, torch.eye(3), torch.eye(4), bits=1)
    with pytest.raises(ValueError, match="multiple"):
        kron_quant_reference(x, torch.eye(5), None)
    with pytest.raises(ValueError, match="right"):
        kron_quant_reference(x, torch.eye(3), torch.eye(3))
