"""Assemble a study report from the results table (and optional extras).

``results`` is the tidy table of :class:`repscope.storage.results_db.ResultsDB`
(columns ``model_a, layer_a, model_b, layer_b, measure, value`` and, when
computed, ``ci_low, ci_high, pvalue, calibrated``).  ``extras`` holds what is
not a pairwise measure value: invariance profiles, probe accuracies, stitching
matrices, model accuracies and free-text findings (see :func:`build_report`).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from repscope.core.errors import RepscopeError
from repscope.report.figures import bar, heatmap
from repscope.report.html import HtmlReport, natural_key

__all__ = ["build_report", "write_report", "best_matches", "measure_direction", "measure_label",
           "with_labels"]


def measure_label(name: str, params: Any = None) -> str:
    """``"cka"`` for default parameters, ``"cka[kernel=rbf]"`` otherwise."""
    import json

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
    CKA) then stay apart in every table and figure.
    """
    if "params" not in results.columns:
        return results
    df = results.copy()
    df["measure_name"] = df["measure"]
    df["measure"] = [measure_label(m, p) for m, p in zip(df["measure"], df["params"])]
    return df


def measure_direction(name: str) -> str:
    """``"max"`` when larger values mean more similar, ``"min"`` for distances."""
    from repscope.measures.registry import measure_info

    name = name.split("[", 1)[0]
    try:
        return "max" if measure_info(name).kind == "similarity" else "min"
    except RepscopeError:
        return "max"


def _layers(df: Any, col: str) -> list[str]:
    return sorted(df[col].unique().tolist(), key=natural_key)


def _matrix(df: Any, la: list[str], lb: list[str]) -> np.ndarray:
    m = np.full((len(la), len(lb)), np.nan)
    ia = {v: i for i, v in enumerate(la)}
    ib = {v: i for i, v in enumerate(lb)}
    for r in df.itertuples(index=False):
        m[ia[r.layer_a], ib[r.layer_b]] = r.value
    return m


def best_matches(results: Any, measure: str, model_a: str, model_b: str) -> list[dict[str, Any]]:
    """For each layer of ``model_a``, the most similar layer of ``model_b`` under ``measure``.

    ``measure`` is a label (``"cka"`` = default parameters, ``"cka[kernel=rbf]"``).
    """
    if "measure_name" not in results.columns:
        results = with_labels(results)
    df = results[(results.measure == measure) & (results.model_a == model_a)
                 & (results.model_b == model_b)]
    out = []
    direction = measure_direction(measure)
    for la in _layers(df, "layer_a"):
        rows = df[df.layer_a == la]
        idx = rows.value.idxmax() if direction == "max" else rows.value.idxmin()
        best = rows.loc[idx]
        out.append({k: best.get(k, float("nan")) for k in (
            "layer_a", "layer_b", "value", "estimate", "ci_low", "ci_high", "pvalue",
            "calibrated")})
    return out


def _pairs(results: Any) -> list[tuple[str, str]]:
    seen: list[tuple[str, str]] = []
    for r in results[["model_a", "model_b"]].drop_duplicates().itertuples(index=False):
        pair = (r.model_a, r.model_b)
        if pair not in seen:
            seen.append(pair)
    return seen


def _model_matrix(results: Any, measure: str) -> tuple[list[str], np.ndarray]:
    """Mean over A's layers of the best-matching layer of B (not the max over all pairs)."""
    models = sorted(set(results.model_a) | set(results.model_b), key=natural_key)
    m = np.full((len(models), len(models)), np.nan)
    for a, b in _pairs(results[results.measure == measure]):
        matches = best_matches(results, measure, a, b)
        if matches:
            v = float(np.mean([x["value"] for x in matches]))
            i, j = models.index(a), models.index(b)
            m[i, j] = v
            if np.isnan(m[j, i]):
                m[j, i] = v
    return models, m


