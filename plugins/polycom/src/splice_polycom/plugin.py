"""Entry point of splice-plugin-polycom."""

from splice import hookimpl

from .method import PolyCom


@hookimpl
def register_activations(register):
    register(PolyCom)
