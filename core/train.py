"""The one training loop: ``splice train``, unlearners and calibration all run through it.

Under ``torchrun`` (WORLD_SIZE > 1) it wraps the model in DistributedDataParallel and gives
each rank a disjoint slice of every global batch, so the optimisation is the same as one
process with the same global batch (tested on two CPU processes with gloo).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from typing import Any, Callable, Literal, Sequence

import torch
import torch.distributed as dist
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field

from .errors import ConfigError, DataError
from .progress import progress

Batch = dict[str, torch.Tensor]
LossFn = Callable[[torch.nn.Module, Batch], torch.Tensor]


class TrainConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    steps: int = Field(100, gt=0, description="optimizer steps")
    batch_size: int = Field(8, gt=0, description="global batch (split across ranks under torchrun)")
    lr: float = Field(1e-3, gt=0)
    weight_decay: float = Field(0.0, ge=0)
    betas: tuple[float, float] = (0.9, 0.95)
    warmup: float = Field(0.05, ge=0, description="warm-up steps, as a fraction of steps if < 1")
    schedule: Literal["cosine", "linear", "constant"] = "cosine"
    min_lr_ratio: float = Field(0.1, ge=0, le=1)
    grad_clip: float | None = 1.0
    optimizer: str = Field("adamw", description="adamw, sgd, or a name an installed plugin provides")
    seed: int = 0
    log_every: int = Field(10, gt=0)


@dataclass
class TrainResult:
    losses: list[float] = field(default_factory=list)  # one per step (mean over the global batch)
    logs: list[dict[str, float]] = field(default_factory=list)  # what the loss function reported


def causal_lm_loss(model: torch.nn.Module, batch: Batch) -> torch.Tensor:
    """Mean next-token cross-entropy over positions whose label is not -100."""
    logits = model(batch["input_ids"], attention_mask=batch.get("attention_mask")).logits
    labels = batch["labels"]
    return F.cross_entropy(logits[:, :-1].flatten(0, 1), labels[:, 1:].flatten(), ignore_index=-100)


def lr_at(step: int, cfg: TrainConfig) -> float:
    warm = cfg.warmup * cfg.steps if cfg.warmup < 1 else cfg.warmup
    if step < warm:
        return cfg.lr * min(1.0, (step + 1) / warm)  # warm-up shorter than a step must not overshoot
    if cfg.schedule == "constant":
        return cfg.lr
    frac = (step - warm) / max(1.0, cfg.steps - warm)
    shape = 0.5 * (1 + math.cos(math.pi * frac)) if cfg.schedule == "cosine" else 1 - frac
    return cfg.lr * (cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * shape)


OPTIMIZERS: dict[str, Callable[..., torch.optim.Optimizer]] = {}


def register_optimizer(name: str, factory: Callable[..., torch.optim.Optimizer]) -> None:
    """Plugins add optimizers (e.g. StableMax's ⊥Grad) usable by name from ``splice train``."""
    OPTIMIZERS[name] = factory


def make_optimizer(params, cfg: TrainConfig) -> torch.optim.Optimizer:
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=cfg.lr, betas=cfg.betas, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    if cfg.optimizer in OPTIMIZERS:
        return OPTIMIZERS[cfg.optimizer](params, cfg)
    raise ConfigError(f"train: optimizer: unknown {cfg.optimizer!r} (known: adamw, sgd, {', '.join(OPTIMIZERS)})")


def world() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def init_distributed() -> bool:
    """Start the process group when launched by torchrun; gloo on CPU, nccl on GPU."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return dist.is_initialized()


def collate(examples: Sequence[Batch]) -> Batch:
    """Stack examples; ragged ones are right-padded (labels with -100, everything else with 0).

    Right padding needs no attention mask: causal attention keeps real tokens from seeing it.
    """
    out = {}
    for k in examples[0]:
        ts = [e[k] for e in examples]
        n = max(t.shape[-1] for t in ts)
        if any(t.shape[-1] != n for t in ts):
            fill = -100 if k.endswith("labels") else 0
            ts = [torch.nn.functional.pad(t, (0, n - t.shape[-1]), value=fill) for t in ts]
        out[k] = torch.stack(ts)
    return out


def train(model: torch.nn.Module, data: Sequence[Batch], cfg: TrainConfig, *,
          loss_fn: LossFn = causal_lm_loss, params: list[torch.nn.Parameter] | None = None,
          on_step: Callable[[int, float], Any] | None = None, description: str = "training") -> TrainResult:
    """Train ``model`` for ``cfg.steps`` steps on examples drawn (seeded, reshuffled each epoch) from ``data``.

    ``data`` is a sequence of single examples (dicts of equal-shape tensors). ``loss_fn`` may
    return a tensor, or (tensor, dict of floats to log).
    """
    if len(data) == 0:
        raise DataError("training data is empty")
    rank, size = world()
    if cfg.batch_size % size:
        raise ConfigError(f"train: batch_size: {cfg.batch_size} is not divisible by the {size} ranks")
    local = cfg.batch_size // size
    params = params if params is not None else [p for p in model.parameters() if p.requires_grad]
    runner: torch.nn.Module = model
    if size > 1:
        runner = torch.nn.parallel.DistributedDataParallel(model)
    opt = make_optimizer(params, cfg)
    gen = torch.Generator().manual_seed(cfg.seed)
    order: list[int] = []
    result = TrainResult()
    model.train()
    with progress(description, cfg.steps) as bar:
        for step in range(cfg.steps):
            while len(order) < cfg.batch_size:
                order += torch.randperm(len(data), generator=gen).tolist()
            idx, order = order[: cfg.batch_size], order[cfg.batch_size:]
            batch = collate([data[i] for i in idx[rank * local:(rank + 1) * local]])
            for g in opt.param_groups:
                g["lr"] = lr_at(step, cfg)
            out = loss_fn(runner, batch)
            loss, logs = out if isinstance(out, tuple) else (out, {})
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.grad_clip:
                torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
            opt.step()
            value = loss.detach()
            if size > 1:
                dist.all_reduce(value)
                value /= size
            result.losses.append(float(value))
            result.logs.append({k: float(v) for k, v in logs.items()})
            if on_step is not None:
                on_step(step, float(value))
            bar.advance(status=f"loss {float(value):.3f}")
    model.eval()
    return result
