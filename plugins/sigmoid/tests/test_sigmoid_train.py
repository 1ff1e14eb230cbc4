"""Training with sigmoid attention, and `splice train --attn sigmoid --eval sink` end to end."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from splice.install import install_attention
from splice_sigmoid import SigmoidAttention, SimilarityAttention


def test_training_from_scratch_lowers_the_loss(lm_factory):
    from splice.data import synthetic
    from splice.data.packing import pack
    from splice.pipeline import reinitialize
    from splice.train import TrainConfig, train

    lm = lm_factory()
    install_attention(lm.model, SigmoidAttention())
    reinitialize(lm.model, 0)
    data = pack(synthetic.documents("train", seed=1)[:40], lm.tokenizer, 48)
    res = train(lm.model, data, TrainConfig(steps=15, batch_size=4, lr=1e-2, seed=0))
    assert sum(res.losses[-3:]) / 3 < sum(res.losses[:3]) / 3 - 0.5


def test_cli_train_attn_sigmoid_eval_sink(tmp_path: Path):
    from splice.errors import SpliceError
    from splice.model.loading import resolve_source

    try:
        resolve_source("tiny")
    except SpliceError as err:
        pytest.skip(f"embedded model not available: {err}")
    pytest.importorskip("splice_sink")
    from splice.artifact import load_artifact
    from splice.cli.app import app
    from typer.testing import CliRunner

    out = tmp_path / "run"
    res = CliRunner().invoke(app, ["train", "--attn", "sigmoid", "--scratch", "--steps", "3", "--batch-size", "2",
                                   "--seq-len", "64", "--eval", "sink", "--eval-opt", "sink.samples=4",
                                   "--out", str(out), "--json"])
    assert res.exit_code == 0, res.output
    manifest = json.loads((out / "splice.json").read_text())
    composed = manifest["metrics"]["composed"]["sink"]["metrics"]
    assert 0 <= composed["sink_0"]["value"] <= 100
    lm, _ = load_artifact(out)
    assert all(isinstance(b.attn.core, SimilarityAttention) for b in lm.model.blocks)
    assert torch.isfinite(lm.model(torch.tensor([[1, 2, 3]])).logits).all()
