"""splice-plugin-quarot: QuaRot (arXiv 2404.00456), random Hadamard rotations folded into the weights,
online Hadamards, RTN/GPTQ weights, per-token activations and a 4-bit KV cache."""

from .method import QuaRot, QuaRotConfig
from .rotations import Rotation, hadamard, hadamard_rotation_matrix, hadamard_split

__all__ = ["QuaRot", "QuaRotConfig", "Rotation", "hadamard", "hadamard_rotation_matrix", "hadamard_split"]
