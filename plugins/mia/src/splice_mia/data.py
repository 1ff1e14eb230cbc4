"""Non-member data: question-answer pairs of fictitious authors no model here was ever trained on.

They come from the core's authors generator with a seed used nowhere else, so they share the
members' distribution (same templates, same value pools) and differ only in never having been
seen; authors whose name collides with a benchmark or pretraining author are skipped.
"""

from __future__ import annotations

import json
from pathlib import Path

from splice.data.authors import generate_authors, qa_prompt
from splice.data.synthetic import N_AUTHORS, PRETRAIN_AUTHORS_SEED, TRAIN_AUTHORS_SEED
from splice.errors import DataError
from splice.kinds.unlearner import Example

HOLDOUT_SEED = 90210


def example_text(ex: Example) -> str:
    """The text as the model was trained on it (the layout of ``splice.data.examples.encode_examples``)."""
    return ex.prompt + " " + ex.answer.lstrip()


def holdout_authors(n: int, seed: int = HOLDOUT_SEED):
    taken = {a.name for a in generate_authors(N_AUTHORS, TRAIN_AUTHORS_SEED)}
    taken |= {a.name for a in generate_authors(N_AUTHORS, PRETRAIN_AUTHORS_SEED)}
    pool = [a for a in generate_authors(n + 50, seed) if a.name not in taken]
    if len(pool) < n:
        raise DataError(f"mia: could not generate {n} fresh holdout authors")
    return pool[:n]


def holdout_examples(n_examples: int, seed: int = HOLDOUT_SEED, per_author: int = 20) -> list[Example]:
    """``n_examples`` QA pairs of never-trained authors, in author order: ``per_author`` (1..20) of
    each author's 20 questions, spread over its attributes. A subsample of members drawn across many
    authors is matched by as many fresh authors (with few authors per side, an author's rare name
    tokens decide Min-K% on their own)."""
    per_author = max(1, min(20, per_author))
    authors = holdout_authors(max(1, -(-n_examples // per_author)), seed)
    picks = [i * 20 // per_author for i in range(per_author)]
    exs = [Example(qa_prompt(a.qa[i].question), a.qa[i].answer) for a in authors for i in picks]
    return exs[:n_examples]


def spread(items: list, n: int) -> list:
    """At most ``n`` of ``items``, evenly spaced (not the first ``n``: those are a few authors)."""
    return list(items) if len(items) <= n else [items[i * len(items) // n] for i in range(n)]


def read_texts(path: str) -> list[str]:
    """A file of texts: JSONL with ``text`` or ``prompt``+``answer`` per line, or one text per line."""
    p = Path(path)
    if not p.is_file():
        raise DataError(f"mia: {path!r} is not a file")
    out = []
    for i, line in enumerate(p.read_text().splitlines()):
        if not line.strip():
            continue
        if p.suffix == ".jsonl":
            try:
                row = json.loads(line)
                out.append(row["text"] if "text" in row else example_text(Example(row["prompt"], row["answer"])))
            except (json.JSONDecodeError, KeyError, TypeError) as err:
                raise DataError(f"{path}:{i + 1}: expected JSON with text, or prompt and answer ({err})") from None
        else:
            out.append(line)
    if not out:
        raise DataError(f"mia: {path} holds no texts")
    return out
