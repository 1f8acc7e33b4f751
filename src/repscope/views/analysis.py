"""What a report computes from the prepared results table: labels, best matches, matrices.

Everything here is pure (tables in, tables or arrays out) and shared by the
HTML report (:mod:`repscope.report.payload`), the notebook figures
(:mod:`repscope.views.figures`) and the study runner (best matches pick the
layer pairs that get an invariance profile).
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

import numpy as np

from repscope.core.errors import RepscopeError
from repscope.views.marks import prepare_results, resolve_label

__all__ = [
    "agreement",
    "best_matches",
    "disagreements",
    "layer_matrix",
    "measure_direction",
    "measure_label",
    "model_matrix",
    "natural_key",
    "ordered_layers",
    "pairs",
    "with_labels",
]


def natural_key(s: Any) -> tuple[Any, ...]:
    """Sort key that orders ``layer2`` before ``layer10``."""
    parts = re.split(r"(\d+)", str(s))
    return tuple(int(p) if p.isdigit() else p for p in parts)


def measure_label(name: str, params: Any = None) -> str:
    """``"cka"`` for default parameters, ``"cka[kernel=rbf]"`` otherwise."""
    from repscope.measures.registry import measure_info

    if params is None or (isinstance(params, float) and math.isnan(params)):
        return name
    given = json.loads(params) if isinstance(params, str) else dict(params)
    try:
        defaults = measure_info(name).params
    except RepscopeError:
        defaults = {}
    diff = {k: v for k, v in given.items() if defaults.get(k, object()) != v}
    if not diff:
        return name
    return f"{name}[{','.join(f'{k}={v}' for k, v in sorted(diff.items()))}]"


def with_labels(results: Any) -> Any:
    """Copy of ``results`` whose ``measure`` column is the parameter-aware label.

    Rows of the same measure with different parameters (e.g. linear and RBF
    CKA) then stay apart in every table and figure; the registry name stays in
    ``measure_name``.
    """
    df = results.copy()
    if "measure_name" not in df.columns:
        df["measure_name"] = df["measure"]
    if "params" in df.columns:
        df["measure"] = [measure_label(m, p) for m, p in zip(df["measure_name"], df["params"])]
    return df


def base_name(label: str) -> str:
    """The registry name inside a label: ``"cka[kernel=rbf] (held-out)"`` → ``"cka"``."""
    return label.split("[", 1)[0].split(" (", 1)[0]


def measure_direction(name: str) -> str:
    """``"max"`` when larger values mean more similar, ``"min"`` for distances."""
    from repscope.measures.registry import measure_info

    try:
        return "max" if measure_info(base_name(name)).kind == "similarity" else "min"
    except RepscopeError:
        return "max"


def ordered_layers(df: Any, col: str) -> list[str]:
    """The distinct values of ``col``, in natural order."""
    return sorted(df[col].unique().tolist(), key=natural_key)


def layer_matrix(df: Any, rows: list[str], cols: list[str], col: str = "value",
                 fill: Any = np.nan, dtype: Any = float) -> np.ndarray:
    """``df[col]`` laid out as a (layer of A) × (layer of B) matrix."""
    m = np.full((len(rows), len(cols)), fill, dtype=dtype)
    ia = {v: i for i, v in enumerate(rows)}
    ib = {v: i for i, v in enumerate(cols)}
    for a, b, v in zip(df["layer_a"], df["layer_b"], df[col]):
        if a in ia and b in ib:
            m[ia[a], ib[b]] = fill if v is None else v
    return m


def _prepared(results: Any, fitted: str, method: str, q: float) -> Any:
    if "significance" in results.columns:
        return results
    if "measure_name" not in results.columns:
        results = with_labels(results)
    return prepare_results(results, fitted=fitted, method=method, q=q)


def best_matches(results: Any, measure: str, model_a: str, model_b: str, *,
                 fitted: str = "heldout", method: str = "bh",
                 q: float = 0.05) -> list[dict[str, Any]]:
    """For each layer of ``model_a``, the most similar layer of ``model_b`` under ``measure``.

    ``measure`` is a label (``"cka"`` = default parameters, ``"cka[kernel=rbf]"``;
    a fitted measure such as ``"mean_cca"`` means its presented form,
    ``"mean_cca (held-out)"`` by default).  Degenerate cells are never a best
    match (a layer with only degenerate cells has none); each match carries
    its permutation ``pvalue``, ``p_floor``, ``p_adjusted`` (within the
    figure's family) and ``significance``.  ``results`` is the raw table or
    one already prepared by :func:`repscope.views.marks.prepare_results`.
    """
    results = _prepared(results, fitted, method, q)
    measure = resolve_label(results, measure)
    df = results[(results.measure == measure) & (results.model_a == model_a)
                 & (results.model_b == model_b)]
    out = []
    direction = measure_direction(measure)
    for la in ordered_layers(df, "layer_a"):
        rows = df[(df.layer_a == la) & np.isfinite(df.value.astype(float)) & ~df.degenerate]
        if rows.empty:
            continue
        idx = rows.value.idxmax() if direction == "max" else rows.value.idxmin()
        best = rows.loc[idx]
        out.append({k: best.get(k, float("nan")) for k in (
            "layer_a", "layer_b", "value", "estimate", "ci_low", "ci_high", "pvalue", "p_floor",
            "p_adjusted", "significance", "calibrated")})
    return out


def pairs(results: Any) -> list[tuple[str, str]]:
    """The ordered model pairs of ``results``, in order of appearance."""
    seen: dict[tuple[str, str], None] = {}
    for a, b in zip(results["model_a"], results["model_b"]):
        seen.setdefault((a, b), None)
    return list(seen)


def _datasets_of(results: Any) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    if "dataset" not in results.columns:
        return out
    for side in ("a", "b"):
        for m, d in zip(results[f"model_{side}"], results["dataset"]):
            out.setdefault(m, set()).add(str(d))
    return out


def model_matrix(results: Any, measure: str) -> tuple[list[str], np.ndarray, list[list[str]]]:
    """Model × model summary of one measure, with the reason for every empty cell.

    Cell (A, B) is the mean over A's layers of the value of A's best-matching
    layer in B (degenerate cells excluded; not the maximum over all layer
    pairs, which rewards a model for one lucky layer).  A pair compared only
    as (B, A) fills both cells.  ``status[i][j]`` is ``"value"``, ``"same
    model"``, ``"n/a: different inputs"`` (the two models were never run on
    the same inputs) or ``"not compared"``.
    """
    models = sorted(set(results.model_a) | set(results.model_b), key=natural_key)
    k = len(models)
    m = np.full((k, k), np.nan)
    sub = results[results.measure == measure]
    for a, b in pairs(sub):
        if a == b:
            continue
        matches = best_matches(sub, measure, a, b)
        if matches:
            v = float(np.mean([float(x["value"]) for x in matches]))
            i, j = models.index(a), models.index(b)
            m[i, j] = v
            if np.isnan(m[j, i]):
                m[j, i] = v
    data = _datasets_of(results)
    status = [["" for _ in models] for _ in models]
    for i, a in enumerate(models):
        for j, b in enumerate(models):
            if i == j:
                status[i][j] = "same model"
            elif np.isfinite(m[i, j]):
                status[i][j] = "value"
            elif data and not (data.get(a, set()) & data.get(b, set())):
                status[i][j] = "n/a: different inputs"
            else:
                status[i][j] = "not compared"
    return models, m, status


def _signed_wide(results: Any) -> Any:
    df = results[["model_a", "layer_a", "model_b", "layer_b", "measure", "value"]].copy()
    df["value"] = df["value"].astype(float)
    df["signed"] = [v if measure_direction(m) == "max" else -v
                    for m, v in zip(df.measure, df.value)]
    index = ["model_a", "layer_a", "model_b", "layer_b"]
    df = df[~((df.model_a == df.model_b) & (df.layer_a == df.layer_b))]
    return df.pivot_table(index=index, columns="measure", values="signed", aggfunc="mean")


def agreement(results: Any) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Spearman correlation between measures across the compared cells.

    Distances are negated, so a positive correlation means the two measures
    agree on which layer pairs are more alike.  Cells comparing a layer with
    itself are left out (every measure is at its identity value there, which
    would inflate agreement).  Returns the measure labels, the correlation
    matrix (NaN where fewer than 3 cells are shared or a measure is constant
    on them) and the number of shared cells.
    """
    from scipy.stats import spearmanr

    wide = _signed_wide(results)
    names = list(wide.columns)
    k = len(names)
    rho = np.full((k, k), np.nan)
    count = np.zeros((k, k), dtype=int)
    for i in range(k):
        for j in range(k):
            a, b = wide[names[i]].to_numpy(), wide[names[j]].to_numpy()
            ok = np.isfinite(a) & np.isfinite(b)
            count[i, j] = int(ok.sum())
            if ok.sum() >= 3 and np.ptp(a[ok]) > 0 and np.ptp(b[ok]) > 0:
                rho[i, j] = spearmanr(a[ok], b[ok]).statistic
    return names, rho, count


