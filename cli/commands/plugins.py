"""``splice plugins``: what is installed, by kind, with paper and version."""

from __future__ import annotations

import typer
from rich.table import Table

from splice.registry import get_registry

from ..output import console, emit_json


def plugins(json_: bool = typer.Option(False, "--json", help="Machine-readable output.")) -> None:
    """List installed methods by kind, with their paper and distribution version.

    Example: splice plugins --json
    """
    reg = get_registry()
    rows = [{"kind": e.kind, "name": e.name, "distribution": e.distribution, "version": e.version,
             "paper": e.cls.paper.title if e.cls.paper else "", "arxiv": (e.cls.paper.arxiv or "") if e.cls.paper else "",
             "description": e.cls.describe()} for e in reg.all()]
    failures = [{"plugin": f.plugin, "distribution": f.distribution, "error": f.error} for f in reg.failures]
    if json_:
        emit_json({"methods": rows, "failures": failures})
        return
    table = Table(title="installed methods", title_justify="left")
    for col in ("kind", "name", "distribution", "version", "paper"):
        table.add_column(col, overflow="fold")
    last = None
    for r in rows:
        paper = r["paper"] + (f" (arXiv {r['arxiv']})" if r["arxiv"] else "")
        table.add_row(r["kind"] if r["kind"] != last else "", r["name"], r["distribution"], r["version"], paper)
        last = r["kind"]
    console.print(table)
    for f in failures:
        console.print(f"[red]failed to load[/red] plugin {f['plugin']!r} ({f['distribution']}): {f['error']}")


def register(app: typer.Typer) -> None:
    app.command("plugins")(plugins)
