"""splice-plugin-mia: membership-inference attacks (LOSS, ZLib, Min-K%, Min-K%++) and their AUC."""

from .attacks import ATTACKS, TokenStats, attack_aucs, roc_auc, score, scores, token_stats
from .data import example_text, holdout_examples
from .evaluator import MIA, MIAConfig

__all__ = ["ATTACKS", "MIA", "MIAConfig", "TokenStats", "attack_aucs", "example_text", "holdout_examples",
           "roc_auc", "score", "scores", "token_stats"]
