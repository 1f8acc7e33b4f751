"""Progress bars (rich, on stderr so machine-readable stdout stays clean)."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["new_progress", "progress_bar"]


def new_progress(enabled: bool = True) -> Any:
    """A ``rich.progress.Progress`` with repscope's columns, drawing on stderr."""
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    return Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        disable=not enabled,
        transient=False,
    )


@contextmanager
def progress_bar(
    total: int | None, description: str, enabled: bool | None = True
) -> Iterator[Callable[[int], None]]:
    """Yield ``advance(k=1)`` for a single-task bar; a no-op when disabled.

    ``enabled=None`` shows the bar only when stderr is a terminal and there is
    more than one step.
    """
    if enabled is None:
        enabled = bool(getattr(sys.stderr, "isatty", lambda: False)()) and (
            total is None or total > 1
        )
    if not enabled or (total is not None and total <= 0):
        yield lambda k=1: None
        return
    with new_progress() as prog:
        task = prog.add_task(description, total=total)
        yield lambda k=1: prog.advance(task, k)
