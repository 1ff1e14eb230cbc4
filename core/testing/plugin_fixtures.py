"""pytest fixtures a plugin's tests can share instead of copying: quiet progress bars, one torch
thread per xdist worker, the embedded model, and small random Llama-family models.

In ``plugins/<name>/tests/conftest.py``::

    from splice.testing.plugin_fixtures import lm_factory, small_tokenizer, tiny  # noqa: F401

    def test_something(lm_factory):
        lm = lm_factory(gated=False, intermediate=96)
"""

from __future__ import annotations

import os

import pytest
import torch

from ..model import Decoder, DecoderConfig, LanguageModel

os.environ.setdefault("SPLICE_NO_PROGRESS", "1")
if os.environ.get("PYTEST_XDIST_WORKER"):  # xdist runs one process per core already
    torch.set_num_threads(1)


def make_lm(tokenizer, gated: bool = True, intermediate: int = 64, seed: int = 0) -> LanguageModel:
    """A 2-layer, 32-wide decoder (4 heads, 2 KV heads) with random weights over ``tokenizer``."""
    torch.manual_seed(seed)
    cfg = DecoderConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, intermediate_size=intermediate,
                        num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                        max_position_embeddings=256, tie_word_embeddings=True, mlp_gated=gated,
                        bos_token_id=tokenizer.bos_id, eos_token_id=tokenizer.eos_id, pad_token_id=tokenizer.pad_id)
    return LanguageModel(Decoder(cfg).eval(), tokenizer, "test")


@pytest.fixture(scope="session")
def tiny() -> LanguageModel:
    """The embedded model, loaded once per session (tests must not modify it; clone it first)."""
    from ..model import load

    lm = load("tiny")
    lm.model.eval()
    return lm


@pytest.fixture(scope="module")
def small_tokenizer():
    """A 300-entry byte-level BPE trained on 200 generated documents (seconds)."""
    from ..data import synthetic
    from ..data.tokenizer_training import train_bpe

    return train_bpe(synthetic.documents("train", seed=0)[:200], vocab_size=300)


@pytest.fixture()
def lm_factory(small_tokenizer):
    """``lm_factory(gated=True, intermediate=64, seed=0)`` -> a fresh small random model."""
    return lambda **kw: make_lm(small_tokenizer, **kw)
