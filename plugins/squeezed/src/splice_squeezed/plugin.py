"""Entry point of splice-plugin-squeezed: the ``squeezed`` attention and its ``recency`` baseline."""

from splice import hookimpl

from .attention import Recency, Squeezed


@hookimpl
def register_attention(register):
    register(Squeezed)
    register(Recency)
