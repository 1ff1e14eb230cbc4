"""FlatQuant end to end on tiny: exact transforms, calibration lowers the block error, beats QuaRot and
RTN at W4A4KV4, artifacts reload exactly, resumable calibration, bad input refused before work."""

from __future__ import annotations

import time

import pytest
import torch
from splice.artifact import load_artifact, save_artifact
from splice.builtins.rtn import RTN
from splice.errors import ConfigError, DataError
from splice.model import Decoder, DecoderConfig
from splice.model.lm import LanguageModel
from splice.pipeline import compose
from splice.quant import QuantLinear
from splice.recipe import Recipe
from splice_flatquant import FlatQuant
from splice_flatquant.modules import FlatKV, FlatQuantLinear


def _text_ids(lm, corpus, n, t, offset=0):
    from splice.data.corpora import load_corpus

    ids = lm.encode(load_corpus(corpus))
    return torch.tensor(ids[offset:offset + n * t]).view(n, t)


def _kl(lm, ref_logp, ids):
    """Mean per-token KL(unquantized || lm) on ``ids``."""
    with torch.no_grad():
        lp = torch.log_softmax(lm.model(ids).logits, -1)
    return float((ref_logp.exp() * (ref_logp - lp)).sum(-1).mean())


@pytest.fixture(scope="module")
def calib(tiny):
    # 32 x 64 tokens: with 16 windows FlatQuant only tied QuaRot-RTN on the rebuilt tiny (KL 0.068 vs
    # 0.067); with 32 it is 0.055 (the paper calibrates on 128 x 2048)
    return _text_ids(tiny, "tiny-calib", 32, 64)


@pytest.fixture(scope="module")
def calibrated(tiny, calib):
    """One W4A4KV4 calibration shared by the tests below (tiny-calib, 32 x 64 tokens, the paper's 15
    epochs at batch 4: 120 steps per block, a quarter of the paper's 480)."""
    fq = FlatQuant({"epochs": 15})
    fq.calibrate(tiny.clone(), calib)
    return fq


def test_calibrated_transforms_are_exact_with_quantizers_off(tiny, calibrated):
    lm = tiny.clone()
    calibrated.finalize(lm, quantize=False)
    assert isinstance(lm.model.blocks[1].attn.o, FlatQuantLinear) and isinstance(lm.model.blocks[1].attn.kv_path, FlatKV)
    # the transforms are far from the identity and the norms absorbed the learnt scalings
    assert not torch.allclose(lm.model.blocks[0].attn_norm.weight, tiny.model.blocks[0].attn_norm.weight, rtol=0.05)
    ids = _text_ids(tiny, "tiny-eval", 2, 96)
    ref = tiny.model(ids).logits.detach()
    torch.testing.assert_close(lm.model(ids).logits.detach(), ref, rtol=0, atol=1e-4 * float(ref.abs().max()))


def test_calibration_lowers_each_blocks_error(calibrated):
    assert len(calibrated.log) == 4
    for entry in calibrated.log:
        assert entry["mse"][-1] < 0.8 * entry["mse"][0], entry
        assert entry["seconds"] > 0 and entry["peak_rss_mb"] > 0


def test_w4a4kv4_flatquant_beats_rotation_only_and_rtn_on_tiny(tiny, calib, calibrated):
    """At equal bits and weight quantizer (round-to-nearest), learnt transforms beat QuaRot's fixed
    rotations, which beat plain RTN (KL to the unquantized model on held-out text). Against QuaRot
    with GPTQ weights the test budget is too small; the benchmark compares at the paper's 480 steps."""
    from splice_quarot import QuaRot

    ids = _text_ids(tiny, "tiny-eval", 6, 128, offset=2000)
    with torch.no_grad():
        ref = torch.log_softmax(tiny.model(ids).logits, -1)
    scores = {}
    lm = tiny.clone()
    calibrated.finalize(lm)
    scores["flatquant"] = _kl(lm, ref, ids)
    for name, method in {"quarot-rtn": QuaRot({"w_method": "rtn"}),
                         "rtn": RTN({"w_bits": 4, "a_bits": 4, "kv_bits": 4})}.items():
        lm = tiny.clone()
        method.quantize(lm, calib)
        scores[name] = _kl(lm, ref, ids)
    assert 0 < scores["flatquant"] < 0.95 * scores["quarot-rtn"] < 0.95 * scores["rtn"], scores


