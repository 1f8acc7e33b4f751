"""Result rows of comparisons: :class:`ResultTable` and the row columns."""
from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from repscope.core.errors import InvalidParameterError, RepscopeError
from repscope.core.notebook import MAX_ROWS, html_table
from repscope.core.optional import require
from repscope.inference.multiple_testing import (
    at_floor,
    check_method,
    check_q,
    classify,
    format_pvalue,
    method_label,
)
from repscope.measures.registry import measure_info

#: columns of a result row (a grid adds the pair columns in front)
RESULT_COLUMNS: tuple[str, ...] = (
    "measure",
    "params",
    "kind",
    "value",
    "estimate",
    "ci_low",
    "ci_high",
    "path",
    "pvalue",
    "p_floor",
    "calibrated",
    "calibration",
    "chance",
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
    "measure_version",
)

PAIR_COLUMNS: tuple[str, ...] = ("dataset", "model_a", "layer_a", "model_b", "layer_b")

#: columns added by :meth:`ResultTable.adjust_pvalues`
ADJUST_COLUMNS: tuple[str, ...] = ("p_adjusted", "significance", "family")

#: the family of a grid's p-values: the cells of one figure (one measure, one model pair)
FIGURE_FAMILY: tuple[str, ...] = ("dataset", "measure", "params", "model_a", "model_b")


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


def _hashable(v: Any) -> Any:
    if isinstance(v, Mapping):
        return json.dumps(v, sort_keys=True, default=str)
    try:
        hash(v)
    except TypeError:
        return repr(v)
    return v


def _floor(v: Any) -> float:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return math.nan
    return f


def _family_label(name: str | None, by: Sequence[str], row: Mapping[str, Any], size: int,
                  method: str, q: float) -> str:
    parts = []
    for c in by:
        v = row.get(c)
        if c == "params":
            v = _display_params(row.get("measure", ""), v or {})
        if v not in (None, ""):
            parts.append(f"{c}={v}")
    head = name or ("the cells with the same " + ", ".join(by) if by else "this table")
    where = f" ({', '.join(parts)})" if parts else ""
    tests = "1 test" if size == 1 else f"{size} tests"
    return f"{head}{where}: {tests}, {method_label(method, q)}"