def _agreement(results: Any) -> tuple[list[str], np.ndarray]:
    """Spearman correlation between measures across all compared pairs (distances negated)."""
    from scipy.stats import spearmanr

    df = results.copy()
    df["signed"] = [v if measure_direction(m) == "max" else -v
                    for m, v in zip(df.measure, df.value)]
    wide = df.pivot_table(index=["model_a", "layer_a", "model_b", "layer_b"], columns="measure",
                          values="signed", aggfunc="mean")
    names = list(wide.columns)
    k = len(names)
    out = np.full((k, k), np.nan)
    for i in range(k):
        for j in range(k):
            a, b = wide[names[i]].to_numpy(), wide[names[j]].to_numpy()
            ok = np.isfinite(a) & np.isfinite(b)
            if ok.sum() >= 3 and np.ptp(a[ok]) > 0 and np.ptp(b[ok]) > 0:
                out[i, j] = spearmanr(a[ok], b[ok]).statistic
    return names, out


def _f(v: Any) -> float:
    try:
        x = float(v)
    except (TypeError, ValueError):
        return float("nan")
    return x


def build_report(
    results: Any,
    extras: dict[str, Any] | None = None,
    *,
    title: str = "repscope report",
    primary_measure: str | None = None,
) -> HtmlReport:
    """Build the HTML report.

    Parameters
    ----------
    results : pandas.DataFrame
        Tidy results (one row per pair × measure).
    extras : dict, optional
        ``description`` (str), ``findings`` (list of str), ``accuracies``
        ({model: accuracy}), ``profiles`` (list of dicts with model_a, layer_a,
        model_b, layer_b, sentence), ``probes`` (list of dicts model, layer,
        accuracy), ``stitching`` (list of dicts model_a, model_b, layers_a,
        layers_b, matrix), ``best_match_pairs`` (list of [model_a, model_b] to
        tabulate; default all cross-model pairs).
    primary_measure : str, optional
        Measure used for best-matching layers (default ``extras["primary_measure"]``
        or ``cka`` when present, else the first measure).
    """
    extras = dict(extras or {})
    if results is None or len(results) == 0:
        raise RepscopeError("no results to report: run a study or a grid first")
    results = with_labels(results)
    if "error" in results.columns:
        results = results[results["error"].isna()]
    rep = HtmlReport(title, extras.get("description", ""))
    measures = sorted(results.measure.unique().tolist())
    primary = primary_measure or extras.get("primary_measure") or (
        "cka" if "cka" in measures else measures[0])
    profiles = {(p["model_a"], p["layer_a"], p["model_b"], p["layer_b"]): p
                for p in extras.get("profiles", [])}

    rep.section("Summary")
    models = sorted(set(results.model_a) | set(results.model_b), key=natural_key)
    rep.text(f"{len(models)} models, {len(measures)} measures, {len(results)} comparisons; "
             f"n = {', '.join(str(int(v)) for v in sorted(results.n.unique()))} inputs.")
    for line in extras.get("findings", []):
        rep.text(line, cls="sentence")
    if extras.get("accuracies"):
        rep.table(["model", "test accuracy"],
                  [[k, _f(v)] for k, v in sorted(extras["accuracies"].items())])

    cross = [(a, b) for a, b in _pairs(results) if a != b]
    pairs = [tuple(p) for p in extras.get("best_match_pairs", [])] or cross
    if pairs and primary in measures:
        rep.section(f"Best-matching layers ({primary})")
        rep.text("For each layer of the first model: the layer of the second model that is most "
                 f"similar under {primary}, with the estimate its confidence interval is built "
                 "around (bias-corrected where the plug-in value is biased at this n), the "
                 "interval, the permutation p-value and the invariance profile of that layer "
                 "pair.")
        for a, b in pairs:
            rows = []
            for m in best_matches(results, primary, a, b):
                prof = profiles.get((a, m["layer_a"], b, m["layer_b"]), {})
                ci = (f"[{_f(m['ci_low']):.3f}, {_f(m['ci_high']):.3f}]"
                      if not math.isnan(_f(m["ci_low"])) else "–")
                rows.append([m["layer_a"], m["layer_b"], _f(m["value"]), _f(m["estimate"]), ci,
                             _f(m["pvalue"]), prof.get("sentence", "–")])
            if rows:
                rep.heading(f"{a} → {b}")
                rep.table([f"{a} layer", f"best {b} layer", primary, "estimate", "95% CI",
                           "p-value", "in what sense"], rows)

    rep.section("Layer × layer similarity")
    for a, b in _pairs(results):
        for meas in measures:
            df = results[(results.model_a == a) & (results.model_b == b)
                         & (results.measure == meas)]
            if df.empty:
                continue
            la, lb = _layers(df, "layer_a"), _layers(df, "layer_b")
            direction = measure_direction(meas)
            fig = heatmap(_matrix(df, la, lb), la, lb, title=f"{meas}: {a} vs {b}",
                          xlabel=b, ylabel=a, mark_rows_best=direction,
                          cmap="viridis" if direction == "max" else "viridis_r")
            rep.figure(fig, f"{meas} between every layer of {a} (rows) and {b} (columns); "
                            "red boxes mark each row's best match.")

    if len(models) > 2:
        rep.section("Model × model")
        for meas in measures:
            names, mat = _model_matrix(results, meas)
            if np.isfinite(mat).sum() >= 2:
                direction = measure_direction(meas)
                rep.figure(heatmap(mat, names, names, title=f"{meas}: model × model",
                                   cmap="viridis" if direction == "max" else "viridis_r"),
                           f"{meas}: mean over the row model's layers of the best-matching "
                           "layer in the column model.")

    if len(measures) > 1:
        names, agree = _agreement(results)
        if np.isfinite(agree).sum() > len(names):
            rep.section("Do the measures agree?")
            rep.figure(heatmap(agree, names, names, title="Spearman correlation across pairs",
                               cmap="coolwarm", vmin=-1, vmax=1),
                       "Rank correlation between measures over every compared pair (distances "
                       "negated so that positive = agree on which pairs are more similar).")

    if extras.get("probes"):
        rep.section("Linear probes")
        probes = extras["probes"]
        for model in sorted({p["model"] for p in probes}, key=natural_key):
            rows = sorted([p for p in probes if p["model"] == model],
                          key=lambda p: natural_key(p["layer"]))
            rep.figure(bar([p["accuracy"] for p in rows], [p["layer"] for p in rows],
                           title=f"probe accuracy: {model}", ylabel="held-out accuracy",
                           ylim=(0, 1)),
                       f"Held-out accuracy of a logistic-regression probe on each layer of "
                       f"{model}.")

        for s in extras.get("probe_agreement", []):
            rep.figure(heatmap(np.asarray(s["matrix"], dtype=float), s["layers_a"],
                               s["layers_b"], title=f"probe agreement {s['model_a']} vs "
                               f"{s['model_b']}", xlabel=s["model_b"], ylabel=s["model_a"],
                               vmin=0, vmax=1),
                       "Fraction of held-out inputs on which the two layers' probes predict "
                       "the same class.")

    if extras.get("stitching"):
        rep.section("Model stitching")
        rep.text("Accuracy of A[:a] → affine stitching layer → B[b:] relative to B's own "
                 "accuracy (1 = A's layer serves B's tail as well as B's own layer).")
        for s in extras["stitching"]:
            rep.figure(heatmap(np.asarray(s["matrix"], dtype=float), s["layers_a"],
                               s["layers_b"], title=f"stitching {s['model_a']} → {s['model_b']}",
                               xlabel=f"{s['model_b']} layer (input of B's tail)",
                               ylabel=f"{s['model_a']} layer", vmin=0, vmax=1.05),
                       f"Relative stitched accuracy, {s['model_a']} into {s['model_b']}.")

    if profiles:
        rep.section("Invariance profiles")
        rows = [[k[0], k[1], k[2], k[3], p.get("sentence", "")] for k, p in profiles.items()]
        rep.table(["model A", "layer A", "model B", "layer B", "strongest sense of agreement"],
                  rows, collapsed=f"{len(rows)} profiled layer pairs")

    rep.section("All results")
    cols = [c for c in ("model_a", "layer_a", "model_b", "layer_b", "measure", "value",
                        "estimate", "ci_low", "ci_high", "pvalue", "calibrated", "n", "warnings")
            if c in results.columns]
    rows = [[_f(v) if c in ("value", "estimate", "ci_low", "ci_high", "pvalue", "calibrated") else
             ("" if v is None or (isinstance(v, float) and math.isnan(v)) else v)
             for c, v in zip(cols, r)] for r in results[cols].itertuples(index=False)]
    rep.table(cols, rows, collapsed=f"{len(rows)} rows (value, 95% CI, permutation p-value)")
    return rep


def write_report(path: str | Path, results: Any, extras: dict[str, Any] | None = None,
                 **kwargs: Any) -> Path:
    """Build the report and write it to ``path``; returns the path."""
    rep = build_report(results, extras, **kwargs)
    rep.write(path)
    return Path(path)
