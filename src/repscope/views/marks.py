"""What a report may claim about each cell: presented value, degeneracy, significance, versions.

:func:`prepare_results` turns the tidy results table into the one every table
and figure of a report reads:

* one row per cell (the latest, when a cell was computed under several
  statistics options);
* fitted measures (:func:`repscope.inference.heldout.heldout_measures`) show
  their **held-out** value, labelled ``"mean_cca (held-out)"``, unless
  in-sample values are requested (then labelled ``"(in-sample)"``);
* ``degenerate``: the row carries a :class:`~repscope.DegeneracyWarning`;
* ``p_floor``, ``p_adjusted``, ``significance``, ``family``: permutation
  p-values adjusted within their *family* — the cells of one figure (one
  measure, one ordered model pair: all its layer pairs) — with
  Benjamini–Hochberg (default) or Holm;

:func:`best_cells` picks the best-match boxes (never on a degenerate or a
not-significant cell) and :func:`version_warnings` says when one measure's
rows carry different versions of its meaning.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from repscope.core.errors import InvalidParameterError, RepscopeError
from repscope.inference.heldout import heldout_measures
from repscope.inference.multiple_testing import (
    check_method,
    check_q,
    classify,
    method_label,
    pvalue_floor,
)

__all__ = ["FITTED_MODES", "best_cells", "family_columns", "prepare_results",
           "resolve_label", "version_warnings"]

#: how a report presents fitted measures
FITTED_MODES = ("heldout", "in_sample")

HELDOUT_SUFFIX = " (held-out)"
IN_SAMPLE_SUFFIX = " (in-sample)"

#: the cells of one figure: one measure (label), one ordered model pair
FIGURE_COLUMNS = ("measure", "model_a", "model_b")


def family_columns(results: Any) -> list[str]:
    """Columns that name a figure's family in ``results`` (``dataset`` first when present)."""
    return (["dataset"] if "dataset" in results.columns else []) + list(FIGURE_COLUMNS)


