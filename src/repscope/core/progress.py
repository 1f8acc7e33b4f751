"""Progress bars (rich, on stderr so machine-readable stdout stays clean).

Every long-running public function (``compare``, ``grid``, extraction, running
a study) takes ``progress: bool | None = None``: ``None`` shows bars when the
session is interactive (:func:`interactive`: stderr is a terminal, or the code
runs inside IPython or Jupyter), ``True``/``False`` force them on or off.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["in_ipython", "interactive", "new_progress", "progress_bar", "show_progress"]


def in_ipython() -> bool:
    """Whether the code runs inside an IPython shell or a Jupyter kernel.

    Looks only at an IPython already imported (never imports it).
    """
    ipython = sys.modules.get("IPython")
    get = getattr(ipython, "get_ipython", None)
    if get is None:
        return False
    try:
        return get() is not None
    except Exception:  # noqa: BLE001 - a broken IPython is not a session
        return False


def interactive() -> bool:
    """Whether someone is watching: stderr is a terminal, or the session is IPython/Jupyter."""
    isatty = getattr(sys.stderr, "isatty", None)
    try:
        if isatty is not None and isatty():
            return True
    except (OSError, ValueError):  # a closed or detached stream
        pass
    return in_ipython()


def show_progress(progress: bool | None) -> bool:
    """Resolve a ``progress`` argument: ``None`` → :func:`interactive`, else ``bool(progress)``."""
    return interactive() if progress is None else bool(progress)


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

    ``enabled=None`` shows the bar only when the session is :func:`interactive`
    and there is more than one step.
    """
    if enabled is None:
        enabled = interactive() and (total is None or total > 1)
    if not enabled or (total is not None and total <= 0):
        yield lambda k=1: None
        return
    with new_progress() as prog:
        task = prog.add_task(description, total=total)
        yield lambda k=1: prog.advance(task, k)
