"""Registers the ``flatquant`` quantizer with splice (its kernel registers on first use)."""

from splice import hookimpl

from .method import FlatQuant


@hookimpl
def register_quantizers(register):
    register(FlatQuant)
