"""Kronecker factorisation, the Kronecker matmul against the dense one, exact inverses."""

from __future__ import annotations

import pytest
import torch
from splice.errors import ConfigError
from splice_flatquant.transforms import AffineMatrix, CayleyOrthogonal, KronAffine, kron_apply, kron_factors


@pytest.mark.parametrize("n,want", [(576, (24, 24)), (1536, (32, 48)), (4096, (64, 64)), (11008, (86, 128)),
                                    (14336, (112, 128)), (128, (8, 16)), (384, (16, 24)), (6, (2, 3))])
def test_kron_factors(n, want):
    assert kron_factors(n) == want


@pytest.mark.parametrize("n", [7, 13, 127, 1, 2])
def test_unsplittable_sizes_are_refused(n):
    with pytest.raises(ConfigError, match="hidden_size"):
        kron_factors(n, "hidden_size")


@pytest.mark.parametrize("n1,n2", [(4, 6), (8, 16), (24, 24)])
def test_kron_matmul_equals_dense_matmul(n1, n2):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(3, 7, n1 * n2, generator=g, dtype=torch.float64)
    left, right = torch.randn(n1, n1, generator=g, dtype=torch.float64), torch.randn(n2, n2, generator=g,
                                                                                       dtype=torch.float64)
    torch.testing.assert_close(kron_apply(x, left, right), x @ torch.kron(left, right))
    torch.testing.assert_close(kron_apply(x, left, None), x @ torch.kron(left, torch.eye(n2, dtype=torch.float64)))


def test_cayley_factor_is_orthogonal_and_differentiable():
    u = CayleyOrthogonal(12, torch.Generator().manual_seed(0))
    m = u()
    torch.testing.assert_close(m @ m.T, torch.eye(12), rtol=0, atol=1e-5)
    m.sum().backward()
    assert u.raw.grad is not None and u.raw.grad.abs().sum() > 0


@pytest.mark.parametrize("mode", ["svd", "direct"])
def test_affine_pair_is_inverse_transpose(mode):
    a = AffineMatrix(10, mode, torch.Generator().manual_seed(1))
    with torch.no_grad():
        if mode == "svd":
            a.s.copy_(torch.linspace(0.3, 3.0, 10))  # not orthogonal any more
        else:
            a.p.add_(0.3 * torch.randn(10, 10))
    p, p_inv_t = a.pair()
    torch.testing.assert_close(p @ p_inv_t.T, torch.eye(10), rtol=0, atol=1e-4)


def test_transformed_linear_is_exact_in_full_precision():
    g = torch.Generator().manual_seed(2)
    t = KronAffine(48, "svd", diag=True, generator=g)
    with torch.no_grad():
        t.diag.copy_(torch.rand(48, generator=g) + 0.2)
        t.left.s.copy_(torch.rand(6, generator=g) + 0.5)
    x, w = torch.randn(5, 48, generator=g), torch.randn(9, 48, generator=g)
    torch.testing.assert_close(t(x) @ t.weight(w).T, x @ w.T, rtol=1e-4, atol=1e-4)
    assert not torch.allclose(t(x), x, atol=1e-2)


@pytest.mark.parametrize("w_asym", [False, True])
def test_grouped_training_weights_equal_per_site_weights_and_gradients(tiny, w_asym):
    """The per-step fast path (q/k/v and gate/up concatenated, clipped rows' max/min from the clip
    bounds) gives the same fake-quantized weights and the same gradients as transforming, clipping
    and quantizing each site with the kernel's fake_quant."""
    from splice_flatquant import FlatQuant
    from splice_flatquant.calibration import block_sites
    from splice_flatquant.quantizers import weight_fake_quant

    fq = FlatQuant({"w_asym": w_asym})
    blk = tiny.model.blocks[1]
    bt = fq._new(blk, tiny.config, 1)
    with torch.no_grad():  # move off the initial point: distinct clips per row, non-unit scalings
        for p in bt.parameters():
            p.add_(0.3 * torch.randn(p.shape, generator=torch.Generator().manual_seed(p.numel())))
    sites = block_sites(blk)
    g = torch.Generator().manual_seed(1)
    probes = {n: torch.randn(m.out_features, m.in_features, generator=g) for n, m in sites.items()}

    def run(grouped: bool):
        bt.zero_grad(set_to_none=True)
        bt.refresh(sites if grouped else None)
        ws = {}
        for n, m in sites.items():
            if grouped:
                ws[n] = bt._qweights[n][0]
            else:
                ws[n] = weight_fake_quant(bt.weight(n, m.weight, m.bias)[0], 4, not w_asym)
        sum((ws[n] * probes[n]).sum() for n in sites).backward()
        grads = {k: p.grad.clone() for k, p in bt.named_parameters() if p.grad is not None}
        return {n: w.detach() for n, w in ws.items()}, grads

    w_fast, g_fast = run(True)
    w_ref, g_ref = run(False)
    for n in sites:
        torch.testing.assert_close(w_fast[n], w_ref[n], rtol=1e-5, atol=1e-6)
    assert set(g_fast) == set(g_ref) and any("lwc" in k for k in g_ref)
    for k in g_ref:
        torch.testing.assert_close(g_fast[k], g_ref[k], rtol=1e-3, atol=1e-5, msg=k)
