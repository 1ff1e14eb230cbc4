"""Checkpoint sources: sharded safetensors, hub ids offline, clear errors on bad folders."""

from __future__ import annotations

import pytest
import torch

from splice.errors import ArtifactError, SpliceError
from splice.model import load_decoder, resolve_source

from .helpers import hf_checkpoint


def test_sharded_checkpoint_loads_like_the_single_file(tmp_path):
    import transformers

    path = hf_checkpoint(tmp_path / "one")
    hf = transformers.LlamaForCausalLM.from_pretrained(path)
    hf.save_pretrained(tmp_path / "sharded", max_shard_size="100KB")
    assert (tmp_path / "sharded" / "model.safetensors.index.json").exists()
    x = torch.randint(0, 320, (1, 12))
    assert torch.equal(load_decoder(tmp_path / "sharded")(x).logits, load_decoder(path)(x).logits)


def test_hub_id_in_offline_mode_without_cache_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    with pytest.raises(SpliceError, match="HF_HUB_OFFLINE=1"):
        resolve_source("nobody/no-such-model")


def test_bad_sources_are_clear_errors(tmp_path):
    with pytest.raises(ArtifactError, match="no config.json"):
        resolve_source(tmp_path)
    with pytest.raises(SpliceError, match="no such folder"):
        resolve_source(tmp_path / "missing" / "deeper")
    (tmp_path / "config.json").write_text('{"model_type": "gpt2", "vocab_size": 10}')
    with pytest.raises(SpliceError, match="not a Llama-family decoder"):
        load_decoder(tmp_path)
