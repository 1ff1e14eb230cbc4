"""``splice check``: run the conformance suite (splice.testing) on installed methods."""

from __future__ import annotations

from collections import Counter

import typer
from rich.table import Table
from splice.method import KINDS
from splice.progress import progress, set_quiet
from splice.testing import CheckResult, all_specs, checks_for

from ..output import console, emit_json

STYLE = {"pass": "[green]pass[/green]", "fail": "[bold red]FAIL[/bold red]", "skip": "[dim]skip[/dim]",
         "error": "[bold red]ERROR[/bold red]"}


def list_checks(json_: bool) -> None:
    specs = all_specs()
    if json_:
        emit_json({k: [{"check": s.name, "description": s.description} for s in v] for k, v in specs.items()})
        return
    table = Table(title="conformance checks by kind", title_justify="left")
    table.add_column("kind")
    table.add_column("check")
    table.add_column("what it verifies", overflow="fold")
    for kind in KINDS:
        for i, s in enumerate(specs[kind]):
            table.add_row(kind if i == 0 else "", s.name, s.description)
    console.print(table)


def results_table(results: list[CheckResult], verbose: bool) -> Table:
    table = Table(title="splice check", title_justify="left")
    for col, kw in (("method", {}), ("kind", {}), ("check", {}), ("result", {}), ("time", {"justify": "right"}),
                    ("detail", {"overflow": "fold"})):
        table.add_column(col, **kw)
    last = None
    for r in results:
        c = r.check
        msg = r.message
        if r.status == "error" and verbose and r.detail:
            msg += "\n" + r.detail.rstrip()
        table.add_row(c.method_name if c.method_name != last else "", c.kind if c.method_name != last else "",
                      c.name, STYLE[r.status], f"{r.seconds:.1f}s", msg, end_section=False)
        last = c.method_name
    return table


def check(
    names: list[str] | None = typer.Argument(None, help="Method or plugin names (a plugin name checks every "
                                                           "method it registers)."),
    kind: str | None = typer.Option(None, "--kind", "-k", help="Only methods of this kind."),
    only: list[str] | None = typer.Option(None, "--check", "-c", help="Run only this check (repeatable)."),
    list_: bool = typer.Option(False, "--list", help="List the checks per kind and exit."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Show tracebacks of checks that crashed."),
    json_: bool = typer.Option(False, "--json", help="Machine-readable results."),
) -> None:
    """Run the conformance suite on installed methods; exit status 1 if any check fails.

    Examples:

      splice check npo

      splice check rtn --check bits --check full_precision

      splice check myquant --json

      splice check --list
    """
    if list_:
        list_checks(json_)
        return
    if not names:
        raise typer.BadParameter("give at least one method or plugin name (or --list)", param_hint="NAMES")
    set_quiet(json_)
    checks = [c for n in names for c in checks_for(n, kind=kind, only=only)]  # unknown names fail here, first
    results: list[CheckResult] = []
    with progress("splice check", len(checks)) as bar:
        for c in checks:
            bar.note(f"{c.method_name}: {c.name}")
            results.append(c.run())
            bar.advance()
    counts = Counter(r.status for r in results)
    failed = counts["fail"] + counts["error"]
    if json_:
        emit_json({"ok": failed == 0, "counts": dict(counts), "results": [r.as_dict() for r in results]})
    else:
        console.print(results_table(results, verbose))
        methods = sorted({r.check.method_name for r in results})
        summary = (f"{len(methods)} method(s), {len(results)} checks: [green]{counts['pass']} passed[/green], "
                   f"{counts['skip']} skipped, "
                   + (f"[bold red]{failed} failed[/bold red]" if failed else "0 failed"))
        console.print(summary)
    if failed:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("check")(check)
