"""``tofu``: Forget Quality and Model Utility on the fictitious-authors benchmark, TOFU's way."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import Field, field_validator
from splice.errors import ConfigError, DataError
from splice.facts import FactsFinetune
from splice.kinds.evaluator import EvalContext, EvaluatorMethod, Metric, Report
from splice.method import MethodConfig, Paper
from splice.model import load

from .data import SPLITS, eval_sets
from .metrics import PARTS, UTILITY_SETS, SetResult, evaluate_all, forget_quality, model_utility
from .models import TINY_SOURCES, retain_model_for

_MODELS: dict[str, Any] = {}  # retain-only models loaded in this process
_RESULTS: dict[tuple, dict[str, SetResult]] = {}  # their (deterministic) evaluations


class TofuConfig(MethodConfig):
    forget: int | Literal["auto"] = Field("auto", description="forget split in percent of authors (1, 5, 10); "
                                                             "auto: the composition's task, else 10")
    retain_model: str = Field("auto", description="checkpoint folder of the retain-only model; auto: made from "
                                                 "tiny-base and cached, for models derived from the embedded tiny")
    finetune: FactsFinetune = Field(default_factory=FactsFinetune,
                                    description="recipe of the retain-only model made for tiny (the recipe of tiny)")
    max_per_set: int = Field(300, gt=0, description="questions per evaluation set (TOFU's ds_size)")
    max_new_tokens: int | None = Field(None, gt=0, description="greedy answer length for ROUGE (None: the longest "
                                                                "answer of a set + 8 tokens; the answer ends at its line)")
    batch_size: int = Field(64, gt=0)

    @field_validator("forget")
    @classmethod
    def _split(cls, v):
        if v != "auto" and v not in SPLITS:
            raise ValueError(f"must be 1, 5, 10 or 'auto' (got {v!r})")
        return v


def check_model(lm, who: str) -> None:
    """A LanguageModel (decoder + tokenizer) is what the evaluator scores; anything else is a clear error."""
    if not (hasattr(lm, "model") and hasattr(lm, "tokenizer") and hasattr(lm, "encode")):
        raise DataError(f"{who}: expects a LanguageModel (model + tokenizer), got {type(lm).__name__}")


def split_of(forget: int | str, ctx: EvalContext) -> int:
    if forget != "auto":
        return int(forget)
    task = ctx.task
    if task is None:
        return 10
    if not task.forget:
        raise DataError(f"tofu: the composition's unlearning task {task.name!r} has an empty forget set")
    percent = (task.meta or {}).get("percent")
    if percent not in SPLITS:
        raise ConfigError(f"tofu: forget: the composition's unlearning task {task.name!r} is not the fictitious-"
                          "authors task; set forget=1, 5 or 10 to pick the benchmark split")
    return int(percent)


def _load(path: str):
    if path not in _MODELS:
        _MODELS[path] = load(path)
        _MODELS[path].model.eval()
    return _MODELS[path]


def retain_model(lm, c: TofuConfig, percent: int):
    """The retain-only reference model (loaded once per process) and its path; clear errors otherwise."""
    if c.retain_model != "auto":
        path = c.retain_model
        if not Path(path).expanduser().is_dir():
            raise ConfigError(f"tofu: retain_model: {path!r} is not a checkpoint folder")
    else:
        made = retain_model_for(lm.source, percent, c.finetune) if lm.source in TINY_SOURCES else None
        if made is None:
            raise ConfigError(
                f"tofu: retain_model: the model under test ({lm.source!r}) is not the embedded tiny, so there is "
                "no retain-only model to compare with. Forget Quality needs the same base model fine-tuned on the "
                f"retain authors only: make it with `python -m splice_tofu finetune --base <base model> --split "
                f"retain --forget {percent}` (and the model to unlearn with --split full), then pass "
                "--eval-opt tofu.retain_model=<printed folder>")
        path = str(made)
    ref = _load(str(Path(path).expanduser()))
    if ref.config.vocab_size != lm.config.vocab_size or ref.tokenizer.vocab_size != lm.tokenizer.vocab_size:
        raise DataError(f"tofu: retain_model: {path} has a different vocabulary ({ref.config.vocab_size}) from the "
                        f"model under test ({lm.config.vocab_size})")
    return ref, path


def summary(results: dict[str, SetResult]) -> dict[str, float]:
    out = {f"{s}_{p}": v for s, r in results.items() for p, v in r.summary().items()}
    out["model_utility"] = model_utility(results)
    return out


class Tofu(EvaluatorMethod):
    """TOFU: Forget Quality (KS test vs a retain-only model) and Model Utility on the fictitious authors."""

    name = "tofu"
    Config = TofuConfig
    #: the conformance suite's short run: a cheap retain-only model and small sets (same metrics)
    conformance_config: ClassVar[dict[str, Any]] = {"finetune": {"epochs": 0.5}, "max_per_set": 20, "max_new_tokens": 16}
    paper = Paper(title="TOFU: A Task of Fictitious Unlearning for LLMs", arxiv="2401.06121",
                  claim="unlearning is judged by Forget Quality (KS-test p-value of truth ratios against a model "
                        "never trained on the forget set) together with Model Utility (harmonic mean of "
                        "probability, ROUGE-L and truth ratio on retain, real-author and world-fact questions)")

    def evaluate(self, lm, ctx: EvalContext) -> Report:
        c = self.config
        check_model(lm, "tofu")
        percent = split_of(c.forget, ctx)
        ref, ref_path = retain_model(lm, c, percent)
        sets = eval_sets(percent, c.max_per_set)
        key = (str(Path(ref_path).resolve()), percent, c.max_per_set, c.max_new_tokens)
        if key not in _RESULTS:
            _RESULTS[key] = evaluate_all(ref, sets, c.batch_size, c.max_new_tokens)
        ref_res = _RESULTS[key]
        res = evaluate_all(lm, sets, c.batch_size, c.max_new_tokens)
        fq, ks = forget_quality(res["forget"], ref_res["forget"])
        values = summary(res)
        ref_values = {**summary(ref_res), "forget_quality": forget_quality(ref_res["forget"], ref_res["forget"])[0]}
        n = {k: len(s.qa) for k, s in sets.items()}
        metrics = {
            "forget_quality": Metric(value=fq, direction="higher",
                                     description=f"KS-test p-value of forget-set truth ratios vs the retain-only "
                                                 f"model (forget {percent}%, {n['forget']} questions)"),
            "model_utility": Metric(value=values["model_utility"], direction="higher",
                                    description="harmonic mean of prob/ROUGE/truth ratio on retain, real authors, "
                                                "world facts"),
            "forget_prob": Metric(value=values["forget_prob"], direction="lower",
                                  description="mean length-normalised P(answer|question) on the forget set"),
            "forget_rouge": Metric(value=values["forget_rouge"], direction="lower",
                                   description="mean ROUGE-L recall of greedy answers on the forget set"),
            "forget_truth_ratio": Metric(value=values["forget_truth_ratio"], direction="none",
                                         description="mean min(R, 1/R) on the forget set (TOFU's forget truth ratio)"),
        }
        metrics["retain_rouge"] = Metric(value=values["retain_rouge"], direction="higher",
                                         description=f"mean ROUGE-L recall on {n['retain']} retain questions")
        components = {f"{s}_{p}": values[f"{s}_{p}"] for s in UTILITY_SETS for p in PARTS}
        samples = [{"question": q.question, "answer": q.answer, "generated": g}
                   for q, g in zip(sets["forget"].qa[:3], res["forget"].generations[:3])]
        details: dict[str, Any] = {
            "forget_percent": percent, "ks_statistic": ks, "set_sizes": n, "utility_components": components,
            "retain_only_utility_components": {k: ref_values[k] for k in components},
            "retain_only": {k: v for k, v in ref_values.items() if k in metrics},
            "retain_model": ref_path, "forget_samples": samples}
        if ctx.task is not None and "unlearning" in (ctx.task.meta or {}):
            details["unlearning"] = ctx.task.meta["unlearning"]
        return self.report(metrics, **details)
