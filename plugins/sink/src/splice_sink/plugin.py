"""Entry point of splice-plugin-sink."""

from splice import hookimpl

from .method import Sink


@hookimpl
def register_evaluators(register):
    register(Sink)
