"""Entry point of splice-plugin-tofu: registers the ``tofu`` evaluator."""

from __future__ import annotations

from splice import hookimpl

from .evaluator import Tofu


@hookimpl
def register_evaluators(register):
    register(Tofu)
