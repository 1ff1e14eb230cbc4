"""A small random Llama-family language model for the StableMax tests (no embedded checkpoint needed)."""

from __future__ import annotations

import os

import pytest
import torch

os.environ.setdefault("SPLICE_NO_PROGRESS", "1")


@pytest.fixture(scope="module")
def small_tokenizer():
    from splice.data import synthetic
    from splice.data.tokenizer_training import train_bpe

    return train_bpe(synthetic.documents("train", seed=0)[:200], vocab_size=300)


def make_lm(tokenizer, gated: bool = True, intermediate: int = 64, seed: int = 0):
    from splice.model import Decoder, DecoderConfig, LanguageModel

    torch.manual_seed(seed)
    cfg = DecoderConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, intermediate_size=intermediate,
                        num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                        max_position_embeddings=256, tie_word_embeddings=True, mlp_gated=gated,
                        bos_token_id=tokenizer.bos_id, eos_token_id=tokenizer.eos_id, pad_token_id=tokenizer.pad_id)
    return LanguageModel(Decoder(cfg).eval(), tokenizer, "test")


@pytest.fixture()
def lm_factory(small_tokenizer):
    return lambda **kw: make_lm(small_tokenizer, **kw)
