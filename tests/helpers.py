"""Builders for small random checkpoints (written in a temp dir, loaded by both libraries)."""

from __future__ import annotations

from pathlib import Path

import torch


def hf_checkpoint(path: Path, family: str = "llama", **overrides) -> Path:
    """A small random transformers checkpoint of ``family`` saved at ``path``."""
    import transformers

    common = dict(vocab_size=320, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                  num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512)
    common.update(overrides)
    cls = {"llama": (transformers.LlamaConfig, transformers.LlamaForCausalLM),
           "qwen2": (transformers.Qwen2Config, transformers.Qwen2ForCausalLM),
           "mistral": (transformers.MistralConfig, transformers.MistralForCausalLM)}[family]
    torch.manual_seed(0)
    model = cls[1](cls[0](**common)).eval()
    model.save_pretrained(path)
    return path
