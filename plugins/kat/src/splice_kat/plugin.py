"""Entry point of splice-plugin-kat (importing it registers the ``kat_rational`` kernel op)."""

from splice import hookimpl

from .method import KAT


@hookimpl
def register_activations(register):
    register(KAT)
