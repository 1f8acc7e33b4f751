"""All-pairs comparisons of many representations: :func:`grid`.

::

    reps = {("mlp_seed0", "fc1"): A1, ("mlp_seed0", "fc2"): A2,
            ("mlp_seed1", "fc1"): B1, ("mlp_seed1", "fc2"): B2}
    table = repscope.grid(reps, measures=["cka", "procrustes"], db="results.sqlite")

Every representation is prepared once per distinct :meth:`Measure.prepare_key`
and the prepared object is reused for all its pairs; measures are processed
one prepare-key group at a time, so memory holds one prepared copy of each
representation at a time.  Lazy arrays (anything with ``__array__`` and
``shape``, e.g. Zarr arrays from :mod:`repscope.store`) are read only when a
pair that needs them is computed.  With a results database every finished row
is committed at once and rows already stored are skipped, so an interrupted
grid resumes where it stopped.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ._array import is_torch
from .comparison import (
    RECORDED_ERRORS,
    ResultTable,
    _check_on_error,
    _error_text,
    evaluate_prepared,
    resolve_measures,
    shared_prepare_key,
)
from .errors import InputShapeError, InvalidParameterError
from .measures.base import Measure, Prepared
from .results import ResultKey, ResultsDB, canonical_json
from .stats import Stats, capture_warnings, progress_bar

__all__ = ["grid", "pair_list", "RepKey"]

#: a representation key: (model, layer)
RepKey = tuple[str, Any]

PAIR_MODES = ("cross", "within", "all")


# ------------------------------------------------------------------ inputs
def _flatten(representations: Mapping[Any, Any]) -> dict[RepKey, Any]:
    """Accept ``{(model, layer): array}`` or ``{model: {layer: array}}``."""
    out: dict[RepKey, Any] = {}
    for k, v in representations.items():
        if isinstance(v, Mapping):
            if not isinstance(k, str):
                raise InvalidParameterError(f"model names must be str, got {k!r}")
            for layer, arr in v.items():
                out[(k, layer)] = arr
        else:
            if not (isinstance(k, tuple) and len(k) == 2):
                raise InvalidParameterError(
                    f"representation keys must be (model, layer) pairs, got {k!r}; or pass "
                    "{model: {layer: array}}"
                )
            out[k] = v
    if not out:
        raise InvalidParameterError("no representations given")
    for model, layer in out:
        if not isinstance(model, str):
            raise InvalidParameterError(f"model names must be str, got {model!r}")
        if isinstance(layer, (bool, np.bool_)) or not isinstance(layer, (str, int, np.integer)):
            raise InvalidParameterError(f"layer names must be str or int, got {layer!r}")
    return {(m, int(la) if isinstance(la, np.integer) else la): a for (m, la), a in out.items()}


def _shape(a: Any) -> tuple[int, ...]:
    shape = getattr(a, "shape", None)
    if shape is None:
        shape = np.shape(np.asarray(a))
    return tuple(int(s) for s in shape)


def _check_sizes(reps: Mapping[RepKey, Any]) -> int:
    sizes: dict[int, list[RepKey]] = {}
    for key, a in reps.items():
        shape = _shape(a)
        if len(shape) != 2:
            raise InputShapeError(
                f"representation {key} must be 2-D (n, d), got shape {shape}; pool or flatten "
                "token/spatial axes first"
            )
        sizes.setdefault(shape[0], []).append(key)
    if len(sizes) > 1:
        desc = "; ".join(f"n={n}: {keys[:3]}{' ...' if len(keys) > 3 else ''}"
                         for n, keys in sorted(sizes.items()))
        raise InputShapeError(
            f"all representations must have the same number of samples (rows), got {desc}"
        )
    return next(iter(sizes))


def _materialise(a: Any) -> Any:
    if is_torch(a) or isinstance(a, np.ndarray):
        return a
    return np.asarray(a)


def pair_list(keys: Sequence[RepKey], pairs: Any = "cross") -> list[tuple[RepKey, RepKey]]:
    """Unordered pairs of representation keys.

    ``"cross"``: layers of different models (every layer of model A with every
    layer of model B, models in order of first appearance); ``"within"``:
    different layers of the same model; ``"all"``: both.  An explicit list of
    ``(key_a, key_b)`` pairs is checked and returned as is.
    """
    keys = list(keys)
    if not isinstance(pairs, str):
        out = []
        known = set(keys)
        for p in pairs:
            ok = isinstance(p, (tuple, list)) and len(p) == 2 and all(
                isinstance(k, (tuple, list)) and len(k) == 2 for k in p
            )
            if not ok:
                raise InvalidParameterError(
                    f"pairs must hold ((model, layer), (model, layer)) tuples, got {p!r}"
                )
            a, b = tuple(p[0]), tuple(p[1])
            for k in (a, b):
                if k not in known:
                    raise InvalidParameterError(f"pair refers to unknown representation {k!r}")
            out.append((a, b))
        return out
    if pairs not in PAIR_MODES:
        raise InvalidParameterError(f"pairs must be one of {PAIR_MODES} or a list, got {pairs!r}")
    out = []
    for i, a in enumerate(keys):
        for b in keys[i + 1:]:
            same = a[0] == b[0]
            if (pairs == "cross" and not same) or (pairs == "within" and same) or pairs == "all":
                out.append((a, b))
    return out


# ------------------------------------------------------------------ tasks
class _Task:
    __slots__ = ("a", "b", "m", "key")

    def __init__(self, a: RepKey, b: RepKey, m: Measure, key: ResultKey) -> None:
        self.a, self.b, self.m, self.key = a, b, m, key


def _row_for(task: _Task, row: Mapping[str, Any], dataset: str, seed: int,
             stats_json: str) -> dict[str, Any]:
    out = dict(row)
    out.update(dataset=dataset, model_a=task.a[0], layer_a=task.a[1], model_b=task.b[0],
               layer_b=task.b[1], seed=seed, stats=stats_json)
    return out


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
    progress: bool = False,
) -> ResultTable:
    """Compare every pair of representations with every measure.

    Parameters
    ----------
    representations : mapping
        ``{(model, layer): array}`` or ``{model: {layer: array}}``; arrays are
        (n, d) with the same n and the same row order (NumPy, torch, or lazy
        arrays with ``shape`` and ``__array__``).  Layers are ``str`` or ``int``.
    measures : see :func:`repscope.comparison.resolve_measures`.
    stats : see :meth:`repscope.stats.Stats.parse`.
    pairs : ``"cross"`` (default: layers of different models), ``"within"``
        (layer pairs inside each model), ``"all"``, or a list of
        ``(key_a, key_b)``.  Asymmetric measures are computed in both orders.
    db : :class:`~repscope.results.ResultsDB` or a path; rows are written as
        they finish and rows already stored are skipped.
    dataset : name of the inputs, part of each row's key.
    seed : seed of every resampling statistic (recorded per row).
    on_error : ``"record"`` (a failing measure gets an ``error`` row) or ``"raise"``.
    retry_errors : recompute stored rows that hold an error.
    progress : show a progress bar.

    Returns
    -------
    ResultTable
        Every requested row (computed now or read from ``db``), with the pair
        columns ``dataset, model_a, layer_a, model_b, layer_b`` first.
    """
    _check_on_error(on_error)
    if not isinstance(dataset, str):
        raise InvalidParameterError(f"dataset must be a str, got {dataset!r}")
    reps = _flatten(representations)
    n = _check_sizes(reps)
    ms = resolve_measures(measures)
    st = Stats.parse(stats)
    stats_json = canonical_json(st.as_key())
    seed = int(seed)
    plist = pair_list(list(reps), pairs)

    own_db = db is not None and not isinstance(db, ResultsDB)
    database: ResultsDB | None = ResultsDB(db) if own_db else db  # type: ignore[arg-type]
    try:
        done = (database.done_keys(include_errors=not retry_errors)
                if database is not None else set())
        tasks: list[_Task] = []
        all_keys: list[ResultKey] = []
        seen: set[ResultKey] = set()
        for m in ms:
            orders = plist if m.info.symmetric else [o for a, b in plist for o in ((a, b), (b, a))]
            params_json = canonical_json(m.params)
            for a, b in orders:
                key = ResultKey.make(a[0], a[1], b[0], b[1], m.info.name, params=params_json,
                                     stats=stats_json, n=n, seed=seed, dataset=dataset)
                if key in seen:  # the same measure listed twice
                    continue
                seen.add(key)
                all_keys.append(key)
                if key not in done:
                    tasks.append(_Task(a, b, m, key))
        computed: dict[ResultKey, dict[str, Any]] = {}
        groups: dict[Any, list[_Task]] = {}
        for t in tasks:
            groups.setdefault(shared_prepare_key(t.m), []).append(t)
        with progress_bar(len(tasks), "grid", progress) as advance:
            for group in groups.values():
                _run_group(group, reps, st, seed, dataset, stats_json, on_error, retry_errors,
                           database, computed, advance)
        if database is not None:  # uniform rows (versions, run_id, timestamp) for old and new
            stored: dict[ResultKey, dict[str, Any]] = {}
            for r in database.rows(dataset=dataset, stats=stats_json, n=n, seed=seed):
                stored[ResultKey(*(r[c] for c in ResultKey._fields))] = r
            rows = [stored[k] for k in all_keys if k in stored]
            for r in rows:
                r["params"] = json.loads(r["params"])
                r["warnings"] = tuple(r["warnings"])
        else:
            rows = [computed[k] for k in all_keys if k in computed]
    finally:
        if own_db and database is not None:
            database.close()
    return ResultTable(rows)


def _run_group(
    group: list[_Task],
    reps: Mapping[RepKey, Any],
    st: Stats,
    seed: int,
    dataset: str,
    stats_json: str,
    on_error: str,
    retry_errors: bool,
    database: ResultsDB | None,
    computed: dict[ResultKey, dict[str, Any]],
    advance: Any,
) -> None:
    """Compute one prepare-key group: each representation prepared once, reused by all pairs."""
    prepared: dict[RepKey, tuple[Prepared, list[str]] | str] = {}
    preparer = group[0].m

    def get(k: RepKey, name: str) -> tuple[Prepared, list[str]] | str:
        if k not in prepared:
            try:
                with capture_warnings() as cw:
                    p = preparer.prepare(_materialise(reps[k]), name)
                prepared[k] = (p, cw.messages)
            except RECORDED_ERRORS as exc:
                if on_error == "raise":
                    raise
                prepared[k] = f"{k[0]}/{k[1]}: {_error_text(exc)}"
        return prepared[k]

    for t in group:
        ea, eb = get(t.a, "X"), get(t.b, "Y")
        t0 = time.perf_counter()
        if isinstance(ea, str) or isinstance(eb, str):
            row: dict[str, Any] = {
                "measure": t.m.info.name, "params": dict(t.m.params), "kind": t.m.info.kind,
                "n": t.key.n, "warnings": (),
                "error": "; ".join(e for e in (ea, eb) if isinstance(e, str)),
                "seconds": time.perf_counter() - t0,
            }
        else:
            (pa, wa), (pb, wb) = ea, eb
            row = evaluate_prepared(t.m, pa, pb, stats=st, seed=seed,
                                    warnings=[*wa, *wb], on_error=on_error)
        full = _row_for(t, row, dataset, seed, stats_json)
        if database is not None:
            db_row = {c: full.get(c) for c in full if c not in ("params",)}
            db_row["params"] = t.key.params
            database.insert(db_row, replace=retry_errors)
        computed[t.key] = full
        advance(1)
