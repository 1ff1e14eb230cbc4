"""Entry point of splice-plugin-longctx: the ``longctx`` evaluator."""

from splice import hookimpl

from .evaluator import LongCtx


@hookimpl
def register_evaluators(register):
    register(LongCtx)