def test_gptq_weights_reuse_the_calibrated_transforms_and_lower_the_error(tiny, calib, calibrated):
    """The official ``--gptq``: the same transforms, then GPTQ instead of RTN on the merged, clipped
    weights (with the activation and KV quantizers on while it collects its Hessians)."""
    ids = _text_ids(tiny, "tiny-eval", 6, 128, offset=2000)
    with torch.no_grad():
        ref = torch.log_softmax(tiny.model(ids).logits, -1)
    by_rtn = tiny.clone()
    calibrated.finalize(by_rtn)
    fq = FlatQuant({**calibrated.config.model_dump(), "w_method": "gptq"})
    fq.transforms = calibrated.transforms
    by_gptq = tiny.clone()
    fq.finalize(by_gptq, data=calib)
    down_r, down_g = by_rtn.model.blocks[1].mlp.down, by_gptq.model.blocks[1].mlp.down
    assert isinstance(down_g.inner, QuantLinear) and not torch.equal(down_g.inner.qweight, down_r.inner.qweight)
    assert torch.equal(down_g.left, down_r.left) and down_g.a_bits == 4  # same transforms, same activations
    kl_rtn, kl_gptq = _kl(by_rtn, ref, ids), _kl(by_gptq, ref, ids)
    print(f"FlatQuant KL: RTN weights {kl_rtn:.4f}, GPTQ weights {kl_gptq:.4f}")
    assert kl_gptq < 0.95 * kl_rtn, (kl_gptq, kl_rtn)
    with pytest.raises(DataError, match="needs calibration data"):
        FlatQuant({"w_method": "gptq"}).quantize(tiny.clone(), None)


def test_full_precision_config_is_exact(tiny):
    lm = tiny.clone()
    FlatQuant(FlatQuant.full_precision_config).quantize(lm, _text_ids(tiny, "tiny-calib", 4, 32))
    ids = _text_ids(tiny, "tiny-eval", 2, 64)
    ref = tiny.model(ids).logits.detach()
    torch.testing.assert_close(lm.model(ids).logits.detach(), ref, rtol=0, atol=1e-4 * float(ref.abs().max()))


def test_artifact_is_packed_and_reloads_to_identical_logits(tiny, tmp_path):
    recipe = Recipe.parse({"model": "tiny", "quant": {"name": "flatquant", "epochs": 1}, "eval": [],
                           "calibration": {"samples": 4, "seq_len": 32}})
    result = compose(recipe, lm=tiny.clone(), baseline=False)
    path = save_artifact(result, tmp_path / "art")
    lm, _ = load_artifact(path)
    ids = _text_ids(tiny, "tiny-eval", 2, 64)
    assert torch.equal(lm.model(ids).logits, result.lm.model(ids).logits)
    q = lm.model.blocks[0].mlp.down.inner
    assert q.qweight.dtype == torch.uint8 and q.qweight.shape[1] == q.in_features // 2  # two 4-bit codes a byte
    assert lm.model.kv_bits() == 4


def test_resumable_calibration(tiny, tmp_path):
    data = _text_ids(tiny, "tiny-calib", 4, 32)
    cfg = {"epochs": 2, "checkpoint_dir": str(tmp_path)}
    first = FlatQuant(cfg)
    with pytest.raises(TimeoutError):
        first.calibrate(tiny.clone(), data, deadline=time.time() - 1)  # stops after block 0
    assert len(first.log) == 1
    # GPTQ runs after calibration, so a w_method='gptq' run resumes from the same checkpoints
    assert FlatQuant({**cfg, "w_method": "gptq"})._checkpoint_dir(tiny, data) == first._checkpoint_dir(tiny, data)
    again = FlatQuant(cfg)
    again.calibrate(tiny.clone(), data)
    assert again.log[0].get("resumed") and not again.log[1].get("resumed")
    whole = FlatQuant({"epochs": 2})
    whole.calibrate(tiny.clone(), data)
    for i in range(4):
        a, b = again.transforms[i].state_dict(), whole.transforms[i].state_dict()
        assert all(torch.equal(a[k], b[k]) for k in a)


def _lm(hidden, inter, heads=2):
    cfg = DecoderConfig(vocab_size=50, hidden_size=hidden, intermediate_size=inter, num_hidden_layers=1,
                        num_attention_heads=heads, num_key_value_heads=heads)
    return LanguageModel(Decoder(cfg), None, "random")


def test_bad_input_is_refused_before_work(tiny):
    for bad in ({"w_bits": 1}, {"a_bits": 12}, {"v_bits": 0}, {"epochs": 0}, {"transform": "lu"}):
        with pytest.raises(ConfigError):
            FlatQuant(bad)
    FlatQuant().check(_lm(62, 64))  # 62 = 2 x 31 splits (the official factoriser never ends on it)
    with pytest.raises(ConfigError, match="hidden_size 31 is prime"):
        FlatQuant().check(_lm(31, 64, heads=1))
    with pytest.raises(ConfigError, match="intermediate_size 37 is prime"):
        FlatQuant().check(_lm(32, 37))
    lm = tiny.clone()
    with pytest.raises(ConfigError, match="kv_group_size"):
        FlatQuant({"kv_group_size": 5}).quantize(lm, None)
    with pytest.raises(DataError, match="fewer than one batch"):
        FlatQuant().calibrate(lm, torch.zeros(3, 32, dtype=torch.long))
    with pytest.raises(DataError, match="shorter than one sequence"):
        FlatQuant().calibrate(lm, torch.zeros(4, 1, dtype=torch.long))
    with pytest.raises(DataError):
        FlatQuant().calibrate(lm, torch.zeros(128, dtype=torch.long))
    assert type(lm.model.blocks[0].attn.q) is torch.nn.Linear  # nothing was touched
