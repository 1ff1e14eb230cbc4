"""Long fixed-context evaluation for splice: retrieval at given context lengths and needle depths,
fixed-prefix perplexity, and attention fidelity (keys touched, recall, output error) against dense."""

from .evaluator import LongCtx, LongCtxConfig, answer_question, continuation_nll
from .fidelity import FidelityProbe, FidelityStats, probing
from .tasks import FixedContextExample, retrieval_examples, split_prompt, text_windows, text_windows_from_text

__all__ = ["FidelityProbe", "FidelityStats", "FixedContextExample", "LongCtx", "LongCtxConfig", "answer_question",
           "continuation_nll", "probing", "retrieval_examples", "split_prompt", "text_windows",
           "text_windows_from_text"]