def disagreements(results: Any, top: int = 5) -> list[dict[str, Any]]:
    """For each pair of measures, the layer pairs on which their rankings differ most.

    Each measure's values (distances negated) are turned into percentile
    ranks over the cells both measures computed; the cells with the largest
    absolute rank difference are listed with both values, so a reader sees
    *where* two measures disagree, not only that they do.
    """
    from scipy.stats import rankdata

    wide = _signed_wide(results)
    names = list(wide.columns)
    out = []
    for i in range(len(names)):
        for j in range(i + 1, len(names)):
            a = wide[names[i]].to_numpy()
            b = wide[names[j]].to_numpy()
            ok = np.isfinite(a) & np.isfinite(b)
            if ok.sum() < 3:
                continue
            ra = (rankdata(a[ok]) - 0.5) / ok.sum()
            rb = (rankdata(b[ok]) - 0.5) / ok.sum()
            diff = ra - rb
            order = np.argsort(-np.abs(diff), kind="stable")[:top]
            keys = [k for k, good in zip(wide.index, ok) if good]
            rows = []
            for o in order:
                ma, la, mb, lb = keys[o]
                sign_a = 1 if measure_direction(names[i]) == "max" else -1
                sign_b = 1 if measure_direction(names[j]) == "max" else -1
                rows.append({"model_a": ma, "layer_a": la, "model_b": mb, "layer_b": lb,
                             "value_1": sign_a * float(a[ok][o]),
                             "value_2": sign_b * float(b[ok][o]),
                             "rank_1": float(ra[o]), "rank_2": float(rb[o])})
            out.append({"measure_1": names[i], "measure_2": names[j], "cells": int(ok.sum()),
                        "rows": rows})
    return out
