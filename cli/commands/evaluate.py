"""``splice eval DIR``: reload an artifact and reproduce its stored metrics."""

from __future__ import annotations

import math
from pathlib import Path

import typer
from rich.table import Table

from splice.artifact import load_artifact
from splice.kinds.evaluator import EvalContext
from splice.pipeline import unlearn_task
from splice.progress import set_quiet

from ..output import console, emit_json, fmt


def reproduce(path: Path) -> tuple[list[dict], bool]:
    lm, manifest = load_artifact(path)
    from splice.pipeline import resolve
    from splice.recipe import Recipe

    comp = resolve(Recipe.parse(manifest.recipe))
    task = unlearn_task(comp.recipe.task) if comp.one("unlearner") else None
    base = None
    try:
        from splice.model import load

        base = load(manifest.base_model)
    except Exception:  # the base is optional context; evaluators that need it say so
        base = None
    ctx = EvalContext(base=base, task=task, seed=manifest.seed)
    rows, ok = [], True
    for r in comp.of("evaluator"):
        report = r.method.evaluate(lm, ctx)  # type: ignore[attr-defined]
        stored = manifest.metrics.get("composed", {}).get(r.entry.name, {}).get("metrics", {})
        for metric, m in report.metrics.items():
            old = stored.get(metric, {}).get("value")
            same = old is not None and math.isclose(old, m.value, rel_tol=1e-4, abs_tol=1e-6)
            if not m.timing and not same:
                ok = False
            rows.append({"metric": f"{r.entry.name}.{metric}", "stored": old, "reproduced": m.value,
                         "timing": m.timing, "match": same})
    return rows, ok


def evaluate(path: Path = typer.Argument(..., help="Artifact folder written by compose or train."),
             json_: bool = typer.Option(False, "--json", help="Machine-readable output.")) -> None:
    """Reload an artifact and re-run its evaluators; exit 1 if a stored metric does not reproduce.

    Example: splice eval runs/compose-20261122-101500
    """
    set_quiet(json_)
    rows, ok = reproduce(path)
    if json_:
        emit_json({"artifact": str(path), "reproduced": ok, "metrics": rows})
    else:
        table = Table(title=f"{path}: stored vs reproduced", title_justify="left")
        for col in ("metric", "stored", "reproduced", ""):
            table.add_column(col, justify="right" if col else "left")
        for r in rows:
            mark = "[dim]timing[/dim]" if r["timing"] else ("[green]✓[/green]" if r["match"] else "[red]✗[/red]")
            table.add_row(r["metric"], "—" if r["stored"] is None else fmt(r["stored"]), fmt(r["reproduced"]), mark)
        console.print(table)
        console.print("[green]all metrics reproduced[/green]" if ok else "[red]some metrics did not reproduce[/red]")
    if not ok:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("eval")(evaluate)
