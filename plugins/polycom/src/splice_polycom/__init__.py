"""PolyCom: polynomial composition activations (PolyNorm, PolyReLU) for splice."""

from .method import PolyCom, PolyComConfig
from .modules import PolyNorm, PolyReLU, rms_normalize

__all__ = ["PolyCom", "PolyComConfig", "PolyNorm", "PolyReLU", "rms_normalize"]
