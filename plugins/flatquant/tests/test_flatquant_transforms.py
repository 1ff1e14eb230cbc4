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
