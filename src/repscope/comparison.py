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
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from ._array import to_float
from .errors import InvalidParameterError, RepscopeError
from .measures.base import Measure, Prepared
from .registry import list_measures, measure_class, measure_info
from .stats import (
    MeasureSpec,
    Stats,
    bootstrap_ci_prepared,
    capture_warnings,
    heldout_prepared,
    permutation_test_prepared,
    progress_bar,
    resolve_measure,
    supports_heldout,
)
from .validation import check_pair

__all__ = [
    "DEFAULT_MEASURES",
    "RESULT_COLUMNS",
    "ResultTable",
    "compare",
    "evaluate_prepared",
    "resolve_measures",
    "shared_prepare_key",
]

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

#: columns of a result row (a grid adds the pair columns in front)
RESULT_COLUMNS: tuple[str, ...] = (
    "measure",
    "params",
    "kind",
    "value",
    "ci_low",
    "ci_high",
    "pvalue",
    "calibrated",
    "zscore",
    "null_mean",
    "null_sd",
    "heldout",
    "n",
    "dx",
    "dy",
    "seconds",
    "stats_seconds",
    "warnings",
    "error",
)

PAIR_COLUMNS: tuple[str, ...] = ("dataset", "model_a", "layer_a", "model_b", "layer_b")


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


def _display_params(name: str, params: Mapping[str, Any]) -> str:
    try:
        defaults = measure_info(name).params
    except RepscopeError:
        defaults = {}
    shown = {}
    for k, v in params.items():
        d = defaults.get(k, object())
        try:
            same = bool(v == d) if not hasattr(v, "shape") else False
        except Exception:  # noqa: BLE001 - exotic parameter values
            same = False
        if not same:
            shown[k] = v
    return ", ".join(f"{k}={_short(v)}" for k, v in shown.items())


def _short(v: Any) -> str:
    if hasattr(v, "shape"):
        return f"<array {tuple(v.shape)}>"
    s = repr(v)
    return s if len(s) <= 24 else s[:21] + "..."


# ---------------------------------------------------------------- evaluation
#: exceptions recorded in a row (``on_error="record"``) instead of stopping the run
RECORDED_ERRORS: tuple[type[BaseException], ...] = (RepscopeError, np.linalg.LinAlgError)


