"""MUSE's metrics (Shi et al., 2024, arXiv 2407.06460), as its evaluation code computes them.

- **VerbMem**: greedy continuation of a forget-text prefix, as many tokens as the true
  continuation (at most 128), mean ROUGE-L F1 against it, ×100.
- **KnowMem**: few-shot ``Question: ...\\nAnswer: ...`` prompts, greedy answer (at most 32 tokens) cut
  before ``\\n\\n`` / ``\\nQuestion`` / ``Question:``, mean ROUGE-L F1 against the answer, ×100.
- **PrivLeak**: ``(AUC_unlearned − AUC_retrain) / AUC_retrain × 100`` with the Min-40% Prob attack
  and MUSE's orientation (holdout texts labelled members, forget texts non-members): a model that
  still knows the forget set has AUC near 0 (PrivLeak near −100), one that never saw it about 0.5.
"""

from __future__ import annotations

import numpy as np
import torch
from splice.kinds.unlearner import Example
from splice.model.generate import generate
from splice.progress import progress
from splice_mia import roc_auc, scores, token_stats
from splice_mia.data import example_text
from splice_tofu.rouge import rouge_l

from .data import QA

STOPS = ("\n\n", "\nQuestion", "Question:")


@torch.no_grad()
def continuations(lm, prompts: list[str], lengths: list[int], batch_size: int = 32,
                  description: str = "muse") -> list[str]:
    """Greedy continuation of each prompt, ``lengths[i]`` new tokens (fewer if the model ends the text)."""
    outs: list[str] = []
    with progress(description, len(prompts)) as bar:
        for i in range(0, len(prompts), batch_size):
            seqs = [lm.encode(p) for p in prompts[i:i + batch_size]]
            ids, mask = lm.pad_batch(seqs, left=True)
            n = lengths[i:i + batch_size]
            gen = generate(lm.model, ids, max(n), attention_mask=mask, eos_ids=lm.config.eos_ids)
            outs += [lm.tokenizer.decode(g[ids.shape[1]:ids.shape[1] + k].tolist()) for g, k in zip(gen, n)]
            bar.advance(len(seqs))
    return outs


def verbmem(lm, forget: list[Example], max_new_tokens: int = 128, batch_size: int = 32) -> tuple[float, list[dict]]:
    gts, lengths = [], []
    for ex in forget:
        ids = lm.encode(" " + ex.answer.lstrip(), add_special_tokens=False)[:max_new_tokens]
        gts.append(lm.tokenizer.decode(ids).strip())
        lengths.append(len(ids))
    outs = continuations(lm, [ex.prompt for ex in forget], lengths, batch_size, "muse verbmem")
    f = [rouge_l(gt, out).fmeasure for gt, out in zip(gts, outs)]
    log = [{"prompt": ex.prompt, "gt": gt, "response": out.strip()} for ex, gt, out in zip(forget[:3], gts, outs)]
    return 100 * float(np.mean(f)), log


def knowmem_prompt(question: str, icl: list[QA]) -> str:
    # "Answer:" without MUSE's trailing space: with byte-level BPE the space belongs to the answer's first token
    shots = "".join(f"Question: {q.question}\nAnswer: {q.answer}\n\n" for q in icl)
    return shots + f"Question: {question}\nAnswer:"


def cut(text: str) -> str:
    for s in STOPS:
        text = text.split(s)[0]
    return text.strip()


def knowmem(lm, qa: list[QA], icl: list[QA], max_new_tokens: int = 32, batch_size: int = 32,
            description: str = "muse knowmem") -> tuple[float, list[dict]]:
    outs = continuations(lm, [knowmem_prompt(q.question, icl) for q in qa], [max_new_tokens] * len(qa),
                         batch_size, description)
    answers = [cut(o) for o in outs]
    f = [rouge_l(q.answer, a).fmeasure for q, a in zip(qa, answers)]
    log = [{"question": q.question, "gt": q.answer, "response": a} for q, a in zip(qa[:3], answers)]
    return 100 * float(np.mean(f)), log


def privleak_auc(lm, forget: list[Example], holdout: list[Example], k: float = 0.4, batch_size: int = 16) -> float:
    """MUSE's ``forget_holdout_Min-40%`` AUC: holdout labelled members, forget non-members."""
    f = token_stats(lm, [example_text(e) for e in forget], batch_size, "muse privleak forget")
    h = token_stats(lm, [example_text(e) for e in holdout], batch_size, "muse privleak holdout")
    return roc_auc(scores(h, "mink", k), scores(f, "mink", k))


def privleak(auc: float, auc_retrain: float) -> float:
    return (auc - auc_retrain) / auc_retrain * 100
