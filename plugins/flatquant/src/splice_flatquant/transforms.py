"""FlatQuant's learnable affine transforms.

A linear layer ``y = x W^T`` is computed as ``y = (x P)(W P^{-T})^T`` with an invertible P learnt per
layer (group), so both the transformed activation ``x P`` and weight ``W P^{-T}`` are flat and
quantize well. To keep the online cost small, P = P1 (x) P2 is a Kronecker product of two small
matrices (n = n1 * n2, n1 and n2 as close to sqrt(n) as the divisors of n allow), applied as
``x P = vec(P1^T X P2)`` for X the n1 x n2 reshape of x: 2 n (n1 + n2) FLOPs instead of 2 n^2.

Each factor is parameterised as the paper's code does by default, in SVD form P = U diag(s) V^T
with U, V orthogonal through the Cayley map of a skew-symmetric matrix, so P^{-T} = U diag(1/s) V^T
comes for free; or directly as a matrix inverted in float64 (``direct``). A learnable per-channel
scaling d (initialised SmoothQuant-style) may precede the Kronecker product: x -> (x * d) P.
"""

from __future__ import annotations

import math

import torch
from splice.errors import ConfigError
from torch import nn


def kron_factors(n: int, what: str = "dimension") -> tuple[int, int]:
    """(n1, n2) with n1 * n2 = n, n1 <= n2, n1 the largest divisor of n not above sqrt(n).

    Matches the official ``get_decompose_dim`` wherever that terminates with two factors of the
    same parity (4096 -> 64 x 64, 11008 -> 86 x 128, 14336 -> 112 x 128); it never loops (n = 2 mod 4).
    Raises ConfigError when n cannot be split (n prime or 1): the Kronecker form would be one dense
    n x n matrix, which is not FlatQuant's cheap online transform.
    """
    if n < 4:
        raise ConfigError(f"flatquant: {what} {n} is too small for a Kronecker factorisation")
    n1 = max(d for d in range(1, math.isqrt(n) + 1) if n % d == 0)
    if n1 == 1:
        raise ConfigError(f"flatquant: {what} {n} is prime, so it has no Kronecker factorisation n1 x n2 "
                          "with both factors > 1")
    return n1, n // n1


def random_orthogonal(n: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """Haar-random orthogonal matrix (float32): QR of a Gaussian matrix, R's diagonal signs fixed."""
    q, r = torch.linalg.qr(torch.randn(n, n, generator=generator, dtype=torch.float64))
    return (q * torch.sign(torch.diagonal(r)).unsqueeze(0)).float().contiguous()


def kron_apply(x: torch.Tensor, left: torch.Tensor, right: torch.Tensor | None) -> torch.Tensor:
    """``x @ kron(left, right)`` along the last dim, without forming the Kronecker product.
    ``right`` None means the identity (a transform of the leading factor only)."""
    n1 = left.shape[0]
    shape = x.shape
    n2 = shape[-1] // n1
    xm = x.reshape(-1, n1, n2)
    if right is not None:  # one (rows * n1) x n2 matmul
        xm = torch.matmul(xm, right.to(x.dtype))
    # left^T X, batched over rows: no transposed copy of x (faster forward and backward on CPU)
    return torch.matmul(left.T.to(x.dtype), xm).reshape(shape)


class CayleyOrthogonal(nn.Module):
    """U = (I - A/2)^{-1} (I + A/2), A = tril(X) - tril(X)^T skew-symmetric: always orthogonal.

    X starts as a random orthogonal matrix (as the official code initialises the parameter it
    passes to ``torch.nn.utils.parametrizations.orthogonal(..., "cayley")``), so U starts random too.
    """

    def __init__(self, n: int, generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.raw = nn.Parameter(random_orthogonal(n, generator))

    def forward(self) -> torch.Tensor:
        low = torch.tril(self.raw)
        a = low - low.T
        eye = torch.eye(a.shape[0], dtype=a.dtype, device=a.device)
        return torch.linalg.solve(eye - 0.5 * a, eye + 0.5 * a)


class AffineMatrix(nn.Module):
    """One invertible learnable n x n matrix; ``pair()`` gives (P, P^{-T})."""

    def __init__(self, n: int, mode: str = "svd", generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.n, self.mode = n, mode
        if mode == "svd":
            self.u = CayleyOrthogonal(n, generator)
            self.v = CayleyOrthogonal(n, generator)
            self.s = nn.Parameter(torch.ones(n))
        elif mode == "direct":
            self.p = nn.Parameter(random_orthogonal(n, generator))
        else:
            raise ConfigError(f"flatquant: transform mode must be 'svd' or 'direct' (got {mode!r})")

    def pair(self) -> tuple[torch.Tensor, torch.Tensor]:
        if self.mode == "svd":
            u, v = self.u(), self.v()
            return (u * self.s) @ v.T, (u / self.s) @ v.T
        p = self.p
        return p, torch.linalg.inv(p.double()).T.to(p.dtype)


class KronAffine(nn.Module):
    """x -> (x * d) (P1 (x) P2) and its weight-side partner W -> (W / d) (P1^{-T} (x) P2^{-T})."""

    def __init__(self, n: int, mode: str = "svd", diag: bool = False, generator: torch.Generator | None = None,
                 what: str = "dimension") -> None:
        super().__init__()
        self.n = n
        self.n1, self.n2 = kron_factors(n, what)
        self.left = AffineMatrix(self.n1, mode, generator)
        self.right = AffineMatrix(self.n2, mode, generator)
        self.diag = nn.Parameter(torch.ones(n)) if diag else None

    def matrices(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """(P1, P1^{-T}, P2, P2^{-T})."""
        l, li = self.left.pair()
        r, ri = self.right.pair()
        return l, li, r, ri

    def forward(self, x: torch.Tensor, mats=None) -> torch.Tensor:
        l, _, r, _ = mats if mats is not None else self.matrices()
        if self.diag is not None:
            x = x * self.diag.to(x.dtype)
        return kron_apply(x, l, r)

    def weight(self, w: torch.Tensor, mats=None) -> torch.Tensor:
        _, li, _, ri = mats if mats is not None else self.matrices()
        if self.diag is not None:
            w = w / self.diag.to(w.dtype)
        return kron_apply(w, li, ri)


class SingleAffine(nn.Module):
    """One learnable matrix P (no Kronecker split): the per-head transforms of keys/queries and
    values (size head_dim) and the transform across heads before o_proj (size num_heads)."""

    def __init__(self, n: int, mode: str = "svd", generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.n = n
        self.mat = AffineMatrix(n, mode, generator)

    def pair(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.mat.pair()
