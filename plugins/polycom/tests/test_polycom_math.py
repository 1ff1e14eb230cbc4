"""PolyNorm / PolyReLU against their closed forms, limit cases, init and gradients."""

from __future__ import annotations

import pytest
import torch
from splice.errors import ConfigError
from splice.kinds.activation import MLPSite
from splice_polycom import PolyCom, PolyNorm, PolyReLU

SITE = MLPSite(layer=0, hidden_size=16, intermediate_size=24, gated=False)


def _x(*shape, seed=0, scale=1.5):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=g) * scale


def test_polynorm_limit_case_is_rms_normalised_x():
    config, f = PolyCom.limit_case()
    mod = PolyCom(config).build(SITE)
    x = _x(3, 5, 24)
    out = mod(x)
    # independent formula: x * sqrt(n) / ||x||_2 (eps negligible at this scale)
    expected = x * (x.shape[-1] ** 0.5) / torch.linalg.vector_norm(x, dim=-1, keepdim=True)
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(out, f(x), rtol=0, atol=0)
    assert torch.allclose(out.pow(2).mean(-1), torch.ones(3, 5), atol=1e-5)


def test_polyrelu_limit_case_is_relu():
    mod = PolyCom({"variant": "polyrelu", "weights": [0, 0, 1]}).build(SITE)
    x = _x(4, 24)
    torch.testing.assert_close(mod(x), torch.relu(x), rtol=0, atol=0)


def test_paper_init_is_one_third_and_zero_bias():
    for variant in ("polynorm", "polyrelu"):
        mod = PolyCom({"variant": variant}).build(SITE)
        torch.testing.assert_close(mod.weight.detach(), torch.full((3,), 1 / 3))
        assert float(mod.bias.detach()) == 0.0


def test_polynorm_default_matches_closed_form():
    x = _x(2, 7, 24, seed=1)
    mod = PolyCom().build(SITE)

    def n(y):  # RMS normalisation written independently
        return y / torch.sqrt((y * y).sum(-1, keepdim=True) / y.shape[-1] + 1e-6)

    expected = (n(x ** 3) + n(x ** 2) + n(x)) / 3
    torch.testing.assert_close(mod(x), expected, rtol=1e-5, atol=1e-5)


def test_polyrelu_default_matches_closed_form():
    x = _x(2, 7, 24, seed=2)
    mod = PolyCom({"variant": "polyrelu"}).build(SITE)
    r = x.clamp(min=0)
    torch.testing.assert_close(mod(x), (r ** 3 + r ** 2 + r) / 3, rtol=1e-6, atol=1e-6)


def test_order_and_coefficients_are_respected():
    mod = PolyReLU(order=2, weights=[2.0, -1.0], bias=0.5)
    x = _x(10, seed=3)
    r = x.clamp(min=0)
    torch.testing.assert_close(mod(x), 2 * r ** 2 - r + 0.5)
    pn = PolyNorm(order=1, weights=[3.0], bias=-1.0)
    x2 = _x(4, 8, seed=4)
    torch.testing.assert_close(pn(x2), 3 * x2 * torch.rsqrt(x2.pow(2).mean(-1, keepdim=True) + 1e-6) - 1)


def test_gradients_reach_coefficients_and_input():
    for variant in ("polynorm", "polyrelu"):
        mod = PolyCom({"variant": variant}).build(SITE)
        x = _x(3, 24, seed=5).requires_grad_()
        mod(x).square().sum().backward()
        assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
        assert mod.weight.grad is not None and (mod.weight.grad != 0).all()
        assert mod.bias.grad is not None and mod.bias.grad.abs() > 0


def test_polynorm_gradcheck_double():
    mod = PolyNorm().double()
    x = _x(2, 6, seed=6).double().requires_grad_()
    assert torch.autograd.gradcheck(lambda t: mod(t), (x,))


def test_reset_parameters_restores_init():
    mod = PolyCom({"weights": [0.1, 0.2, 0.7], "bias": 0.3}).build(SITE)
    with torch.no_grad():
        mod.weight.fill_(5)
        mod.bias.fill_(5)
    mod.reset_parameters()
    torch.testing.assert_close(mod.weight.detach(), torch.tensor([0.1, 0.2, 0.7]))
    assert abs(float(mod.bias.detach()) - 0.3) < 1e-7


def test_bf16_input_keeps_dtype():
    mod = PolyCom().build(SITE)
    x = _x(2, 24, seed=7).bfloat16()
    out = mod(x)
    assert out.dtype == torch.bfloat16
    torch.testing.assert_close(out.float(), mod(x.float()), rtol=2e-2, atol=2e-2)


@pytest.mark.parametrize("bad,field", [({"variant": "poly"}, "variant"), ({"order": 0}, "order"),
                                       ({"weights": [1, 2]}, "weights"), ({"eps": 0}, "eps"),
                                       ({"nope": 1}, "nope")])
def test_bad_config_names_the_field(bad, field):
    with pytest.raises(ConfigError, match=field):
        PolyCom(bad)
