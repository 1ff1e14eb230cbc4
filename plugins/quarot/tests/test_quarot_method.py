"""QuaRot end to end: exact in full precision, GPTQ vs RTN, W4A4KV4 on tiny, artifacts, bad input."""

from __future__ import annotations

import copy

import pytest
import torch
from splice.artifact import load_artifact, save_artifact
from splice.builtins.rtn import RTN
from splice.errors import ConfigError, DataError, IncompatibleError
from splice.model import Decoder, DecoderConfig
from splice.model.lm import LanguageModel
from splice.pipeline import compose
from splice.recipe import Recipe
from splice_quarot import QuaRot
from splice_quarot.modules import RotatedLinear


def _ids(lm, n=2, t=64, offset=0):
    from splice.data.corpora import load_corpus

    ids = lm.encode(load_corpus("tiny-eval"))
    return torch.tensor(ids[offset:offset + n * t]).view(n, t)


def _calib(lm, n=8, t=64):
    from splice.data.corpora import load_corpus

    ids = lm.encode(load_corpus("tiny-calib"))
    return torch.tensor(ids[:n * t]).view(n, t)


def _kl(lm, ref_logp, ids):
    """Mean per-token KL(unquantized || lm) on ``ids``."""
    with torch.no_grad():
        lp = torch.log_softmax(lm.model(ids).logits, -1)
    return float((ref_logp.exp() * (ref_logp - lp)).sum(-1).mean())


def random_lm(hidden=72, heads=9, kv=3, inter=144, tie=True, seed=0):
    """Odd head count (no Hadamard of order 9: random rotation) and hidden 72 = 36 x 2 (Paley II)."""
    cfg = DecoderConfig(vocab_size=97, hidden_size=hidden, intermediate_size=inter, num_hidden_layers=2,
                        num_attention_heads=heads, num_key_value_heads=kv, tie_word_embeddings=tie)
    torch.manual_seed(seed)
    m = Decoder(cfg)
    for mod in m.modules():
        if isinstance(mod, torch.nn.Linear):
            torch.nn.init.normal_(mod.weight, std=0.08)
    for norm in [m.norm] + [n for b in m.blocks for n in (b.attn_norm, b.mlp_norm)]:
        norm.weight.data = torch.rand(hidden) * 2 + 0.1  # non-trivial norm weights to fold
    return LanguageModel(m, None, "random")


def test_full_precision_rotation_is_exact_on_tiny(tiny):
    lm = tiny.clone()
    ids = _ids(tiny)
    ref = tiny.model(ids).logits.detach()
    QuaRot(QuaRot.full_precision_config).quantize(lm, None)
    assert isinstance(lm.model.blocks[0].mlp.down, RotatedLinear)
    assert lm.model.lm_head.weight is not lm.model.embed.weight and not lm.config.tie_word_embeddings
    assert all(torch.equal(b.attn_norm.weight, torch.ones_like(b.attn_norm.weight)) for b in lm.model.blocks)
    # the weights really changed (a rotation, not an identity)
    assert not torch.allclose(lm.model.embed.weight, tiny.model.embed.weight, atol=1e-3)
    torch.testing.assert_close(lm.model(ids).logits.detach(), ref, rtol=0, atol=1e-4 * float(ref.abs().max()))


@pytest.mark.parametrize("tie", [True, False])
def test_full_precision_rotation_is_exact_with_paley_and_random_factors(tie):
    base = random_lm(tie=tie)
    lm = LanguageModel(copy.deepcopy(base.model), None, "random")
    ids = torch.randint(0, 97, (2, 20))
    ref = base.model(ids).logits.detach()
    QuaRot(QuaRot.full_precision_config).quantize(lm, None)
    assert lm.model.blocks[0].attn.o.rotate.rot.kind == "random"  # 9 heads
    assert lm.model.blocks[0].mlp.down.rotate.kind == "hadamard"  # 144 = 36 x 4
    torch.testing.assert_close(lm.model(ids).logits.detach(), ref, rtol=0, atol=1e-4 * float(ref.abs().max()))


def test_w4a4kv4_quarot_beats_rtn_on_tiny(tiny):
    """Rotations alone (RTN weights) beat plain RTN; GPTQ weights do better still (KL to the
    unquantized model on held-out text, W4A4KV4)."""
    ids, calib = _ids(tiny, 6, 128, offset=2000), _calib(tiny)
    with torch.no_grad():
        ref = torch.log_softmax(tiny.model(ids).logits, -1)
    scores = {}
    for name, method in {"rtn": RTN({"w_bits": 4, "a_bits": 4, "kv_bits": 4}), "quarot-rtn": QuaRot({"w_method": "rtn"}),
                         "quarot": QuaRot()}.items():
        lm = tiny.clone()
        method.quantize(lm, calib)
        scores[name] = _kl(lm, ref, ids)
    assert 0 < scores["quarot"] < scores["quarot-rtn"] < 0.8 * scores["rtn"], scores


def test_artifact_reloads_to_identical_logits(tiny, tmp_path):
    recipe = Recipe.parse({"model": "tiny", "quant": {"name": "quarot", "w_method": "rtn"}, "eval": [],
                           "calibration": {"samples": 4, "seq_len": 64}})
    result = compose(recipe, lm=tiny.clone(), baseline=False)
    path = save_artifact(result, tmp_path / "art")
    lm, _ = load_artifact(path)
    ids = _ids(tiny)
    assert torch.equal(lm.model(ids).logits, result.lm.model(ids).logits)
    assert lm.model.kv_bits() == 4


def test_bad_input_is_refused_before_work(tiny):
    for bad in ({"w_bits": 1}, {"a_bits": 12}, {"k_bits": 0}, {"a_clip_ratio": 1.5}):
        with pytest.raises(ConfigError):
            QuaRot(bad)
    lm = tiny.clone()
    with pytest.raises(ConfigError, match="kv_group_size"):
        QuaRot({"kv_group_size": 5, "w_method": "rtn"}).quantize(lm, None)
    with pytest.raises(DataError, match="calibration"):
        QuaRot().quantize(lm, None)  # GPTQ without data
    with pytest.raises(DataError, match="shorter than one sequence"):
        QuaRot().quantize(lm, torch.zeros(4, 1, dtype=torch.long))
    with pytest.raises(DataError):
        QuaRot().quantize(lm, torch.zeros(64, dtype=torch.long))
    assert type(lm.model.blocks[0].attn.q) is torch.nn.Linear  # nothing was touched
    RTN({"w_bits": 4}).quantize(lm, None)
    with pytest.raises(IncompatibleError):
        QuaRot({"w_method": "rtn"}).quantize(lm, None)
