"""⊥Grad: take only the part of the gradient orthogonal to the weights.

Prieto et al. show that without weight decay, training past 100% train accuracy mostly scales
the logits up along the current weights (naïve loss minimisation, NLM), which drives softmax
into collapse. ⊥Grad removes that direction from every parameter tensor's gradient:

    g_perp = g - (w·g / w·w) w,     then rescaled to ||g||  (as the official implementation does)

and hands the result to an ordinary optimizer (⊥AdamW, ⊥SGD).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch


@torch.no_grad()
def orthogonalize_(params: Iterable[torch.nn.Parameter], eps: float = 1e-30) -> None:
    """Replace each parameter's gradient by its component orthogonal to the parameter, same norm."""
    for p in params:
        if p.grad is None:
            continue
        w = p.detach().reshape(-1)
        g = p.grad.reshape(-1)
        proj = torch.dot(w, g) / (torch.dot(w, w) + eps)
        g_perp = g - proj * w
        g_perp = g_perp * (g.norm() / (g_perp.norm() + eps))
        p.grad.copy_(g_perp.view_as(p.grad))


class OrthoGrad(torch.optim.Optimizer):
    """Wraps a base optimizer; ``step`` orthogonalises every gradient first (⊥Grad).

    The base optimizer works on this optimizer's parameter groups (the very same dicts), so a
    learning-rate schedule that writes ``group["lr"]`` reaches it.
    """

    def __init__(self, params: Iterable[Any], base: type[torch.optim.Optimizer] = torch.optim.AdamW,
                 eps: float = 1e-30, **base_kwargs: Any) -> None:
        super().__init__(params, {})
        self.eps = eps
        self.base = base(self.param_groups, **base_kwargs)

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None):  # type: ignore[override]
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            orthogonalize_(group["params"], self.eps)
        self.base.step()
        return loss

    def state_dict(self) -> dict[str, Any]:
        return self.base.state_dict()

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.base.load_state_dict(state_dict)


def orthograd_adamw(params, cfg) -> OrthoGrad:
    """``--optimizer orthograd``: ⊥AdamW with the run's lr, betas and weight decay."""
    return OrthoGrad(params, torch.optim.AdamW, lr=cfg.lr, betas=tuple(cfg.betas), weight_decay=cfg.weight_decay)


def orthograd_sgd(params, cfg) -> OrthoGrad:
    """``--optimizer orthograd_sgd``: ⊥SGD with the run's lr and weight decay."""
    return OrthoGrad(params, torch.optim.SGD, lr=cfg.lr, weight_decay=cfg.weight_decay)
