"""Sigmoid attention without normalisation (and variants), from "When Attention Sink Emerges"."""

from .attention import SIMILARITIES, SimilarityAttention
from .method import SigmoidAttention, SigmoidConfig

__all__ = ["SIMILARITIES", "SigmoidAttention", "SigmoidConfig", "SimilarityAttention"]
