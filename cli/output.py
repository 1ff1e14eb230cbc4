"""How the CLI talks: rich tables for people, JSON for scripts, one-line errors."""

from __future__ import annotations

import json
import sys
from typing import Any

from rich.console import Console
from rich.table import Table

console = Console()
err_console = Console(stderr=True)


def emit_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


def human_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if abs(n) < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.2f} {unit}"
        n /= 1024
    return str(n)


def fmt(value: float) -> str:
    if value == 0:
        return "0"
    if abs(value) >= 1e4 or abs(value) < 1e-3:
        return f"{value:.4g}"
    return f"{value:.4f}".rstrip("0").rstrip(".") if abs(value) < 10 else f"{value:.2f}"


def change(base: float, new: float, direction: str) -> str:
    if base == 0 or direction == "none":
        return ""
    rel = (new - base) / abs(base)
    better = (rel < 0) if direction == "lower" else (rel > 0)
    if abs(rel) < 5e-4:
        return "[dim]=[/dim]"
    colour = "green" if better else "red"
    return f"[{colour}]{rel:+.1%}[/{colour}]"


def side_by_side(title: str, rows: list[tuple], extra: str | None = None) -> Table:
    """rows: (label, baseline, composed, direction, unit[, extra]); ``extra`` names an optional
    column of reference figures shown after "composed" (e.g. an unlearning evaluation's retain-only model)."""
    table = Table(title=title, title_justify="left")
    table.add_column("metric")
    table.add_column("baseline", justify="right")
    table.add_column("composed", justify="right")
    if extra:
        table.add_column(extra, justify="right")
    table.add_column("change", justify="right")
    for label, base, new, direction, unit, *ref in rows:
        def show(v):
            if v is None:
                return "—"
            return human_bytes(v) if unit == "bytes" else fmt(v)
        arrow = {"lower": " ↓", "higher": " ↑"}.get(direction, "")
        cells = [label + arrow, show(base), show(new)] + ([show(ref[0] if ref else None)] if extra else [])
        table.add_row(*cells, change(base, new, direction) if base is not None and new is not None else "")
    return table
