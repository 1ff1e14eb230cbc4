"""``llama``: the core's model provider (Llama, Mistral, Qwen2, SmolLM checkpoints; ``tiny``)."""

from __future__ import annotations

from ..kinds.model import ModelProvider
from ..method import Paper


class LlamaFamily(ModelProvider):
    """Hugging Face checkpoint folders or hub ids of Llama-family decoders, and the embedded ``tiny``."""

    name = "llama"
    paper = Paper(title="LLaMA: Open and Efficient Foundation Language Models", arxiv="2302.13971",
                  claim="the reference decoder matches transformers on the same checkpoint")

    def can_load(self, source: str) -> bool:
        return True

    def load(self, source: str):
        from ..model import load

        return load(source)
