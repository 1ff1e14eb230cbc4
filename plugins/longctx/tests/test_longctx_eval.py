"""longctx: fixed-context examples of the asked size, fidelity probes against dense attention, the
end-to-end evaluation on tiny, and clear errors."""

from __future__ import annotations

import pytest
import torch
from splice.errors import ConfigError, DataError
from splice.install import install_attention
from splice.kinds import EvalContext
from splice.model import load
from splice_longctx import (
    FidelityStats,
    LongCtx,
    answer_question,
    continuation_nll,
    probing,
    retrieval_examples,
    split_prompt,
    text_windows,
    text_windows_from_text,
)
from splice_squeezed import Recency


@pytest.fixture(scope="module")
def tiny():
    lm = load("tiny")
    lm.model.eval().requires_grad_(False)
    return lm


@pytest.fixture()
def tiny_copy(tiny):
    return tiny.clone()


@pytest.mark.parametrize("kind", ["passkey", "kv"])
def test_examples_fill_the_context_length(tiny, kind: str) -> None:
    exs = retrieval_examples(tiny, kind, 300, 3, None, seed=0)
    for e in exs:
        assert 0.8 * 300 < len(e.context) <= 300
    assert [round(e.depth, 3) for e in exs] == [round((i + 0.5) / 3, 3) for i in range(3)]
    joint = tiny.encode(tiny.tokenizer.decode(exs[0].context[1:] + exs[0].question))  # no BOS in decode
    assert joint[1:] == exs[0].context[1:] + exs[0].question


def test_split_prompt_tokenizes_like_the_whole_prompt(tiny) -> None:
    prompt = "Records:\nabc1 = 123\nxyz2 = 456\nLook up abc1. The value of abc1 is"
    ctx, q = split_prompt(tiny, prompt)
    assert ctx + q == tiny.encode(prompt)
    assert tiny.tokenizer.decode(q).startswith("\n") or tiny.tokenizer.decode(ctx).endswith("\n")


class _CharLM:
    """A character-level tokenizer (one token per character, like a digit-splitting tokenizer on digits)."""

    class tokenizer:  # noqa: N801
        @staticmethod
        def decode(ids):
            return "".join(map(chr, ids))

    @staticmethod
    def encode(text, add_special_tokens=True):
        return [ord(ch) for ch in text]


def test_split_prompt_gives_the_answers_leading_blank_to_the_question(tiny) -> None:
    prompt = "Find the key.\nblah\nWhat is the pass key? The pass key is"
    ctx, q = split_prompt(_CharLM, prompt, " 12345")
    assert _CharLM.tokenizer.decode(ctx) == "Find the key.\nblah"
    assert _CharLM.tokenizer.decode(q) == "\nWhat is the pass key? The pass key is "  # the bare " " is format
    assert split_prompt(_CharLM, prompt, "12345")[1] == split_prompt(_CharLM, prompt)[1]  # nothing to move
    # on any tokenizer: context + question is a prefix of the whole prompt + answer, and what follows
    # the question starts with the answer's first visible character
    ctx, q = split_prompt(tiny, prompt, " 12345")
    joint = tiny.encode(prompt + " 12345")
    assert joint[:len(ctx) + len(q)] == ctx + q
    assert tiny.tokenizer.decode(joint[len(ctx) + len(q):]).strip() == "12345"


def test_text_windows() -> None:
    ids = list(range(1000))
    ws = text_windows(ids, 100, 20, 4)
    assert [w.context[0] for w in ws] == [0, 250, 500, 750]
    assert all(len(w.context) == 100 and len(w.question) == 20 for w in ws)
    with pytest.raises(DataError, match="fewer than"):
        text_windows(ids, 300, 50, 4)


