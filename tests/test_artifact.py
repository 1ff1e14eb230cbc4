"""Artifacts: composed models save and reload to identical logits; damage is refused clearly."""

from __future__ import annotations

import json

import pytest
import torch

from splice.artifact import MANIFEST, WEIGHTS, load_artifact, save_artifact
from splice.errors import ArtifactError
from splice.pipeline import compose
from splice.recipe import Recipe

QUICK_PPL = {"name": "perplexity", "context": 64, "max_windows": 2}


@pytest.fixture(scope="module")
def composed(tiny):
    recipe = Recipe.parse({"quant": {"name": "rtn", "w_bits": 4, "a_bits": 8, "kv_bits": 8}, "eval": [QUICK_PPL]})
    return compose(recipe, lm=tiny.clone())


@pytest.fixture()
def saved(composed, tmp_path):
    return save_artifact(composed, tmp_path / "art")


def logits(lm):
    x = torch.tensor([lm.encode("Question: In what year was the author born?\nAnswer:")])
    return lm.model(x).logits


def test_round_trip_gives_identical_logits_and_manifest(composed, saved):
    lm, manifest = load_artifact(saved)
    assert torch.equal(logits(lm), logits(composed.lm))
    (quant,) = [p for p in manifest.plugins if p.kind == "quantizer"]
    assert (quant.name, quant.distribution, quant.config["w_bits"]) == ("rtn", "splice", 4)
    ppl = manifest.metrics["composed"]["perplexity"]["metrics"]["perplexity"]
    assert ppl["direction"] == "lower" and ppl["value"] > 1
    assert manifest.files[WEIGHTS]["bytes"] == (saved / WEIGHTS).stat().st_size


def test_packed_weights_are_what_is_stored(saved):
    from safetensors.torch import load_file

    state = load_file(str(saved / WEIGHTS))
    q = state["blocks.0.mlp.up.qweight"]
    assert q.dtype == torch.uint8 and q.shape[1] * 2 == 128  # two 4-bit codes per byte


def test_truncated_weights_are_refused(saved):
    data = (saved / WEIGHTS).read_bytes()
    (saved / WEIGHTS).write_bytes(data[: len(data) // 2])
    with pytest.raises(ArtifactError, match="truncated"):
        load_artifact(saved)


def test_corrupted_weights_are_refused(saved):
    data = bytearray((saved / WEIGHTS).read_bytes())
    data[-10] ^= 0xFF
    (saved / WEIGHTS).write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match="corrupted"):
        load_artifact(saved)


def test_corrupted_manifest_is_refused(saved):
    (saved / MANIFEST).write_text((saved / MANIFEST).read_text()[:100])
    with pytest.raises(ArtifactError, match="corrupted manifest"):
        load_artifact(saved)


def test_missing_plugin_names_the_distribution(saved):
    m = json.loads((saved / MANIFEST).read_text())
    m["plugins"][0].update(name="flatquant2", distribution="splice-plugin-flatquant2", version="9.9")
    (saved / MANIFEST).write_text(json.dumps(m))
    with pytest.raises(ArtifactError, match=r"pip install splice-plugin-flatquant2"):
        load_artifact(saved)


def test_a_failed_save_leaves_nothing_behind(composed, tmp_path, monkeypatch):
    import splice.artifact as art

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(art, "save_file", boom)
    with pytest.raises(OSError):
        save_artifact(composed, tmp_path / "out")
    assert list(tmp_path.iterdir()) == []


def test_existing_folder_needs_force(composed, saved):
    with pytest.raises(ArtifactError, match="--force"):
        save_artifact(composed, saved)
    save_artifact(composed, saved, force=True)
    assert (saved / MANIFEST).exists()
