"""Teaching a model facts, TOFU-style: fine-tune on question-answer pairs, loss on the answers.

The embedded ``tiny`` is its base fine-tuned this way on all 100 benchmark authors; the
retain-only model that unlearning is judged against is the same base fine-tuned the same way on
the retain authors only (the TOFU protocol). Both go through this one function.
"""

from __future__ import annotations

import math

from pydantic import BaseModel, ConfigDict, Field

from .data.authors import QA, qa_prompt
from .data.examples import encode_examples
from .kinds.unlearner import Example
from .train import TrainConfig, TrainResult, train


class FactsFinetune(BaseModel):
    model_config = ConfigDict(extra="forbid")

    epochs: float = Field(16, gt=0)
    lr: float = Field(1e-3, gt=0)
    batch_size: int = Field(32, gt=0)
    weight_decay: float = Field(0.01, ge=0)
    warmup: float = Field(0.05, ge=0)
    seed: int = 0
    replay: bool = Field(True, description="mix in what the base knows (the world facts, QA and biographies "
                                           "of the pretraining authors), so fine-tuning does not erase it")


def replay_examples() -> list[Example]:
    """What the base already knows and fine-tuning must not erase: the world facts, and general
    text (QA and biographies of the *pretraining* authors, never the benchmark's; passkey and
    key-value documents), with the loss on the whole text."""
    import random

    from .data.authors import generate_authors, world_facts
    from .data.synthetic import N_AUTHORS, PRETRAIN_AUTHORS_SEED, retrieval_documents

    others = generate_authors(N_AUTHORS, PRETRAIN_AUTHORS_SEED)
    out = [Example(qa_prompt(q.question), q.answer) for q in world_facts()]
    out += [Example(qa_prompt(q.question), q.answer) for a in others for q in a.qa[::4]]
    out += [Example("", a.bio) for a in others[::2]]
    out += [Example("", d) for d in retrieval_documents(random.Random(5), 50, 50, max_filler=12, max_pairs=24)]
    return out


def finetune_on_facts(lm, qa: list[QA], spec: FactsFinetune | None = None, description: str = "fine-tune facts",
                      on_step=None) -> TrainResult:
    spec = spec or FactsFinetune()
    examples = [Example(qa_prompt(q.question), q.answer) for q in qa]
    if spec.replay:
        examples += replay_examples()
    data = encode_examples(lm, examples, what="facts", pad=False)
    steps = max(1, math.ceil(spec.epochs * len(data) / spec.batch_size))
    cfg = TrainConfig(steps=steps, batch_size=spec.batch_size, lr=spec.lr, weight_decay=spec.weight_decay,
                      warmup=spec.warmup, schedule="cosine", min_lr_ratio=0.1, seed=spec.seed)
    return train(lm.model, data, cfg, description=description, on_step=on_step)
