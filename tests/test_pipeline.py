"""Composition: order, validation before work, recipes equal to flags."""

from __future__ import annotations

import pytest
import torch

from splice.errors import ConfigError, DataError, IncompatibleError, PluginNotFound
from splice.pipeline import compose, resolve
from splice.recipe import ORDER, Recipe

QUICK_PPL = {"name": "perplexity", "context": 64, "max_windows": 2}


def test_steps_come_in_the_documented_order():
    r = Recipe.parse({"quant": "rtn", "unlearn": "ga", "attn": "sdpa", "act": "gelu"})
    kinds = [k for k, _ in r.steps()]
    assert kinds == sorted(kinds, key=ORDER.index) == ["attention", "activation", "unlearner", "quantizer", "evaluator"]


@pytest.mark.parametrize("data, error, match", [
    ({"quant": "nosuch"}, PluginNotFound, "no quantizer method named 'nosuch'"),
    ({"quant": {"name": "rtn", "w_bits": 1}}, ConfigError, "rtn: w_bits"),
    ({"eval": ["perplexity", "perplexity"]}, IncompatibleError, "requested twice"),
    ({"unlearn": "ga", "task": {"forget_percent": 3}}, ConfigError, "forget_percent"),
    ({"seed": "x"}, ConfigError, "recipe: seed"),
    ({"bogus": 1}, ConfigError, "recipe: bogus"),
])
def test_invalid_requests_are_rejected_before_any_work(data, error, match):
    with pytest.raises(error, match=match):
        resolve(Recipe.parse(data))


def test_unusable_task_file_is_a_data_error(tmp_path):
    bad = tmp_path / "task.jsonl"
    bad.write_text('{"prompt": "a"}\n')
    with pytest.raises(DataError, match="prompt, answer, split"):
        compose(Recipe.parse({"unlearn": "ga", "task": {"source": str(bad)}, "eval": [QUICK_PPL]}), baseline=False)


def test_recipe_file_equals_flags(tmp_path):
    toml = tmp_path / "r.toml"
    toml.write_text('model = "tiny"\nseed = 3\n[quant]\nname = "rtn"\nw_bits = 8\n[[eval]]\nname = "perplexity"\n'
                    'context = 64\n')
    r = Recipe.from_toml(toml)
    assert r.quant.name == "rtn" and r.quant.options == {"w_bits": 8} and r.seed == 3
    assert Recipe.parse(r.to_toml_dict()) == r


def test_compose_unlearn_then_quantize_on_tiny(tiny):
    r = Recipe.parse({"unlearn": {"name": "graddiff", "epochs": 1}, "task": {"forget_percent": 1},
                      "quant": {"name": "rtn", "w_bits": 8}, "eval": [QUICK_PPL]})
    res = compose(r, lm=tiny)
    assert res.task is not None and len(res.task.forget) == 20
    assert res.footprint["composed"]["bits_per_weight"] < 9 < res.footprint["baseline"]["bits_per_weight"]
    assert set(res.timings) >= {"unlearn graddiff", "quantize rtn", "evaluate composed"}
    # the input model is untouched: compose works on a copy
    x = torch.tensor([tiny.encode("Question:")])
    assert not torch.equal(res.lm.model(x).logits, tiny.model(x).logits)
    assert tiny.model.blocks[0].mlp.up.__class__ is torch.nn.Linear
