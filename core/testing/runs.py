"""Running a method the way the pipeline does, once per kind, for the checks that compare runs
(determinism) and for compose/artifact round-trips."""

from __future__ import annotations

import math
import tempfile
from pathlib import Path
from typing import Any

import torch

from ..artifact import load_artifact, read_manifest, save_artifact
from ..install import install_activation, install_attention
from ..kinds.attention import AttentionMethod
from ..kinds.evaluator import EvalContext, Report
from ..kinds.quantizer import QuantizerMethod
from ..model import LanguageModel
from ..recipe import CalibrationSpec, Recipe, Step, TaskSpec
from .base import CheckFailed, Subject
from .fixtures import (
    CALIBRATION,
    COMPOSE_PARTNERS,
    SEED,
    calibration_windows,
    logits,
    max_diff,
    tiny,
    token_batch,
    unlearn_task,
)

STEP_OF_KIND = {"attention": "attn", "activation": "act", "unlearner": "unlearn", "quantizer": "quant"}


def calibrates(method: Any) -> bool:
    return type(method).calibrate is not AttentionMethod.calibrate


def non_timing(report: Report) -> dict[str, float]:
    return {k: m.value for k, m in report.metrics.items() if not m.timing}


@torch.no_grad()
def prefill_logits(lm: LanguageModel, context_len: int = 32, query_len: int = 8) -> torch.Tensor:
    """The fixed-context workflow: prefill a context, then score a query on a fork of the cache."""
    ids = token_batch(1, context_len + query_len, offset=3)
    cache = lm.model.prefill(ids[:, :context_len])
    return lm.model(ids[:, context_len:], cache=cache.fork()).logits


def exercise(subject: Subject, seed: int = SEED, **overrides: Any) -> dict[str, Any]:
    """Apply the method to a fresh tiny with a fixed seed, as compose would; what it produced."""
    torch.manual_seed(seed)
    kind = subject.kind
    method = subject.method(**overrides)
    lm = tiny()
    if kind == "attention":
        install_attention(lm.model, method)
        if calibrates(method):
            method.calibrate(lm, calibration_windows())
        return {"logits": logits(lm), "prefill": prefill_logits(lm)}
    if kind == "activation":
        install_activation(lm.model, method)
        return {"logits": logits(lm)}
    if kind == "quantizer":
        method.quantize(lm, calibration_windows())
        return {"logits": logits(lm), "state": lm.model.state_dict()}
    if kind == "unlearner":
        task = unlearn_task(reference=frozen_reference())
        out = method.unlearn(lm, task)
        lm = out if isinstance(out, LanguageModel) else lm
        return {"logits": logits(lm)}
    if kind == "evaluator":
        ctx = EvalContext(base=tiny(), task=unlearn_task(), seed=seed)
        report = method.evaluate(lm, ctx)
        return {"metrics": non_timing(report)}
    raise CheckFailed(f"kind {kind!r} has no runs")


def frozen_reference() -> LanguageModel:
    ref = tiny()
    ref.model.requires_grad_(False).eval()
    return ref


def compare_runs(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    """Names (and max differences) of the outputs that differ between two runs; [] = identical."""
    diffs = []
    for key, x in a.items():
        y = b[key]
        if isinstance(x, torch.Tensor):
            if x.shape != y.shape or not torch.equal(x, y):
                diffs.append(f"{key} (max |Δ| {max_diff(x, y):.3g})" if x.shape == y.shape else f"{key} (shape)")
        elif isinstance(x, dict) and all(isinstance(v, torch.Tensor) for v in x.values()):
            bad = [k for k in x if k not in y or x[k].shape != y[k].shape or not torch.equal(x[k], y[k])]
            if bad or set(x) != set(y):
                diffs.append(f"{key}: {', '.join(bad[:3]) or 'different keys'}")
        elif isinstance(x, dict):
            bad = [k for k in x if k not in y or not (x[k] == y[k] or (math.isnan(x[k]) and math.isnan(y[k])))]
            if bad or set(x) != set(y):
                diffs.append(f"{key}: " + ", ".join(f"{k} {x.get(k)} vs {y.get(k)}" for k in bad[:3]))
    return diffs


# -- compose and artifacts -----------------------------------------------------------------------
def recipe_for(subject: Subject, partners: bool) -> Recipe:
    """A recipe with the method under test (its check options) and, with ``partners``, the
    built-ins of every other kind at small settings (COMPOSE_PARTNERS)."""
    data: dict[str, Any] = {"model": "tiny", "seed": SEED, "task": TaskSpec(forget_percent=1).model_dump(),
                            "calibration": CalibrationSpec(**CALIBRATION).model_dump(), "eval": []}
    name, options = subject.cls.name, subject.options()
    if partners:
        for kind, (partner, popts) in COMPOSE_PARTNERS.items():
            if kind == subject.kind:
                continue
            if kind == "evaluator":
                data["eval"].append({"name": partner, "options": popts})
            else:
                data[STEP_OF_KIND[kind]] = {"name": partner, "options": popts}
    if subject.kind == "evaluator":
        data["eval"].append({"name": name, "options": options})
    else:
        data[STEP_OF_KIND[subject.kind]] = {"name": name, "options": options}
    data["eval"] = [Step(**s).model_dump() for s in data["eval"]]
    return Recipe.parse(data, "conformance recipe")


def compose_and_reload(subject: Subject, partners: bool, baseline: bool = False) -> str:
    """compose -> save_artifact -> load_artifact; the reloaded model must give identical logits and
    the manifest must hold every evaluator's report unchanged."""
    from ..pipeline import compose

    recipe = recipe_for(subject, partners)
    torch.manual_seed(SEED)
    result = compose(recipe, registry=subject.registry, lm=tiny(), baseline=baseline)
    out = result.lm
    before = logits(out)
    if not torch.isfinite(before).all():
        raise CheckFailed("the composed model gives non-finite logits")
    pre_before = prefill_logits(out)
    with tempfile.TemporaryDirectory(prefix="splice-check-") as tmp:
        path = save_artifact(result, Path(tmp) / "artifact")
        manifest = read_manifest(path)
        loaded, _ = load_artifact(path, registry=subject.registry)
    after = logits(loaded)
    if before.shape != after.shape or not torch.equal(before, after):
        raise CheckFailed("logits of the reloaded artifact differ from the composed model's "
                          f"(max |Δ| {max_diff(before, after):.3g}): state that is not saved, or a "
                          "structure that build/prepare does not rebuild")
    pre_after = prefill_logits(loaded)
    if not torch.equal(pre_before, pre_after):
        raise CheckFailed("after reloading the artifact, the prefill (fixed-context) workflow gives other "
                          f"logits (max |Δ| {max_diff(pre_before, pre_after):.3g})")
    names = [(p.kind, p.name) for p in manifest.plugins]
    if (subject.kind, subject.cls.name) not in names:
        raise CheckFailed(f"the artifact's manifest does not record {subject.kind} {subject.cls.name!r}")
    for ev, report in result.composed.items():
        stored = Report.model_validate(manifest.metrics["composed"][ev])
        if stored.metrics != report.metrics or stored.model_dump_json() != report.model_dump_json():
            raise CheckFailed(f"evaluator {ev!r}: the report stored in the manifest differs after reloading")
    steps = ", ".join(f"{k} {s.name}" for k, s in recipe.steps())
    return f"{steps}; reloaded logits identical"


def is_quantizer(subject: Subject) -> bool:
    return issubclass(subject.cls, QuantizerMethod)
