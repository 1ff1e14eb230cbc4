"""The core's built-in methods, registered through the same hooks as every plugin."""

from __future__ import annotations

from ..hookspecs import hookimpl
from .activations import GELU, ReLU, SiLU
from .attention import SDPAAttention
from .models import LlamaFamily
from .perplexity import Perplexity
from .rtn import RTN
from .unlearners import GradDiff, GradientAscent


@hookimpl
def register_attention(register):
    register(SDPAAttention)


@hookimpl
def register_activations(register):
    for cls in (SiLU, GELU, ReLU):
        register(cls)


@hookimpl
def register_quantizers(register):
    register(RTN)


@hookimpl
def register_unlearners(register):
    register(GradientAscent)
    register(GradDiff)


@hookimpl
def register_evaluators(register):
    register(Perplexity)


@hookimpl
def register_models(register):
    register(LlamaFamily)
