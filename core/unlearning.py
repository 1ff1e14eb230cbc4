"""What unlearners share: the config of their fine-tuning, forget/retain pairing and answer NLL."""

from __future__ import annotations

import math
import random
from typing import Callable

import torch
import torch.nn.functional as F
from pydantic import Field

from .data.examples import encode_examples
from .errors import DataError
from .kinds.unlearner import UnlearnTask
from .method import MethodConfig
from .train import TrainConfig, TrainResult, train


class UnlearnConfig(MethodConfig):
    """TOFU-style fine-tuning defaults (AdamW, a few epochs over the forget set, batch 32),
    with the learning rate scaled from the papers' 1e-5 on 7B models to small models."""

    lr: float = Field(1e-4, gt=0)
    epochs: float = Field(5, gt=0, description="passes over the forget set")
    batch_size: int = Field(32, gt=0)
    weight_decay: float = Field(0.01, ge=0)
    warmup: float = Field(0.0, ge=0, description="warm-up fraction of steps")
    seed: int = 0


def answer_nll(model: torch.nn.Module, ids: torch.Tensor, labels: torch.Tensor, mean: bool = False) -> torch.Tensor:
    """Per-sequence NLL of the answer tokens (sum, or mean over them): -log π(y|x)."""
    logits = model(ids).logits[:, :-1]
    tgt = labels[:, 1:]
    nll = F.cross_entropy(logits.transpose(1, 2), tgt, ignore_index=-100, reduction="none").sum(-1)
    if mean:
        nll = nll / (tgt != -100).sum(-1).clamp(min=1)
    return nll


def paired_data(lm, task: UnlearnTask, with_retain: bool, seed: int = 0) -> list[dict[str, torch.Tensor]]:
    """Each forget example paired with a random retain example (as TOFU's trainer does)."""
    if not task.forget:
        raise DataError("unlearning task: the forget set is empty")
    if with_retain and not task.retain:
        raise DataError("unlearning task: this method needs retain data and the retain set is empty")
    forget = encode_examples(lm, task.forget, what="forget set")
    retain = encode_examples(lm, task.retain, what="retain set") if with_retain else []
    rng = random.Random(seed)
    data = []
    for f in forget:
        item = {"forget_ids": f["input_ids"], "forget_labels": f["labels"]}
        if retain:
            r = retain[rng.randrange(len(retain))]
            item.update(retain_ids=r["input_ids"], retain_labels=r["labels"])
        data.append(item)
    return data


def check_reference(lm, task: UnlearnTask) -> None:
    ref = task.reference
    if ref is None:
        raise DataError("unlearning task: this method needs a frozen reference model and none was given")
    if ref.tokenizer.vocab_size != lm.tokenizer.vocab_size or ref.config.vocab_size != lm.config.vocab_size:
        raise DataError("unlearning task: the reference model's vocabulary differs from the model's "
                        f"({ref.config.vocab_size} vs {lm.config.vocab_size})")


def run_unlearning(lm, task: UnlearnTask, cfg: UnlearnConfig, loss_fn: Callable, with_retain: bool,
                   description: str) -> TrainResult:
    data = paired_data(lm, task, with_retain, cfg.seed)
    steps = max(1, math.ceil(cfg.epochs * len(data) / cfg.batch_size))
    tc = TrainConfig(steps=steps, batch_size=min(cfg.batch_size, len(data)), lr=cfg.lr,
                     weight_decay=cfg.weight_decay, warmup=cfg.warmup, schedule="constant" if not cfg.warmup
                     else "linear", seed=cfg.seed, grad_clip=None)
    if task.reference is not None:
        for p in task.reference.model.parameters():
            p.requires_grad_(False)
    return train(lm.model, data, tc, loss_fn=loss_fn, description=description)
