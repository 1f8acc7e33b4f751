"""Recording warnings per computation, also when computations run in threads.

:class:`capture_warnings` records every warning raised inside it, so result
rows can carry the degeneracy warnings of the measure that produced them.

Python's :class:`warnings.catch_warnings` swaps process-wide state (the filter
list and ``warnings.showwarning``): two threads using it at once record each
other's warnings or lose them.  :func:`route_warnings` makes capture per
thread for the duration of a parallel section: the thread that starts the
section sets the filters to ``"always"`` once and installs a dispatcher that
hands each warning to the innermost :class:`capture_warnings` of the thread
that raised it (warnings of threads without one go to the handler in force
before).  Inside that section :class:`capture_warnings` only pushes a list on
a thread-local stack.  Code run in such threads must record or silence
warnings with :class:`capture_warnings`, never with ``catch_warnings``.
"""

from __future__ import annotations

import contextlib
import threading
import warnings
from collections.abc import Iterator
from typing import Any

__all__ = ["capture_warnings", "route_warnings"]

_local = threading.local()
_state_lock = threading.Lock()
#: nesting depth of :func:`route_warnings` sections (0: plain ``catch_warnings``)
_routing = 0


def _stack() -> list[list[warnings.WarningMessage]]:
    stack: list[list[warnings.WarningMessage]] | None = getattr(_local, "stack", None)
    if stack is None:
        stack = _local.stack = []
    return stack


class capture_warnings:
    """Context manager recording every warning raised inside it.

    ``messages`` lists them once each as ``"Category: message"`` in order of
    first appearance, so degeneracy warnings of the core library can be shown
    in result tables instead of being printed and lost.  Captures nest: a
    warning goes to the innermost one.  Thread-safe inside :func:`route_warnings`.
    """

    def __init__(self) -> None:
        self._cm: Any = None
        self._records: list[warnings.WarningMessage] = []

    def __enter__(self) -> capture_warnings:
        if _routing:
            self._records = []
            _stack().append(self._records)
            return self
        self._cm = warnings.catch_warnings(record=True)
        self._records = self._cm.__enter__()
        warnings.simplefilter("always")
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._cm is None:
            stack = _stack()
            if stack and stack[-1] is self._records:
                stack.pop()
            return
        cm, self._cm = self._cm, None
        cm.__exit__(*exc)

    @property
    def messages(self) -> list[str]:
        seen: dict[str, None] = {}
        for r in self._records:
            seen.setdefault(f"{r.category.__name__}: {r.message}", None)
        return list(seen)


@contextlib.contextmanager
def route_warnings() -> Iterator[None]:
    """Make :class:`capture_warnings` per thread until the block ends.

    Enter it in the thread that starts the worker threads, before they start,
    and leave it after they have finished.  Nested sections are no-ops.
    """
    global _routing
    with _state_lock:
        outer = _routing > 0
        _routing += 1
    if outer:
        try:
            yield
        finally:
            with _state_lock:
                _routing -= 1
        return
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("always")
            previous = warnings.showwarning

            def dispatch(message: Warning | str, category: type[Warning], filename: str,
                         lineno: int, file: Any = None, line: str | None = None) -> None:
                stack = getattr(_local, "stack", None)
                if stack:
                    stack[-1].append(warnings.WarningMessage(message, category, filename,
                                                             lineno, file, line))
                else:
                    previous(message, category, filename, lineno, file, line)

            warnings.showwarning = dispatch
            yield
    finally:
        with _state_lock:
            _routing -= 1
