"""Run grid tasks in this process: one prepare-key group at a time, pairs optionally in threads."""
from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from repscope.core.arrays import is_torch
from repscope.core.errors import InvalidParameterError
from repscope.core.threads import available_cpus, single_threaded
from repscope.core.warning_capture import capture_warnings, route_warnings
from repscope.engine.compare import (
    RECORDED_ERRORS,
    error_text,
    evaluate_prepared,
    shared_prepare_key,
)
from repscope.engine.cross_moments import CrossMoments, batch_partners, with_table
from repscope.engine.tasks import (
    Emit,
    RepKey,
    Task,
)
from repscope.inference.options import Stats
from repscope.measures.base import Measure, Prepared
from repscope.storage.results_db import ResultKey


# ------------------------------------------------------------------ execution
def group_tasks(tasks: Sequence[Task]) -> list[list[Task]]:
    """Tasks split by shared prepare key, groups and tasks in their original order."""
    groups: dict[Any, list[Task]] = {}
    for t in tasks:
        groups.setdefault(shared_prepare_key(t.m), []).append(t)
    return list(groups.values())


def prepare_names(tasks: Sequence[Task]) -> dict[ResultKey, tuple[str, str]]:
    """Per task, the names (``"X"``/``"Y"``) its representations are prepared under.

    A representation is prepared once per prepare-key group, under the role of
    its first appearance in the group (error messages name it so); a subset of
    the tasks computed elsewhere (a Dask block) uses these names to give the
    same rows.
    """
    out: dict[ResultKey, tuple[str, str]] = {}
    for group in group_tasks(tasks):
        role: dict[RepKey, str] = {}
        for t in group:
            role.setdefault(t.a, "X")
            role.setdefault(t.b, "Y")
        for t in group:
            out[t.key] = (role[t.a], role[t.b])
    return out


def run_tasks(
    tasks: Sequence[Task],
    load: Callable[[RepKey], Any],
    widths: Mapping[RepKey, int],
    n: int,
    *,
    stats: Stats,
    seed: int,
    on_error: str,
    emit: Emit,
    table: CrossMoments | None = None,
    names: Mapping[ResultKey, tuple[str, str]] | None = None,
    threads: int = 1,
) -> None:
    """Compute ``tasks`` in this process, one prepare-key group at a time.

    ``load(key)`` returns a representation's array (read once per group);
    ``emit(task, row)`` receives each row, in task order, as soon as it and the
    rows before it are computed; ``table`` batches and shares cross products;
    ``names`` (default :func:`prepare_names` of ``tasks``) fixes the name each
    representation is prepared under; ``threads > 1`` evaluates the pairs of a
    group whose measures are all :attr:`~repscope.measures.base.Measure.thread_safe`
    in that many threads (see :func:`grid`).  Used by :func:`grid` and, on
    each worker, by :mod:`repscope.engine.distributed`.
    """
    names = prepare_names(tasks) if names is None else names
    for group in group_tasks(tasks):
        k = threads if threads > 1 and all(t.m.thread_safe for t in group) else 1
        _run_group(group, load, widths, n, stats, seed, on_error, emit, table, names, k)


