"""Thread control for small workloads.

Small matrices and tiny networks gain nothing from several BLAS/torch threads,
and on a busy machine spinning threads make them 10–40× slower (measured on
the 2-core project machines).  :func:`single_threaded` runs a block on one
thread and restores the previous settings afterwards.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator

__all__ = ["available_cpus", "single_threaded"]


def available_cpus() -> int:
    """CPUs this process may run on (its affinity mask where the OS has one)."""
    affinity = getattr(os, "sched_getaffinity", None)
    return len(affinity(0)) if affinity is not None else os.cpu_count() or 1


@contextlib.contextmanager
def single_threaded(enabled: bool = True) -> Iterator[None]:
    """Limit NumPy's BLAS/OpenMP pools (and torch, if imported) to one thread."""
    if not enabled:
        yield
        return
    from threadpoolctl import threadpool_limits

    torch = sys.modules.get("torch")
    before = torch.get_num_threads() if torch is not None else None
    with threadpool_limits(limits=1):
        if torch is not None:
            torch.set_num_threads(1)
        try:
            yield
        finally:
            if torch is not None and before is not None:
                torch.set_num_threads(before)
