"""The KAT rational: closed form, initialisations, and the Triton kernel against the reference."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from splice.kernels import use_backends
from splice.kernels.testing import backend_params, check_backend, triton_interpreter
from splice_kat import kat_rational, rational_numpy, rational_reference
from splice_kat.init import INITS


@pytest.mark.parametrize("form", ["paper", "pau_a"])
def test_reference_matches_closed_form_per_group(form):
    g = torch.Generator().manual_seed(0)
    groups, width = 4, 3
    x = torch.randn(5, groups * width, generator=g, dtype=torch.float64) * 2
    a = torch.randn(groups, 6, generator=g, dtype=torch.float64) * 0.3
    b = torch.randn(groups, 4, generator=g, dtype=torch.float64) * 0.3
    out = rational_reference(x, a, b, form=form)
    for gi in range(groups):
        cols = slice(gi * width, (gi + 1) * width)
        expected = rational_numpy(x[:, cols].numpy(), a[gi].tolist(), b[gi].tolist(), form)
        np.testing.assert_allclose(out[:, cols].numpy(), expected, rtol=1e-12, atol=1e-12)


def test_closed_form_by_hand():
    # F(2) with a = (1, 1, 0, 0, 0, 1), b = (-1, 0, 0, 0): P = 1 + 2 + 32 = 35
    a, b = [1, 1, 0, 0, 0, 1], [-1, 0, 0, 0]
    assert rational_numpy(2.0, a, b, "paper") == pytest.approx(35 / (1 + abs(-2)))
    assert rational_numpy(-2.0, a, b, "paper") == pytest.approx((1 - 2 - 32) / (1 + abs(2)))
    assert rational_numpy(-2.0, a, b, "pau_a") == pytest.approx((1 - 2 - 32) / (1 + 1 * 2))
    # the two forms differ when odd and even terms of B have mixed signs
    b2 = [1, -1, 0, 0]
    assert rational_numpy(1.0, a, b2, "paper") == pytest.approx(3 / 1)
    assert rational_numpy(1.0, a, b2, "pau_a") == pytest.approx(3 / 3)


@pytest.mark.parametrize("form", ["paper", "pau_a"])
def test_initialisations(form):
    x = np.linspace(-3, 3, 601)
    a, b = INITS[form]["swish"]
    assert np.abs(rational_numpy(x, a, b, form) - x / (1 + np.exp(-x))).max() < 5e-6
    a, b = INITS[form]["identity"]
    np.testing.assert_array_equal(rational_numpy(x, a, b, form), x)
    # the swish fit keeps swish's shape beyond the fitted interval (no sign flip, no pole)
    far = np.array([-20.0, -6.0, 6.0, 20.0])
    y = rational_numpy(far, *INITS[form]["swish"], form)
    assert y[2] > 5 and y[3] > 5 and abs(y[1]) < 1 and abs(y[0]) < 5


def test_swish_constants_are_reproducible_from_fit():
    from splice_kat.fit import fit_rational

    a, b = fit_rational("swish", "paper")
    x = np.linspace(-4, 4, 101)
    np.testing.assert_allclose(rational_numpy(x, a, b, "paper"), rational_numpy(x, *INITS["paper"]["swish"], "paper"),
                               atol=1e-6)


@pytest.mark.parametrize("op,backend", backend_params(["kat_rational"]))
def test_accelerated_backends_match_reference(op, backend):
    results = check_backend(op, backend)  # forward and every gradient, on the op's own samples
    assert len(results) >= 8 and all(r.grad_max_abs_err for r in results)


@pytest.mark.parametrize("form", ["paper", "pau_a"])
def test_triton_at_kinks_and_zero_coefficients(form):
    """x = 0 exactly, B(x) = 0 and b_j = 0 are where |.| is not differentiable: both use the slope +1 there."""
    x = torch.tensor([[0.0, 1.0, -1.0, 2.0, 0.0, -0.5, 3.0, 1.0]], requires_grad=True)
    a = torch.tensor([[0.1, 1.0, 0.5, 0.0, 0.0, 0.01], [0.0, 1.0, 0.0, 0.0, 0.0, 0.0]], requires_grad=True)
    b = torch.tensor([[1.0, -1.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]], requires_grad=True)  # B(1) = 0 in group 0
    cot = torch.randn(1, 8, generator=torch.Generator().manual_seed(1))
    outs = {}
    for backend in ("reference", "triton"):
        xs, as_, bs = (t.detach().clone().requires_grad_() for t in (x, a, b))
        with triton_interpreter(), use_backends({"kat_rational": backend}):
            y = kat_rational(xs, as_, bs, form=form)
            y.backward(cot)
        outs[backend] = (y.detach(), xs.grad, as_.grad, bs.grad)
    for r, t in zip(outs["reference"], outs["triton"]):
        torch.testing.assert_close(t, r, rtol=1e-5, atol=1e-6)


def test_dispatch_uses_reference_on_plain_cpu_and_rejects_bad_shapes(monkeypatch):
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    x = torch.randn(2, 16)
    a, b = torch.zeros(8, 6), torch.zeros(8, 4)
    assert kat_rational.select((x, a, b), {}).name == "reference"
    with pytest.raises(ValueError, match="multiple of the number of groups"):
        kat_rational(torch.randn(2, 12), a, b)
    with pytest.raises(ValueError, match="form"):
        kat_rational(x, a, b, form="nope")
