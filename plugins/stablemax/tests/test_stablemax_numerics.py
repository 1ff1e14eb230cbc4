"""StableMax against its closed form; the float32 softmax-collapse claim; the output-path loss equals the paper's."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from splice_stablemax import LogStableMax, StableMax, log_stablemax, s, stablemax, stablemax_cross_entropy


def _grad(loss_fn, logits, label):
    x = logits.clone().requires_grad_()
    loss_fn(x, label).backward()
    return x.grad


def test_s_closed_form_and_continuity():
    x = torch.tensor([-1e6, -3.0, -1.0, -1e-7, 0.0, 1e-7, 0.5, 2.0, 1e6], dtype=torch.float64)
    expected = torch.tensor([1 / (1 + 1e6), 1 / 4, 1 / 2, 1 / (1 + 1e-7), 1.0, 1 + 1e-7, 1.5, 3.0, 1e6 + 1],
                            dtype=torch.float64)
    torch.testing.assert_close(s(x), expected, rtol=1e-12, atol=0)
    # C^1 at 0: both one-sided derivatives are 1
    x0 = torch.tensor([-1e-6, 1e-6], dtype=torch.float64, requires_grad=True)
    s(x0).sum().backward()
    torch.testing.assert_close(x0.grad, torch.ones(2, dtype=torch.float64), rtol=1e-5, atol=0)


def test_stablemax_is_a_distribution_and_log_matches():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(5, 37, generator=g) * 20
    p = stablemax(x)
    torch.testing.assert_close(p.sum(-1), torch.ones(5))
    assert (p > 0).all()
    torch.testing.assert_close(log_stablemax(x).exp(), p, rtol=1e-5, atol=1e-7)
    # order preserving (s is increasing)
    assert torch.equal(p.argsort(-1), x.argsort(-1))


def test_limit_case_closed_form_matches_module():
    cfg, f = StableMax.limit_case()
    mod = StableMax(cfg).build(None)  # the output site does not depend on an MLP site
    x = torch.randn(3, 4, 50) * 30
    torch.testing.assert_close(mod(x), f(x), rtol=1e-5, atol=1e-5)


def test_float32_softmax_gradient_vanishes_on_0_120_but_stablemax_does_not():
    """The paper's softmax collapse: with logits [0, 120] and the correct class 1, exp(-120)
    underflows float32, p rounds to exactly [0, 1] and the cross-entropy gradient is exactly 0."""
    logits = torch.tensor([[0.0, 120.0]], dtype=torch.float32)
    label = torch.tensor([1])
    g_soft = _grad(F.cross_entropy, logits, label)
    assert torch.equal(g_soft, torch.zeros_like(g_soft))
    assert float(F.cross_entropy(logits, label)) == 0.0

    # StableMax through splice's output path (float32 all the way) ...
    g_out = _grad(lambda x, y: F.cross_entropy(LogStableMax()(x), y), logits, label)
    # ... and the paper's float64 loss both give the analytic gradient s'(x)/s(x) * (p - y)
    g_paper = _grad(stablemax_cross_entropy, logits, label)
    p0, p1 = 1 / 122, 121 / 122
    analytic = torch.tensor([[1.0 * (p0 - 0), (1 / 121) * (p1 - 1)]])
    for g in (g_out, g_paper):
        assert (g != 0).all()
        torch.testing.assert_close(g, analytic, rtol=1e-5, atol=0)
    # in float64, exp(-120) ~ 7.7e-53 is representable: the wrong class still gets a gradient,
    # so the collapse on these logits is a float32 effect
    g64 = _grad(F.cross_entropy, logits.double(), label)
    assert float(g64[0, 0]) == pytest.approx(7.667648e-53, rel=1e-5)


@pytest.mark.parametrize("scale", [1.0, 30.0, 300.0])
def test_output_path_cross_entropy_equals_the_papers_loss(scale):
    """F.cross_entropy(log_stablemax(x)) in float32 == the official float64 StableMax CE (value and gradient)."""
    g = torch.Generator().manual_seed(int(scale))
    logits = torch.randn(16, 113, generator=g) * scale
    labels = torch.randint(0, 113, (16,), generator=g)
    out_path = lambda x, y: F.cross_entropy(LogStableMax()(x), y)
    torch.testing.assert_close(out_path(logits, labels), stablemax_cross_entropy(logits, labels),
                               rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(_grad(out_path, logits, labels), _grad(stablemax_cross_entropy, logits, labels),
                               rtol=1e-4, atol=1e-8)


def test_cross_entropy_reductions_and_ignore_index():
    logits = torch.randn(2, 5, 7)
    labels = torch.tensor([[1, 2, -100, 3, 4], [0, -100, 6, 5, 1]])
    none = stablemax_cross_entropy(logits, labels, reduction="none")
    assert none.shape == labels.shape and float(none[0, 2]) == 0.0
    manual = -torch.log(stablemax(logits.double()))
    keep = labels != -100
    vals = manual.gather(-1, labels.clamp(min=0)[..., None])[..., 0][keep]
    torch.testing.assert_close(stablemax_cross_entropy(logits, labels), vals.mean().float())
    torch.testing.assert_close(stablemax_cross_entropy(logits, labels, reduction="sum"), vals.sum().float())
    with pytest.raises(ValueError, match="reduction"):
        stablemax_cross_entropy(logits, labels, reduction="max")


def test_no_nan_gradients_at_extremes():
    x = torch.tensor([[-1e30, -5.0, 0.0, 1e30]], requires_grad=True)
    F.cross_entropy(LogStableMax()(x), torch.tensor([2])).backward()
    assert torch.isfinite(x.grad).all()


def test_stablemax_method_rejects_options():
    from splice.errors import ConfigError

    with pytest.raises(ConfigError, match="temperature"):
        StableMax({"temperature": 2})


def test_log_probability_near_one_is_accurate_in_float32():
    """log p of a dominant class is a small difference of two large logs: computed in float32 it
    would be off by ~1e-6 absolute (100% here); the module returns it to float32 relative precision."""
    x = torch.full((1, 47), -1e3)
    x[0, 5] = 1e4  # p(5) = 1 - ~4.6e-6
    exact = log_stablemax(x.double())[0, 5]
    out = LogStableMax()(x)[0, 5]
    assert out.dtype == torch.float32
    assert abs(float(out) - float(exact)) <= 1e-6 * abs(float(exact))
    naive32 = log_stablemax(x)[0, 5]  # the same formula evaluated in float32
    assert abs(float(naive32) - float(exact)) > 1e-2 * abs(float(exact))
