"""All-pairs comparisons of many representations: :func:`grid`.

::

    reps = {("mlp_seed0", "fc1"): A1, ("mlp_seed0", "fc2"): A2,
            ("mlp_seed1", "fc1"): B1, ("mlp_seed1", "fc2"): B2}
    table = repscope.grid(reps, measures=["cka", "procrustes"], db="results.sqlite")

Amortisation
------------
Every representation is prepared once per distinct :meth:`Measure.prepare_key`
and the prepared object is reused for all its pairs; measures are processed
one prepare-key group at a time, so memory holds one prepared copy of each
representation at a time.  Lazy arrays (anything with ``__array__`` and
``shape``, e.g. Zarr arrays from :mod:`repscope.storage.activation_store`) are read only when a
group that needs them is computed.

Cross terms are batched and shared (:class:`CrossMoments`).  A second-moment
measure (:class:`~repscope.measures.moment_measure.MomentMeasure`) that takes the
feature path for a pair needs the centred cross product ``X̃ₐᵀX̃_b``
(n·dₐ·d_b flops, its main per-pair cost besides a d × d decomposition).  The
grid computes the cross products of one representation with all its partners
in one GEMM, ``X̃ₐᵀ [X̃_b₁ X̃_b₂ … X̃_bₖ]`` (the partners' centred columns
concatenated), and keeps them — within a memory budget — for every other
second-moment measure of the grid (CKA, HSIC, the CCA family, Procrustes and
shape metrics, NBS/Bures, regression R² all share one ``X̃ₐᵀX̃_b`` per pair and
precision); the reverse order of an asymmetric measure uses the transpose.
Quantities derived from a cross product that several measures need are
memoised per pair as well (:meth:`CrossMoments.memo`: the nuclear norm
``‖X̃ₐᵀX̃_b‖_*`` behind the Procrustes distances, NBS and Bures), and
per-representation factors (whitening for CCA and regression, PCA bases for
SVCCA/PWCCA, Gram matrices) are cached in the prepared objects.  A
pair for which the measure itself prefers the Gram path (n × n, cheaper when
n is small relative to d, see :meth:`MomentMeasure.use_gram`) is not batched:
its per-representation centred Gram matrix is cached in the prepared object and
the pair costs only O(n²).  The batched products multiply the cached centred
float64 copies of the partners, concatenated
(:meth:`MomentMeasure.compute_cross_many`), so every value equals the
single-pair call ``repscope.measure(name)(X, Y)`` to rounding (≈ 1e-15
relative; only a measure that is itself ill-conditioned at the input, e.g.
PWCCA with repeated canonical correlations, turns such rounding into a visible
change, as it would a change of BLAS threads); a batch that raises a warning or
error is discarded and the pair is computed on its own, so warnings and errors
land in the right row.  Products of the float32 mixed-precision path are
computed pair by pair (a float32 GEMM rounds differently when its operands are
concatenated) and only shared; with pairs evaluated in threads (``threads``)
the float32 GEMMs run one-threaded and may round differently from a
multi-threaded single-pair call (~1e-9 relative, within the mixed-precision
error of ~1e-7).

Execution
---------
``executor="local"`` (the default outside a Dask context) runs everything in
this process.  ``executor="dask"``, ``client=...`` or an active
:func:`repscope.engine.distributed.dask_client` context runs the pair × measure tasks
on a Dask cluster (see :mod:`repscope.engine.distributed`); rows are written by this
process as they arrive.  With a results database every finished row is
committed at once and rows already stored are skipped, so an interrupted grid
resumes where it stopped, whichever executor ran it.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from repscope.core.errors import InvalidParameterError
from repscope.core.progress import progress_bar
from repscope.engine.compare import (
    add_chance,
    check_on_error,
    error_row,
    plan_pair,
    planned_row,
    resolve_measures,
)
from repscope.engine.cross_moments import CrossMoments
from repscope.engine.local import pair_threads, run_tasks
from repscope.engine.table import FIGURE_FAMILY, ResultTable
from repscope.engine.tasks import (
    Task,
    array_shape,
    check_sizes,
    flatten_representations,
    materialise,
    pair_list,
    row_for,
)
from repscope.inference.heldout import stats_for
from repscope.inference.options import Stats
from repscope.measures.planning import Plan
from repscope.storage.results_db import ResultKey, ResultsDB, canonical_json

#: ways to run a grid (``None``: Dask inside
#: :func:`repscope.engine.distributed.dask_client`, else local)
EXECUTORS = ("local", "dask")

#: what a grid computes for fitted measures (those with a held-out form)
FITTED_MODES = ("heldout", "in_sample")


def _resolve_client(executor: str | None, client: Any) -> Any:
    """The Dask client to run on, or ``None`` for in-process execution."""
    if executor is not None and executor not in EXECUTORS:
        raise InvalidParameterError(f"executor must be one of {EXECUTORS} or None, got "
                                    f"{executor!r}")
    if client is not None:
        if executor == "local":
            raise InvalidParameterError("client= runs the grid on Dask; drop executor='local'")
        return client
    if executor == "local":
        return None
    from repscope.engine import dask_clients

    if executor == "dask":
        return dask_clients.current_client(required=True)
    return dask_clients.active_client()


def grid(
    representations: Mapping[Any, Any],
    measures: Any = None,
    *,
    stats: Any = None,
    pairs: Any = "cross",
    db: ResultsDB | str | Path | None = None,
    dataset: str = "",
    seed: int = 0,
    on_error: str = "record",
    retry_errors: bool = False,
    progress: bool | None = None,
    executor: str | None = None,
    client: Any = None,
    chunk_rows: int | None = None,
    threads: int | None = None,
    fitted: str = "heldout",
    chance: bool = True,
    memory: Any = None,
) -> ResultTable:
    """Compare every pair of representations with every measure.

    Parameters
    ----------
    representations : mapping
        ``{(model, layer): array}`` or ``{model: {layer: array}}``; arrays are
        (n, d) with the same n and the same row order (NumPy, torch, or lazy
        arrays with ``shape`` and ``__array__``).  Layers are ``str`` or ``int``.
    measures : see :func:`repscope.engine.compare.resolve_measures`.
    stats : see :meth:`repscope.inference.options.Stats.parse`.  With
        permutation tests, each figure of the grid — the layer pairs of one
        measure and one ordered model pair — is a family of tests: the number
        of permutations rises to the smallest ``m`` whose floor
        ``1/(m + 1)`` lies below ``q / F`` for the largest family ``F``
        (:meth:`~repscope.inference.options.Stats.for_family`, capped by
        ``max_permutations``), and the returned table carries adjusted p-values
        per family (``p_adjusted``, ``significance``, ``family``).
    pairs : ``"cross"`` (default: layers of different models), ``"within"``
        (layer pairs inside each model), ``"all"``, or a list of
        ``(key_a, key_b)``.  Asymmetric measures are computed in both orders.
    db : :class:`~repscope.storage.results_db.ResultsDB` or a path; rows are written as
        they finish and rows already stored are skipped.
    dataset : name of the inputs, part of each row's key.
    seed : seed of every resampling statistic (recorded per row).
    on_error : ``"record"`` (a failing measure gets an ``error`` row) or ``"raise"``.
    retry_errors : recompute stored rows that hold an error.
    progress : show a progress bar (on stderr); ``None`` (default): when the session is
        interactive (stderr is a terminal, or IPython/Jupyter).
    executor : ``None`` (default: Dask inside a
        :func:`repscope.engine.distributed.dask_client` context, else in-process),
        ``"local"`` or ``"dask"`` (the client of that context, else Dask's
        default client).
    client : a ``distributed.Client`` to run on (implies ``executor="dask"``).
    chunk_rows : rows per chunk when Dask workers accumulate second moments
        (default: about 64 MiB of float64 per chunk, aligned to Zarr chunks).
    threads : in-process execution only: evaluate this many pairs at once in
        threads, each with one-threaded BLAS (used for groups of thread-safe
        measures: second-moment measures and RSA).  Default ``None``: one per
        CPU available to this process (at most 8) when the inputs are NumPy
        arrays and every pair is small (:func:`pair_threads`), else 1, i.e.
        every pair in turn with multi-threaded BLAS.
    fitted : ``"heldout"`` (default) or ``"in_sample"``.  Fitted measures (the
        CCA family and linear regression, :func:`repscope.inference.heldout.heldout_measures`)
        approach 1 as ``d → n`` in-sample even for unrelated data, so by default
        their rows also get the held-out value (``heldout`` column, one random
        split, the statistic's ``test_fraction``; not when ``n`` is too small to
        split into parts of 3), which reports present in their place;
        ``"in_sample"`` computes it only if ``stats`` asks.
    chance : add each row's chance level at its shape (:mod:`repscope.inference.chance`):
        columns ``chance`` and, for rows without a permutation null, ``calibrated``;
        a warning when unrelated data of that shape would already score high.
    memory : the memory budget each measure plans within for each pair, as in
        :func:`repscope.compare` (column ``path``: ``exact``, ``exact-blocked`` or
        ``estimated``; refusals are recorded errors).  Pairs beyond the exact in-memory
        path run one after the other in this process, reading only the rows they need.

    Returns
    -------
    ResultTable
        Every requested row (computed now or read from ``db``), with the pair
        columns ``dataset, model_a, layer_a, model_b, layer_b`` first.
    """
    check_on_error(on_error)
    if not isinstance(dataset, str):
        raise InvalidParameterError(f"dataset must be a str, got {dataset!r}")
    if chunk_rows is not None and (isinstance(chunk_rows, bool) or not isinstance(
            chunk_rows, (int, np.integer)) or chunk_rows < 1):
        raise InvalidParameterError(f"chunk_rows must be a positive int, got {chunk_rows!r}")
    if fitted not in FITTED_MODES:
        raise InvalidParameterError(f"fitted must be one of {FITTED_MODES}, got {fitted!r}")
    reps = flatten_representations(representations)
    n = check_sizes(reps)
    ms = resolve_measures(measures)
    st = Stats.parse(stats)
    if fitted == "heldout" and _splits(n, st.test_fraction):
        st = replace(st, heldout=True)  # computed for the measures with a held-out form only
    seed = int(seed)
    plist = pair_list(list(reps), pairs)
    measure_orders = [(m, plist if m.info.symmetric else
                       [o for a, b in plist for o in ((a, b), (b, a))]) for m in ms]
    st = st.for_family(_largest_family(measure_orders))
    dask_client = _resolve_client(executor, client)
    widths = {k: array_shape(a)[1] for k, a in reps.items()}
    n_threads = pair_threads(reps, n, widths, threads)

    own_db = db is not None and not isinstance(db, ResultsDB)
    database: ResultsDB | None = ResultsDB(db) if own_db else db  # type: ignore[arg-type]
    try:
        done = (database.done_keys(include_errors=not retry_errors)
                if database is not None else set())
        tasks: list[Task] = []
        planned: list[tuple[Task, Plan | str]] = []  # pairs beyond the exact in-memory path
        all_keys: list[ResultKey] = []
        seen: set[ResultKey] = set()
        for m, orders in measure_orders:
            params_json = canonical_json(m.params)
            stats_key = stats_for(st, m).as_key()
            for a, b in orders:
                plan = plan_pair(m, reps[a], reps[b], memory, on_error)
                # a blocked or estimated row is stored under its path, so that a run with
                # a budget that fits computes (and does not re-use) the exact in-memory row
                extra = ({"path": plan.path} if plan is not None and not isinstance(plan, str)
                         and plan.path != "exact" else {})
                key = ResultKey.make(a[0], a[1], b[0], b[1], m.info.name, params=params_json,
                                     stats=canonical_json({**stats_key, **extra}), n=n,
                                     seed=seed, dataset=dataset, measure_version=m.info.version)
                if key in seen:  # the same measure listed twice
                    continue
                seen.add(key)
                all_keys.append(key)
                if key not in done:
                    if plan is None or (not isinstance(plan, str) and plan.path == "exact"):
                        tasks.append(Task(a, b, m, key))
                    else:
                        planned.append((Task(a, b, m, key), plan))
        computed: dict[ResultKey, dict[str, Any]] = {}
        with progress_bar(len(tasks) + len(planned), "grid", progress) as advance:

            def emit(task: Task, row: dict[str, Any]) -> None:
                row = add_chance(task.m, dict(row)) if chance else row
                full = row_for(task, row, dataset, seed, task.key.stats)
                if database is not None:
                    db_row = {c: full.get(c) for c in full if c not in ("params",)}
                    db_row["params"] = task.key.params
                    database.insert(db_row, replace=retry_errors)
                computed[task.key] = full
                advance(1)

            if tasks and dask_client is not None:
                from repscope.engine.distributed import run_grid_tasks

                run_grid_tasks(dask_client, tasks, reps, n, stats=st, seed=seed,
                               on_error=on_error, emit=emit, chunk_rows=chunk_rows)
            elif tasks:
                run_tasks(tasks, lambda k: materialise(reps[k]), widths, n, stats=st,
                          seed=seed, on_error=on_error, emit=emit, table=CrossMoments(),
                          threads=n_threads)
            for task, plan in planned:
                xa, xb = reps[task.a], reps[task.b]
                emit(task, error_row(task.m, plan, xa, xb) if isinstance(plan, str) else
                     planned_row(task.m, xa, xb, plan, stats=stats_for(st, task.m), seed=seed,
                                 on_error=on_error))
        if database is not None:  # uniform rows (versions, run_id, timestamp) for old and new
            stored: dict[ResultKey, dict[str, Any]] = {}
            wanted = set(all_keys)
            for r in database.rows(dataset=dataset, n=n, seed=seed):
                key = ResultKey(*(r[c] for c in ResultKey._fields))
                if key in wanted:
                    stored[key] = r
            rows = [stored[k] for k in all_keys if k in stored]
            for r in rows:
                r["params"] = json.loads(r["params"])
                r["warnings"] = tuple(r["warnings"])
        else:
            rows = [computed[k] for k in all_keys if k in computed]
    finally:
        if own_db and database is not None:
            database.close()
    table = ResultTable(rows)
    if st.n_permutations and st.adjust != "none":
        table = table.adjust_pvalues(st.adjust, st.q, by=FIGURE_FAMILY,
                                     family="the cells of one figure")
    return table


def _splits(n: int, test_fraction: float) -> bool:
    """Whether ``n`` samples split into training and test parts of at least 3 samples each."""
    n_test = int(round(test_fraction * n))
    return min(n_test, n - n_test) >= 3


def _largest_family(measure_orders: list[tuple[Any, list[tuple[Any, Any]]]]) -> int:
    """Cells of the largest figure: layer pairs of one measure and one ordered model pair."""
    sizes = Counter((id(m), a[0], b[0]) for m, orders in measure_orders for a, b in orders)
    return max(sizes.values(), default=0)
