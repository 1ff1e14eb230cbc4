"""The text the embedded ``tiny`` model is trained and evaluated on, all generated here.

A document is one of: a question-answer pair about a fictitious author or the fictional world,
an author's biography, a passkey test or a key-value lookup. ``documents(split)`` gives the
training mix (``train``), a disjoint held-out mix for perplexity (``eval``: other authors, other
retrieval draws), or calibration text for quantizers (``calib``).
"""

from __future__ import annotations

import random

from .authors import generate_authors, qa_prompt, world_facts
from .retrieval import kv_lookup, passkey

TRAIN_AUTHORS_SEED = 0  # the authors tiny knows (and TOFU-style evaluation uses)
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
        authors = generate_authors(N_AUTHORS, TRAIN_AUTHORS_SEED)
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
