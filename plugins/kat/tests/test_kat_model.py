"""KAT as the decoder's MLP: parameter matching, variance-preserving init, training, the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from splice.errors import ConfigError
from splice.install import install_activation
from splice.kinds.activation import MLPSite
from splice.pipeline import reinitialize
from splice_kat import KAT, KATMLP, GroupRational


def _n_params(m):
    return sum(p.numel() for p in m.parameters())


def test_groups_are_independent():
    r = GroupRational(12, groups=3, init="swish")
    x = torch.randn(4, 12)
    y0 = r(x)
    with torch.no_grad():
        r.numerator[1, 1] += 1.0  # group 1 = channels 4..7
    y1 = r(x)
    changed = (y1 - y0).abs().amax(0) > 0
    assert changed[4:8].all() and not changed[:4].any() and not changed[8:].any()
    torch.testing.assert_close(y1[:, 4:8] - y0[:, 4:8], x[:, 4:8] / r_q(r, x[:, 4:8], 1))


def r_q(r, x, g):
    b = r.denominator[g].detach()
    return 1 + (b[0] * x + b[1] * x**2 + b[2] * x**3 + b[3] * x**4).abs()


def test_param_matched_width_equals_the_swiglu_mlp():
    site = MLPSite(layer=0, hidden_size=128, intermediate_size=384, gated=True)
    kat = KAT().build(site)
    swiglu = 3 * 128 * 384
    rationals = 2 * 8 * (6 + 4)
    assert _n_params(kat) == swiglu + rationals
    ungated = KAT().build(MLPSite(layer=0, hidden_size=128, intermediate_size=576, gated=False))
    assert ungated.up.out_features == 576
    assert KAT({"width": "site"}).build(site).up.out_features == 384


def test_variance_preserving_init_keeps_the_second_moment():
    torch.manual_seed(0)
    mlp = KAT().build(MLPSite(layer=0, hidden_size=256, intermediate_size=512, gated=False))
    x = torch.randn(64, 256)
    with torch.no_grad():
        h = mlp.up(mlp.act1(x))
        y = mlp(x)
    assert abs(float(h.pow(2).mean()) - 1) < 0.1
    assert abs(float(y.pow(2).mean()) - 1) < 0.15
    a2 = mlp.act2.init_mean_square()
    assert 0.3 < a2 < 0.4  # E[swish(z)^2] = 0.3558
    assert abs(float(mlp.down.weight.std()) - (512 * a2) ** -0.5) < 0.01 * (512 * a2) ** -0.5 * 10


def test_installs_as_whole_mlp_and_survives_reinitialize(lm_factory):
    lm = lm_factory(gated=True, intermediate=64)
    install_activation(lm.model, KAT())
    assert all(isinstance(b.mlp, KATMLP) for b in lm.model.blocks)
    sites = lm.model.linear_sites()
    assert "blocks.0.mlp.up" in sites and "blocks.0.mlp.down" in sites and "blocks.0.mlp.gate" not in sites
    reinitialize(lm.model, 0)  # training from scratch keeps KAT's own init (not N(0, 0.02))
    up = lm.model.blocks[0].mlp.up.weight
    assert abs(float(up.std()) - 32 ** -0.5) < 0.2 * 32 ** -0.5
    torch.testing.assert_close(lm.model.blocks[1].mlp.act1.numerator.detach()[0],
                               torch.tensor([0.0, 1, 0, 0, 0, 0]))
    ids = torch.randint(0, lm.config.vocab_size, (2, 10))
    assert torch.isfinite(lm.model(ids).logits).all()


def test_training_from_scratch_lowers_the_loss_and_trains_the_rationals(lm_factory):
    from splice.data import synthetic
    from splice.data.packing import pack
    from splice.train import TrainConfig, train

    lm = lm_factory(gated=False, intermediate=64)
    install_activation(lm.model, KAT())
    reinitialize(lm.model, 0)
    a0 = lm.model.blocks[0].mlp.act2.numerator.detach().clone()
    data = pack(synthetic.documents("train", seed=1)[:40], lm.tokenizer, 48)
    res = train(lm.model, data, TrainConfig(steps=12, batch_size=4, lr=1e-2, seed=0))
    assert sum(res.losses[-3:]) / 3 < sum(res.losses[:3]) / 3 - 0.5
    assert not torch.allclose(lm.model.blocks[0].mlp.act2.numerator.detach(), a0)


def test_groups_must_divide_the_widths():
    with pytest.raises(ConfigError, match="groups"):
        KAT({"groups": 7}).build(MLPSite(layer=0, hidden_size=128, intermediate_size=384, gated=True))
    with pytest.raises(ConfigError, match="init"):
        KAT({"init": "relu"})


def test_cli_train_act_kat_scratch(tmp_path: Path):
    from splice.errors import SpliceError
    from splice.model.loading import resolve_source

    try:
        resolve_source("tiny")
    except SpliceError as err:
        pytest.skip(f"embedded model not available: {err}")
    from splice.artifact import load_artifact
    from splice.cli.app import app
    from typer.testing import CliRunner

    out = tmp_path / "run"
    res = CliRunner().invoke(app, ["train", "--act", "kat", "--scratch", "--steps", "3", "--batch-size", "2",
                                   "--seq-len", "64", "--eval-opt", "perplexity.context=64",
                                   "--eval-opt", "perplexity.max_windows=2", "--out", str(out), "--json"])
    assert res.exit_code == 0, res.output
    assert any(p["name"] == "kat" for p in json.loads((out / "splice.json").read_text())["plugins"])
    lm, _ = load_artifact(out)
    assert all(isinstance(b.mlp, KATMLP) for b in lm.model.blocks)
