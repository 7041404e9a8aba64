"""Progress while syncing: a rich live line on a terminal, silence in cron and CI."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn


@contextmanager
def progress_reporter(force: bool | None = None) -> Iterator[Callable[[str], None] | None]:
    """Yields a callback that shows the current step, or None when stderr is not a terminal."""
    interactive = sys.stderr.isatty() if force is None else force
    if not interactive:
        yield None
        return
    columns = (SpinnerColumn(), TextColumn("[bold]sync[/] {task.description}"), TimeElapsedColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as progress:
        task = progress.add_task("starting", total=None)
        yield lambda message: progress.update(task, description=message)
