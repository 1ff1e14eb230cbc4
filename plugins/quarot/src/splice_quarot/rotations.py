"""Orthogonal transforms QuaRot folds into weights or applies online, for any dimension.

A Hadamard matrix of order n exists only for n = 1, 2 or a multiple of 4, and the fast transform
needs n = m * 2^k with a known "core" of order m. ``splice.kernels`` covers 2^k and 2^k * {12, 20,
28}; QuaRot's own tables add 36, 40, 52, 60, 108, 140, 156, 172. Here a core of order m is built
from first principles wherever Paley's constructions give one:

- Paley I: m = q + 1 for a prime q = 3 (mod 4)   (4, 8, 12, 20, 24, 32, 44, 48, 60, 68, 72, ...)
- Paley II: m = 2(q + 1) for a prime q = 1 (mod 4)   (12, 28, 36, 60, 76, 84, 108, ...)

so SmolLM2's hidden size 576 = 9 * 64 is H_36 (Paley II, q = 17) (x) H_16, and its 1536 = 3 * 512 is
H_12 (x) H_128 (the kernels' own size). Where no Hadamard matrix of the order exists (9 attention
heads: 9 is odd) a seeded random orthogonal matrix is used instead, as QuaRot/SpinQuant do for
dimensions without a Hadamard construction; ``Rotation.kind`` says which one a module holds.

Every transform here is written ``x -> x @ M`` with M orthogonal (float64 when dense), so a
linear layer reading the transformed input keeps its output with ``W' = W @ M``.
"""

from __future__ import annotations

import functools
import math

import torch
from splice.kernels import hadamard_transform
from splice.kernels.hadamard import hadamard_matrix as kernel_hadamard_matrix
from splice.kernels.hadamard import is_supported_size, paley_i, paley_ii, sylvester
from torch import nn


def _is_prime(q: int) -> bool:
    return q >= 2 and all(q % d for d in range(2, math.isqrt(q) + 1))


@functools.cache
def hadamard_core(m: int) -> torch.Tensor | None:
    """A +-1 Hadamard matrix of order m (float64) from Paley I or II, 1 or 2; None if neither applies."""
    if m == 1:
        return torch.ones(1, 1, dtype=torch.float64)
    if m == 2:
        return sylvester(2)
    if m % 4 == 0 and _is_prime(m - 1) and (m - 1) % 4 == 3:
        return paley_i(m - 1)
    if m % 4 == 0 and _is_prime(m // 2 - 1) and (m // 2 - 1) % 4 == 1:
        return paley_ii(m // 2 - 1)
    return None


@functools.cache
def hadamard_split(n: int) -> tuple[int, int] | None:
    """n = m * p with p a power of two and a core of order m (the smallest such m); None if none."""
    if n < 1:
        return None
    p = n & -n
    m = n // p
    while True:
        if hadamard_core(m) is not None:
            return m, n // m
        if m == n:
            return None
        m *= 2


def has_hadamard(n: int) -> bool:
    return hadamard_split(n) is not None


@functools.cache
def _hadamard_pm1(n: int) -> torch.Tensor:
    if is_supported_size(n):  # exactly the matrix the kernels' fast transform applies
        return kernel_hadamard_matrix(n, dtype=torch.float64)
    split = hadamard_split(n)
    if split is None:
        raise ValueError(f"no Hadamard matrix of order {n} can be constructed here")
    m, p = split
    return torch.kron(hadamard_core(m), sylvester(p))


def hadamard_rotation_matrix(n: int) -> torch.Tensor:
    """M = H^T / sqrt(n) (float64): ``hadamard(x) == x @ M`` for the transform below."""
    return (_hadamard_pm1(n).T / math.sqrt(n)).contiguous()


def hadamard(x: torch.Tensor) -> torch.Tensor:
    """The normalized Hadamard transform along the last dim, ``x @ H^T / sqrt(n)``, in O(n log n):
    the kernels' fast transform where it covers n, else the m x m core as a small matmul followed
    by the kernels' fast transform over the power-of-two factor."""
    n = x.shape[-1]
    if is_supported_size(n):
        return hadamard_transform(x, normalize=True)
    split = hadamard_split(n)
    if split is None:
        raise ValueError(f"no Hadamard matrix of order {n} can be constructed here")
    m, p = split
    core = hadamard_core(m).to(device=x.device, dtype=torch.float32)
    y = x.float().reshape(*x.shape[:-1], m, p)
    y = torch.matmul(core, y)  # core acts on the m axis: (C X) for X = m x p
    y = hadamard_transform(y, normalize=False)  # then S^T on the p axis
    return (y.reshape(x.shape) * n**-0.5).to(x.dtype)


def random_orthogonal(n: int, seed: int) -> torch.Tensor:
    """A Haar-random orthogonal matrix (float64): QR of a Gaussian matrix with R's signs fixed."""
    g = torch.Generator().manual_seed(seed)
    q, r = torch.linalg.qr(torch.randn(n, n, generator=g, dtype=torch.float64))
    return (q * torch.sign(torch.diagonal(r)).unsqueeze(0)).contiguous()


def random_signs(n: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 2, (n,), generator=g).double() * 2 - 1


class Rotation(nn.Module):
    """An online orthogonal transform ``x -> x @ M`` of size n.

    kind "hadamard": the normalized Hadamard transform (no stored state, fast transform); used when
    an order-n Hadamard matrix exists. kind "random": a seeded random orthogonal matrix, stored as a
    buffer so a reloaded artifact uses exactly the matrix its weights were folded with.
    """

    def __init__(self, n: int, prefer: str = "hadamard", seed: int = 0) -> None:
        super().__init__()
        self.n = n
        self.kind = "hadamard" if prefer == "hadamard" and has_hadamard(n) else "random"
        if self.kind == "random":
            self.register_buffer("matrix", random_orthogonal(n, seed).float())

    def dense(self) -> torch.Tensor:
        """M in float64."""
        if self.kind == "hadamard":
            return hadamard_rotation_matrix(self.n)
        return self.matrix.double()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.kind == "hadamard":
            return hadamard(x)
        return torch.matmul(x, self.matrix.to(x.dtype))

    def extra_repr(self) -> str:
        return f"{self.kind} {self.n}"


class HeadRotation(nn.Module):
    """The online part of the o_proj input transform: a rotation A across the heads axis of
    ``x = vec(X)``, X = heads x head_dim, i.e. ``x -> x @ kron(A, I)`` = ``vec(A^T X)``."""

    def __init__(self, n_heads: int, head_dim: int, prefer: str = "hadamard", seed: int = 0) -> None:
        super().__init__()
        self.n_heads, self.head_dim = n_heads, head_dim
        self.rot = Rotation(n_heads, prefer, seed)

    def dense(self) -> torch.Tensor:
        """kron(A, I) in float64."""
        return torch.kron(self.rot.dense(), torch.eye(self.head_dim, dtype=torch.float64))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = x.shape
        xh = x.reshape(*shape[:-1], self.n_heads, self.head_dim).transpose(-1, -2)  # ... x D x H
        return self.rot(xh).transpose(-1, -2).reshape(shape)  # rows of X^T times A = (A^T X)^T
