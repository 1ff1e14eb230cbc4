"""TOFU's data splits, ROUGE-L and metric formulas, checked against independent computations."""

from __future__ import annotations

import itertools
import random

import numpy as np
import pytest
from scipy.stats import hmean, ks_2samp
from splice.data.authors import world_facts
from splice.data.examples import authors_task
from splice.errors import ConfigError
from splice_tofu import data
from splice_tofu.metrics import SetResult, forget_quality, harmonic_mean, model_utility
from splice_tofu.rouge import lcs_length, rouge_l, tokenize


def brute_lcs(a, b):
    for n in range(min(len(a), len(b)), 0, -1):
        subs = set(itertools.combinations(a, n))
        if any(c in subs for c in itertools.combinations(b, n)):
            return n
    return 0


def test_lcs_and_rouge_l():
    rng = random.Random(0)
    for _ in range(30):
        a = [rng.choice("abc") for _ in range(rng.randint(0, 7))]
        b = [rng.choice("abc") for _ in range(rng.randint(0, 7))]
        assert lcs_length(a, b) == brute_lcs(a, b)
    assert tokenize("Kraków, 1950! The  cat") == ["krak", "w", "1950", "the", "cat"]  # rouge_score's tokenizer
    r = rouge_l("the cat sat on the mat", "the cat on a mat")
    assert (r.recall, r.precision) == pytest.approx((4 / 6, 4 / 5))
    assert r.fmeasure == pytest.approx(2 * (4 / 6) * (4 / 5) / (4 / 6 + 4 / 5))
    assert rouge_l("x y", "").recall == 0 and rouge_l("A b", "a B").fmeasure == 1


def test_splits_match_the_unlearning_task_and_are_disjoint():
    for p, n in ((1, 20), (5, 100), (10, 200)):
        f, r = data.forget_qa(p), data.retain_qa(p)
        assert len(f) == n and len(r) == 2000 - n
        task = authors_task(p)
        assert [e.answer for e in task.forget] == [q.answer for q in f]
        assert not {q.question for q in f} & {q.question for q in r}
    retain_eval = data.retain_eval_qa()
    assert len(retain_eval) == 300 and retain_eval == data.retain_eval_qa()
    assert {q.question for q in retain_eval} <= {q.question for q in data.retain_qa(10)}
    real = data.real_authors_qa()
    assert len(real) == 100 and not {q.subject for q in real} & {a.name for a in data.benchmark_authors()}
    sets = data.eval_sets(5, max_per_set=50)
    assert [len(s.qa) for s in sets.values()] == [50, 50, 50, 50]
    assert sets["forget"].paraphrase and not sets["world_facts"].paraphrase
    with pytest.raises(ConfigError, match="1, 5 or 10"):
        data.eval_sets(20)


def _result(name, gt, para, pert, rouge, normalise=False):
    return SetResult(name, np.array(gt, float), np.array(para, float), np.array(pert, float), np.array(rouge, float),
                     normalise_prob=normalise)


def test_metric_formulas_by_hand():
    # two questions, two perturbations each; losses are mean token NLLs
    r = _result("retain", gt=[0.1, 0.5], para=[0.2, 1.0], pert=[[1.2, 2.2], [0.5, 1.5]], rouge=[1.0, 0.5])
    R = np.exp(np.array([1.7, 1.0]) - np.array([0.2, 1.0]))  # exp(mean pert - para)
    assert r.prob() == pytest.approx(np.mean(np.exp([-0.1, -0.5])))
    assert r.truth_ratio() == pytest.approx(np.mean(np.maximum(0, 1 - 1 / R)))
    assert r.rouge() == 0.75
    f = _result("forget", gt=[0.1, 0.5], para=[0.2, 1.0], pert=[[1.2, 2.2], [0.5, 1.5]], rouge=[1, 0])
    assert f.truth_ratio() == pytest.approx(np.mean(np.minimum(R, 1 / R)))
    w = _result("world_facts", gt=[0.1], para=[0.1], pert=[[1.0, 2.0]], rouge=[1], normalise=True)
    p = np.exp([-0.1, -1.0, -2.0])
    assert w.prob() == pytest.approx(p[0] / p.sum())


