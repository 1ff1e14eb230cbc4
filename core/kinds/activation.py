"""The activation kind: the module at an MLP site (elementwise) or the whole MLP, or the output."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, ClassVar, Literal

import torch
from torch import nn

from ..method import Method


@dataclass(frozen=True)
class MLPSite:
    """What an MLP site looks like, for ``build``."""

    layer: int
    hidden_size: int
    intermediate_size: int
    gated: bool  # True: down(act(gate(x)) * up(x)); False: down(act(up(x)))
    bias: bool = False


class ActivationMethod(Method):
    """``replaces`` says where the built module goes:

    - ``act``: ``blocks[i].mlp.act`` (elementwise on the intermediate activations, any shape);
    - ``mlp``: ``blocks[i].mlp`` (the whole MLP, hidden -> hidden, e.g. KAN layers);
    - ``output``: ``output_act``, applied to the logits; it must return values whose softmax is
      the method's output distribution (e.g. log of StableMax's s(x)), so every evaluator keeps
      working unchanged.
    """

    kind: ClassVar[str] = "activation"
    replaces: ClassVar[Literal["act", "mlp", "output"]] = "act"

    def build(self, site: MLPSite) -> nn.Module:
        raise NotImplementedError

    @classmethod
    def limit_case(cls) -> tuple[dict[str, Any], Callable[[torch.Tensor], torch.Tensor]] | None:
        """(config, f): with this config the built module must compute exactly ``f`` (conformance).

        ``f(x)`` for elementwise and output activations; ``f(module, x)`` when the limit depends on
        the built module's own weights (``replaces = "mlp"``)."""
        return None
