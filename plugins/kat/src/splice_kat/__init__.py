"""KAT: group-rational KAN MLPs with a Triton rational kernel, for splice."""

from .kernels import kat_rational
from .method import KAT, KATConfig
from .modules import KATMLP, GroupRational
from .rational import rational_numpy, rational_reference

__all__ = ["KAT", "KATMLP", "GroupRational", "KATConfig", "kat_rational", "rational_numpy", "rational_reference"]
