"""Least-squares fits of the safe Padé rational to standard activations (the KAT initialisations).

KAT initialises each rational to a known activation by fitting its coefficients on [-3, 3]. The
constants in ``init.py`` were produced by ``fit_rational`` (``python -m splice_kat.fit``), so they
are reproducible from this file; tests check they fit their functions.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .rational import Form, rational_numpy


def swish(x: np.ndarray) -> np.ndarray:
    return x / (1 + np.exp(-x))


TARGETS: dict[str, Callable[[np.ndarray], np.ndarray]] = {"swish": swish}

# Taylor coefficients at 0 up to x^9 of x*sigmoid(x), for the Padé starting point.
TAYLOR: dict[str, list[float]] = {
    "swish": [0, 1 / 2, 1 / 4, 0, -1 / 48, 0, 1 / 480, 0, -17 / 80640, 0],
}


def pade_start(taylor: list[float], m: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """The [m/n] Padé approximant at 0: numerator a_0..a_m and denominator b_1..b_n (b_0 = 1)."""
    from scipy.interpolate import pade

    p, q = pade(taylor[: m + n + 1], n, m)
    a, bq = p.coeffs[::-1], q.coeffs[::-1]
    a, bq = a / bq[0], bq / bq[0]
    return np.pad(a, (0, m + 1 - len(a))), np.pad(bq[1:], (0, n - len(bq) + 1))


def fit_rational(name: str, form: Form = "paper", m: int = 5, n: int = 4, lo: float = -3.0, hi: float = 3.0,
                 points: int = 2001) -> tuple[list[float], list[float]]:
    """Coefficients (a_0..a_m, b_1..b_n) minimising the squared error to activation ``name`` on a grid of
    [lo, hi], refined from its [m/n] Padé approximant at 0 (which keeps the fit's tails well behaved)."""
    from scipy.optimize import least_squares

    fn = TARGETS[name]
    x = np.linspace(lo, hi, points)
    y = fn(x)
    a0, b0 = pade_start(TAYLOR[name], m, n)
    p0 = np.concatenate([a0, b0])

    def resid(p):
        return rational_numpy(x, p[: m + 1], p[m + 1:], form) - y

    sol = least_squares(resid, p0, method="lm", xtol=1e-14, ftol=1e-14, gtol=1e-14, max_nfev=20000)
    return [float(v) for v in sol.x[: m + 1]], [float(v) for v in sol.x[m + 1:]]


if __name__ == "__main__":  # regenerate the constants of init.py
    for form in ("paper", "pau_a"):
        for name, fn in TARGETS.items():
            a, b = fit_rational(name, form)
            x = np.linspace(-3, 3, 2001)
            err = np.abs(rational_numpy(x, a, b, form) - fn(x)).max()
            print(f"{form} {name}: a={a} b={b} max_err={err:.2e}")
