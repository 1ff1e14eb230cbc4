"""Entry point of splice-plugin-npo: registers the ``npo`` unlearner."""

from __future__ import annotations

from splice import hookimpl

from .method import NPO


@hookimpl
def register_unlearners(register):
    register(NPO)
