"""What a model knows and can do: exact-match fact recall and in-context retrieval accuracy."""

from __future__ import annotations

import random

import torch

from .data.authors import QA, generate_authors, qa_prompt, world_facts
from .data.retrieval import RetrievalExample, kv_lookup, passkey
from .data.synthetic import N_AUTHORS, TRAIN_AUTHORS_SEED
from .model.generate import generate
from .model.lm import LanguageModel


@torch.no_grad()
def greedy_completions(lm: LanguageModel, prompts: list[str], max_new_tokens: int, batch_size: int = 64) -> list[str]:
    outs: list[str] = []
    for i in range(0, len(prompts), batch_size):
        seqs = lm.tokenizer.encode_batch(prompts[i:i + batch_size])
        ids, mask = lm.pad_batch(seqs, left=True)
        gen = generate(lm.model, ids, max_new_tokens, attention_mask=mask, eos_ids=lm.config.eos_ids)
        outs += [lm.tokenizer.decode(g[ids.shape[1]:].tolist()) for g in gen]
    return outs


def answer_accuracy(lm: LanguageModel, qa: list[QA]) -> float:
    """Fraction of questions whose greedy answer reproduces the trained answer exactly."""
    if not qa:
        raise ValueError("no questions")
    n_tok = max(len(lm.encode(" " + q.answer, add_special_tokens=False)) for q in qa) + 1
    outs = greedy_completions(lm, [qa_prompt(q.question) for q in qa], n_tok)
    return sum(o.strip().startswith(q.answer) for o, q in zip(outs, qa)) / len(qa)


def facts_accuracy(lm: LanguageModel) -> dict[str, float]:
    authors = generate_authors(N_AUTHORS, TRAIN_AUTHORS_SEED)
    return {"authors": answer_accuracy(lm, [q for a in authors for q in a.qa]),
            "world": answer_accuracy(lm, world_facts())}


def retrieval_examples(kind: str, n: int, size: int, seed: int = 0) -> list[RetrievalExample]:
    rng = random.Random(seed)
    make = passkey if kind == "passkey" else kv_lookup
    return [make(rng, size, depth=(i + 0.5) / n) for i in range(n)]


def retrieval_accuracy_of(lm: LanguageModel, examples: list[RetrievalExample]) -> float:
    outs = greedy_completions(lm, [e.prompt for e in examples], 6, batch_size=16)
    return sum(o.strip().startswith(e.answer.strip()) for o, e in zip(outs, examples)) / len(examples)


def retrieval_accuracy(lm: LanguageModel, n: int = 40) -> dict[str, float]:
    """Passkey among 10/30 filler sentences and key-value lookup among 20/50 records."""
    return {f"{kind}@{size}": retrieval_accuracy_of(lm, retrieval_examples(kind, n, size, seed=7))
            for kind, size in (("passkey", 10), ("passkey", 30), ("kv", 20), ("kv", 50))}
