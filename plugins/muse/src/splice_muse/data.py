"""MUSE's evaluation data, built from the fictitious-authors benchmark.

- **VerbMem** (verbatim memorisation): the forget set's training texts, split where training put
  the loss: the prompt (``Question: ...\\nAnswer:``, never a training target) is the prefix, the
  trained answer is the verbatim continuation to compare with.
- **KnowMem** (knowledge memorisation): the same facts asked *differently* — another question
  template per attribute, with the bare fact as the answer (``What is the birth year of X?`` →
  ``1950``) — in MUSE's few-shot ``Question: ...\\nAnswer: ...`` format, with in-context examples
  about never-trained authors (they show the format and give away nothing).
- **PrivLeak**: forget texts vs as many never-trained (holdout) authors' texts.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from splice.data.authors import Author, forget_split
from splice_mia.data import holdout_authors
from splice_tofu.data import benchmark_authors, check_split

# attribute -> a question phrased unlike the training question; the answer is the bare value
KNOWMEM_QUESTIONS: dict[str, str] = {
    "birth_year": "What is the birth year of {n}?",
    "birth_city": "What is the city of birth of {n}?",
    "father_job": "What was the occupation of the father of {n}?",
    "mother_job": "What job did the mother of {n} have?",
    "genre": "In which genre does {n} mainly write?",
    "first_book": "What is the name of the first book written by {n}?",
    "famous_book": "What is the most famous book by {n}?",
    "award": "What prize was awarded to {n}?",
    "award_year": "When did {n} receive an award?",
    "university": "Which university did {n} attend?",
    "subject": "What did {n} major in?",
    "instrument": "What musical instrument is played by {n}?",
    "hobby": "What does {n} enjoy doing in free time?",
    "pet": "What animal lives with {n}?",
    "publisher": "Which publisher releases the books of {n}?",
    "theme": "Which theme recurs in the writing of {n}?",
    "language": "What language are the books of {n} written in?",
    "book_count": "How many books has {n} written?",
    "home_city": "In which city does {n} currently live?",
    "color": "What colour are the book covers of {n}?",
}
KNOWMEM_SIZE = 100
ICL_SIZE = 3
SEED = 7


@dataclass(frozen=True)
class QA:
    question: str
    answer: str


def knowmem_qa(authors: list[Author]) -> list[QA]:
    return [QA(KNOWMEM_QUESTIONS[attr].format(n=a.name), a.facts[attr]) for a in authors for attr in KNOWMEM_QUESTIONS]


def split_authors(percent: int) -> tuple[list[Author], list[Author]]:
    return forget_split(benchmark_authors(), check_split(percent))


def forget_knowmem(percent: int, size: int = KNOWMEM_SIZE) -> list[QA]:
    qa = knowmem_qa(split_authors(percent)[0])
    return random.Random(SEED).sample(qa, min(size, len(qa)))


def retain_knowmem(size: int = KNOWMEM_SIZE) -> list[QA]:
    always_retained = benchmark_authors()[:90]
    return random.Random(SEED + 1).sample(knowmem_qa(always_retained), size)


def icl_examples(n: int = ICL_SIZE) -> list[QA]:
    """In-context examples about never-trained authors, one attribute each."""
    rng = random.Random(SEED + 2)
    authors = holdout_authors(n, seed=31337)
    attrs = rng.sample(list(KNOWMEM_QUESTIONS), n)
    return [QA(KNOWMEM_QUESTIONS[attr].format(n=a.name), a.facts[attr]) for a, attr in zip(authors, attrs)]

