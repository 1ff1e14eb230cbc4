"""Squeezed Attention (Hooper et al., arXiv 2411.09688) for splice: the ``squeezed`` attention method,
its ``recency`` baseline, and the two Triton kernels (centroid lookup, attention over selected keys)."""

from .attention import Recency, RecencyAttention, Squeezed, SqueezedAttention, recluster
from .config import RecencyConfig, SqueezedConfig

__all__ = ["Recency", "RecencyAttention", "RecencyConfig", "Squeezed", "SqueezedAttention", "SqueezedConfig", "recluster"]
