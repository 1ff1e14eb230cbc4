"""Hadamard matrices of order 2^k and 2^k * {12, 20, 28}, built from first principles.

Sylvester's doubling gives every power of two; Paley's constructions give the non-power-of-two
cores QuaRot needs: order 12 and 20 from Paley I (q = 11, 19 prime, q = 3 mod 4: order q + 1) and
order 28 from Paley II (q = 13 prime, q = 1 mod 4: order 2(q + 1)). Larger orders are Kronecker
products ``H_m (x) H_{2^k}``; the fast transform uses exactly that factorisation.
"""

from __future__ import annotations

import functools

import torch

from ..errors import KernelArgumentError

CORES = (1, 12, 20, 28)


def _quadratic_character(q: int) -> list[int]:
    """chi(a) for a in 0..q-1 over the prime field F_q: 0, +1 on squares, -1 otherwise."""
    squares = {(a * a) % q for a in range(1, q)}
    return [0] + [1 if a in squares else -1 for a in range(1, q)]


def _jacobsthal(q: int) -> torch.Tensor:
    chi = _quadratic_character(q)
    return torch.tensor([[chi[(j - i) % q] for j in range(q)] for i in range(q)], dtype=torch.float64)


def paley_i(q: int) -> torch.Tensor:
    """Order q + 1 for a prime q = 3 (mod 4): H = I + [[0, 1^T], [-1, Q]] (Q skew-symmetric)."""
    if q % 4 != 3:
        raise ValueError(f"Paley I needs q = 3 mod 4, got {q}")
    s = torch.zeros(q + 1, q + 1, dtype=torch.float64)
    s[0, 1:] = 1
    s[1:, 0] = -1
    s[1:, 1:] = _jacobsthal(q)
    return torch.eye(q + 1, dtype=torch.float64) + s


def paley_ii(q: int) -> torch.Tensor:
    """Order 2(q + 1) for a prime q = 1 (mod 4): in S = [[0, 1^T], [1, Q]] (Q symmetric) replace
    0 by [[1, -1], [-1, -1]] and +-1 by +-[[1, 1], [1, -1]]."""
    if q % 4 != 1:
        raise ValueError(f"Paley II needs q = 1 mod 4, got {q}")
    s = torch.zeros(q + 1, q + 1, dtype=torch.float64)
    s[0, 1:] = 1
    s[1:, 0] = 1
    s[1:, 1:] = _jacobsthal(q)
    zero_block = torch.tensor([[1.0, -1.0], [-1.0, -1.0]], dtype=torch.float64)
    one_block = torch.tensor([[1.0, 1.0], [1.0, -1.0]], dtype=torch.float64)
    return torch.kron((s == 0).double(), zero_block) + torch.kron(s, one_block)


def sylvester(p: int) -> torch.Tensor:
    """Natural-order Sylvester matrix H_2^{(x)k}; symmetric, order p = 2^k."""
    if p < 1 or p & (p - 1):
        raise ValueError(f"Sylvester order must be a power of two, got {p}")
    h = torch.ones(1, 1, dtype=torch.float64)
    while h.shape[0] < p:
        h = torch.cat([torch.cat([h, h], 1), torch.cat([h, -h], 1)], 0)
    return h


@functools.cache
def core_matrix(m: int) -> torch.Tensor:
    """The m x m core (float64, entries +-1) for m in CORES; cached, treat as read-only."""
    if m == 1:
        return torch.ones(1, 1, dtype=torch.float64)
    if m == 12:
        return paley_i(11)
    if m == 20:
        return paley_i(19)
    if m == 28:
        return paley_ii(13)
    raise KernelArgumentError(f"no Hadamard core of order {m}; have {CORES}")


def split_size(n: int) -> tuple[int, int]:
    """n = m * p with m in CORES and p a power of two; the smallest such m."""
    if isinstance(n, int) and n >= 1:
        p = n & -n  # largest power of two dividing n
        odd = n // p
        for m, core_odd in ((1, 1), (12, 3), (20, 5), (28, 7)):
            if odd == core_odd and p >= m // core_odd:
                return m, n // m
    raise KernelArgumentError(
        f"Hadamard size {n!r} is not supported: sizes are 2^k and 2^k * 12, 2^k * 20, 2^k * 28"
    )


def is_supported_size(n: int) -> bool:
    try:
        split_size(n)
    except KernelArgumentError:
        return False
    return True


def hadamard_matrix(
    n: int,
    *,
    normalize: bool = False,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """The dense n x n Hadamard matrix H that ``hadamard_transform`` applies: for every x,
    ``hadamard_transform(x, normalize=False) == x @ H.T``. With ``normalize=True`` it is scaled by
    1/sqrt(n) and orthogonal, ready to fold into weights (W' = W @ H.T for inputs rotated by H)."""
    m, p = split_size(n)
    h = torch.kron(core_matrix(m), sylvester(p))
    if normalize:
        h = h / n**0.5
    return h.to(dtype=dtype, device=device)
