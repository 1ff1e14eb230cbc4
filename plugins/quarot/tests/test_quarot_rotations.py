"""Hadamard and orthogonal transforms: constructions, the fast transform against the dense matrix."""

from __future__ import annotations

import math

import pytest
import torch
from splice_quarot.rotations import (
    HeadRotation,
    Rotation,
    hadamard,
    hadamard_core,
    hadamard_rotation_matrix,
    hadamard_split,
    has_hadamard,
)


@pytest.mark.parametrize("n", [2, 4, 12, 20, 28, 36, 44, 60, 108, 72, 576])
def test_hadamard_matrices_are_scaled_orthogonal_sign_matrices(n):
    h = hadamard_rotation_matrix(n) * math.sqrt(n)
    signs = torch.round(h)
    torch.testing.assert_close(h, signs, rtol=0, atol=1e-12)
    assert torch.equal(signs.abs(), torch.ones_like(h))  # entries +-1
    assert torch.equal(signs @ signs.T, n * torch.eye(n, dtype=torch.float64))  # H H^T = n I, exactly


def test_smollm2_sizes_have_hadamard_matrices():
    # hidden 576 = 9 * 64: no 2^k * {12, 20, 28} split, but Paley II (q = 17) gives order 36
    assert hadamard_split(576) == (36, 16)
    assert hadamard_split(1536) == (12, 128)  # intermediate: the kernels' own size
    assert hadamard_split(64) == (1, 64)


@pytest.mark.parametrize("n", [3, 9, 18, 6, 10])
def test_orders_without_hadamard_matrix_are_refused(n):
    # a Hadamard matrix of order n > 2 needs 4 | n; 9 heads (SmolLM2) cannot be rotated by one
    assert not has_hadamard(n)
    assert hadamard_core(n) is None


@pytest.mark.parametrize("n", [64, 384, 576, 72, 1536, 40])
def test_fast_transform_equals_dense_matrix(n):
    x = torch.randn(3, 5, n, dtype=torch.float32)
    want = (x.double() @ hadamard_rotation_matrix(n)).float()
    torch.testing.assert_close(hadamard(x), want, rtol=1e-5, atol=1e-5)


def test_random_rotation_where_no_hadamard_exists():
    r = Rotation(9, "hadamard", seed=3)
    assert r.kind == "random"
    m = r.dense()
    torch.testing.assert_close(m @ m.T, torch.eye(9, dtype=torch.float64), rtol=0, atol=1e-6)
    torch.testing.assert_close(Rotation(9, "hadamard", seed=3).dense(), m)  # seeded: reproducible
    assert not torch.allclose(Rotation(9, "hadamard", seed=4).dense(), m)
    x = torch.randn(4, 9)
    torch.testing.assert_close(r(x), (x.double() @ m).float(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("heads,head_dim", [(9, 8), (4, 16)])
def test_head_rotation_is_kron_with_identity(heads, head_dim):
    rot = HeadRotation(heads, head_dim, seed=1)
    x = torch.randn(2, 3, heads * head_dim)
    want = (x.double() @ rot.dense()).float()
    torch.testing.assert_close(rot(x), want, rtol=1e-5, atol=1e-5)
