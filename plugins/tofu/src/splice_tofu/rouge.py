"""ROUGE-L (longest common subsequence) as the ``rouge_score`` package computes it.

Tokenisation follows ``rouge_score``'s default tokenizer: lower-case, every run of characters
other than ``a-z0-9`` becomes a space, split on whitespace. No stemming (TOFU's scorer stems
with Porter; MUSE's does not): on the benchmark's templated answers the difference is a few
word endings. Recall = LCS / reference length, precision = LCS / prediction length,
F = 2PR / (P + R).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_NON_ALNUM = re.compile(r"[^a-z0-9]+")


def tokenize(text: str) -> list[str]:
    return [t for t in _NON_ALNUM.sub(" ", text.lower()).split() if t]


def lcs_length(a: list[str], b: list[str]) -> int:
    if not a or not b:
        return 0
    prev = [0] * (len(b) + 1)
    for x in a:
        cur = [0]
        for j, y in enumerate(b):
            cur.append(prev[j] + 1 if x == y else max(prev[j + 1], cur[j]))
        prev = cur
    return prev[-1]


@dataclass(frozen=True)
class Rouge:
    precision: float
    recall: float
    fmeasure: float


def rouge_l(reference: str, prediction: str) -> Rouge:
    ref, pred = tokenize(reference), tokenize(prediction)
    lcs = lcs_length(ref, pred)
    p = lcs / len(pred) if pred else 0.0
    r = lcs / len(ref) if ref else 0.0
    f = 2 * p * r / (p + r) if p + r > 0 else 0.0
    return Rouge(p, r, f)
