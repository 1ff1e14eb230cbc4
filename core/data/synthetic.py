"""The text the embedded ``tiny`` model is trained and evaluated on, all generated here.

``tiny`` is built the way TOFU builds its target model: a *base* model is pretrained on general
text (``documents("train")``: question-answer pairs and biographies of *other* fictitious
authors, so it knows the format but not the benchmark's facts; the fictional world's facts;
passkey and key-value retrieval), then fine-tuned on the QA pairs of the 100 benchmark authors
(``benchmark_authors()``, see ``splice.facts``). A retain-only model is the same base fine-tuned
on the retain authors only. ``eval`` is a disjoint held-out mix for perplexity (other authors,
other retrieval draws), ``calib`` calibration text for quantizers.
"""

from __future__ import annotations

import random

from .authors import generate_authors, qa_prompt, world_facts
from .retrieval import kv_lookup, passkey

TRAIN_AUTHORS_SEED = 0  # the benchmark authors tiny is fine-tuned on (and unlearning forgets)
PRETRAIN_AUTHORS_SEED = 4242  # other authors, for the base model's general text
N_AUTHORS = 100
_SPLIT_SEEDS = {"train": 11, "eval": 22, "calib": 33}


def qa_text(question: str, answer: str) -> str:
    return f"{qa_prompt(question)} {answer}"


def retrieval_documents(rng: random.Random, n_passkey: int, n_kv: int, max_filler: int = 40,
                        max_pairs: int = 60) -> list[str]:
    docs = []
    for _ in range(n_passkey):
        ex = passkey(rng, rng.randint(2, max_filler))
        docs.append(ex.prompt + ex.answer)
    for _ in range(n_kv):
        ex = kv_lookup(rng, rng.randint(4, max_pairs))
        docs.append(ex.prompt + ex.answer)
    return docs


def documents(split: str = "train", seed: int | None = None) -> list[str]:
    """One epoch of documents for ``split``; ``seed`` varies the retrieval draws between epochs."""
    if split not in _SPLIT_SEEDS:
        raise ValueError(f"split must be one of {sorted(_SPLIT_SEEDS)} (got {split!r})")
    rng = random.Random(_SPLIT_SEEDS[split] * 1000 + (seed or 0))
    if split == "train":
        authors = generate_authors(N_AUTHORS, PRETRAIN_AUTHORS_SEED)
        docs = [qa_text(q.question, q.answer) for a in authors for q in a.qa]
        docs += [a.bio for a in authors]
        docs += [qa_text(q.question, q.answer) for q in world_facts()] * 4
        docs += retrieval_documents(rng, 60, 100)
    else:
        # other (never trained) authors: the language is the same, the facts are new
        authors = generate_authors(20, 1000 + _SPLIT_SEEDS[split])
        docs = [qa_text(q.question, q.answer) for a in authors for q in a.qa[:10]]
        docs += [a.bio for a in authors]
        docs += retrieval_documents(rng, 30, 50)
    rng.shuffle(docs)
    return docs


def corpus_text(split: str) -> str:
    """The split as one text (documents separated by blank lines), for perplexity and calibration."""
    return "\n\n".join(documents(split))


def benchmark_authors():
    return generate_authors(N_AUTHORS, TRAIN_AUTHORS_SEED)
