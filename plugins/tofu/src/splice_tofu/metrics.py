"""TOFU's metrics, as its evaluation code defines them (Maini et al., 2024, arXiv 2401.06121).

For every question of a set the model is scored on: the answer's mean token NLL ("loss", the
paraphrased answer's, and each perturbed answer's), and the ROUGE-L recall of its greedy answer.

- **Probability**: forget/retain: mean of ``exp(-loss)`` (the length-normalised P(a|q));
  real authors/world facts: ``exp(-loss)`` of the answer over the sum of it and the wrong options'.
- **ROUGE**: mean ROUGE-L recall of the greedy answer against the answer.
- **Truth ratio**: per question ``R = exp(mean_perturbed_loss - paraphrased_loss)`` (= normalised
  P(paraphrase) / geometric mean of normalised P(perturbed)); forget: ``mean(min(R, 1/R))``; other
  sets: ``mean(max(0, 1 - 1/R))`` (for real authors/world facts the "paraphrase" is the answer).
- **Forget Quality**: p-value of the two-sample Kolmogorov-Smirnov test between the forget-set
  ``R`` of the model and of the retain-only model.
- **Model Utility**: harmonic mean of the nine Probability/ROUGE/Truth ratio values on retain,
  real authors and world facts.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from scipy.stats import ks_2samp
from splice.data.authors import qa_prompt
from splice.data.examples import encode_examples
from splice.kinds.unlearner import Example
from splice.probes import greedy_completions
from splice.progress import progress
from splice.train import collate
from splice.unlearning import answer_nll

from .data import EvalSet
from .rouge import rouge_l

UTILITY_SETS = ("retain", "real_authors", "world_facts")
PARTS = ("prob", "rouge", "truth_ratio")


@torch.no_grad()
def answer_losses(lm, examples: list[Example], batch_size: int = 64, description: str = "tofu") -> np.ndarray:
    """Mean token NLL of each example's answer given its prompt (batched by length, padded per batch)."""
    data = encode_examples(lm, examples, what="tofu questions", pad=False)
    order = sorted(range(len(data)), key=lambda i: len(data[i]["input_ids"]))
    out = torch.empty(len(data), dtype=torch.float64)
    device = lm.model.device
    with progress(description, len(data)) as bar:
        for i in range(0, len(order), batch_size):
            idx = order[i:i + batch_size]
            batch = collate([data[j] for j in idx])
            ids = batch["input_ids"].to(device)
            labels = batch["labels"].to(device)
            out[idx] = answer_nll(lm.model, ids, labels, mean=True).double().cpu()
            bar.advance(len(idx))
    return out.numpy()


def cut_answer(text: str) -> str:
    """The generated answer up to the end of its line (the QA format's end of answer)."""
    return text.strip().split("\n")[0].strip()


@dataclass
class SetResult:
    name: str
    gt_loss: np.ndarray
    para_loss: np.ndarray
    pert_loss: np.ndarray  # N x P
    rouge_recall: np.ndarray
    generations: list[str] = field(default_factory=list)
    normalise_prob: bool = False

    @property
    def ratio(self) -> np.ndarray:
        """Per question ``R = exp(mean perturbed loss - paraphrased loss)``."""
        return np.exp(self.pert_loss.mean(-1) - self.para_loss)

    def prob(self) -> float:
        p = np.exp(-self.gt_loss)
        if self.normalise_prob:
            p = p / (p + np.exp(-self.pert_loss).sum(-1))
        return float(p.mean())

    def rouge(self) -> float:
        return float(self.rouge_recall.mean())

    def truth_ratio(self) -> float:
        r = self.ratio
        if self.name == "forget":
            return float(np.minimum(r, 1 / r).mean())
        return float(np.maximum(0.0, 1 - 1 / r).mean())

    def summary(self) -> dict[str, float]:
        return {"prob": self.prob(), "rouge": self.rouge(), "truth_ratio": self.truth_ratio()}


def evaluate_set(lm, s: EvalSet, batch_size: int = 64, max_new_tokens: int | None = None) -> SetResult:
    """``max_new_tokens`` None: the set's longest answer plus 8 tokens (generation ends at the answer's line)."""
    qa = list(s.qa)
    if max_new_tokens is None:
        max_new_tokens = max(len(lm.encode(" " + q.answer, add_special_tokens=False)) for q in qa) + 8
    n_pert = min(len(q.perturbed_answers) for q in qa)
    exs: list[Example] = []
    for q in qa:
        prompt = qa_prompt(q.question)
        exs.append(Example(prompt, q.answer))
        exs.append(Example(prompt, q.paraphrased_answer if s.paraphrase else q.answer))
        exs += [Example(prompt, p) for p in q.perturbed_answers[:n_pert]]
    losses = answer_losses(lm, exs, batch_size, f"tofu {s.name}").reshape(len(qa), 2 + n_pert)
    gens = [cut_answer(g) for g in greedy_completions(lm, [qa_prompt(q.question) for q in qa], max_new_tokens,
                                                      batch_size=batch_size)]
    rouge = np.array([rouge_l(q.answer, g).recall for q, g in zip(qa, gens)])
    return SetResult(s.name, losses[:, 0], losses[:, 1], losses[:, 2:], rouge, gens, normalise_prob=not s.paraphrase)


def harmonic_mean(values) -> float:
    v = np.asarray(list(values), dtype=np.float64)
    if (v <= 0).any():
        return 0.0
    return float(len(v) / (1 / v).sum())


def model_utility(results: dict[str, SetResult]) -> float:
    return harmonic_mean(results[s].summary()[p] for s in UTILITY_SETS for p in PARTS)


def forget_quality(model_forget: SetResult, retain_forget: SetResult) -> tuple[float, float]:
    """(p-value, KS statistic) of the forget-set truth ratios against the retain-only model's."""
    res = ks_2samp(model_forget.ratio, retain_forget.ratio)
    return float(res.pvalue), float(res.statistic)


def evaluate_all(lm, sets: dict[str, EvalSet], batch_size: int = 64,
                 max_new_tokens: int | None = None) -> dict[str, SetResult]:
    return {k: evaluate_set(lm, s, batch_size, max_new_tokens) for k, s in sets.items()}