def _run_group(
    group: list[Task],
    load: Callable[[RepKey], Any],
    widths: Mapping[RepKey, int],
    n: int,
    st: Stats,
    seed: int,
    on_error: str,
    emit: Emit,
    table: CrossMoments | None,
    names: Mapping[ResultKey, tuple[str, str]],
    threads: int = 1,
) -> None:
    """Compute one prepare-key group: each representation prepared once, reused by all pairs.

    With ``threads > 1`` the representations are prepared, then the pairs
    evaluated, by a pool of that many threads, each running one-threaded BLAS
    (small matrix problems do not speed up with more BLAS threads, but several
    of them run side by side); warnings are recorded per thread
    (:func:`repscope.core.warning_capture.route_warnings`).  Rows are the same as
    sequentially, to rounding (one-threaded BLAS sums in another order).
    """
    prepared: dict[RepKey, tuple[Prepared, list[str]] | str | BaseException] = {}
    origin: dict[RepKey, Any] = {}  # traceback of each preparation error
    preparer = group[0].m
    role: dict[RepKey, str] = {}
    for t in group:
        na, nb = names.get(t.key, ("X", "Y"))
        role.setdefault(t.a, na)
        role.setdefault(t.b, nb)

    def prepare(k: RepKey) -> tuple[Prepared, list[str]] | str | BaseException:
        try:
            with capture_warnings() as cw:
                p = preparer.prepare(load(k), role[k])
        except RECORDED_ERRORS as exc:
            # with on_error="raise" the error is raised by the first task that needs it
            return exc if on_error == "raise" else f"{k[0]}/{k[1]}: {error_text(exc)}"
        if table is not None:
            table.register(k, p)
        return (p, cw.messages)

    def get(k: RepKey) -> tuple[Prepared, list[str]] | str:
        if k not in prepared:
            prepared[k] = prepare(k)
        entry = prepared[k]
        if isinstance(entry, BaseException):  # raised again by each task that needs it:
            raise entry.with_traceback(origin.setdefault(k, entry.__traceback__))  # keep one
        return entry

    def own_error(m: Measure, k: RepKey, shared: str) -> str:
        """The preparation error in ``m``'s own words (the group's preparer may be another
        measure of the same prepare key, whose name its message carries)."""
        if m is preparer or m.info.name == preparer.info.name:
            return shared
        try:
            m.prepare(load(k), role[k])
        except RECORDED_ERRORS as exc:
            return f"{k[0]}/{k[1]}: {error_text(exc)}"
        return shared

    wrapped: dict[int, Measure] = {}
    for t in group:
        if id(t.m) not in wrapped:
            wrapped[id(t.m)] = with_table(t.m, table)

    def evaluate(t: Task) -> dict[str, Any]:
        ea, eb = get(t.a), get(t.b)
        t0 = time.perf_counter()
        if isinstance(ea, str) or isinstance(eb, str):
            errors = [own_error(t.m, k, e) for k, e in ((t.a, ea), (t.b, eb))
                      if isinstance(e, str)]
            return {
                "measure": t.m.info.name, "params": dict(t.m.params), "kind": t.m.info.kind,
                "n": t.key.n, "warnings": (), "error": "; ".join(errors),
                "seconds": time.perf_counter() - t0,
            }
        (pa, wa), (pb, wb) = ea, eb
        return evaluate_prepared(wrapped[id(t.m)], pa, pb, stats=st, seed=seed,
                                 warnings=[*wa, *wb], on_error=on_error)

    if table is not None:
        table.begin_group(batch_partners(group, widths, n), get)
    try:
        if threads <= 1:
            for t in group:
                emit(t, evaluate(t))
            return
        keys = list(role)
        with single_threaded(), route_warnings(), \
                ThreadPoolExecutor(threads, thread_name_prefix="repscope-grid") as pool:
            try:
                for k, entry in zip(keys, pool.map(prepare, keys)):
                    prepared[k] = entry
                futures = {id(t): pool.submit(evaluate, t) for t in _spread(group)}
                for t in group:
                    emit(t, futures[id(t)].result())
            except BaseException:
                pool.shutdown(wait=True, cancel_futures=True)
                raise
    finally:
        if table is not None:
            table.end_group()


#: largest ``n · d_max²`` (flops of one cross product, halved) for which :func:`grid` runs
#: pairs in parallel threads by default; beyond it BLAS threads pay off within each pair
PAIR_THREADS_MAX_WORK = 2**31

#: largest n for which :func:`grid` runs pairs in parallel threads by default (n × n
#: matrices such as RDMs, one per thread at a time)
PAIR_THREADS_MAX_N = 16384


def pair_threads(reps: Mapping[RepKey, Any], n: int, widths: Mapping[RepKey, int],
                 threads: int | None = None) -> int:
    """Threads :func:`grid` evaluates pairs with (``threads`` checked, or the default).

    The default is one per CPU available to the process, at most 8, for NumPy
    inputs (torch tensors use torch's own threads or a GPU) when each pair is
    small — ``n · max(d)² ≤`` :data:`PAIR_THREADS_MAX_WORK` and
    ``n ≤`` :data:`PAIR_THREADS_MAX_N` — where one-threaded BLAS calls side
    by side beat one multi-threaded call at a time (eigen- and singular value
    problems of a few hundred columns gain nothing from more BLAS threads);
    else 1.
    """
    if threads is not None:
        if isinstance(threads, bool) or not isinstance(threads, (int, np.integer)) or threads < 1:
            raise InvalidParameterError(f"threads must be a positive int or None, got {threads!r}")
        return int(threads)
    cpus = available_cpus()
    if cpus < 2 or len(reps) < 2 or any(is_torch(a) for a in reps.values()):
        return 1
    dmax = max(widths.values())
    if n > PAIR_THREADS_MAX_N or n * dmax * dmax > PAIR_THREADS_MAX_WORK:
        return 1
    return min(cpus, 8)


def _spread(group: Sequence[Task]) -> list[Task]:
    """The tasks of a group in an order where neighbours share no representation.

    Per measure, pairs go along the diagonals of the (first key × second key)
    table: ``(a₁,b₁), (a₂,b₂), …, (a₁,b₂), (a₂,b₃), …``, so threads that take
    consecutive tasks rarely wait for the same representation's cached factors.
    """
    index_a: dict[RepKey, int] = {}
    index_b: dict[RepKey, int] = {}
    index_m: dict[int, int] = {}
    for t in group:
        index_a.setdefault(t.a, len(index_a))
        index_b.setdefault(t.b, len(index_b))
        index_m.setdefault(id(t.m), len(index_m))
    nb = len(index_b)
    return sorted(group, key=lambda t: (index_m[id(t.m)], (index_b[t.b] - index_a[t.a]) % nb,
                                        index_a[t.a]))
