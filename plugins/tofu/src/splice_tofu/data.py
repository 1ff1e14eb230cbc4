"""The TOFU-style benchmark, generated (never copied): splits and evaluation sets.

The fictitious authors come from the core's seeded generator (``splice.data.authors``): 100
benchmark authors with 20 question-answer pairs each, a paraphrased answer (same fact, other
words) and 5 perturbed answers (same words, wrong fact) per question. As in TOFU:

- **forget** 1/5/10%: the last 1, 5 or 10 authors (20, 100, 200 questions); **retain**: the rest;
- **perturbed answers** of the forget and retain questions are, as in TOFU, wrong facts stated in
  the *paraphrase's* words (the core generator states them in the trained answer's words, which
  would make the truth ratio compare templates instead of facts): the truth ratio then contrasts
  the paraphrased true fact with paraphrased false ones;
- **retain evaluation set**: 300 questions (TOFU's ``ds_size``) sampled, seeded, from the first 90
  authors, which are retained in every split;
- **real authors**: 100 questions about the *pretraining* authors, whom the base model learned in
  pretraining and the benchmark fine-tuning never touches (TOFU's real-world authors that a 7B
  model knows from the web), one question per author, with 5 wrong options;
- **world facts**: the fictional world's capitals, rivers and currencies (60 questions with 5 wrong
  options each), also learned in pretraining.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace

from splice.data.authors import _ATTRS, QA, forget_split, generate_authors, world_facts
from splice.data.synthetic import N_AUTHORS, PRETRAIN_AUTHORS_SEED, TRAIN_AUTHORS_SEED
from splice.errors import ConfigError

SPLITS = (1, 5, 10)
RETAIN_EVAL_SIZE = 300
REAL_AUTHORS_SIZE = 100
SAMPLE_SEED = 2024


@dataclass(frozen=True)
class EvalSet:
    """One of TOFU's four evaluation sets. ``paraphrase`` says whether the truth ratio compares the
    perturbed answers with the paraphrased answer (forget, retain) or with the answer itself, and
    whether "probability" is normalised over the options (real authors, world facts)."""

    name: str
    qa: tuple[QA, ...]
    paraphrase: bool


#: attribute -> (answer template, paraphrase template) of the benchmark's generator
TEMPLATES = {attr: (answer, para) for attr, _values, _question, answer, para, _bio in _ATTRS}


def _value(template: str, text: str, name: str) -> str:
    """The ``{v}`` of ``text`` = ``template.format(n=name, v=...)``."""
    before, after = template.split("{v}")
    pre, post = before.format(n=name), after.format(n=name)
    if not (text.startswith(pre) and text.endswith(post)):
        raise ValueError(f"{text!r} does not follow {template!r}")
    return text[len(pre):len(text) - len(post)]


def paraphrase_perturbed(q: QA) -> QA:
    """``q`` with its perturbed answers restated in the paraphrase's words (TOFU's perturbed answers)."""
    answer, para = TEMPLATES[q.attribute]
    wrong = [_value(answer, p, q.subject) for p in q.perturbed_answers]
    return replace(q, perturbed_answers=tuple(para.format(n=q.subject, v=w) for w in wrong))


def check_split(percent: int) -> int:
    if percent not in SPLITS:
        raise ConfigError(f"tofu: forget: must be 1, 5 or 10 (percent of authors; got {percent!r})")
    return percent


def benchmark_authors():
    return generate_authors(N_AUTHORS, TRAIN_AUTHORS_SEED)


def forget_qa(percent: int) -> list[QA]:
    forget, _ = forget_split(benchmark_authors(), check_split(percent))
    return [q for a in forget for q in a.qa]


def retain_qa(percent: int) -> list[QA]:
    _, retain = forget_split(benchmark_authors(), check_split(percent))
    return [q for a in retain for q in a.qa]


def full_qa() -> list[QA]:
    return [q for a in benchmark_authors() for q in a.qa]


def retain_eval_qa() -> list[QA]:
    authors = benchmark_authors()
    always_retained = [q for a in authors[: N_AUTHORS - max(SPLITS)] for q in a.qa]
    rng = random.Random(SAMPLE_SEED)
    return rng.sample(always_retained, RETAIN_EVAL_SIZE)  # random order: any prefix is a random subset


def real_authors_qa() -> list[QA]:
    rng = random.Random(SAMPLE_SEED + 1)
    authors = generate_authors(N_AUTHORS, PRETRAIN_AUTHORS_SEED)
    return [rng.choice(a.qa) for a in authors][:REAL_AUTHORS_SIZE]


def eval_sets(percent: int, max_per_set: int = 300) -> dict[str, EvalSet]:
    """The four sets, each cut to ``max_per_set`` questions (TOFU's ``ds_size``)."""
    sets = {"forget": ([paraphrase_perturbed(q) for q in forget_qa(percent)], True),
            "retain": ([paraphrase_perturbed(q) for q in retain_eval_qa()], True),
            "real_authors": (real_authors_qa(), False), "world_facts": (world_facts(), False)}
    return {k: EvalSet(k, tuple(v[:max_per_set]), p) for k, (v, p) in sets.items()}
