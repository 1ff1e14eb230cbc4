"""The baseline-vs-composed view of a ComposeResult, as a table or JSON."""

from __future__ import annotations

from typing import Any

from rich.table import Table

from ..output import side_by_side

FOOTPRINT = [("parameter bytes", "parameter_bytes", "lower", "bytes"),
             ("bits per weight", "bits_per_weight", "lower", ""),
             ("KV-cache bytes (512 tok)", "kv_cache_bytes", "lower", "bytes")]


def result_table(result) -> Table:
    rows = []
    extra = None
    for name, rep in result.composed.items():
        base = result.baseline.get(name)
        # evaluators of unlearning report their reference model's figures as details["retain_only"]
        ref = rep.details.get("retain_only") if isinstance(rep.details.get("retain_only"), dict) else {}
        extra = extra or ("retain-only" if ref else None)
        for metric, m in rep.metrics.items():
            b = base.metrics[metric].value if base and metric in base.metrics else None
            rows.append((f"{name}.{metric}", b, m.value, m.direction, "", ref.get(metric)))
    for label, key, direction, unit in FOOTPRINT:
        rows.append((label, result.footprint.get("baseline", {}).get(key), result.footprint["composed"][key],
                     direction, unit))
    steps = " + ".join(f"{r.kind} {r.entry.name}" for r in result.composition.resolved if r.kind != "evaluator")
    return side_by_side(f"{result.composition.recipe.model}: {steps or 'no change'}", rows, extra)


def result_json(result) -> dict[str, Any]:
    return {"recipe": result.composition.recipe.to_toml_dict(),
            "baseline": {k: v.model_dump() for k, v in result.baseline.items()},
            "composed": {k: v.model_dump() for k, v in result.composed.items()},
            "footprint": result.footprint, "timings": result.timings}
