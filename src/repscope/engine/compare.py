"""Compare one pair of representations with many measures: :func:`compare`.

::

    res = repscope.compare(X, Y, measures=["cka", "procrustes", "mean_cca"],
                           stats="permutation")
    print(res)                 # readable table
    res.to_pandas()            # one row per measure

Each representation is prepared once per distinct :meth:`Measure.prepare_key`
and reused by every measure sharing it.  Warnings raised by a measure (e.g.
the :class:`~repscope.DegeneracyWarning` of CCA when ``d ≥ n − 1``) are caught
and listed in that measure's ``warnings`` column; a measure that cannot be
computed for this pair (e.g. it needs equal widths) gets an ``error`` entry
instead of stopping the others (``on_error="record"``, the default).
"""


from __future__ import annotations

import math
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from repscope.core.arrays import to_float
from repscope.core.errors import (
    InputShapeError,
    InvalidParameterError,
    MemoryBudgetError,
    RepscopeError,
)
from repscope.core.progress import progress_bar
from repscope.core.validation import as_representation, check_pair
from repscope.core.warning_capture import capture_warnings
from repscope.engine.table import RESULT_COLUMNS, ResultTable
from repscope.inference.bootstrap import bootstrap_ci_prepared
from repscope.inference.chance import chance_columns
from repscope.inference.heldout import heldout_prepared, supports_heldout
from repscope.inference.options import MeasureSpec, Stats, resolve_measure
from repscope.inference.permutation import permutation_test_prepared
from repscope.measures.base import Measure, Prepared
from repscope.measures.planning import Plan, shape_of
from repscope.measures.registry import list_measures, measure_class

#: measures used when none are named (those registered at call time)
DEFAULT_MEASURES: tuple[str, ...] = (
    "cka",
    "procrustes",
    "mean_cca",
    "svcca",
    "rsa",
    "mutual_knn",
    "linear_regression",
)


# ------------------------------------------------------------------ measures
def _all_applicable() -> list[str]:
    rng = np.random.default_rng(0)
    names = []
    for info in list_measures():
        if info.input_kind != "representation":
            continue
        if measure_class(info.name).example_params(8, rng):
            continue  # needs per-sample parameters such as labels
        names.append(info.name)
    return names


def resolve_measures(measures: Any = None) -> list[Measure]:
    """Configured measures from ``None`` (defaults), ``"all"``, or a list of specs.

    ``None`` uses the registered ones among :data:`DEFAULT_MEASURES`;
    ``"all"`` every registered measure of representations that needs no
    per-sample parameters; otherwise a name, a :class:`Measure`, a
    ``(name, params)`` pair, a mapping ``{name: params}``, or a list of these.
    """
    if measures is None:
        registered = {i.name for i in list_measures()}
        specs: list[MeasureSpec] = [n for n in DEFAULT_MEASURES if n in registered]
    elif isinstance(measures, str) and measures == "all":
        specs = list(_all_applicable())
    elif isinstance(measures, (str, Measure)) or (
        isinstance(measures, tuple) and len(measures) == 2 and isinstance(measures[0], str)
        and isinstance(measures[1], Mapping)
    ):
        specs = [measures]
    elif isinstance(measures, Mapping):
        specs = [(k, v) for k, v in measures.items()]
    elif isinstance(measures, Iterable):
        specs = list(measures)
    else:
        raise InvalidParameterError(f"cannot interpret measures={measures!r}")
    if not specs:
        raise InvalidParameterError("no measures to compute")
    return [resolve_measure(s) for s in specs]


def shared_prepare_key(m: Measure) -> Any:
    """``m.prepare_key()`` when hashable, else a key private to ``m``."""
    key = m.prepare_key()
    try:
        hash(key)
    except TypeError:
        return ("__unshared__", id(m))
    return key


# ---------------------------------------------------------------- evaluation
#: exceptions recorded in a row (``on_error="record"``) instead of stopping the run
RECORDED_ERRORS: tuple[type[BaseException], ...] = (RepscopeError, np.linalg.LinAlgError)


