"""``mia``: membership-inference AUC of the LOSS, ZLib, Min-K% and Min-K%++ attacks."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import Field, field_validator
from splice.errors import DataError
from splice.kinds.evaluator import EvalContext, EvaluatorMethod, Metric, Report
from splice.kinds.unlearner import UnlearnTask
from splice.method import MethodConfig, Paper

from .attacks import ATTACKS, attack_aucs, token_stats
from .data import example_text, holdout_examples, read_texts, spread

Attack = Literal["loss", "zlib", "mink", "minkpp"]


class MIAConfig(MethodConfig):
    attacks: list[Attack] = Field(default_factory=lambda: list(ATTACKS), min_length=1,
                                  description="which attacks to run: loss, zlib, mink, minkpp")
    k: float = Field(0.2, gt=0, le=1, description="fraction of lowest-scoring tokens for Min-K% and Min-K%++ "
                                                 "(both papers' default, 20%)")
    members: str = Field("forget", description="'forget' or 'retain' (of the composition's unlearning task, "
                                              "else the authors task at 10%), or a file of texts")
    nonmembers: str = Field("holdout", description="'holdout' (never-trained fictitious authors, as many as "
                                                  "members) or a file of texts")
    max_examples: int = Field(400, gt=0, description="at most this many members and non-members each")
    batch_size: int = Field(16, gt=0)

    @field_validator("attacks")
    @classmethod
    def _unique(cls, v: list[str]) -> list[str]:
        return list(dict.fromkeys(v))


def task_or_default(ctx: EvalContext) -> UnlearnTask:
    if ctx.task is not None:
        return ctx.task
    from splice.data.examples import authors_task

    return authors_task(10)


class MIA(EvaluatorMethod):
    """Membership-inference AUC (LOSS, ZLib, Min-K%, Min-K%++): members vs never-seen texts."""

    name = "mia"
    Config = MIAConfig
    conformance_config: ClassVar[dict[str, Any]] = {"max_examples": 20}
    paper = Paper(title="Min-K%++: Improved Baseline for Detecting Pre-Training Data from Large Language Models",
                  arxiv="2404.02936",
                  claim="reference-free MIAs (LOSS, ZLib, Min-K%, Min-K%++) separate trained from unseen text; "
                        "after unlearning the forget set should look unseen (AUC near the retain-only model's)")

    @classmethod
    def empty_data_config(cls, workdir: Path) -> dict[str, Any] | None:
        empty = Path(workdir) / "mia_empty_members.txt"
        empty.write_text("")
        return {"members": str(empty)}

    def member_texts(self, ctx: EvalContext) -> list[str]:
        c = self.config
        if c.members in ("forget", "retain"):
            exs = getattr(task_or_default(ctx), c.members)
            if not exs:
                raise DataError(f"mia: members: the task's {c.members} set is empty")
            picked = spread(exs, c.max_examples)
            self._per_author = -(-20 * len(picked) // len(exs))  # non-members: as many authors as members
            return [example_text(e) for e in picked]
        return spread(read_texts(c.members), c.max_examples)

    def nonmember_texts(self, n: int) -> list[str]:
        c = self.config
        if c.nonmembers == "holdout":
            per_author = getattr(self, "_per_author", 20)
            return [example_text(e) for e in holdout_examples(min(n, c.max_examples), per_author=per_author)]
        return spread(read_texts(c.nonmembers), c.max_examples)

    def evaluate(self, lm, ctx: EvalContext) -> Report:
        c = self.config
        if not (hasattr(lm, "model") and hasattr(lm, "tokenizer") and hasattr(lm, "encode")):
            raise DataError(f"mia: expects a LanguageModel (model + tokenizer), got {type(lm).__name__}")
        members = self.member_texts(ctx)
        nonmembers = self.nonmember_texts(len(members))
        aucs = attack_aucs(token_stats(lm, members, c.batch_size, "mia members"),
                           token_stats(lm, nonmembers, c.batch_size, "mia non-members"), c.attacks, c.k)
        names = {"loss": "LOSS", "zlib": "ZLib", "mink": f"Min-{c.k:.0%}", "minkpp": f"Min-{c.k:.0%}++"}
        metrics = {f"auc_{a}": Metric(value=v, direction="none",
                                      description=f"{names[a]} attack AUC, {c.members} vs {c.nonmembers} "
                                                  "(1: fully separable, 0.5: indistinguishable)")
                   for a, v in aucs.items()}
        return self.report(metrics, members=c.members, nonmembers=c.nonmembers, n_members=len(members),
                           n_nonmembers=len(nonmembers), k=c.k)
