"""PolyCom inside the decoder: gated and ungated sites, training from scratch, the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from splice.install import install_activation
from splice_polycom import PolyCom, PolyNorm, PolyReLU


@pytest.mark.parametrize("gated", [True, False])
@pytest.mark.parametrize("variant", ["polynorm", "polyrelu"])
def test_installs_at_every_mlp_act_and_computes_the_mlp(lm_factory, gated, variant):
    lm = lm_factory(gated=gated)
    install_activation(lm.model, PolyCom({"variant": variant}))
    cls = PolyNorm if variant == "polynorm" else PolyReLU
    ids = torch.randint(0, lm.config.vocab_size, (2, 12))
    x = lm.model.embed(ids)
    for blk in lm.model.blocks:
        assert isinstance(blk.mlp.act, cls)
        mlp = blk.mlp
        h = mlp(x)
        act = mlp.act
        expected = mlp.down(act(mlp.gate(x)) * mlp.up(x)) if gated else mlp.down(act(mlp.up(x)))
        torch.testing.assert_close(h, expected)
    assert lm.model(ids).logits.shape == (2, 12, lm.config.vocab_size)


def test_training_from_scratch_lowers_the_loss(lm_factory):
    from splice.data import synthetic
    from splice.data.packing import pack
    from splice.pipeline import reinitialize
    from splice.train import TrainConfig, train

    torch.manual_seed(0)
    lm = lm_factory(gated=False, intermediate=96)
    install_activation(lm.model, PolyCom())
    reinitialize(lm.model, 0)
    assert torch.allclose(lm.model.blocks[0].mlp.act.weight.detach(), torch.full((3,), 1 / 3))
    data = pack(synthetic.documents("train", seed=1)[:40], lm.tokenizer, 48)
    res = train(lm.model, data, TrainConfig(steps=20, batch_size=4, lr=5e-3, seed=0))
    first, last = sum(res.losses[:3]) / 3, sum(res.losses[-3:]) / 3
    assert last < first - 0.5, (first, last)
    assert not torch.allclose(lm.model.blocks[0].mlp.act.weight.detach(), torch.full((3,), 1 / 3))


def test_cli_train_act_polycom_scratch(tmp_path: Path):
    """`splice train --act polycom --scratch` end to end on the embedded configuration."""
    from splice.errors import SpliceError
    from splice.model.loading import resolve_source

    try:
        resolve_source("tiny")
    except SpliceError as err:  # the embedded checkpoint is built by scripts/build_tiny.py
        pytest.skip(f"embedded model not available: {err}")
    from splice.cli.app import app
    from typer.testing import CliRunner

    out = tmp_path / "run"
    res = CliRunner().invoke(app, ["train", "--act", "polycom", "--scratch", "--steps", "4", "--batch-size", "2",
                                   "--seq-len", "64", "--eval", "perplexity", "--eval-opt", "perplexity.context=64",
                                   "--eval-opt", "perplexity.max_windows=2", "--out", str(out), "--json"])
    assert res.exit_code == 0, res.output
    manifest = json.loads((out / "splice.json").read_text())
    assert any(p["name"] == "polycom" and p["kind"] == "activation" for p in manifest["plugins"])
    assert manifest["recipe"]["train"]["init"] == "scratch"
    from splice.artifact import load_artifact

    lm, _ = load_artifact(out)
    assert all(isinstance(b.mlp.act, PolyNorm) for b in lm.model.blocks)
