"""NPO: Negative Preference Optimization (Zhang, Lin, Bai, Mei, 2024; arXiv 2404.05868).

    L_NPO = (2/β) · E_forget[ log(1 + (π_θ(y|x) / π_ref(y|x))^β) ]
          = -(2/β) · E_forget[ log σ(-β · log(π_θ(y|x) / π_ref(y|x))) ]

on sequence log-likelihoods (the sum over the answer tokens), with π_ref the frozen model before
unlearning. Its gradient is ``2·σ(β·log r)·∇log π_θ`` (r = π_θ/π_ref): gradient ascent's
``∇log π_θ`` times an adaptive weight that is exactly 1 at θ = ref and falls to 0 as the forget
answers become unlikely, which is why NPO collapses exponentially slower than GA. As β → 0 the
loss is GA's (plus a constant). Variants (the paper's NPO+RT and NPO+KL, the official code's
``npo_grad_diff`` and ``npo_KL``):

- ``rt``: + retain NLL (mean token cross-entropy on the paired retain example);
- ``kl``: + KL(π_ref || π_θ) of the next-token distributions on the retain example, averaged over
  its tokens (the official code averages over every row of the padded batch).

Defaults are the paper's TOFU settings (β = 0.1, 10 epochs, effective batch 32, AdamW with weight
decay 0.01, one epoch of warm-up then linear decay), the learning rate scaled as the shared
``UnlearnConfig`` documents; GA and GradDiff share these so the comparison is the paper's.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import Field, field_validator
from splice.data.examples import encode_examples
from splice.errors import DataError
from splice.kinds.unlearner import UnlearnerMethod, UnlearnTask
from splice.method import Paper
from splice.unlearning import UnlearnConfig, answer_nll, check_reference, run_unlearning

VARIANTS = ("plain", "rt", "kl")


class NPOConfig(UnlearnConfig):
    beta: float = Field(0.1, gt=0, description="inverse temperature β of the NPO loss (paper: 0.1)")
    variant: Literal["plain", "rt", "kl"] = Field("plain", description="plain NPO, +RT (retain NLL) or +KL "
                                                                      "(KL to the reference on retain data)")
    npo_coeff: float = Field(1.0, ge=0, description="weight of the NPO term (official code's npo_coeff)")
    retain_coeff: float = Field(1.0, ge=0, description="weight of the retain NLL (+RT) or KL (+KL) term")

    @field_validator("variant", mode="before")
    @classmethod
    def _variant(cls, v):
        """Accept the paper's spellings: NPO, NPO+RT, +KL, rt, ..."""
        if isinstance(v, str):
            s = v.strip().lower().removeprefix("npo").lstrip("+_- ")
            return s or "plain"
        return v


def npo_loss(logratio: torch.Tensor, beta: float) -> torch.Tensor:
    """(2/β)·mean(log(1 + exp(β·logratio))) with logratio = log π_θ(y|x) − log π_ref(y|x), computed stably."""
    return F.softplus(beta * logratio).mean() * 2 / beta