def _error_text(exc: BaseException) -> str:
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
    :func:`repscope.stats.permutation_test` etc. return with that seed.
    """
    row: dict[str, Any] = {c: None for c in RESULT_COLUMNS}
    row.update(
        measure=m.info.name, params=dict(m.params), kind=m.info.kind, n=px.n,
        dx=int(px.data.shape[1]), dy=int(py.data.shape[1]),
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
        row.update(seconds=time.perf_counter() - t0, error=_error_text(exc),
                   warnings=tuple(msgs))
        return row
    row.update(value=value, seconds=time.perf_counter() - t0)
    t1 = time.perf_counter()
    if stats.n_permutations:
        try:
            pt = permutation_test_prepared(
                m, px, py, value, stats.n_permutations, seed=seed, alternative=stats.alternative
            )
            row.update(pvalue=pt.pvalue, calibrated=pt.calibrated, zscore=pt.zscore,
                       null_mean=pt.null_mean, null_sd=pt.null_sd)
            msgs.update(dict.fromkeys(pt.warnings))
        except RECORDED_ERRORS as exc:
            if on_error == "raise":
                raise
            errors.append("permutation test: " + _error_text(exc))
    if stats.n_boot:
        try:
            bs = bootstrap_ci_prepared(
                m, px, py, value, stats.n_boot, level=stats.level, seed=seed,
                method=stats.ci_method,
            )
            row.update(ci_low=bs.confidence_interval.low, ci_high=bs.confidence_interval.high)
            msgs.update(dict.fromkeys(bs.warnings))
        except RECORDED_ERRORS as exc:
            if on_error == "raise":
                raise
            errors.append("bootstrap: " + _error_text(exc))
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
            errors.append("held-out: " + _error_text(exc))
    if stats.any:
        row["stats_seconds"] = time.perf_counter() - t1
    for k in ("ci_low", "ci_high", "pvalue", "calibrated", "zscore", "null_mean", "null_sd",
              "heldout"):
        row[k] = _finite(row[k])
    row["warnings"] = tuple(msgs)
    row["error"] = "; ".join(errors) or None
    return row


def _check_on_error(on_error: str) -> None:
    if on_error not in ("record", "raise"):
        raise InvalidParameterError(f"on_error must be 'record' or 'raise', got {on_error!r}")


def compare(
    X: Any,
    Y: Any,
    measures: Any = None,
    *,
    stats: Any = None,
    seed: int = 0,
    on_error: str = "record",
    progress: bool = False,
) -> ResultTable:
    """Compare one pair of representations with several measures.

    Parameters
    ----------
    X, Y : array-like or torch.Tensor, shapes (n, dx) and (n, dy)
        Rows are the same n inputs in the same order.
    measures : see :func:`resolve_measures` (default: :data:`DEFAULT_MEASURES`
        that are registered).
    stats : statistics to add, see :meth:`repscope.stats.Stats.parse`
        (``None``, ``"permutation"``, ``"bootstrap"``, ``"heldout"``, ``"all"``,
        a list of these, a mapping, or a :class:`~repscope.stats.Stats`).
    seed : seed of every resampling statistic.
    on_error : ``"record"`` (a measure that fails gets an ``error`` entry) or
        ``"raise"``.
    progress : show a progress bar over measures.

    Returns
    -------
    ResultTable
        One row per measure with columns :data:`RESULT_COLUMNS`.
    """
    _check_on_error(on_error)
    check_pair(X, Y, min_samples=1, cast=False)
    ms = resolve_measures(measures)
    st = Stats.parse(stats)
    prepared: dict[Any, tuple[Prepared, Prepared, list[str]] | str] = {}
    rows: list[dict[str, Any]] = []
    with progress_bar(len(ms), "compare", progress) as advance:
        for m in ms:
            key = shared_prepare_key(m)
            if key not in prepared:
                try:
                    with capture_warnings() as cw:
                        px, py = m.prepare(X, "X"), m.prepare(Y, "Y")
                    prepared[key] = (px, py, cw.messages)
                except RECORDED_ERRORS as exc:
                    if on_error == "raise":
                        raise
                    prepared[key] = _error_text(exc)
            entry = prepared[key]
            if isinstance(entry, str):
                row = {c: None for c in RESULT_COLUMNS}
                row.update(measure=m.info.name, params=dict(m.params), kind=m.info.kind,
                           warnings=(), error=entry)
            else:
                px, py, msgs = entry
                row = evaluate_prepared(m, px, py, stats=st, seed=seed, warnings=msgs,
                                        on_error=on_error)
            rows.append(row)
            advance(1)
    return ResultTable(rows)


# --------------------------------------------------------------- result table
def _fmt(col: str, v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, float):
        if col == "pvalue":
            return f"{v:.3g}"
        if col in ("seconds", "stats_seconds"):
            return f"{v:.3f}"
        return f"{v:.4g}"
    return str(v)


class ResultTable:
    """Rows of comparison results (one dict per row) with pandas/record export.

    Iterating yields row dicts; ``len`` counts rows; ``table[i]`` is row ``i``;
    ``table["cka"]`` the first row of measure ``cka``.  ``warnings`` entries
    are tuples of messages, ``error`` the message of a failed computation.
    """

    def __init__(self, rows: Iterable[Mapping[str, Any]], columns: Sequence[str] | None = None):
        self._rows = [dict(r) for r in rows]
        if columns is None:
            extra = [c for r in self._rows for c in r if c not in RESULT_COLUMNS]
            lead = [c for c in PAIR_COLUMNS if c in extra]
            rest = list(dict.fromkeys(c for c in extra if c not in PAIR_COLUMNS))
            columns = [*lead, *RESULT_COLUMNS, *rest]
        self.columns: tuple[str, ...] = tuple(columns)

    def __len__(self) -> int:
        return len(self._rows)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self._rows)

    def __getitem__(self, item: int | str) -> dict[str, Any]:
        if isinstance(item, str):
            for r in self._rows:
                if r.get("measure") == item:
                    return r
            raise KeyError(f"no row for measure {item!r}")
        return self._rows[item]

    def value(self, measure: str) -> float | None:
        """The value of the first row of ``measure``."""
        return self[measure]["value"]

    def column(self, name: str) -> list[Any]:
        return [r.get(name) for r in self._rows]

    def to_records(self) -> list[dict[str, Any]]:
        """Rows as a list of plain dicts (copies) with every column."""
        return [{c: r.get(c) for c in self.columns} for r in self._rows]

    def to_pandas(self) -> Any:
        """A :class:`pandas.DataFrame` with one row per result (``warnings`` as tuples)."""
        import pandas as pd

        return pd.DataFrame(self.to_records(), columns=list(self.columns))

    # --------------------------------------------------------------- display
    def _display(self) -> tuple[list[str], list[list[str]], list[str]]:
        notes: list[str] = []
        show = [c for c in ("model_a", "layer_a", "model_b", "layer_b") if c in self.columns]
        show += ["measure", "params", "kind", "value"]
        for c in ("ci_low", "ci_high", "pvalue", "calibrated", "zscore", "heldout"):
            if any(r.get(c) is not None for r in self._rows):
                show.append(c)
        cells = []
        for r in self._rows:
            line = []
            for c in show:
                v = r.get(c)
                if c == "params":
                    v = _display_params(r.get("measure", ""), v or {})
                line.append(_fmt(c, v))
            marks = []
            for w in r.get("warnings") or ():
                if w not in notes:
                    notes.append(w)
                marks.append(f"[{notes.index(w) + 1}]")
            if r.get("error"):
                notes.append(f"error ({r.get('measure')}): {r['error']}")
                marks.append(f"[{len(notes)}]")
            line.append(" ".join(marks))
            cells.append(line)
        header = [*show, "notes"]
        keep = [i for i, h in enumerate(header)
                if h in ("measure", "value") or any(row[i] for row in cells)]
        return [header[i] for i in keep], [[row[i] for i in keep] for row in cells], notes

    def __str__(self) -> str:
        if not self._rows:
            return "ResultTable: no rows"
        header, cells, notes = self._display()
        widths = [max(len(h), *(len(row[i]) for row in cells)) for i, h in enumerate(header)]
        lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths)).rstrip()]
        lines.append("  ".join("-" * w for w in widths))
        for row in cells:
            lines.append("  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip())
        lines += [f"[{i}] {n}" for i, n in enumerate(notes, 1)]
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"<ResultTable: {len(self)} rows>\n{self}"
