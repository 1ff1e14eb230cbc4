"""Registers the ``quarot`` quantizer with splice."""

from splice import hookimpl

from .method import QuaRot


@hookimpl
def register_quantizers(register):
    register(QuaRot)
