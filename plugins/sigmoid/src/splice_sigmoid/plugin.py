"""Entry point of splice-plugin-sigmoid."""

from splice import hookimpl

from .method import SigmoidAttention


@hookimpl
def register_attention(register):
    register(SigmoidAttention)
