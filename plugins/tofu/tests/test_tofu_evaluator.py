"""The tofu evaluator end to end on the embedded model, the retain-model cache, and clear errors."""

from __future__ import annotations

import pytest
from splice.errors import ConfigError, DataError
from splice.kinds.evaluator import EvalContext
from splice.kinds.unlearner import UnlearnTask
from splice_tofu import Tofu, finetuned
from splice_tofu import models as tofu_models

CHEAP = {"finetune": {"epochs": 0.5}, "max_per_set": 20, "max_new_tokens": 16, "forget": 1}


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    root = tmp_path_factory.mktemp("splice-cache")
    mp.setenv("SPLICE_CACHE", str(root))
    yield root
    mp.undo()


def test_tiny_against_its_retain_only_model(tiny, cache):
    # forget 5% (5 authors, 100 questions): the KS test needs that many truth ratios to have power
    # (on 20 questions of one author tiny's p-value was 0.03 on one build and 0.17 on the next)
    rep = Tofu({**CHEAP, "forget": 5, "max_per_set": 100}).evaluate(tiny, EvalContext())
    m, ref = rep.metrics, rep.details["retain_only"]
    # tiny was fine-tuned on the forget authors; the retain-only model never saw them
    assert ref["forget_quality"] == 1.0
    assert m["forget_quality"].value < 0.05  # KS test: tiny is not a retain-only model
    assert m["forget_prob"].value > ref["forget_prob"] + 0.2
    assert m["forget_rouge"].value > ref["forget_rouge"] + 0.3
    assert 0 < m["model_utility"].value <= 1 and 0 < ref["model_utility"] <= 1
    assert rep.details["set_sizes"]["forget"] == 100 and rep.details["set_sizes"]["retain"] == 100
    made = list((cache / "tofu").iterdir())
    assert len(made) == 1 and made[0].name.startswith("tiny-base-retain95-")


def test_retain_model_is_made_once(cache, monkeypatch):
    path = finetuned("tiny-base", "retain", 5, Tofu(CHEAP).config.finetune)  # made by the test above (or now)

    def boom(*a, **k):
        raise AssertionError("fine-tuned again instead of using the cache")

    monkeypatch.setattr(tofu_models, "finetune_on_facts", boom)
    assert finetuned("tiny-base", "retain", 5, Tofu(CHEAP).config.finetune) == path
    other = Tofu({**CHEAP, "finetune": {"epochs": 0.25}}).config.finetune
    assert tofu_models.model_dir("tiny-base", "retain", 5, other) != path  # another recipe, another model


def test_clear_errors(tiny, cache, tmp_path):
    not_tiny = tiny.clone()
    not_tiny.source = "some/other-model"
    with pytest.raises(ConfigError, match="retain_model"):
        Tofu(CHEAP).evaluate(not_tiny, EvalContext())
    with pytest.raises(ConfigError, match="not a checkpoint folder"):
        Tofu({**CHEAP, "retain_model": str(tmp_path / "nope")}).evaluate(tiny, EvalContext())
    with pytest.raises(DataError, match="empty forget set"):
        Tofu({**CHEAP, "forget": "auto"}).evaluate(tiny, EvalContext(task=UnlearnTask(forget=[], retain=[])))
    with pytest.raises(DataError, match="LanguageModel"):
        Tofu(CHEAP).evaluate(tiny.model, EvalContext())
    for bad in ({"forget": 20}, {"max_per_set": 0}, {"finetune": {"epochs": -1}}):
        with pytest.raises(ConfigError):
            Tofu(bad)
