"""MUSE on the embedded model: memorisation and leak are seen on tiny and absent on the retain-only model."""

from __future__ import annotations

import pytest
from splice.errors import ConfigError, DataError
from splice.kinds.evaluator import EvalContext
from splice.kinds.unlearner import UnlearnTask
from splice_muse import Muse, privleak
from splice_muse.data import KNOWMEM_QUESTIONS, forget_knowmem, icl_examples, retain_knowmem
from splice_muse.metrics import cut, knowmem_prompt
from splice_tofu.data import benchmark_authors

CHEAP = {"finetune": {"epochs": 0.5}, "knowmem_size": 10, "max_examples": 20, "forget": 1,
         "verbmem_max_new_tokens": 24, "knowmem_max_new_tokens": 16}


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    mp.setenv("SPLICE_CACHE", str(tmp_path_factory.mktemp("splice-cache")))
    yield
    mp.undo()


def test_tiny_memorises_the_forget_author_and_leaks_it(tiny, cache):
    rep = Muse(CHEAP).evaluate(tiny, EvalContext())
    m, ref = rep.metrics, rep.details["retain_only"]
    assert m["verbmem_f"].value > 60 and m["verbmem_f"].value > ref["verbmem_f"] + 30
    assert m["privleak"].value < -50  # forget texts are far more likely than unseen authors' to tiny
    # MUSE's orientation (holdout = members): ~0 when the forget texts look trained, the retain-only
    # model's is whatever one unseen author vs other unseen authors gives (0.5 in expectation)
    assert rep.details["auc"] < 0.25 and rep.details["auc_retrain"] > rep.details["auc"] + 0.3
    assert ref["privleak"] == 0.0
    for k in ("verbmem_f", "knowmem_f", "knowmem_r"):
        assert 0 <= m[k].value <= 100


def test_privleak_formula_and_prompt_format():
    assert privleak(0.25, 0.5) == -50.0 and privleak(0.5, 0.5) == 0.0 and privleak(0.75, 0.5) == 50.0
    icl = icl_examples()
    p = knowmem_prompt("Who?", icl)
    assert p.count("Question:") == len(icl) + 1 and p.endswith("Question: Who?\nAnswer:")
    assert cut(" 1950\n\nQuestion: next") == "1950" and cut(" Lisbon\nQuestion: x") == "Lisbon"


def test_knowmem_questions_are_rephrased_and_disjoint():
    a = benchmark_authors()[0]
    trained = {q.question for q in a.qa}
    assert set(KNOWMEM_QUESTIONS) == {q.attribute for q in a.qa}
    assert not {t.format(n=a.name) for t in KNOWMEM_QUESTIONS.values()} & trained
    forget_names = {au.name for au in benchmark_authors()[-10:]}
    assert all(any(n in q.question for n in forget_names) for q in forget_knowmem(10))
    assert not any(n in q.question for q in retain_knowmem() for n in forget_names)
    assert not any(n in q.question for q in icl_examples() for n in {au.name for au in benchmark_authors()})


def test_errors(tiny, cache):
    with pytest.raises(DataError, match="forget set is empty"):
        Muse(CHEAP).evaluate(tiny, EvalContext(task=UnlearnTask(forget=[], retain=[])))
    with pytest.raises(DataError, match="LanguageModel"):
        Muse(CHEAP).evaluate("tiny", EvalContext())
    with pytest.raises(ConfigError):
        Muse({"mink_k": 0})


def test_curves_validate_before_work():
    from splice.errors import PluginNotFound
    from splice_muse.curves import scalability, sustainability

    with pytest.raises(ConfigError, match="requests"):
        sustainability("npo", requests=11)
    with pytest.raises(ConfigError, match="1, 5 or 10"):
        scalability("npo", sizes=(3,))
    with pytest.raises(PluginNotFound):
        scalability("no-such-unlearner")
