"""splice-plugin-flatquant: FlatQuant (arXiv 2410.09426), learnable Kronecker affine transforms with
learnable clipping for W4A4KV4, calibrated block by block, with a fused transform+quantize kernel."""

from .method import FlatQuant, FlatQuantConfig
from .transforms import KronAffine, kron_apply, kron_factors

__all__ = ["FlatQuant", "FlatQuantConfig", "KronAffine", "kron_apply", "kron_factors"]
