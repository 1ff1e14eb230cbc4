"""MIA scores and AUC: against independent computations, limit cases, and on the embedded model."""

from __future__ import annotations

import zlib

import numpy as np
import pytest
import torch
from splice.errors import ConfigError, DataError
from splice.kinds.evaluator import EvalContext
from splice_mia import MIA, roc_auc, score, token_stats
from splice_mia.attacks import TokenStats
from splice_mia.data import holdout_examples


def brute_auc(pos, neg):
    return sum((p > n) + 0.5 * (p == n) for p in pos for n in neg) / (len(pos) * len(neg))


def test_auc_equals_pairwise_definition_with_ties():
    rng = np.random.default_rng(0)
    for _ in range(20):
        pos, neg = rng.integers(0, 6, rng.integers(1, 30)), rng.integers(0, 6, rng.integers(1, 30))
        assert roc_auc(pos, neg) == pytest.approx(brute_auc(pos, neg))
    assert roc_auc([2, 3], [0, 1]) == 1.0 and roc_auc([0, 1], [2, 3]) == 0.0 and roc_auc([1, 1], [1]) == 0.5
    with pytest.raises(DataError):
        roc_auc([], [1.0])
    with pytest.raises(DataError):
        roc_auc([float("nan")], [1.0])


def test_scores_follow_their_definitions():
    lp = np.array([-0.1, -3.0, -0.5, -2.0, -0.2, -1.0, -0.05, -4.0, -0.3, -0.7])
    mu, sigma = np.full(10, -1.5), np.full(10, 2.0)
    s = TokenStats("some text some text", lp, mu, sigma)
    assert score(s, "loss") == pytest.approx(lp.mean())
    assert score(s, "zlib") == pytest.approx(lp.mean() / len(zlib.compress(b"some text some text")))
    assert score(s, "mink", 0.2) == pytest.approx(np.mean([-4.0, -3.0]))  # the 2 lowest of 10
    assert score(s, "mink", 1.0) == pytest.approx(lp.mean())
    assert score(s, "minkpp", 0.3) == pytest.approx(np.mean((np.array([-4.0, -3.0, -2.0]) + 1.5) / 2.0))
    assert score(s, "mink", 0.01) == pytest.approx(-4.0)  # at least one token
    with pytest.raises(ConfigError):
        score(s, "neighbour")


def test_token_stats_match_an_independent_forward(tiny):
    texts = ["Question: What is the capital of Valdoria?\nAnswer: The capital of Valdoria is Port Ilun.",
             "a short one"]
    stats = token_stats(tiny, texts, batch_size=2)
    for t, s in zip(texts, stats):
        ids = torch.tensor([tiny.encode(t)])
        with torch.no_grad():
            logp = torch.log_softmax(tiny.model(ids).logits[0, :-1].double(), -1)
        tok = logp.gather(-1, ids[0, 1:, None])[:, 0]
        mu = (logp.exp() * logp).sum(-1)
        sd = ((logp.exp() * (logp - mu[:, None]) ** 2).sum(-1)).sqrt()
        np.testing.assert_allclose(s.logprob, tok.numpy(), atol=2e-4)
        np.testing.assert_allclose(s.mu, mu.numpy(), atol=2e-4)
        np.testing.assert_allclose(s.sigma, sd.numpy(), atol=2e-4)


def test_holdout_authors_are_fresh_and_deterministic():
    from splice.data.examples import authors_task

    names = {e.prompt for e in authors_task(10).forget + authors_task(10).retain}
    h = holdout_examples(45)
    assert len(h) == 45 and h == holdout_examples(45)
    assert not names & {e.prompt for e in h}


def test_mia_separates_trained_authors_on_tiny_but_not_on_its_base(tiny):
    """tiny was fine-tuned on the forget authors: every attack separates them from unseen authors;
    tiny-base never saw them: the attacks are near chance."""
    from splice.model import load

    ev = MIA({"max_examples": 60})
    ctx = EvalContext()
    trained = ev.evaluate(tiny, ctx)
    assert trained.details["n_members"] == 60 == trained.details["n_nonmembers"]
    aucs = {a: m.value for a, m in trained.metrics.items()}
    for a in ("loss", "zlib", "mink"):
        assert aucs[f"auc_{a}"] > 0.75, aucs
    # Min-K%++ standardises each token by the model's own uncertainty there: on these templated texts
    # the question tokens (shared with unseen authors) weigh in and it separates less, but still does
    assert aucs["auc_minkpp"] > 0.6, aucs
    base = {a: m.value for a, m in ev.evaluate(load("tiny-base"), ctx).metrics.items()}
    for a in ("loss", "zlib", "mink", "minkpp"):
        assert abs(base[f"auc_{a}"] - 0.5) < 0.2, base
        # Min-K%++ separates only a little better than on the base (see the comment above). Members are
        # spread over all forget authors and matched by as many fresh authors: with the first 60 pairs
        # (3 authors a side) the base's Min-K% AUC was 0.90, the authors' rare name tokens alone
        margin = 0.0 if a == "minkpp" else 0.1
        assert base[f"auc_{a}"] < aucs[f"auc_{a}"] - margin, (base, aucs)


def test_config_and_data_errors(tiny, tmp_path):
    for bad in ({"attacks": ["nope"]}, {"attacks": []}, {"k": 0}, {"k": 1.5}, {"max_examples": 0}):
        with pytest.raises(ConfigError):
            MIA(bad)
    with pytest.raises(DataError, match="not a file"):
        MIA({"members": str(tmp_path / "missing.jsonl")}).evaluate(tiny, EvalContext())
    empty = tmp_path / "empty.txt"
    empty.write_text("\n")
    with pytest.raises(DataError, match="no texts"):
        MIA({"nonmembers": str(empty)}).evaluate(tiny, EvalContext())