def test_fidelity_of_dense_and_recency(tiny_copy) -> None:
    ex = retrieval_examples(tiny_copy, "passkey", 200, 1, None, seed=1)[0]
    cache = tiny_copy.model.prefill(torch.tensor([ex.context]))
    dense = FidelityStats()
    answer_question(tiny_copy, ex, cache, dense)
    d = dense.overall()
    assert d["keys_touched"] == pytest.approx(1.0) and d["topk_recall"] == pytest.approx(1.0)
    assert d["mass_recall"] == pytest.approx(1.0) and d["output_error"] < 1e-5
    assert len(dense.per_layer()) == tiny_copy.config.num_hidden_layers
    install_attention(tiny_copy.model, Recency({"budget": 0.25}))
    rec = FidelityStats()
    answer_question(tiny_copy, ex, cache, rec)
    r = rec.overall()
    assert r["keys_touched"] == pytest.approx(round(0.25 * len(ex.context)) / len(ex.context), abs=1e-6)
    assert r["mass_recall"] < 1 and r["output_error"] > 1e-3


def test_probes_do_not_change_outputs(tiny) -> None:
    x = torch.tensor([tiny.encode("The grass is green. The sky is blue. The sun is yellow.")])
    cache = tiny.model.prefill(x[:, :10])
    with torch.no_grad():
        a = tiny.model(x[:, 10:], cache=cache.fork()).logits
        with probing(tiny.model, FidelityStats(), 4):
            b = tiny.model(x[:, 10:], cache=cache.fork()).logits
    assert torch.allclose(a, b, atol=1e-5)
    assert all(type(blk.attn.core).__name__ != "FidelityProbe" for blk in tiny.model.blocks)


def test_chunking_does_not_change_dense_perplexity(tiny) -> None:
    from splice.data.corpora import load_corpus

    ex = text_windows_from_text(tiny, load_corpus("tiny-eval"), 120, 16, 3)[1]
    assert len(ex.context) == 120 and len(ex.question) == 16
    cache = tiny.model.prefill(torch.tensor([ex.context]))
    one = continuation_nll(tiny, ex, cache, chunk=1)
    all_ = continuation_nll(tiny, ex, cache, chunk=16)
    assert one[1] == all_[1] == 15
    assert one[0] == pytest.approx(all_[0], rel=1e-4)


def test_evaluate_on_tiny_dense_vs_recency(tiny_copy) -> None:
    ev = LongCtx({"lengths": [160], "examples": 2, "ppl_examples": 1, "continuation": 8})
    dense = ev.evaluate(tiny_copy, EvalContext())
    m = {k: v.value for k, v in dense.metrics.items()}
    for key in ("passkey@160", "kv@160", "ppl@160", "passkey", "kv", "ppl", "keys_touched", "topk_recall"):
        assert key in m
    assert m["keys_touched"] == pytest.approx(1.0) and m["output_error"] < 1e-5
    assert 0 <= m["passkey"] <= 1 and m["ppl"] > 1
    install_attention(tiny_copy.model, Recency({"budget": 0.125}))
    rec = {k: v.value for k, v in ev.evaluate(tiny_copy, EvalContext()).metrics.items()}
    assert rec["keys_touched"] == pytest.approx(0.125, abs=0.01)
    assert rec["mass_recall"] < 1 and rec["output_error"] > 0


def test_errors(tiny) -> None:
    for bad, field in (({"lengths": [8]}, "lengths"), ({"depths": [1.5]}, "depths"), ({"tasks": []}, "tasks"),
                       ({"tasks": ["ruler"]}, "tasks"), ({"examples": 0}, "examples")):
        with pytest.raises(ConfigError, match=field):
            LongCtx(bad)
    with pytest.raises(DataError, match="no room"):
        LongCtx({"lengths": [tiny.config.max_position_embeddings]}).evaluate(tiny, EvalContext())
    with pytest.raises(DataError, match="corpus"):
        LongCtx({"tasks": ["ppl"], "corpus": "no-such-corpus"}).evaluate(tiny, EvalContext())
    with pytest.raises(DataError, match="too short"):
        text_windows_from_text(tiny, "a few words\n\nand a few more", 100, 10, 2)
    ex = retrieval_examples(tiny, "passkey", 100, 1, None, seed=0)[0]
    with pytest.raises(DataError, match="prefilled fixed context"):
        answer_question(tiny, ex, tiny.model.new_cache())
