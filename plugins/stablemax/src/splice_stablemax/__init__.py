"""StableMax and ⊥Grad (Prieto et al., Grokking at the Edge of Numerical Stability) for splice."""

from .functional import log_stablemax, s, stablemax, stablemax_cross_entropy
from .method import LogStableMax, StableMax
from .orthograd import OrthoGrad, orthogonalize_

__all__ = ["LogStableMax", "OrthoGrad", "StableMax", "log_stablemax", "orthogonalize_", "s", "stablemax",
           "stablemax_cross_entropy"]
