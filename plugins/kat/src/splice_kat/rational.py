"""The safe Padé rational of KAT, group-wise, as a pure-PyTorch reference (and a numpy twin).

With m = 5, n = 4 and coefficients per group g (channels [g*D/G, (g+1)*D/G) of the last dim):

    F(x) = P(x) / Q(x),  P(x) = a_0 + a_1 x + ... + a_m x^m

    form "paper":  Q(x) = 1 + |b_1 x + b_2 x^2 + ... + b_n x^n|      (the paper's equation; the
                   official initial coefficients were fit to this form)
    form "pau_a":  Q(x) = 1 + |b_1| |x| + |b_2| |x|^2 + ... + |b_n| |x|^n
                   (what the official CUDA/Triton kernels compute: "safe PAU" version A)

Q >= 1 in both forms, so F has no poles. The reference is differentiable through autograd and is
what every accelerated backend of the ``kat_rational`` kernel op is compared with.

At 0, |v| is differentiated with slope +1 (the right derivative, the official kernel's
``copysign(1, v)``), not torch's 0: the first rational of a KAT MLP starts as the identity with
b = 0 exactly, and with slope 0 its denominator could never leave 0.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch

Form = Literal["paper", "pau_a"]
FORMS = ("paper", "pau_a")


def check_args(x: torch.Tensor, numerator: torch.Tensor, denominator: torch.Tensor, form: str) -> int:
    """Validate shapes; returns the number of groups."""
    if form not in FORMS:
        raise ValueError(f"kat_rational: form must be one of {', '.join(FORMS)} (got {form!r})")
    if numerator.dim() != 2 or denominator.dim() != 2 or numerator.shape[0] != denominator.shape[0]:
        raise ValueError("kat_rational: numerator must be G×(m+1) and denominator G×n with the same G "
                         f"(got {tuple(numerator.shape)} and {tuple(denominator.shape)})")
    groups = numerator.shape[0]
    if x.dim() < 1 or x.shape[-1] % groups:
        raise ValueError(f"kat_rational: the last dimension ({x.shape[-1] if x.dim() else None}) must be a "
                         f"multiple of the number of groups ({groups})")
    return groups


def abs_right(v: torch.Tensor) -> torch.Tensor:
    """|v| whose derivative is sign(v) with sign(0) = +1."""
    return v * torch.where(v >= 0, 1.0, -1.0).to(v.dtype)


def rational_reference(x: torch.Tensor, numerator: torch.Tensor, denominator: torch.Tensor, *,
                       form: Form = "paper") -> torch.Tensor:
    """Group-wise safe Padé rational P(x)/Q(x) along the last dimension of ``x`` (any leading shape).

    numerator: G×(m+1) (a_0 first), denominator: G×n (b_1 first). Computed in float32 (or the
    input's precision if higher); returned in x's dtype.
    """
    groups = check_args(x, numerator, denominator, form)
    dt = torch.promote_types(x.dtype, torch.float32)
    shape = x.shape
    h = x.to(dt).reshape(*shape[:-1], groups, shape[-1] // groups)
    a = numerator.to(dt)[:, :, None]  # G×(m+1)×1, broadcast against (..., G, C)
    b = denominator.to(dt)[:, :, None]
    m, n = numerator.shape[1] - 1, denominator.shape[1]
    p = a[:, m]
    for i in range(m - 1, -1, -1):  # Horner
        p = p * h + a[:, i]
    if form == "paper":
        s = b[:, n - 1]
        for j in range(n - 2, -1, -1):
            s = s * h + b[:, j]
        q = 1 + abs_right(s * h)
    else:
        ah, bb = abs_right(h), abs_right(b)
        s = bb[:, n - 1]
        for j in range(n - 2, -1, -1):
            s = s * ah + bb[:, j]
        q = 1 + s * ah
    return (p / q).reshape(shape).to(x.dtype)


def rational_numpy(x: np.ndarray, a, b, form: Form = "paper") -> np.ndarray:
    """One rational (no groups) in numpy, written term by term: the closed form used for fits and tests."""
    x = np.asarray(x, dtype=np.float64)
    p = sum(float(ai) * x**i for i, ai in enumerate(a))
    if form == "paper":
        q = 1 + np.abs(sum(float(bj) * x ** (j + 1) for j, bj in enumerate(b)))
    else:
        q = 1 + sum(abs(float(bj)) * np.abs(x) ** (j + 1) for j, bj in enumerate(b))
    return p / q


def mean_square_under_normal(a, b, form: Form = "paper", points: int = 200) -> float:
    """E[F(z)^2] for z ~ N(0, 1), by Gauss-Hermite quadrature (probabilists' weights)."""
    z, w = np.polynomial.hermite_e.hermegauss(points)
    return float((w * rational_numpy(z, a, b, form) ** 2).sum() / np.sqrt(2 * np.pi))
