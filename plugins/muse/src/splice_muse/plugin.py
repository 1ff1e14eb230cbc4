"""Entry point of splice-plugin-muse: registers the ``muse`` evaluator."""

from __future__ import annotations

from splice import hookimpl

from .evaluator import Muse


@hookimpl
def register_evaluators(register):
    register(Muse)