# --------------------------------------------------------------- result table
def _fmt(col: str, v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, float):
        if col in ("pvalue", "p_adjusted"):
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

    def adjust_pvalues(
        self,
        method: str = "bh",
        q: float = 0.05,
        *,
        by: Sequence[str] | None = None,
        family: str | None = None,
    ) -> ResultTable:
        """A copy with multiple-comparison adjusted p-values over named families.

        Parameters
        ----------
        method : ``"bh"`` (Benjamini–Hochberg, false discovery rate; the
            default) or ``"holm"`` (family-wise error rate).
        q : level of the adjustment.
        by : columns whose values split the rows into families (e.g.
            :data:`FIGURE_FAMILY`: the cells of one figure); ``None``: every
            row with a p-value is one family.
        family : name of the family (or of the kind of family, with ``by``),
            written into each row's ``family`` label.

        Returns
        -------
        ResultTable
            With the columns :data:`ADJUST_COLUMNS`: ``p_adjusted`` (adjusted
            p-value), ``significance`` (``"significant"``, ``"not
            significant"`` or ``"underpowered"``: not significant even if its
            p-value were at its floor ``p_floor``, see
            :func:`repscope.inference.multiple_testing.classify`) and
            ``family`` (name, number of tests and adjustment).  Rows without a
            p-value get ``None``.
        """
        check_method(method)
        q = check_q(q)
        by = tuple(by or ())
        unknown = [c for c in by if c not in self.columns]
        if unknown:
            raise InvalidParameterError(f"adjust_pvalues: unknown column(s) {unknown}")
        groups: dict[tuple[Any, ...], list[int]] = {}
        for i, r in enumerate(self._rows):
            p = r.get("pvalue")
            if p is None or not math.isfinite(float(p)):
                continue
            groups.setdefault(tuple(_hashable(r.get(c)) for c in by), []).append(i)
        rows = [{**r, **dict.fromkeys(ADJUST_COLUMNS)} for r in self._rows]
        for idx in groups.values():
            floors = [_floor(self._rows[i].get("p_floor")) for i in idx]
            adj, verdicts = classify([self._rows[i]["pvalue"] for i in idx], floors,
                                     method=method, q=q)
            label = _family_label(family, by, self._rows[idx[0]], len(idx), method, q)
            for i, a, v in zip(idx, adj, verdicts):
                rows[i].update(p_adjusted=float(a), significance=v, family=label)
        columns = [*self.columns, *(c for c in ADJUST_COLUMNS if c not in self.columns)]
        return ResultTable(rows, columns)

    def to_records(self) -> list[dict[str, Any]]:
        """Rows as a list of plain dicts (copies) with every column."""
        return [{c: r.get(c) for c in self.columns} for r in self._rows]

    def to_pandas(self) -> Any:
        """A :class:`pandas.DataFrame` with one row per result (``warnings`` as tuples)."""
        pd = require("pandas", purpose="ResultTable.to_pandas()")
        return pd.DataFrame(self.to_records(), columns=list(self.columns))

    # --------------------------------------------------------------- figures
    def heatmap(self, measure: str, model_a: str | None = None, model_b: str | None = None,
                **kwargs: Any) -> Any:
        """Layer × layer heatmap of ``measure`` for one model pair (a matplotlib Figure).

        Marked as in the report (best matches boxed where significant,
        degenerate cells hatched, one colour scale per measure, a labelled
        colour bar); the caller's matplotlib backend is not changed.  Keyword
        arguments go to :func:`repscope.views.figures.layer_heatmap` (``dataset``,
        ``fitted``, ``adjust``, ``q``, ``ax``).
        """
        from repscope.views.figures import layer_heatmap

        return layer_heatmap(self, measure, model_a, model_b, **kwargs)

    def model_heatmap(self, measure: str, **kwargs: Any) -> Any:
        """Model × model view of ``measure`` (a matplotlib Figure; see
        :func:`repscope.views.figures.model_heatmap`)."""
        from repscope.views.figures import model_heatmap

        return model_heatmap(self, measure, **kwargs)

    # --------------------------------------------------------------- display
    def _display(self) -> tuple[list[str], list[list[str]], list[str]]:
        notes: list[str] = []
        show = [c for c in ("model_a", "layer_a", "model_b", "layer_b") if c in self.columns]
        show += ["measure", "params", "kind", "value"]
        if any(r.get("estimate") is not None and r.get("estimate") != r.get("value")
               for r in self._rows):  # a bias-corrected estimate differs from the plug-in value
            show.append("estimate")
        for c in ("ci_low", "ci_high", "pvalue", "p_adjusted", "significance", "calibrated",
                  "zscore", "heldout"):
            if any(r.get(c) is not None for r in self._rows):
                show.append(c)
        cells = []
        for r in self._rows:
            line = []
            for c in show:
                v = r.get(c)
                if c == "params":
                    v = _display_params(r.get("measure", ""), v or {})
                if c == "pvalue":  # "≤ 1/(m+1)" at the floor
                    line.append(format_pvalue(v, r.get("p_floor")))
                    continue
                if c == "p_adjusted" and v is not None and at_floor(r.get("pvalue"),
                                                                     r.get("p_floor")):
                    line.append(f"≤ {v:.3g}")  # monotone in p: a bound in, a bound out
                    continue
                line.append(_fmt(c, v))
            marks = []
            if r.get("family"):
                fam = f"p_adjusted within {r['family']}"
                if fam not in notes:
                    notes.append(fam)
                marks.append(f"[{notes.index(fam) + 1}]")
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

    def _repr_html_(self) -> str:
        """The notebook view: the table of ``str(table)`` in HTML (escaped), at most
        :data:`~repscope.core.notebook.MAX_ROWS` rows, then how many more there are."""
        if not self._rows:
            return html_table([], [], caption="ResultTable: no rows")
        shown = ResultTable(self._rows[:MAX_ROWS], self.columns)
        header, cells, notes = shown._display()
        numeric = [h for h in header if h not in ("model_a", "layer_a", "model_b", "layer_b",
                                                  "measure", "params", "kind", "significance",
                                                  "notes")]
        return html_table(header, cells, caption=f"ResultTable: {len(self)} rows",
                          total=len(self), notes=notes, right=numeric)
