"""⊥Grad: the projection, the wrapper's step, registration for `splice train --optimizer orthograd`."""

from __future__ import annotations

import splice_stablemax.plugin  # noqa: F401  (registers the optimizers, as the registry does)
import torch
from splice.train import TrainConfig, lr_at, make_optimizer
from splice_stablemax import OrthoGrad, orthogonalize_


def _param(seed, *shape):
    g = torch.Generator().manual_seed(seed)
    p = torch.nn.Parameter(torch.randn(*shape, generator=g))
    p.grad = torch.randn(*shape, generator=g) + 0.7 * p.detach()  # a gradient with a component along w
    return p


def test_projection_is_orthogonal_and_keeps_the_norm():
    p = _param(0, 8, 5)
    g = p.grad.clone()
    w = p.detach().clone()
    orthogonalize_([p])
    out = p.grad
    assert abs(float((out * w).sum())) < 1e-4 * float(out.norm() * w.norm())
    torch.testing.assert_close(out.norm(), g.norm())
    # independent formula (float64)
    w64, g64 = w.double().flatten(), g.double().flatten()
    perp = g64 - (w64 @ g64) / (w64 @ w64) * w64
    perp = perp * g64.norm() / perp.norm()
    torch.testing.assert_close(out.double().flatten(), perp, rtol=1e-5, atol=1e-6)


def test_zero_weights_leave_the_gradient_unchanged():
    p = torch.nn.Parameter(torch.zeros(4))
    p.grad = torch.tensor([1.0, -2.0, 3.0, 0.5])
    g = p.grad.clone()
    orthogonalize_([p])
    torch.testing.assert_close(p.grad, g)


def test_orthograd_sgd_step_moves_orthogonally():
    p = _param(1, 32)
    w0 = p.detach().clone()
    opt = OrthoGrad([p], torch.optim.SGD, lr=0.1)
    opt.step()
    delta = p.detach() - w0
    assert abs(float(delta @ w0)) < 1e-5 * float(delta.norm() * w0.norm())
    assert float(delta.norm()) > 0


def test_orthograd_adamw_equals_adamw_on_projected_gradients():
    p1, p2 = _param(2, 6, 3), _param(2, 6, 3)
    orthogonalize_([p2])  # what ⊥Grad hands to AdamW
    a = OrthoGrad([p1], torch.optim.AdamW, lr=0.01, weight_decay=0.0)
    b = torch.optim.AdamW([p2], lr=0.01, weight_decay=0.0)
    a.step()
    b.step()
    torch.testing.assert_close(p1.detach(), p2.detach())


def test_registered_for_splice_train_and_schedule_reaches_base():
    p = _param(3, 10)
    cfg = TrainConfig(optimizer="orthograd", lr=0.02, steps=10, betas=(0.9, 0.99), weight_decay=0.1)
    opt = make_optimizer([p], cfg)
    assert isinstance(opt, OrthoGrad) and isinstance(opt.base, torch.optim.AdamW)
    assert opt.base.param_groups[0]["betas"] == (0.9, 0.99) and opt.base.param_groups[0]["weight_decay"] == 0.1
    for g in opt.param_groups:  # what splice.train does every step
        g["lr"] = lr_at(5, cfg)
    assert opt.base.param_groups[0]["lr"] == lr_at(5, cfg)
    sgd = make_optimizer([p], TrainConfig(optimizer="orthograd_sgd", lr=0.5))
    assert isinstance(sgd.base, torch.optim.SGD)


def test_state_dict_round_trip():
    p = _param(4, 5)
    opt = OrthoGrad([p], torch.optim.AdamW, lr=0.01)
    opt.step()
    sd = opt.state_dict()
    assert sd["state"][0]["step"] == 1
    q = torch.nn.Parameter(p.detach().clone())
    opt2 = OrthoGrad([q], torch.optim.AdamW, lr=0.01)
    opt2.load_state_dict(sd)
    torch.testing.assert_close(opt2.base.state[q]["exp_avg"], opt.base.state[p]["exp_avg"])
