"""``splice kernels``: every kernel op, its backends, and which of them can run here."""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import asdict

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table


def _load_plugins() -> None:
    """Import installed plugins so the kernels they register show up too (a plugin that fails to
    load is recorded by the registry and reported by ``splice plugins``)."""
    from splice.registry import get_registry

    get_registry()


def register(app: typer.Typer) -> None:
    """Add the ``kernels`` command to the main app."""

    @app.command("kernels")
    def kernels(
        as_json: bool = typer.Option(False, "--json", help="Print the rows as JSON instead of a table."),
        device: str | None = typer.Option(None, "--device", help="Check availability for this device (default: cuda if visible, else cpu)."),
    ) -> None:
        """List kernel ops and their backends: available here, or why not, and which one runs."""
        # Imported here so the rest of the CLI starts without torch's kernel stack.
        from splice.kernels import KernelSpecError, list_ops, ops
        from splice.kernels.availability import interpreter_enabled
        from splice.kernels.spec import ENV_VAR, env_spec

        _load_plugins()
        rows = list_ops(device)
        spec_text = os.environ.get(ENV_VAR, "")
        unknown: list[str] = []
        with contextlib.suppress(KernelSpecError):  # a malformed spec is reported in every row
            unknown = sorted(set(env_spec().per_op) - {op.name for op in ops()})
        if as_json:
            typer.echo(json.dumps(
                {
                    "splice_kernels": spec_text or None,
                    "triton_interpret": interpreter_enabled(),
                    "unknown_ops_in_spec": unknown,
                    "ops": [asdict(row) for row in rows],
                },
                indent=2,
            ))
            return
        console = Console()
        table = Table(title=f"kernel ops on {rows[0].device if rows else device or 'this machine'}")
        table.add_column("op", style="bold")
        table.add_column("backend")
        table.add_column("priority", justify="right")
        table.add_column("available here")
        table.add_column("runs", justify="center")
        for row in rows:
            for i, b in enumerate(row.backends):
                status = "[green]yes[/green]" if b.available else f"[red]no[/red]: {escape(b.reason or '')}"
                runs = "[bold green]*[/bold green]" if b.name == row.selected else ""
                table.add_row(row.op if i == 0 else "", b.name, str(b.priority), status, runs)
            if row.error:
                table.add_row("", "", "", f"[red]{escape(row.error)}[/red]", "")
            table.add_section()
        console.print(table)
        console.print(
            f"{ENV_VAR}={spec_text or '(unset: best available)'}   "
            f"TRITON_INTERPRET={'1' if interpreter_enabled() else '0'}   "
            "'*' = the backend an ordinary call on this device runs; shape/dtype limits may still "
            "send a call to the reference."
        )
        if unknown:
            console.print(f"[yellow]warning:[/yellow] {ENV_VAR} names ops that are not registered: {', '.join(unknown)}")
