"""splice-plugin-npo: Negative Preference Optimization for LLM unlearning (arXiv 2404.05868)."""

from .method import NPO, NPOConfig, kl_to_reference, npo_loss

__all__ = ["NPO", "NPOConfig", "kl_to_reference", "npo_loss"]
