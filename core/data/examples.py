"""Prompt/answer examples as training tensors: loss only on the answer tokens."""

from __future__ import annotations

import torch

from ..errors import DataError
from ..kinds.unlearner import Example
from ..model.lm import LanguageModel


def encode_examples(lm: LanguageModel, examples: list[Example], max_len: int | None = None,
                    what: str = "examples", pad: bool = True) -> list[dict[str, torch.Tensor]]:
    """One dict per example (input_ids, labels) right-padded to the longest; labels -100 off-answer.

    ``pad=False`` leaves each example its own length (the training loop pads per batch).

    Errors (before any work) on an empty list or an example longer than the model's context.
    """
    if not examples:
        raise DataError(f"{what}: empty")
    max_len = max_len or lm.config.max_position_embeddings
    seqs, starts = [], []
    for ex in examples:
        prompt = lm.encode(ex.prompt)
        full = lm.encode(ex.prompt + " " + ex.answer.lstrip())
        if len(full) > max_len:
            raise DataError(f"{what}: an example is {len(full)} tokens, longer than the context ({max_len}): "
                            f"{ex.prompt[:60]!r}")
        seqs.append(full)
        starts.append(min(len(prompt), len(full) - 1))
    t = max(len(s) for s in seqs)
    out = []
    for s, st in zip(seqs, starts):
        ids = torch.full((t if pad else len(s),), lm.tokenizer.pad_id, dtype=torch.long)
        ids[: len(s)] = torch.tensor(s)
        labels = torch.full((len(ids),), -100, dtype=torch.long)
        labels[st:len(s)] = ids[st:len(s)]
        out.append({"input_ids": ids, "labels": labels})
    return out


def authors_task(percent: int = 10, seed: int = 0):
    """The fictitious-authors unlearning task the embedded model was trained on."""
    from ..kinds.unlearner import UnlearnTask
    from .authors import forget_split, generate_authors, qa_prompt
    from .synthetic import N_AUTHORS, TRAIN_AUTHORS_SEED

    authors = generate_authors(N_AUTHORS, TRAIN_AUTHORS_SEED)
    forget, retain = forget_split(authors, percent)

    def ex(group):
        return [Example(qa_prompt(q.question), q.answer) for a in group for q in a.qa]

    return UnlearnTask(forget=ex(forget), retain=ex(retain), name=f"authors-forget{percent:02d}",
                       meta={"percent": percent, "forget_authors": [a.name for a in forget]})
