"""Progress bars that show on a terminal and stay quiet otherwise (CI, pipes, --json)."""

from __future__ import annotations

import os
import sys
from contextlib import contextmanager
from typing import Iterator

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

_QUIET = False


def set_quiet(quiet: bool) -> None:
    global _QUIET
    _QUIET = quiet


def enabled() -> bool:
    return not _QUIET and sys.stderr.isatty() and os.environ.get("SPLICE_NO_PROGRESS") != "1"


class _Task:
    def __init__(self, progress: Progress | None, task_id) -> None:
        self._p, self._id = progress, task_id

    def advance(self, n: int = 1, **fields) -> None:
        if self._p is not None:
            self._p.update(self._id, advance=n, **fields)

    def note(self, text: str) -> None:
        if self._p is not None:
            self._p.update(self._id, status=text)


@contextmanager
def progress(description: str, total: int | None) -> Iterator[_Task]:
    if not enabled():
        yield _Task(None, None)
        return
    cols = [TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
            TimeRemainingColumn(), TextColumn("{task.fields[status]}")]
    with Progress(*cols, console=Console(stderr=True), transient=True) as p:
        yield _Task(p, p.add_task(description, total=total, status=""))
