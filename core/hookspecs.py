"""The hook specifications: one hook per kind of method, plus model providers.

A plugin module implements any of these with ``@splice.hookimpl`` and calls ``register(cls)``
once per method class it provides. The core's own built-ins use the very same hooks.
"""

from __future__ import annotations

from typing import Callable

import pluggy

PROJECT = "splice"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)

Register = Callable[[type], None]


@hookspec
def register_attention(register: Register) -> None:
    """Register attention method classes (subclasses of ``splice.kinds.AttentionMethod``)."""


@hookspec
def register_activations(register: Register) -> None:
    """Register activation method classes (subclasses of ``splice.kinds.ActivationMethod``)."""


@hookspec
def register_quantizers(register: Register) -> None:
    """Register quantizer method classes (subclasses of ``splice.kinds.QuantizerMethod``)."""


@hookspec
def register_unlearners(register: Register) -> None:
    """Register unlearner method classes (subclasses of ``splice.kinds.UnlearnerMethod``)."""


@hookspec
def register_evaluators(register: Register) -> None:
    """Register evaluator method classes (subclasses of ``splice.kinds.EvaluatorMethod``)."""


@hookspec
def register_models(register: Register) -> None:
    """Register model providers (subclasses of ``splice.kinds.ModelProvider``)."""


# hook name -> kind it registers; the registry walks this table.
HOOK_KINDS: dict[str, str] = {
    "register_attention": "attention",
    "register_activations": "activation",
    "register_quantizers": "quantizer",
    "register_unlearners": "unlearner",
    "register_evaluators": "evaluator",
    "register_models": "model",
}
