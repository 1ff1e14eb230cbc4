"""Entry point of splice-plugin-mia: registers the ``mia`` evaluator."""

from __future__ import annotations

from splice import hookimpl

from .evaluator import MIA


@hookimpl
def register_evaluators(register):
    register(MIA)
