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

    epochs: float = Field(12, gt=0)
    lr: float = Field(5e-4, gt=0)
    batch_size: int = Field(32, gt=0)
    weight_decay: float = Field(0.01, ge=0)
    warmup: float = Field(0.05, ge=0)
    seed: int = 0
    replay: bool = Field(True, description="mix in the world facts and short retrieval examples the base "
                                           "knows, so fine-tuning on authors does not erase them")


def replay_examples(seed: int = 0) -> list[Example]:
    """What the base already knows and fine-tuning must not erase: world facts and retrieval."""
    import random

    from .data.authors import world_facts
    from .data.retrieval import kv_lookup, passkey

    rng = random.Random(10_000 + seed)
    out = [Example(qa_prompt(q.question), q.answer) for q in world_facts()]
    for i in range(100):
        ex = passkey(rng, rng.randint(2, 15)) if i % 2 else kv_lookup(rng, rng.randint(4, 30))
        out.append(Example(ex.prompt, ex.answer.strip()))
    return out


def finetune_on_facts(lm, qa: list[QA], spec: FactsFinetune | None = None, description: str = "fine-tune facts",
                      on_step=None) -> TrainResult:
    spec = spec or FactsFinetune()
    examples = [Example(qa_prompt(q.question), q.answer) for q in qa]
    if spec.replay:
        examples += replay_examples(spec.seed)
    data = encode_examples(lm, examples, what="facts", pad=False)
    steps = max(1, math.ceil(spec.epochs * len(data) / spec.batch_size))
    cfg = TrainConfig(steps=steps, batch_size=spec.batch_size, lr=spec.lr, weight_decay=spec.weight_decay,
                      warmup=spec.warmup, schedule="cosine", min_lr_ratio=0.1, seed=spec.seed)
    return train(lm.model, data, cfg, description=description, on_step=on_step)
