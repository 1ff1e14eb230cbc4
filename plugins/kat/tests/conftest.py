"""A small random Llama-family language model for the KAT tests (no embedded checkpoint needed).

Triton decorates its own library at ``import triton`` according to TRITON_INTERPRET, so it is
imported here with the interpreter on (on machines without CUDA) before anything else imports
it; the variable is then restored, and the kernel tests switch the interpreter on for their own
duration only, so other tests keep dispatching to the PyTorch references on CPU.
"""

from __future__ import annotations

import importlib.util
import os

import pytest
import torch

os.environ.setdefault("SPLICE_NO_PROGRESS", "1")

if importlib.util.find_spec("triton") is not None and not torch.cuda.is_available():
    _previous = os.environ.get("TRITON_INTERPRET")
    os.environ["TRITON_INTERPRET"] = "1"
    import triton  # noqa: F401

    if _previous is None:
        del os.environ["TRITON_INTERPRET"]
    else:
        os.environ["TRITON_INTERPRET"] = _previous


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
