"""Assemble a study report from the results table (and optional extras).

``results`` is the tidy table of :class:`repscope.storage.results_db.ResultsDB`
(columns ``model_a, layer_a, model_b, layer_b, measure, value`` and, when
computed, ``ci_low, ci_high, pvalue, p_floor, calibrated, heldout,
measure_version``).  ``extras`` holds what is not a pairwise measure value:
invariance profiles, probe accuracies, stitching matrices, model accuracies and
free-text findings (see :func:`build_report`).

What the report claims about each cell follows :mod:`repscope.report.marks`:
fitted measures are shown by their held-out value, degenerate cells are
hatched, p-values at their floor print as ``≤ 1/(m + 1)``, p-values are
adjusted within the cells of each figure, and a best-match box is never drawn
on a degenerate or not-significant cell.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from repscope.core.errors import RepscopeError, RepscopeWarning
from repscope.inference.multiple_testing import at_floor, format_pvalue, method_label
from repscope.report.figures import bar, heatmap
from repscope.report.html import HtmlReport, natural_key
from repscope.report.marks import (
    best_cells,
    format_cells,
    prepare_results,
    resolve_label,
    version_warnings,
)

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

    name = name.split("[", 1)[0].split(" (", 1)[0]
    try:
        return "max" if measure_info(name).kind == "similarity" else "min"
    except RepscopeError:
        return "max"


def _layers(df: Any, col: str) -> list[str]:
    return sorted(df[col].unique().tolist(), key=natural_key)


def _matrix(df: Any, la: list[str], lb: list[str], col: str = "value",
            fill: Any = np.nan, dtype: Any = float) -> np.ndarray:
    m = np.full((len(la), len(lb)), fill, dtype=dtype)
    ia = {v: i for i, v in enumerate(la)}
    ib = {v: i for i, v in enumerate(lb)}
    for a, b, v in zip(df["layer_a"], df["layer_b"], df[col]):
        m[ia[a], ib[b]] = fill if v is None else v
    return m


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
    one already prepared by :func:`repscope.report.marks.prepare_results`.
    """
    if "significance" not in results.columns:
        if "measure_name" not in results.columns:
            results = with_labels(results)
        results = prepare_results(results, fitted=fitted, method=method, q=q)
    measure = resolve_label(results, measure)
    df = results[(results.measure == measure) & (results.model_a == model_a)
                 & (results.model_b == model_b)]
    out = []
    direction = measure_direction(measure)
    for la in _layers(df, "layer_a"):
        rows = df[(df.layer_a == la) & np.isfinite(df.value.astype(float)) & ~df.degenerate]
        if rows.empty:
            continue
        idx = rows.value.idxmax() if direction == "max" else rows.value.idxmin()
        best = rows.loc[idx]
        out.append({k: best.get(k, float("nan")) for k in (
            "layer_a", "layer_b", "value", "estimate", "ci_low", "ci_high", "pvalue", "p_floor",
            "p_adjusted", "significance", "calibrated")})
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
    fitted: str | None = None,
    adjust: str | None = None,
    q: float | None = None,
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
        tabulate; default all cross-model pairs), ``fitted`` and
        ``multiple_testing`` (``{"method": ..., "q": ...}``), the defaults of
        the arguments below.
    primary_measure : str, optional
        Measure used for best-matching layers (default ``extras["primary_measure"]``
        or ``cka`` when present, else the first measure).
    fitted : ``"heldout"`` (default) or ``"in_sample"``: how fitted measures
        (CCA family, linear regression) are shown; held-out values need the
        ``heldout`` column (a grid computes it by default).
    adjust, q : multiple-comparison adjustment of the p-values within each
        figure's cells: ``"bh"`` (Benjamini–Hochberg, default) or ``"holm"``,
        at level ``q`` (default 0.05).

    Returns
    -------
    HtmlReport
        Its ``warnings`` list what the reader must know about the rows (e.g.
        measure versions mixed in one report); they are also shown at the top
        and issued as :class:`~repscope.RepscopeWarning`.
    """
    extras = dict(extras or {})
    if results is None or len(results) == 0:
        raise RepscopeError("no results to report: run a study or a grid first")
    mt = dict(extras.get("multiple_testing") or {})
    fitted = fitted or extras.get("fitted") or "heldout"
    method = adjust or mt.get("method") or "bh"
    q = float(q if q is not None else mt.get("q", 0.05))
    results = with_labels(results)
    if "error" in results.columns:
        results = results[results["error"].isna()]
    results = prepare_results(results, fitted=fitted, method=method, q=q)
    rep = HtmlReport(title, extras.get("description", ""))
    measures = sorted(results.measure.unique().tolist())
    primary = resolve_label(results, primary_measure or extras.get("primary_measure") or (
        "cka" if "cka" in measures else measures[0]))
    profiles = {(p["model_a"], p["layer_a"], p["model_b"], p["layer_b"]): p
                for p in extras.get("profiles", [])}

    rep.section("Summary")
    for line in version_warnings(results):
        rep.warnings.append(line)
        rep.text(f"Warning — {line}.", cls="warning")
        warnings.warn(line, RepscopeWarning, stacklevel=2)
    models = sorted(set(results.model_a) | set(results.model_b), key=natural_key)
    rep.text(f"{len(models)} models, {len(measures)} measures, {len(results)} comparisons; "
             f"n = {', '.join(str(int(v)) for v in sorted(results.n.unique()))} inputs.")
    for line in _method_notes(results, method, q):
        rep.text(line)
    for line in extras.get("findings", []):
        rep.text(line, cls="sentence")
    if extras.get("accuracies"):
        rep.table(["model", "test accuracy"],
                  [[k, _f(v)] for k, v in sorted(extras["accuracies"].items())])

    cross = [(a, b) for a, b in _pairs(results) if a != b]
    pairs = [tuple(p) for p in extras.get("best_match_pairs", [])] or cross
    if pairs and primary in measures:
        _best_match_tables(rep, results, primary, pairs, profiles, method, q)

    rep.section("Layer × layer similarity")
    for a, b in _pairs(results):
        for meas in measures:
            df = results[(results.model_a == a) & (results.model_b == b)
                         & (results.measure == meas)]
            if not df.empty:
                _layer_heatmap(rep, df, meas, a, b, method, q)

    if len(models) > 2:
        rep.section("Model × model")
        for meas in measures:
            names, mat = _model_matrix(results, meas)
            if np.isfinite(mat).sum() >= 2:
                direction = measure_direction(meas)
                rep.figure(heatmap(mat, names, names, title=f"{meas}: model × model",
                                   cmap="viridis" if direction == "max" else "viridis_r"),
                           f"{meas}: mean over the row model's layers of the best-matching "
                           "layer in the column model (degenerate cells excluded).")

    if len(measures) > 1:
        names, agree = _agreement(results)
        if np.isfinite(agree).sum() > len(names):
            rep.section("Do the measures agree?")
            rep.figure(heatmap(agree, names, names, title="Spearman correlation across pairs",
                               cmap="coolwarm", vmin=-1, vmax=1),
                       "Rank correlation between measures over every compared pair (distances "
                       "negated so that positive = agree on which pairs are more similar).")

    _functional_sections(rep, extras)

    if profiles:
        rep.section("Invariance profiles")
        rows = [[k[0], k[1], k[2], k[3], p.get("sentence", "")] for k, p in profiles.items()]
        rep.table(["model A", "layer A", "model B", "layer B", "strongest sense of agreement"],
                  rows, collapsed=f"{len(rows)} profiled layer pairs")

    _all_results(rep, results, method, q)
    return rep


def _method_notes(results: Any, method: str, q: float) -> list[str]:
    """What the p-values and fitted values of this report are."""
    notes = []
    tested = results[results["pvalue"].notna()] if "pvalue" in results.columns else results[:0]
    if len(tested):
        ms = sorted({int(round(1 / f - 1)) for f in tested["p_floor"] if np.isfinite(f)
                     and 0 < f < 1})
        floors = "; ".join(f"m = {m} permutations, floor 1/(m + 1) = {1 / (m + 1):.3g}"
                           for m in ms) or "number of permutations unknown"
        verdicts = tested["significance"].value_counts().to_dict()
        notes.append(
            f"Permutation p-values ({floors}); a p-value at its floor 1/(m + 1) is printed "
            "“≤ floor”. Each figure's cells (one measure, one model pair, all layer pairs) are "
            f"one family of tests, adjusted with {method_label(method, q)} "
            f"({'false discovery rate' if method == 'bh' else 'family-wise error rate'}): "
            f"{verdicts.get('significant', 0)} of {len(tested)} tested cells significant, "
            f"{verdicts.get('underpowered', 0)} underpowered (not significant even at the "
            "floor: more permutations needed).")
    forms = results.loc[results["fitted_form"] != "", ["measure", "fitted_form"]]
    if len(forms):
        held = sorted(set(forms.loc[forms.fitted_form == "held-out", "measure"]))
        ins = sorted(set(forms.loc[forms.fitted_form == "in-sample", "measure"]))
        text = ("Fitted measures (CCA family, linear regression) approach 1 in-sample as "
                "d → n even for unrelated data.")
        if held:
            text += (f" Shown by their held-out value (fitted on a random half of the inputs, "
                     f"evaluated on the other half): {', '.join(held)}.")
        if ins:
            text += f" Shown in-sample (no held-out value, or requested): {', '.join(ins)}."
        notes.append(text)
    if results["degenerate"].any():
        notes.append(f"{int(results['degenerate'].sum())} cells are degenerate "
                     "(DegeneracyWarning, e.g. d ≥ n − 1): hatched in figures, marked in "
                     "tables, never a best match.")
    return notes


def _p(row: Any) -> str:
    return format_pvalue(row.get("pvalue"), row.get("p_floor")) or "–"


def _p_adjusted(row: Any) -> str:
    """The adjusted p-value; ``≤`` when the row's p-value is at its floor (adjustment is
    monotone in each p-value, so a bound in gives a bound out)."""
    text = format_pvalue(row.get("p_adjusted"))
    if text and at_floor(row.get("pvalue"), row.get("p_floor")):
        return f"≤ {text}"
    return text or "–"


def _best_match_tables(rep: HtmlReport, results: Any, primary: str, pairs: Any,
                       profiles: dict, method: str, q: float) -> None:
    rep.section(f"Best-matching layers ({primary})")
    rep.text("For each layer of the first model: the layer of the second model that is most "
             f"similar under {primary} (degenerate cells excluded), with its confidence "
             "interval, permutation p-value, the p-value adjusted within the cells of that "
             f"model pair's {primary} figure ({method_label(method, q)}) and the verdict, and "
             "the invariance profile of that layer pair.")
    for a, b in pairs:
        rows = []
        for m in best_matches(results, primary, a, b):
            prof = profiles.get((a, m["layer_a"], b, m["layer_b"]), {})
            ci = (f"[{_f(m['ci_low']):.3f}, {_f(m['ci_high']):.3f}]"
                  if not math.isnan(_f(m["ci_low"])) else "–")
            rows.append([m["layer_a"], m["layer_b"], _f(m["value"]), ci, _p(m),
                         _p_adjusted(m), m.get("significance") or "not tested",
                         prof.get("sentence", "–")])
        if rows:
            rep.heading(f"{a} → {b}")
            rep.table([f"{a} layer", f"best {b} layer", primary, "95% CI", "p-value",
                       "adjusted p", "verdict", "in what sense"], rows)


def _layer_heatmap(rep: HtmlReport, df: Any, meas: str, a: str, b: str, method: str,
                   q: float) -> None:
    la, lb = _layers(df, "layer_a"), _layers(df, "layer_b")
    direction = measure_direction(meas)
    values = _matrix(df, la, lb)
    degenerate = _matrix(df, la, lb, "degenerate", False, bool)
    verdicts = _matrix(df, la, lb, "significance", "", object)
    boxes = best_cells(values, direction, degenerate=degenerate, verdicts=verdicts)
    corner = np.where(verdicts == "not significant", "ns",
                      np.where(verdicts == "underpowered", "u", ""))
    fig = heatmap(values, la, lb, title=f"{meas}: {a} vs {b}", xlabel=b, ylabel=a,
                  boxes=boxes, hatch=degenerate, corner=corner,
                  cmap="viridis" if direction == "max" else "viridis_r")
    best = "largest" if direction == "max" else "smallest"
    cap = [f"{meas} between every layer of {a} (rows) and {b} (columns)."]
    form = set(df["fitted_form"])
    if "held-out" in form:
        cap.append("Held-out values: fitted on a random half of the inputs, evaluated on the "
                   "other half.")
    elif "in-sample" in form:
        cap.append("In-sample values of a fitted measure: they approach 1 as d → n even for "
                   "unrelated data.")
    tested = df["pvalue"].notna() if "pvalue" in df.columns else df["value"].isna()
    if tested.any():
        family = int(df["family_size"].max())
        cap.append(f"Red boxes: each row's best match ({best} value), drawn only where "
                   f"significant after {method_label(method, q)} within this figure's family "
                   f"of {family} cells.")
        if (corner == "ns").any():
            cap.append("ns: not significant.")
        if (corner == "u").any():
            cap.append("u: underpowered (not significant even at its p-value floor 1/(m + 1): "
                       "more permutations needed).")
    else:
        cap.append(f"Red boxes: each row's {best} value (no permutation test for this "
                   "measure).")
    if degenerate.any():
        cap.append("Hatched: degenerate (DegeneracyWarning, e.g. d ≥ n − 1), never boxed.")
    data = {"boxed": format_cells(la, lb, boxes),
            "hatched": format_cells(la, lb, list(zip(*np.nonzero(degenerate)))),
            "measure": meas}
    rep.figure(fig, " ".join(cap), data=data)


def _functional_sections(rep: HtmlReport, extras: dict[str, Any]) -> None:
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


def _all_results(rep: HtmlReport, results: Any, method: str, q: float) -> None:
    rep.section("All results")
    cols = [c for c in ("model_a", "layer_a", "model_b", "layer_b", "measure", "value",
                        "estimate", "ci_low", "ci_high", "pvalue", "p_adjusted", "significance",
                        "calibrated", "value_in_sample", "n", "measure_version", "warnings")
            if c in results.columns]
    numeric = ("value", "estimate", "ci_low", "ci_high", "calibrated", "value_in_sample")
    rows = []
    for r in results.to_dict("records"):
        line = []
        for c in cols:
            v = r.get(c)
            if c == "pvalue":
                line.append(format_pvalue(v, r.get("p_floor")))
            elif c == "p_adjusted":
                line.append(_p_adjusted(r) if np.isfinite(_f(r.get("pvalue"))) else "")
            elif c in numeric:
                line.append(_f(v))
            elif c == "warnings" and r.get("degenerate"):
                line.append(f"degenerate — {v}")
            else:
                line.append("" if v is None or (isinstance(v, float) and math.isnan(v)) else v)
        rows.append(line)
    header = ["in-sample" if c == "value_in_sample" else c for c in cols]
    rep.text("p_adjusted: adjusted within each row's figure (one measure, one model pair, all "
             f"layer pairs; {method_label(method, q)}); value: the held-out value for fitted "
             "measures labelled “(held-out)”, whose in-sample value is in “in-sample”.")
    rep.table(header, rows, collapsed=f"{len(rows)} rows (value, 95% CI, permutation p-value, "
              "adjusted p-value)")

def write_report(path: str | Path, results: Any, extras: dict[str, Any] | None = None,
                 **kwargs: Any) -> Path:
    """Build the report and write it to ``path``; returns the path."""
    rep = build_report(results, extras, **kwargs)
    rep.write(path)
    return Path(path)
