"""Fixed-context tasks at a given context length in tokens: retrieval (passkey, key-value records,
from ``splice.data.retrieval``) split into a fixed context and a question, and windows of real text
split into a fixed prefix and a continuation."""

from __future__ import annotations

import random
from dataclasses import dataclass

import torch
from splice.data.retrieval import kv_lookup, passkey
from splice.errors import DataError

MAKERS = {"passkey": passkey, "kv": kv_lookup}


@dataclass(frozen=True)
class FixedContextExample:
    kind: str
    context: list[int]  # token ids of the fixed context (prefilled once)
    question: list[int]  # token ids of the query run against it
    answer: str  # expected greedy continuation (retrieval), "" for text windows
    depth: float  # needle depth in the context (retrieval), 0 for text


def split_prompt(lm, prompt: str, answer: str = "") -> tuple[list[int], list[int]]:
    """Token ids of the prompt cut at its last line break: the fixed context, then the question.

    The cut is made on the tokens of the whole prompt, so the question is tokenized exactly as in a
    single forward; where the tokenizer merges across the break, the cut moves to the longest
    common prefix of the two tokenizations.

    With ``answer``, tokens of ``prompt + answer`` that carry only white space before the answer's
    first character (a tokenizer that splits digits, e.g. SmolLM2's, writes " 14574" as " ", "1",
    "4", ...) join the question: they are the prompt's format, not the retrieved answer. Without
    this, such a model must first produce a bare " " token that competes with " the" / " a" after
    "The pass key is", and a correct retrieval is scored as a miss (SmolLM2-135M: dense passkey
    accuracy 0.5 with, 1.0 without the bare-space step at 1024 tokens).
    """
    cut = prompt.rfind("\n")
    if cut <= 0:
        raise DataError("longctx: a retrieval prompt needs a line break between context and question")
    full = lm.encode(prompt)
    ctx = lm.encode(prompt[:cut])
    n = 0
    while n < min(len(full), len(ctx)) and full[n] == ctx[n]:
        n += 1
    question = full[n:]
    if answer:
        joint = lm.encode(prompt + answer)
        if joint[:len(full)] == full:  # the answer starts on a fresh token: its leading blanks are format
            for t in joint[len(full):-1]:
                if lm.tokenizer.decode([t]).strip():
                    break
                question.append(t)
    return full[:n], question


def retrieval_example(lm, kind: str, length: int, depth: float, rng: random.Random) -> FixedContextExample:
    """The largest ``kind`` example whose fixed context has at most ``length`` tokens."""
    make = MAKERS[kind]
    state = rng.getstate()

    def build(size: int):
        rng.setstate(state)
        ex = make(rng, size, depth=depth)
        return ex, *split_prompt(lm, ex.prompt, ex.answer)

    lo, hi = 1, 2
    while len(build(hi)[1]) <= length:  # grow until the context is too long
        lo, hi = hi, hi * 2
        if hi > 1 << 16:
            break
    if len(build(lo)[1]) > length:
        raise DataError(f"longctx: even the smallest {kind} example is longer than {length} tokens")
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if len(build(mid)[1]) <= length else (lo, mid)
    ex, context, question = build(lo)
    return FixedContextExample(kind, context, question, ex.answer, depth)


def retrieval_examples(lm, kind: str, length: int, n: int, depths: list[float] | None,
                       seed: int) -> list[FixedContextExample]:
    """``n`` examples; needle depths ``depths`` (cycled) or spread evenly, (i + 0.5) / n."""
    rng = random.Random(f"{seed}-{kind}-{length}")
    picks = [depths[i % len(depths)] for i in range(n)] if depths else [(i + 0.5) / n for i in range(n)]
    return [retrieval_example(lm, kind, length, d, rng) for d in picks]


def text_windows(ids: list[int], length: int, continuation: int, n: int) -> list[FixedContextExample]:
    """``n`` non-overlapping windows of ``length`` prefix + ``continuation`` tokens from the start of a
    tokenized corpus, spread evenly over it."""
    span = length + continuation
    if len(ids) < span * n:
        raise DataError(f"longctx: the corpus has {len(ids)} tokens, fewer than {n} windows of {span}")
    stride = len(ids) // n
    out = []
    for i in range(n):
        w = ids[i * stride:i * stride + span]
        out.append(FixedContextExample("text", w[:length], w[length:], "", 0.0))
    return out


def text_windows_from_text(lm, text: str, length: int, continuation: int, n: int) -> list[FixedContextExample]:
    """Like ``text_windows`` on the tokenized corpus, tokenizing only what the windows need: ``n``
    windows start at evenly spaced paragraph boundaries of ``text`` (a large corpus such as
    WikiText-2 is never tokenized whole)."""
    span = length + continuation
    stride = len(text) // n
    out = []
    for i in range(n):
        start = text.find("\n\n", i * stride) if i else 0
        start = i * stride if start < 0 else start + (2 if i else 0)
        end = (i + 1) * stride
        chars = span * 6
        while True:
            ids = lm.encode(text[start:min(start + chars, end)], add_special_tokens=False)
            if len(ids) >= span or start + chars >= end:
                break
            chars *= 2
        if len(ids) < span:
            raise DataError(f"longctx: the corpus is too short for {n} windows of {span} tokens")
        out.append(FixedContextExample("text", ids[:length], ids[length:span], "", 0.0))
    return out


def as_batch(ids: list[int], device) -> torch.Tensor:
    return torch.tensor([ids], dtype=torch.long, device=device)
