"""``muse``: VerbMem, KnowMem, PrivLeak and utility preservation, MUSE's way, on the fictitious authors."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import Field, field_validator
from splice.data.authors import qa_prompt
from splice.errors import DataError
from splice.facts import FactsFinetune
from splice.kinds.evaluator import EvalContext, EvaluatorMethod, Metric, Report
from splice.kinds.unlearner import Example
from splice.method import MethodConfig, Paper
from splice_mia.data import holdout_examples
from splice_tofu.data import SPLITS, forget_qa
from splice_tofu.evaluator import TofuConfig, check_model, retain_model, split_of

from .data import forget_knowmem, icl_examples, retain_knowmem
from .metrics import knowmem, privleak, privleak_auc, verbmem

_RETAIN: dict[tuple, dict[str, float]] = {}


class MuseConfig(MethodConfig):
    forget: int | Literal["auto"] = Field("auto", description="forget split (1, 5, 10 %); auto: the "
                                                             "composition's task, else 10")
    retain_model: str = Field("auto", description="checkpoint of the retain-only ('retrained') model; auto: "
                                                 "the tofu plugin's cached one for models derived from tiny")
    finetune: FactsFinetune = Field(default_factory=FactsFinetune, description="recipe of that retain model")
    verbmem_max_new_tokens: int = Field(128, gt=0, description="MUSE: 128")
    knowmem_max_new_tokens: int = Field(32, gt=0, description="MUSE: 32")
    knowmem_size: int = Field(100, gt=0, description="questions per KnowMem set")
    mink_k: float = Field(0.4, gt=0, le=1, description="Min-K% Prob for PrivLeak (MUSE: Min-40%)")
    max_examples: int = Field(400, gt=0, description="at most this many forget texts for VerbMem/PrivLeak")
    batch_size: int = Field(32, gt=0)

    @field_validator("forget")
    @classmethod
    def _split(cls, v):
        if v != "auto" and v not in SPLITS:
            raise ValueError(f"must be 1, 5, 10 or 'auto' (got {v!r})")
        return v


def forget_examples(ctx: EvalContext, percent: int, limit: int) -> list[Example]:
    if ctx.task is not None and ctx.task.forget:
        return list(ctx.task.forget[:limit])
    return [Example(qa_prompt(q.question), q.answer) for q in forget_qa(percent)][:limit]


class Muse(EvaluatorMethod):
    """MUSE: no verbatim or knowledge memorisation of the forget set, no privacy leak, utility kept."""

    name = "muse"
    Config = MuseConfig
    conformance_config: ClassVar[dict[str, Any]] = {"finetune": {"epochs": 0.5}, "knowmem_size": 10, "max_examples": 20,
                          "verbmem_max_new_tokens": 24, "knowmem_max_new_tokens": 16}
    paper = Paper(title="MUSE: Machine Unlearning Six-Way Evaluation for Language Models", arxiv="2407.06460",
                  claim="an unlearned model should show no verbatim (VerbMem) or knowledge (KnowMem) memorisation "
                        "of the forget set and no privacy leak (PrivLeak near 0 against a retrained model) while "
                        "keeping utility (KnowMem on retain); most methods fail at least one")

    def scores(self, lm, forget: list[Example], percent: int) -> dict[str, Any]:
        c = self.config
        icl = icl_examples()
        vm, vm_log = verbmem(lm, forget, c.verbmem_max_new_tokens, c.batch_size)
        kf, kf_log = knowmem(lm, forget_knowmem(percent, c.knowmem_size), icl, c.knowmem_max_new_tokens,
                             c.batch_size, "muse knowmem forget")
        kr, kr_log = knowmem(lm, retain_knowmem(c.knowmem_size), icl, c.knowmem_max_new_tokens, c.batch_size,
                             "muse knowmem retain")
        auc = privleak_auc(lm, forget, holdout_examples(len(forget)), c.mink_k, c.batch_size)
        return {"verbmem_f": vm, "knowmem_f": kf, "knowmem_r": kr, "auc": auc,
                "samples": {"verbmem_f": vm_log, "knowmem_f": kf_log, "knowmem_r": kr_log}}

    def evaluate(self, lm, ctx: EvalContext) -> Report:
        c = self.config
        check_model(lm, "muse")
        if ctx.task is not None and not ctx.task.forget:
            raise DataError("muse: the composition's forget set is empty")
        percent = split_of(c.forget, ctx)
        ref, ref_path = retain_model(lm, TofuConfig(retain_model=c.retain_model, finetune=c.finetune), percent)
        forget = forget_examples(ctx, percent, c.max_examples)
        if not forget:
            raise DataError("muse: the forget set is empty")
        key = (str(Path(ref_path).resolve()), percent, c.model_dump_json(exclude={"batch_size"}), len(forget))
        if key not in _RETAIN:
            _RETAIN[key] = self.scores(ref, forget, percent)
        r = _RETAIN[key]
        s = self.scores(lm, forget, percent)
        auc_retrain = max(r["auc"], 1e-9)
        leak = privleak(s["auc"], auc_retrain)
        metrics = {
            "verbmem_f": Metric(value=s["verbmem_f"], direction="lower",
                                description="ROUGE-L F1 ×100 of greedy continuations of forget texts"),
            "knowmem_f": Metric(value=s["knowmem_f"], direction="lower",
                                description="ROUGE-L F1 ×100 of few-shot answers to rephrased forget questions"),
            "knowmem_r": Metric(value=s["knowmem_r"], direction="higher",
                                description="utility preservation: KnowMem on retain questions"),
            "privleak": Metric(value=leak, direction="none",
                               description=f"% (AUC − AUC_retrain)/AUC_retrain, Min-{c.mink_k:.0%} MIA forget vs "
                                           "holdout: 0 = like the retain-only model, −100 = fully leaked, "
                                           "≫0 = over-unlearned"),
        }
        retain_only = {"verbmem_f": r["verbmem_f"], "knowmem_f": r["knowmem_f"], "knowmem_r": r["knowmem_r"],
                       "privleak": 0.0}
        details: dict[str, Any] = {"forget_percent": percent, "auc": s["auc"], "auc_retrain": r["auc"],
                                   "n_forget": len(forget), "retain_only": retain_only, "retain_model": ref_path,
                                   "samples": s["samples"]}
        return self.report(metrics, **details)