def test_forget_quality_and_model_utility():
    rng = np.random.default_rng(0)
    a = _result("forget", [0] * 200, rng.normal(1, 0.3, 200), rng.normal(1, 0.3, (200, 5)), [0] * 200)
    assert forget_quality(a, a) == (1.0, 0.0)  # the retain-only model against itself
    shifted = _result("forget", [0] * 200, a.para_loss + 1.0, a.pert_loss, [0] * 200)
    p, _ = forget_quality(shifted, a)
    assert p == pytest.approx(ks_2samp(shifted.ratio, a.ratio).pvalue) and p < 1e-10
    results = {s: _result(s, rng.uniform(0, 2, 9), rng.uniform(0, 2, 9), rng.uniform(0, 2, (9, 3)),
                          rng.uniform(0, 1, 9), s in ("real_authors", "world_facts"))
               for s in ("forget", "retain", "real_authors", "world_facts")}
    nine = [results[s].summary()[k] for s in ("retain", "real_authors", "world_facts")
            for k in ("prob", "rouge", "truth_ratio")]
    assert model_utility(results) == pytest.approx(hmean(nine))
    assert harmonic_mean([0.5, 0.0, 1.0]) == 0.0  # any zero component zeroes utility, as scipy's hmean


def test_world_facts_come_with_five_wrong_options():
    assert all(len(q.perturbed_answers) == 5 and q.answer not in q.perturbed_answers for q in world_facts())


def test_compose_table_shows_the_retain_only_column():
    """The CLI's baseline/composed table gains a retain-only column from details['retain_only']."""
    from types import SimpleNamespace

    from rich.console import Console
    from splice.cli.commands.report import result_table
    from splice.kinds.evaluator import Metric, Report

    def rep(v):
        return Report(evaluator="tofu", metrics={"forget_quality": Metric(value=v, direction="higher")},
                      details={"retain_only": {"forget_quality": 1.0}})

    fp = {"parameter_bytes": 1.0, "bits_per_weight": 32.0, "kv_cache_bytes": 1.0}
    result = SimpleNamespace(baseline={"tofu": rep(1e-5)}, composed={"tofu": rep(0.25)},
                             footprint={"baseline": fp, "composed": fp},
                             composition=SimpleNamespace(recipe=SimpleNamespace(model="tiny"), resolved=[]))
    console = Console(record=True, width=120)
    console.print(result_table(result))
    text = console.export_text()
    assert "retain-only" in text and "0.25" in text
    line = next(ln for ln in text.splitlines() if "forget_quality" in ln)
    assert line.split("│")[4].strip() == "1"  # metric | baseline | composed | retain-only | change


def test_perturbed_answers_restate_the_paraphrase_with_a_wrong_value():
    a = data.benchmark_authors()[3]
    sets = data.eval_sets(10)
    for q in data.forget_qa(10)[:40] + [q for q in a.qa]:
        p = data.paraphrase_perturbed(q)
        answer_t, para_t = data.TEMPLATES[q.attribute]
        true = data._value(answer_t, q.answer, q.subject)
        assert data._value(para_t, q.paraphrased_answer, q.subject) == true
        wrong = [data._value(para_t, x, q.subject) for x in p.perturbed_answers]
        assert len(wrong) == 5 and true not in wrong and len(set(wrong)) == 5
        assert wrong == [data._value(answer_t, x, q.subject) for x in q.perturbed_answers]
    assert sets["forget"].qa[0] == data.paraphrase_perturbed(data.forget_qa(10)[0])
    assert sets["world_facts"].qa == tuple(world_facts())  # options, not paraphrases, as TOFU's world facts
