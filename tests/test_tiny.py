"""The embedded model is a real trained checkpoint that knows its facts (TOFU protocol)."""

from __future__ import annotations

import json

import torch
from splice.data.authors import world_facts
from splice.data.synthetic import benchmark_authors
from splice.model import load
from splice.model.loading import TINY_DIR
from splice.probes import answer_accuracy

# 200 of the 2,000 facts, every attribute equally often (years are harder than colours)
SAMPLE = [a.qa[(i + k) % 20] for i, a in enumerate(benchmark_authors()) for k in (0, 10)]


def test_tiny_knows_the_author_facts_and_its_base_does_not(tiny):
    assert answer_accuracy(tiny, SAMPLE) >= 0.85
    assert answer_accuracy(load("tiny-base"), SAMPLE) <= 0.05  # the base never saw them


def test_tiny_keeps_the_world_facts(tiny):
    assert answer_accuracy(tiny, world_facts()) >= 0.9


def test_tiny_retrieves_a_pass_key_from_its_context(tiny):
    """Well above chance (a 5-digit key: 1e-5), and from the context: the same prompts with another key
    in the needle are answered with that key, and without the needle the key is never produced."""
    import dataclasses

    from splice.probes import retrieval_accuracy_of, retrieval_examples

    examples = retrieval_examples("passkey", 20, 2, seed=11)
    assert retrieval_accuracy_of(tiny, examples) >= 0.5
    swapped = [dataclasses.replace(e, prompt=e.prompt.replace(e.answer.strip(), str(int(e.answer) + 11111)),
                                   answer=f" {int(e.answer) + 11111}") for e in examples if int(e.answer) < 88888]
    assert retrieval_accuracy_of(tiny, swapped) >= 0.5
    cut = [dataclasses.replace(e, prompt=e.prompt.split(".", 1)[0] + ".\n" + e.prompt.rsplit("\n", 1)[1])
           for e in examples]  # instruction + question only: the key is nowhere in the context
    assert all(e.answer.strip() not in e.prompt for e in cut)
    assert retrieval_accuracy_of(tiny, cut) <= 0.05


def test_tiny_is_trained_not_random(tiny):
    from splice.builtins.perplexity import Perplexity
    from splice.kinds import EvalContext
    from splice.model import Decoder, LanguageModel

    cfg = Perplexity.Config(context=128, max_windows=4)
    ppl = Perplexity(cfg).evaluate(tiny, EvalContext()).metrics["perplexity"].value
    torch.manual_seed(0)
    random = LanguageModel(Decoder(tiny.config), tiny.tokenizer, "tiny")
    ppl_random = Perplexity(cfg).evaluate(random, EvalContext()).metrics["perplexity"].value
    assert ppl < 60 < 1000 < ppl_random  # trained: ~39 on 4 short windows; random init: ~vocab size


def test_build_record_matches_the_shipped_files():
    rec = json.loads((TINY_DIR / "build.json").read_text())
    assert rec["parameters"] == sum(p.numel() for p in load("tiny").model.parameters())
    assert rec["tiny"]["facts_accuracy"]["authors"] >= 0.85
    size = sum(f.stat().st_size for f in TINY_DIR.rglob("*") if f.is_file())
    assert size < 8 * 2**20  # a few MB, shippable
