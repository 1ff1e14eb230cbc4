"""Sink_k^eps against hand-computed cases and an independent formula; the evaluator on a model."""

from __future__ import annotations

import pytest
import torch
from splice.errors import ConfigError, DataError
from splice.kinds.evaluator import EvalContext
from splice_sink import Sink, importance, row_normalize, sink_rates
from torch import nn


def _causal_uniform(t):
    return torch.ones(t, t).tril() / torch.arange(1, t + 1)[:, None]


def test_importance_hand_cases():
    t = 5
    first = torch.zeros(t, t)
    first[:, 0] = 1  # every query attends only to token 0
    torch.testing.assert_close(importance(first), torch.tensor([1.0, 0, 0, 0, 0]))
    # uniform causal attention: alpha_k = (1/(T-k)) sum_{i>=k} 1/(i+1)
    alpha = importance(_causal_uniform(t))
    for k in range(t):
        expected = sum(1 / (i + 1) for i in range(k, t)) / (t - k)
        assert float(alpha[k]) == pytest.approx(expected, rel=1e-6)


def test_importance_matches_official_style_formula():
    g = torch.Generator().manual_seed(0)
    a = torch.rand(3, 2, 7, 7, generator=g).tril()
    a = a / a.sum(-1, keepdim=True)
    ratios = torch.arange(7, 0, -1)[None, None, None, :]
    official = (a / ratios).sum(dim=-2)  # the official code divides column k's entries by T - k
    torch.testing.assert_close(importance(a), official)


def test_row_normalisation_makes_raw_scores_comparable():
    g = torch.Generator().manual_seed(1)
    raw = torch.rand(2, 6, 6, generator=g).tril()  # e.g. sigmoid scores without normalisation
    torch.testing.assert_close(importance(raw * 3.7), importance(raw / raw.sum(-1, keepdim=True)))
    torch.testing.assert_close(row_normalize(-raw).sum(-1), torch.ones(2, 6))


class _FixedCore(nn.Module):
    """An attention core that puts weight ``p`` on token 0 and spreads the rest uniformly."""

    def __init__(self, p: float, record: bool = True) -> None:
        super().__init__()
        self.p, self.do_record = p, record

    def forward(self, q, k, v, ctx):
        t, s = q.shape[-2], k.shape[-2]
        w = torch.ones(t, s).tril()
        w = w / w.sum(-1, keepdim=True) * (1 - self.p)
        w[:, 0] += self.p
        w[0, 0] = 1.0
        w = w.expand(q.shape[0], q.shape[1], t, s)
        if ctx.need_weights and self.do_record:
            ctx.record(w)
        return w @ v.repeat_interleave(q.shape[1] // v.shape[1], dim=1)


def test_sink_rates_on_a_model_with_known_attention(lm_factory):
    lm = lm_factory()
    windows = torch.randint(3, lm.config.vocab_size, (5, 16))
    lm.model.blocks[0].attn.core = _FixedCore(0.9)  # layer 0: a strong sink on token 0
    lm.model.blocks[1].attn.core = _FixedCore(0.0)  # layer 1: uniform causal attention
    rates = sink_rates(lm.model, windows, epsilon=0.3, batch_size=2)
    assert rates.shape == (2, 4, 16)
    assert (rates[0, :, 0] == 1).all() and (rates[0, :, 1:] == 0).all()
    # uniform: alpha_0 = H_16 / 16 = 0.2113 < 0.3, but the last token (seen only by itself) has 1/16
    assert (rates[1, :, 0] == 0).all()
    assert float(rates.mean(dim=(0, 1))[0]) == 0.5


def test_unrecorded_weights_are_a_clear_error(lm_factory):
    lm = lm_factory()
    lm.model.blocks[1].attn.core = _FixedCore(0.5, record=False)
    with pytest.raises(RuntimeError, match=r"_FixedCore did not record.*\[1\]"):
        sink_rates(lm.model, torch.randint(3, lm.config.vocab_size, (2, 8)))


def test_evaluator_report(lm_factory, tmp_path):
    lm = lm_factory()
    corpus = tmp_path / "text.txt"
    corpus.write_text(" ".join(f"word{i % 50} and more text" for i in range(3000)))
    for blk in lm.model.blocks:
        blk.attn.core = _FixedCore(0.9)
    rep = Sink({"corpus": str(corpus), "tokens": 32, "samples": 6}).evaluate(lm, EvalContext())
    assert rep.metrics["sink_0"].value == 100.0
    assert rep.metrics["sink_1"].value == 0.0 and rep.metrics["sink_max_other"].value < 100
    assert rep.details["sink_0_per_layer"] == [100.0, 100.0] and len(rep.details["sink_0_per_head"][0]) == 4
    with pytest.raises(DataError, match="fewer than"):
        Sink({"corpus": str(corpus), "tokens": 64, "samples": 10_000}).evaluate(lm, EvalContext())
    with pytest.raises(DataError, match="positions"):
        Sink({"corpus": str(corpus), "tokens": 1000}).evaluate(lm, EvalContext())


def test_softmax_model_sequences_start_with_bos(lm_factory, tmp_path):
    from splice_sink import sequences

    lm = lm_factory()
    corpus = tmp_path / "t.txt"
    corpus.write_text("hello world " * 400)
    seqs = sequences(lm, str(corpus), 16, 5)
    assert seqs.shape == (5, 16) and (seqs[:, 0] == lm.tokenizer.bos_id).all()
    assert (seqs[:, 1:] != lm.tokenizer.bos_id).all()
    plain = sequences(lm, str(corpus), 16, 5, bos=False)
    assert plain.shape == (5, 16) and (plain != lm.tokenizer.bos_id).all()
    torch.testing.assert_close(plain.flatten()[:15], seqs[0, 1:])


@pytest.mark.parametrize("bad,field", [({"epsilon": 1.5}, "epsilon"), ({"tokens": 1}, "tokens"),
                                       ({"samples": 0}, "samples"), ({"eps": 0.3}, "eps")])
def test_bad_config(bad, field):
    with pytest.raises(ConfigError, match=field):
        Sink(bad)