def error_text(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def _finite(v: float | None) -> float | None:
    return v if v is None or math.isfinite(v) else None


def evaluate_prepared(
    m: Measure,
    px: Prepared,
    py: Prepared,
    *,
    stats: Stats,
    seed: int = 0,
    warnings: Sequence[str] = (),
    on_error: str = "record",
) -> dict[str, Any]:
    """Value and requested statistics of ``m`` for prepared inputs, as one result row.

    Each statistic uses ``seed`` directly, so the row equals what
    :func:`repscope.inference.permutation.permutation_test` etc. return with that seed.
    """
    row: dict[str, Any] = {c: None for c in RESULT_COLUMNS}
    row.update(
        measure=m.info.name, params=dict(m.params), kind=m.info.kind, n=px.n,
        dx=int(px.data.shape[1]), dy=int(py.data.shape[1]), measure_version=m.info.version,
    )
    msgs: dict[str, None] = dict.fromkeys(warnings)
    errors: list[str] = []
    t0 = time.perf_counter()
    try:
        with capture_warnings() as cw:
            value = to_float(m.compare_prepared(px, py))
        msgs.update(dict.fromkeys(cw.messages))
    except RECORDED_ERRORS as exc:
        if on_error == "raise":
            raise
        row.update(seconds=time.perf_counter() - t0, error=error_text(exc),
                   warnings=tuple(msgs))
        return row
    row.update(value=value, estimate=value, seconds=time.perf_counter() - t0, path="exact")
    t1 = time.perf_counter()
    if stats.n_permutations:
        try:
            pt = permutation_test_prepared(
                m, px, py, value, stats.n_permutations, seed=seed, alternative=stats.alternative
            )
            row.update(pvalue=pt.pvalue, p_floor=pt.p_floor, calibrated=pt.calibrated,
                       zscore=pt.zscore, null_mean=pt.null_mean, null_sd=pt.null_sd)
            msgs.update(dict.fromkeys(pt.warnings))
        except RECORDED_ERRORS as exc:
            if on_error == "raise":
                raise
            errors.append("permutation test: " + error_text(exc))
    if stats.n_boot:
        try:
            bs = bootstrap_ci_prepared(
                m, px, py, value, stats.n_boot, level=stats.level, seed=seed,
                method=stats.ci_method,
            )
            row.update(estimate=bs.estimate, ci_low=bs.confidence_interval.low,
                       ci_high=bs.confidence_interval.high)
            msgs.update(dict.fromkeys(bs.warnings))
        except RECORDED_ERRORS as exc:
            if on_error == "raise":
                raise
            errors.append("bootstrap: " + error_text(exc))
    if stats.heldout and supports_heldout(m):
        try:
            ho = heldout_prepared(
                m, px, py, value, stats.test_fraction, seed=seed, n_splits=stats.n_splits
            )
            row["heldout"] = ho.statistic
            msgs.update(dict.fromkeys(ho.warnings))
        except RECORDED_ERRORS as exc:
            if on_error == "raise":
                raise
            errors.append("held-out: " + error_text(exc))
    if stats.any:
        row["stats_seconds"] = time.perf_counter() - t1
    for k in ("estimate", "ci_low", "ci_high", "pvalue", "calibrated", "zscore", "null_mean",
              "null_sd", "heldout"):
        row[k] = _finite(row[k])
    row["warnings"] = tuple(msgs)
    row["error"] = "; ".join(errors) or None
    return row


def plan_pair(m: Measure, X: Any, Y: Any, memory: Any, on_error: str
              ) -> Plan | str | None:
    """``m``'s plan for the pair within ``memory``; its refusal as error text (``record``)."""
    try:
        return m.plan_for(X, Y, memory)
    except MemoryBudgetError as exc:
        if on_error == "raise":
            raise
        return error_text(exc)


def planned_row(m: Measure, X: Any, Y: Any, plan: Plan, *, stats: Stats, seed: int = 0,
                on_error: str = "record") -> dict[str, Any]:
    """The result row of a pair on a blocked or estimated path (:meth:`Measure.run_plan`).

    The value comes with the path taken and, for an estimate, its interval from the
    estimator (``ci_low``, ``ci_high`` at ``stats.level``); permutation tests,
    bootstrap intervals and held-out fits need the inputs in memory and are not
    computed on these paths (a warning says so).
    """
    (n, dx), (_, dy) = shape_of(X), shape_of(Y)
    row: dict[str, Any] = {c: None for c in RESULT_COLUMNS}
    row.update(measure=m.info.name, params=dict(m.params), kind=m.info.kind, n=n, dx=dx,
               dy=dy, measure_version=m.info.version, path=plan.path)
    t0 = time.perf_counter()
    try:
        with capture_warnings() as cw:
            est = m.run_plan(X, Y, plan, seed=seed, level=stats.level)
    except RECORDED_ERRORS as exc:
        if on_error == "raise":
            raise
        row.update(seconds=time.perf_counter() - t0, error=error_text(exc), warnings=())
        return row
    msgs = dict.fromkeys(cw.messages)
    if stats.any:
        msgs[f"{m.info.name}: statistics (permutations, bootstrap, held-out) are not computed "
             f"on the {plan.path} path ({plan.reason}); the interval is the estimator's"] = None
    row.update(value=est.value, estimate=est.value, ci_low=_finite(est.ci_low),
               ci_high=_finite(est.ci_high), seconds=time.perf_counter() - t0,
               warnings=tuple(msgs))
    return row


def add_chance(m: Measure, row: dict[str, Any]) -> dict[str, Any]:
    """Add the measure's chance level at the row's shape (and the warning it calls for).

    ``calibrated`` from the chance level fills the column only where no permutation null
    was computed; ``calibration`` says which of the two a row's ``calibrated`` is.
    """
    if row.get("error") or row.get("value") is None or not row.get("n"):
        return row
    cols, warning = chance_columns(m, row["value"], int(row["n"]), int(row["dx"]),
                                   int(row["dy"]), have_null=row.get("pvalue") is not None)
    row.update(cols)
    if warning and warning not in (row.get("warnings") or ()):
        row["warnings"] = (*tuple(row.get("warnings") or ()), warning)
    return row


def _label_vectors(X: Any, Y: Any, ms: Sequence[Measure]) -> bool:
    """Whether X or Y is a 1-D vector and every measure accepts predicted labels."""
    one_d = any(getattr(a, "ndim", None) == 1 for a in (X, Y))
    return one_d and all(getattr(m, "accepts_labels", False) for m in ms)


def check_on_error(on_error: str) -> None:
    if on_error not in ("record", "raise"):
        raise InvalidParameterError(f"on_error must be 'record' or 'raise', got {on_error!r}")


def error_row(m: Measure, error: str, X: Any = None, Y: Any = None) -> dict[str, Any]:
    """A row that records ``error`` (with the pair's shape when ``X`` and ``Y`` are given)."""
    row = {c: None for c in RESULT_COLUMNS}
    row.update(measure=m.info.name, params=dict(m.params), kind=m.info.kind, warnings=(),
               error=error, measure_version=m.info.version)
    if X is not None and Y is not None:
        (n, dx), (_, dy) = shape_of(X), shape_of(Y)
        row.update(n=n, dx=dx, dy=dy)
    return row


def compare(
    X: Any,
    Y: Any,
    measures: Any = None,
    *,
    stats: Any = None,
    seed: int = 0,
    on_error: str = "record",
    progress: bool | None = None,
    chance: bool = True,
    memory: Any = None,
) -> ResultTable:
    """Compare one pair of representations with several measures.

    Parameters
    ----------
    X, Y : array-like or torch.Tensor, shapes (n, dx) and (n, dy)
        Rows are the same n inputs in the same order.
    measures : see :func:`resolve_measures` (default: :data:`DEFAULT_MEASURES`
        that are registered).
    stats : statistics to add, see :meth:`repscope.inference.options.Stats.parse`
        (``None``, ``"permutation"``, ``"bootstrap"``, ``"heldout"``, ``"all"``,
        a list of these, a mapping, or a :class:`~repscope.inference.options.Stats`).
    seed : seed of every resampling statistic.
    on_error : ``"record"`` (a measure that fails gets an ``error`` entry) or
        ``"raise"``.
    progress : show a progress bar over measures (on stderr); ``None`` (default): when the
        session is interactive (stderr is a terminal, or IPython/Jupyter) and there is
        more than one measure.
    chance : add each measure's chance level at this shape (:mod:`repscope.inference.chance`:
        columns ``chance`` and, without permutations, ``calibrated``; a warning when
        unrelated data would already score high).
    memory : the memory budget every measure plans within (``"4GiB"``, bytes; default:
        half the available memory).  A measure whose exact in-memory path does not fit
        takes its exact blocked or estimated path (column ``path``; an estimate's
        interval in ``ci_low``, ``ci_high``) or, without one, records a
        :class:`~repscope.core.errors.MemoryBudgetError` (see :meth:`Measure.plan`).

    Returns
    -------
    ResultTable
        One row per measure with columns :data:`RESULT_COLUMNS`.  With
        permutation tests, the rows are one family of ``F`` tests: the number
        of permutations rises to the smallest ``m`` whose floor ``1/(m + 1)``
        lies below ``q / F`` (:meth:`~repscope.inference.options.Stats.for_family`)
        and the table carries adjusted p-values (Benjamini–Hochberg by default;
        ``p_adjusted``, ``significance``, ``family``; see
        :meth:`ResultTable.adjust_pvalues`).
    """
    check_on_error(on_error)
    ms = resolve_measures(measures)
    if _label_vectors(X, Y, ms):  # predicted labels for measures of predictions
        x = as_representation(X, "X", ndim=int(np.ndim(X)), cast=False)
        y = as_representation(Y, "Y", ndim=int(np.ndim(Y)), cast=False)
        if int(x.shape[0]) != int(y.shape[0]):
            raise InputShapeError(
                f"X and Y must have the same number of samples (rows), got {x.shape[0]} and "
                f"{y.shape[0]}; rows must correspond to the same inputs"
            )
    else:
        check_pair(X, Y, min_samples=1, cast=False)
    st = Stats.parse(stats).for_family(len(ms))  # the table is the family of its tests
    prepared: dict[Any, tuple[Prepared, Prepared, list[str]] | str] = {}
    rows: list[dict[str, Any]] = []
    with progress_bar(len(ms), "compare", progress) as advance:
        for m in ms:
            plan = plan_pair(m, X, Y, memory, on_error)
            if isinstance(plan, str) or (plan is not None and plan.path != "exact"):
                rows.append(error_row(m, plan, X, Y) if isinstance(plan, str) else
                            planned_row(m, X, Y, plan, stats=st, seed=seed, on_error=on_error))
                advance(1)
                continue
            key = shared_prepare_key(m)
            if key not in prepared:
                try:
                    with capture_warnings() as cw:
                        px, py = m.prepare(X, "X"), m.prepare(Y, "Y")
                    prepared[key] = (px, py, cw.messages)
                except RECORDED_ERRORS as exc:
                    if on_error == "raise":
                        raise
                    prepared[key] = error_text(exc)
            entry = prepared[key]
            if isinstance(entry, str):
                row = error_row(m, entry)
            else:
                px, py, msgs = entry
                row = evaluate_prepared(m, px, py, stats=st, seed=seed, warnings=msgs,
                                        on_error=on_error)
                if chance:
                    row = add_chance(m, row)
            rows.append(row)
            advance(1)
    table = ResultTable(rows)
    if st.n_permutations and st.adjust != "none":
        table = table.adjust_pvalues(st.adjust, st.q, family="the measures of this table")
    return table
