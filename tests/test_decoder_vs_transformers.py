"""Our reference decoder against transformers' implementation of the same checkpoints."""

from __future__ import annotations

import pytest
import torch

from splice.model import load_decoder

from .helpers import hf_checkpoint

transformers = pytest.importorskip("transformers")
TOL = 1e-4

CASES = {
    "llama-gqa-untied": ("llama", {}),
    "llama-tied": ("llama", {"tie_word_embeddings": True}),
    "llama3-rope-scaling": ("llama", {"rope_scaling": {"rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0,
                                                        "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                                                        "original_max_position_embeddings": 64}}),
    "llama-linear-rope": ("llama", {"rope_scaling": {"rope_type": "linear", "rope_theta": 10000.0, "factor": 2.0}}),
    "qwen2-bias": ("qwen2", {}),
    "mistral-sliding-window": ("mistral", {"sliding_window": 16}),
    "mha-head-dim": ("llama", {"num_key_value_heads": 4, "head_dim": 32}),
}


@pytest.fixture(scope="module", params=list(CASES))
def pair(request, tmp_path_factory):
    family, over = CASES[request.param]
    path = hf_checkpoint(tmp_path_factory.mktemp(request.param), family, **over)
    cls = {"llama": transformers.LlamaForCausalLM, "qwen2": transformers.Qwen2ForCausalLM,
           "mistral": transformers.MistralForCausalLM}[family]
    hf = cls.from_pretrained(path, torch_dtype=torch.float32).eval()
    return hf, load_decoder(path)


def test_logits_match(pair):
    hf, ours = pair
    x = torch.randint(0, 320, (2, 40), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        ref = hf(x).logits
        got = ours(x).logits
    assert (ref - got).abs().max() < TOL


def test_logits_match_with_left_padding(pair):
    hf, ours = pair
    x = torch.randint(0, 320, (2, 24), generator=torch.Generator().manual_seed(2))
    mask = torch.ones(2, 24, dtype=torch.long)
    mask[1, :5] = 0
    with torch.no_grad():
        ref = hf(x, attention_mask=mask).logits
        got = ours(x, attention_mask=mask.bool()).logits
    real = mask.bool()
    assert (ref - got)[real].abs().max() < TOL


def test_kv_cache_decoding_matches_transformers(pair):
    hf, ours = pair
    x = torch.randint(0, 320, (1, 30), generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        ref = hf(x).logits
        cache = ours.new_cache()
        steps = [ours(x[:, :20], cache=cache).logits]
        for t in range(20, 30):
            steps.append(ours(x[:, t:t + 1], cache=cache).logits)
    assert (ref - torch.cat(steps, dim=1)).abs().max() < TOL


def test_greedy_generation_matches_transformers(pair):
    from splice.model import generate

    hf, ours = pair
    x = torch.randint(0, 320, (1, 8), generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        ref = hf.generate(x, max_new_tokens=12, do_sample=False, pad_token_id=0)
    got = generate(ours, x, 12)
    assert torch.equal(ref, got)