def _nan(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def latest_rows(results: Any) -> Any:
    """One row per cell and measure label: the latest one (by ``timestamp``, else the last)."""
    cell = [c for c in ("dataset", "model_a", "layer_a", "model_b", "layer_b", "measure")
            if c in results.columns]
    df = results
    if "timestamp" in df.columns:
        df = df.assign(_order=df["timestamp"].fillna("")).sort_values("_order", kind="stable")
        df = df.drop(columns="_order")
    return df.drop_duplicates(subset=cell, keep="last").sort_index()


def present_fitted(results: Any, fitted: str = "heldout") -> Any:
    """Show fitted measures by their held-out value (or in-sample on request), labelled so.

    Held-out rows keep the in-sample value in ``value_in_sample``; their
    bootstrap interval and calibrated score (computed for the in-sample
    value) are dropped so that no table pairs them with the held-out value.
    The permutation p-value stays: it tests the pairing of the samples.
    """
    if fitted not in FITTED_MODES:
        raise InvalidParameterError(f"fitted must be one of {FITTED_MODES}, got {fitted!r}")
    df = results.copy()
    names = df["measure_name"] if "measure_name" in df.columns else df["measure"]
    is_fitted = names.isin(set(heldout_measures())).to_numpy()
    has_heldout = (df["heldout"].notna().to_numpy() if "heldout" in df.columns
                   else np.zeros(len(df), dtype=bool))
    use = is_fitted & has_heldout if fitted == "heldout" else np.zeros(len(df), dtype=bool)
    df["value_in_sample"] = np.where(use, df["value"], np.nan)
    df["fitted_form"] = np.where(use, "held-out", np.where(is_fitted, "in-sample", ""))
    if use.any():
        df.loc[use, "value"] = df.loc[use, "heldout"]
        for c in ("ci_low", "ci_high", "calibrated"):
            if c in df.columns:
                df.loc[use, c] = np.nan
    suffix = np.where(use, HELDOUT_SUFFIX, np.where(is_fitted, IN_SAMPLE_SUFFIX, ""))
    df["measure"] = [m + s for m, s in zip(df["measure"], suffix)]
    return df


def _degenerate(warnings: Any) -> bool:
    if _nan(warnings):
        return False
    if isinstance(warnings, (list, tuple)):
        return any("DegeneracyWarning" in str(w) for w in warnings)
    return "DegeneracyWarning" in str(warnings)


def _floor_from_stats(stats: Any) -> float:
    try:
        opts = json.loads(stats) if isinstance(stats, str) else dict(stats or {})
        m = int(opts["n_permutations"])
        return pvalue_floor(m, opts.get("alternative", "more_similar"))
    except (TypeError, ValueError, KeyError, InvalidParameterError):
        return math.nan


def add_significance(results: Any, method: str = "bh", q: float = 0.05) -> Any:
    """Adjusted p-values and verdicts within each figure's family (see the module docstring)."""
    check_method(method)
    q = check_q(q)
    df = results.copy()
    n = len(df)
    floors = np.full(n, np.nan)
    if "p_floor" in df.columns:
        floors = df["p_floor"].to_numpy(dtype=float, na_value=np.nan)
    if "stats" in df.columns:  # rows written before the p_floor column
        derived = np.array([_floor_from_stats(s) for s in df["stats"]], dtype=float)
        floors = np.where(np.isnan(floors), derived, floors)
    df["p_floor"] = floors
    df["p_adjusted"] = np.nan
    df["significance"] = None
    df["family"] = None
    df["family_size"] = 0
    if "pvalue" not in df.columns:
        return df
    p = df["pvalue"].to_numpy(dtype=float, na_value=np.nan)
    tested = np.isfinite(p)
    if not tested.any():
        return df
    cols = family_columns(df)
    for key, idx in df[tested].groupby(cols, sort=False).groups.items():
        pos = df.index.get_indexer(idx)
        adj, verdicts = classify(p[pos], floors[pos], method=method, q=q)
        key = key if isinstance(key, tuple) else (key,)
        named = dict(zip(cols, key))
        label = (f"{named['measure']}, {named['model_a']} vs {named['model_b']}: "
                 f"{len(pos)} {'test' if len(pos) == 1 else 'tests'}, {method_label(method, q)}")
        df.iloc[pos, df.columns.get_loc("p_adjusted")] = adj
        df.iloc[pos, df.columns.get_loc("significance")] = verdicts
        df.iloc[pos, df.columns.get_loc("family")] = label
        df.iloc[pos, df.columns.get_loc("family_size")] = len(pos)
    return df


def prepare_results(results: Any, *, fitted: str = "heldout", method: str = "bh",
                    q: float = 0.05) -> Any:
    """The table a report reads (one row per cell, presented values, marks; module docstring).

    ``results`` must already carry parameter-aware labels in ``measure``
    (:func:`repscope.report.build.with_labels`).
    """
    df = present_fitted(latest_rows(results), fitted)
    warn = df["warnings"] if "warnings" in df.columns else [None] * len(df)
    df["degenerate"] = [_degenerate(w) for w in warn]
    return add_significance(df, method, q)


def resolve_label(results: Any, measure: str) -> str:
    """The label under which ``measure`` appears (``"mean_cca"`` → ``"mean_cca (held-out)"``)."""
    labels = set(results["measure"])
    if measure in labels:
        return measure
    for suffix in (HELDOUT_SUFFIX, IN_SAMPLE_SUFFIX):
        if measure + suffix in labels:
            return measure + suffix
    return measure


def best_cells(matrix: np.ndarray, direction: str, *, degenerate: np.ndarray | None = None,
               verdicts: np.ndarray | None = None) -> list[tuple[int, int]]:
    """The best-match box of each row, or none.

    A row's best match is its best finite cell among those that are not
    degenerate (a degenerate value is not evidence of similarity).  Its box
    is drawn only when that cell is significant after adjustment or untested:
    a best match whose permutation test is ``"not significant"`` or
    ``"underpowered"`` gets no box (a lesser cell is not boxed in its place).
    """
    m = np.asarray(matrix, dtype=float)
    bad = np.zeros(m.shape, dtype=bool) if degenerate is None else np.asarray(degenerate, bool)
    out = []
    for i in range(m.shape[0]):
        ok = np.isfinite(m[i]) & ~bad[i]
        if not ok.any():
            continue
        row = np.where(ok, m[i], -np.inf if direction == "max" else np.inf)
        j = int(np.argmax(row) if direction == "max" else np.argmin(row))
        verdict = None if verdicts is None else verdicts[i, j]
        if verdict in (None, "", "significant"):
            out.append((i, j))
    return out


def version_warnings(results: Any) -> list[str]:
    """One line per measure whose rows carry different versions, or an outdated one."""
    from repscope.measures.registry import measure_info

    if "measure_version" not in results.columns or results.empty:
        return []
    names = results["measure_name"] if "measure_name" in results.columns else results["measure"]
    out = []
    for name in sorted(set(names)):
        raw = results.loc[names == name, "measure_version"]
        found = {None if _nan(v) else int(v) for v in raw}
        versions = sorted(v for v in found if v is not None) + ([None] if None in found else [])
        try:
            current: int | None = measure_info(name).version
        except RepscopeError:
            current = None
        words = [str(v) if v is not None else "none (written before measure versions)"
                 for v in versions]
        shown = ", ".join(words[:-1]) + " and " + words[-1] if len(words) > 1 else words[0]
        if len(versions) > 1:
            out.append(f"{name}: rows of measure versions {shown} are mixed in this report; "
                       "values of different versions mean different things — re-run the study "
                       "to recompute the stale rows")
        elif current is not None and versions != [current]:
            out.append(f"{name}: rows of measure version {shown}, but this repscope computes "
                       f"version {current}; re-run the study to recompute them")
    return out


def format_cells(labels_a: Sequence[Any], labels_b: Sequence[Any],
                 cells: Sequence[tuple[int, int]]) -> str:
    """``"layer1→layer2; layer3→logits"``: cells named by their row and column labels."""
    return "; ".join(f"{labels_a[i]}→{labels_b[j]}" for i, j in cells)
