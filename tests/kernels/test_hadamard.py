"""Hadamard matrices (Sylvester, Paley I/II, Kronecker products) and the transform built on them."""

from __future__ import annotations

import pytest
import splice.kernels as K
import torch
from splice.kernels import KernelArgumentError, get_op
from splice.kernels.hadamard import core_matrix, hadamard_matrix, paley_i, paley_ii, split_size, sylvester

SIZES = [1, 2, 4, 8, 64, 12, 20, 28, 24, 40, 56, 48, 80, 112, 12 * 32, 20 * 16, 28 * 16]


@pytest.mark.parametrize("n", SIZES)
def test_hadamard_matrix_is_hadamard(n: int) -> None:
    h = hadamard_matrix(n, dtype=torch.float64)
    assert h.shape == (n, n)
    assert torch.equal(h.abs(), torch.ones_like(h))
    assert torch.equal(h @ h.T, n * torch.eye(n, dtype=torch.float64))


@pytest.mark.parametrize(("make", "q", "order"), [(paley_i, 3, 4), (paley_i, 11, 12), (paley_i, 19, 20),
                                                  (paley_i, 23, 24), (paley_ii, 5, 12), (paley_ii, 13, 28)])
def test_paley_constructions(make, q: int, order: int) -> None:
    h = make(q)
    assert h.shape == (order, order)
    assert torch.equal(h @ h.T, order * torch.eye(order, dtype=torch.float64))


def test_paley_rejects_wrong_residue() -> None:
    with pytest.raises(ValueError):
        paley_i(13)
    with pytest.raises(ValueError):
        paley_ii(11)


def test_cores_and_sylvester() -> None:
    for m in (12, 20, 28):
        assert core_matrix(m).shape == (m, m)
    s = sylvester(8)
    assert torch.equal(s, s.T)
    assert split_size(12 * 16) == (12, 16) and split_size(64) == (1, 64) and split_size(28) == (28, 1)


@pytest.mark.parametrize("n", [6, 36, 44, 11008, 0, 3])
def test_unsupported_sizes_are_named(n: int) -> None:
    with pytest.raises(KernelArgumentError, match="2\\^k \\* 12"):
        hadamard_matrix(n)
    with pytest.raises(KernelArgumentError):
        get_op("hadamard").reference(torch.zeros(2, max(n, 1) if n else 0))


def test_normalized_matrix_is_orthogonal() -> None:
    q = hadamard_matrix(28 * 4, normalize=True, dtype=torch.float64)
    assert torch.allclose(q @ q.T, torch.eye(112, dtype=torch.float64), atol=1e-12)


@pytest.mark.parametrize("backend", ["reference", "triton"])
@pytest.mark.parametrize("n", [16, 12 * 4, 20 * 2, 28 * 8])
def test_transform_equals_dense_matrix_and_inverts(backend: str, n: int) -> None:
    op = get_op("hadamard")
    x = torch.randn(3, 2, n, dtype=torch.float32)
    h = hadamard_matrix(n, dtype=torch.float64)
    y = op.run(backend, x, normalize=False)
    assert torch.allclose(y.double(), x.double() @ h.T, atol=1e-4)
    q = hadamard_matrix(n, normalize=True, dtype=torch.float64)
    y = op.run(backend, x, normalize=True)
    assert torch.allclose((y.double() @ q), x.double(), atol=1e-5)  # orthonormal: Q^T undoes Q
    assert torch.allclose(y.norm(dim=-1), x.norm(dim=-1), rtol=1e-5)


def test_gradient_is_transposed_transform() -> None:
    n = 20 * 4
    x = torch.randn(5, n, requires_grad=True)
    g = torch.randn(5, n)
    K.hadamard_transform(x, normalize=True).backward(g)
    q = hadamard_matrix(n, normalize=True)
    assert torch.allclose(x.grad, g @ q, atol=1e-5)


def test_dtype_preserved() -> None:
    x = torch.randn(2, 64, dtype=torch.bfloat16)
    assert K.hadamard_transform(x).dtype == torch.bfloat16
