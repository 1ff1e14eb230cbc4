"""What unlearners share: the config of their fine-tuning, forget/retain pairing and answer NLL."""

from __future__ import annotations

import math
import random
from contextlib import contextmanager
from typing import Any, Callable, Iterator

import torch
import torch.nn.functional as F
from pydantic import Field

from .data.examples import encode_examples
from .errors import DataError
from .kinds.unlearner import UnlearnTask
from .method import MethodConfig
from .train import TrainConfig, TrainResult, train


class UnlearnConfig(MethodConfig):
    """The NPO paper's TOFU protocol, shared by every unlearner so comparisons are fair: AdamW with
    weight decay 0.01, effective batch 32, 10 epochs over the forget set, one epoch of linear warm-up
    then linear decay; the learning rate scaled from the papers' 1e-5 on 7B models to small models."""

    lr: float = Field(1e-4, gt=0)
    epochs: float = Field(10, gt=0, description="passes over the forget set (NPO paper, TOFU: 10)")
    batch_size: int = Field(32, gt=0)
    weight_decay: float = Field(0.01, ge=0)
    warmup: float = Field(0.1, ge=0, description="warm-up fraction of steps (0.1 of 10 epochs: one epoch, as "
                                                 "the papers' code)")
    seed: int = 0


def answer_nll(model: torch.nn.Module, ids: torch.Tensor, labels: torch.Tensor, mean: bool = False) -> torch.Tensor:
    """Per-sequence NLL of the answer tokens (sum, or mean over them): -log π(y|x)."""
    logits = model(ids).logits[:, :-1]
    tgt = labels[:, 1:]
    # flattened rows rather than a (B, V, T) transpose: the same sums, ~8x faster on CPU
    nll = F.cross_entropy(logits.flatten(0, 1), tgt.flatten(), ignore_index=-100,
                          reduction="none").view(tgt.shape).sum(-1)
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


_OBSERVERS: list[Callable[[int, float], Any]] = []


@contextmanager
def observe(callback: Callable[[int, float], Any]) -> Iterator[None]:
    """Call ``callback(step, loss)`` after every optimizer step of any unlearning run inside the block.

    Benchmarks use it to evaluate the model over the course of unlearning (the NPO paper's
    forget-quality/utility curves) without changing any unlearner's signature.
    """
    _OBSERVERS.append(callback)
    try:
        yield
    finally:
        _OBSERVERS.remove(callback)


def _notify(step: int, loss: float) -> None:
    for cb in list(_OBSERVERS):
        cb(step, loss)


def run_unlearning(lm, task: UnlearnTask, cfg: UnlearnConfig, loss_fn: Callable, with_retain: bool,
                   description: str) -> TrainResult:
    data = paired_data(lm, task, with_retain, cfg.seed)
    batch = min(cfg.batch_size, len(data))
    steps = max(1, math.ceil(cfg.epochs * len(data) / batch))  # epochs of the batch actually used
    tc = TrainConfig(steps=steps, batch_size=batch, lr=cfg.lr,
                     weight_decay=cfg.weight_decay, warmup=cfg.warmup, schedule="constant" if not cfg.warmup
                     else "linear", seed=cfg.seed, grad_clip=None)
    if task.reference is not None:
        for p in task.reference.model.parameters():
            p.requires_grad_(False)
    return train(lm.model, data, tc, loss_fn=loss_fn, description=description,
                 on_step=_notify if _OBSERVERS else None)