def kl_to_reference(model, ref_model, ids: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """KL(π_ref || π_θ) of next-token distributions, averaged over the real (non-padding) positions."""
    logp = torch.log_softmax(model(ids).logits.float(), dim=-1)
    with torch.no_grad():
        ref = torch.log_softmax(ref_model(ids).logits.float(), dim=-1)
    kl = (ref.exp() * (ref - logp)).sum(-1)  # B x T
    # right-padded: the answer ends each sequence, so its last label marks the sequence's last token
    pos = torch.arange(ids.shape[1], device=ids.device)
    last = torch.where(labels != -100, pos, torch.zeros_like(pos)).max(dim=1).values
    mask = pos[None, :] <= last[:, None]
    return (kl * mask).sum() / mask.sum()


def objective(model, ref_model, b: dict[str, torch.Tensor], c: NPOConfig) -> tuple[torch.Tensor, dict]:
    """The training loss of one batch (forget_ids/labels, and retain_ids/labels for +RT/+KL) and what to log."""
    nll = answer_nll(model, b["forget_ids"], b["forget_labels"])  # −log π_θ(y|x), per sequence
    with torch.no_grad():
        ref_nll = answer_nll(ref_model, b["forget_ids"], b["forget_labels"])
    logratio = ref_nll - nll  # log π_θ(y|x) − log π_ref(y|x)
    forget = npo_loss(logratio, c.beta)
    logs = {"npo": forget.detach(), "forget_nll": nll.detach().mean(), "logratio": logratio.detach().mean(),
            "weight": (2 * torch.sigmoid(c.beta * logratio.detach())).mean()}
    total = c.npo_coeff * forget
    if c.variant == "rt":
        r = answer_nll(model, b["retain_ids"], b["retain_labels"], mean=True).mean()
        total = total + c.retain_coeff * r
        logs["retain_nll"] = r.detach()
    elif c.variant == "kl":
        kl = kl_to_reference(model, ref_model, b["retain_ids"], b["retain_labels"])
        total = total + c.retain_coeff * kl
        logs["retain_kl"] = kl.detach()
    return total, logs


class NPO(UnlearnerMethod):
    """Negative Preference Optimization: a bounded, adaptively weighted gradient ascent (+RT / +KL variants)."""

    name = "npo"
    Config = NPOConfig
    needs_reference = True
    paper = Paper(title="Negative Preference Optimization: From Catastrophic Collapse to Effective Unlearning",
                  arxiv="2404.05868",
                  claim="at θ = ref NPO's gradient equals gradient ascent's, yet NPO's loss is bounded below and it "
                        "collapses exponentially slower; NPO(+RT) reaches a better forget quality / model utility "
                        "trade-off than GA and GradDiff on TOFU, also at large forget fractions")

    def check(self, lm, task: UnlearnTask) -> None:
        """Everything that can be wrong with the input, before any training."""
        if not task.forget:
            raise DataError("npo: the forget set is empty")
        if self.config.variant != "plain" and not task.retain:
            raise DataError(f"npo: variant {self.config.variant!r} needs retain data and the retain set is empty")
        check_reference(lm, task)
        ref_tok = task.reference.tokenizer  # type: ignore[union-attr]
        if ref_tok is not lm.tokenizer and ref_tok.tok.get_vocab() != lm.tokenizer.tok.get_vocab():
            raise DataError("npo: the reference model's tokenizer differs from the model's (same size, other tokens):"
                            " π_θ/π_ref would compare different token sequences")
        encode_examples(lm, task.forget, what="npo forget set")  # lengths vs the context
        if task.retain:
            encode_examples(lm, task.retain, what="npo retain set")

    def unlearn(self, lm, task: UnlearnTask):
        c = self.config
        self.check(lm, task)
        ref = task.reference.model  # type: ignore[union-attr]
        ref.eval()

        def loss(model, b):
            return objective(model, ref, b, c)

        self.history = run_unlearning(lm, task, c, loss, with_retain=c.variant != "plain",
                                      description=f"npo ({c.variant})")
        task.meta["unlearning"] = loss_checkpoints("npo", c, self.history, len(task.forget))
        return lm


def loss_checkpoints(method: str, c: UnlearnConfig, history, n_forget: int) -> dict:
    """The loss curve summarised once per epoch (the paper evaluates at every epoch)."""
    steps = len(history.losses)
    per_epoch = max(1, math.ceil(n_forget / min(c.batch_size, n_forget)))
    points = []
    for end in range(per_epoch, steps + per_epoch, per_epoch):
        lo, hi = end - per_epoch, min(end, steps)
        if lo >= steps:
            break
        point = {"step": hi, "loss": sum(history.losses[lo:hi]) / (hi - lo)}
        for k in history.logs[lo]:
            point[k] = sum(l[k] for l in history.logs[lo:hi]) / (hi - lo)
        points.append(point)
    return {"method": method, "config": c.model_dump(mode="json"), "steps": steps, "checkpoints": points}
