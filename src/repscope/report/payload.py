"""The report's data, once, as JSON: every panel, matrix and row the page shows.

:func:`build_payload` turns the prepared results table
(:func:`repscope.views.marks.prepare_results`) and the study's extras into
one JSON-serialisable dict.  The page embeds it once
(``<script type="application/json" id="rs-data">``) and draws every figure
from it in the browser; tests and tools read the same dict
(:attr:`repscope.report.HtmlReport.payload`).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from repscope.inference.multiple_testing import at_floor, format_pvalue, method_label
from repscope.views.analysis import (
    agreement,
    best_matches,
    disagreements,
    layer_matrix,
    measure_direction,
    model_matrix,
    natural_key,
    ordered_layers,
    pairs,
)
from repscope.views.colormaps import COLOUR_MAPS
from repscope.views.marks import best_cells, format_cells
from repscope.views.measure_notes import colour_domain, describe_measure

__all__ = ["build_payload", "clean", "p_adjusted_text", "pvalue_text"]


def clean(v: Any) -> Any:
    """JSON-safe copy: NaN/inf → ``None``, NumPy scalars → Python, floats to 6 significant
    digits (the page never shows more)."""
    if isinstance(v, dict):
        return {str(k): clean(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [clean(x) for x in v]
    if isinstance(v, np.ndarray):
        return clean(v.tolist())
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    if isinstance(v, (int, np.integer)):
        return int(v)
    if isinstance(v, (float, np.floating)):
        x = float(v)
        return float(f"{x:.6g}") if math.isfinite(x) else None
    if v is None or isinstance(v, str):
        return v
    try:
        if v != v:  # pandas NA / NaT-like
            return None
    except (TypeError, ValueError):
        pass
    return str(v)


def _f(v: Any) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return float("nan")


def pvalue_text(row: Any) -> str:
    return format_pvalue(row.get("pvalue"), row.get("p_floor")) or ""


def p_adjusted_text(row: Any) -> str:
    """The adjusted p-value; ``≤`` when the row's p-value is at its floor (adjustment is
    monotone in each p-value, so a bound in gives a bound out)."""
    if not math.isfinite(_f(row.get("pvalue"))):
        return ""
    text = format_pvalue(row.get("p_adjusted"))
    if text and at_floor(row.get("pvalue"), row.get("p_floor")):
        return f"≤ {text}"
    return text or ""


def _warning_kinds(w: Any) -> str:
    """``"ChanceWarning; DegeneracyWarning"`` from a row's warning text (the full text is in
    the all-results table)."""
    if w is None or (isinstance(w, float) and math.isnan(w)) or not str(w):
        return ""
    items = w if isinstance(w, (list, tuple)) else str(w).split("\n")
    kinds = []
    for item in items:
        head = str(item).split(":", 1)[0].strip()
        if head and head not in kinds:
            kinds.append(head)
    return "; ".join(kinds)


def _caption(df: Any, meas: str, a: str, b: str, method: str, q: float,
             corner: np.ndarray, degenerate: np.ndarray) -> str:
    direction = measure_direction(meas)
    best = "largest" if direction == "max" else "smallest"
    cap = [f"{meas} between every layer of {a} (rows) and {b} (columns)."]
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
    return " ".join(cap)


def _panel(df: Any, meas: str, a: str, b: str, dataset: str, method: str,
           q: float) -> dict[str, Any]:
    la, lb = ordered_layers(df, "layer_a"), ordered_layers(df, "layer_b")
    direction = measure_direction(meas)
    values = layer_matrix(df, la, lb)
    degenerate = layer_matrix(df, la, lb, "degenerate", False, bool)
    verdicts = layer_matrix(df, la, lb, "significance", "", object)
    boxes = best_cells(values, direction, degenerate=degenerate, verdicts=verdicts)
    corner = np.where(verdicts == "not significant", "ns",
                      np.where(verdicts == "underpowered", "u", ""))
    records = df.to_dict("records")
    text = {"p": {}, "padj": {}, "warn": {}}
    for r in records:
        key = (r["layer_a"], r["layer_b"])
        text["p"][key] = pvalue_text(r)
        text["padj"][key] = p_adjusted_text(r)
        text["warn"][key] = _warning_kinds(r.get("warnings"))

    def grid(name: str) -> list[list[str]]:
        return [[text[name].get((x, y), "") for y in lb] for x in la]

    return {
        "dataset": dataset, "measure": meas, "a": a, "b": b, "rows": la, "cols": lb,
        "v": values,
        "lo": layer_matrix(df, la, lb, "ci_low") if "ci_low" in df.columns else None,
        "hi": layer_matrix(df, la, lb, "ci_high") if "ci_high" in df.columns else None,
        "chance": layer_matrix(df, la, lb, "chance") if "chance" in df.columns else None,
        "p": grid("p"), "padj": grid("padj"), "warn": grid("warn"),
        "sig": [[v or "" for v in row] for row in verdicts.tolist()],
        "deg": degenerate.astype(int), "corner": corner.tolist(),
        "boxes": [list(c) for c in boxes],
        "boxed": format_cells(la, lb, boxes),
        "hatched": format_cells(la, lb, list(zip(*np.nonzero(degenerate)))),
        "caption": _caption(df, meas, a, b, method, q, corner, degenerate),
    }


def _panels(results: Any, method: str, q: float) -> list[dict[str, Any]]:
    out = []
    datasets = (sorted(results["dataset"].astype(str).unique(), key=natural_key)
                if "dataset" in results.columns else [""])
    for dataset in datasets:
        part = results[results["dataset"].astype(str) == dataset] if dataset else results
        for a, b in pairs(part):
            for meas in sorted(part.measure.unique()):
                df = part[(part.model_a == a) & (part.model_b == b) & (part.measure == meas)]
                if not df.empty:
                    out.append(_panel(df, meas, a, b, dataset, method, q))
    return out


def _measures(results: Any, panels: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    out = {}
    for label in sorted(results.measure.unique()):
        rows = results[results.measure == label]
        name = str(rows["measure_name"].iloc[0]) if "measure_name" in rows else label
        params = rows["params"].iloc[0] if "params" in rows.columns else None
        form = str(rows["fitted_form"].iloc[0]) if "fitted_form" in rows.columns else ""
        meta = describe_measure(label, name, params, form)
        vals = [v for p in panels if p["measure"] == label for row in p["v"] for v in row]
        meta["domain"] = colour_domain(meta["range"], vals)
        meta["cmap"] = "viridis" if meta["direction"] == "max" else "viridis_r"
        out[label] = meta
    return out


def _stability(extras: dict[str, Any], a: str, b: str, measure: str) -> dict[str, Any]:
    """``{layer_a: record}`` of the best-match stability computed by the study, if any."""
    base = measure.split(" (", 1)[0]
    for entry in extras.get("match_stability", []) or []:
        if entry.get("model_a") == a and entry.get("model_b") == b and \
                entry.get("measure") in (measure, base):
            return {str(r["layer_a"]): {**r, "n_resamples": r.get(
                "n_resamples", entry.get("n_resamples"))} for r in entry.get("records", [])}
    return {}


def _best_match_block(results: Any, extras: dict[str, Any], primary: str,
                      pair_list: list[tuple[str, str]],
                      profiles: dict[tuple, dict]) -> list[dict[str, Any]]:
    blocks = []
    for a, b in pair_list:
        stab = _stability(extras, a, b, primary)
        rows = []
        for m in best_matches(results, primary, a, b):
            prof = profiles.get((a, str(m["layer_a"]), b, str(m["layer_b"])), {})
            s = stab.get(str(m["layer_a"]), {})
            stable_same = not s or str(s.get("best_layer_b", m["layer_b"])) == str(m["layer_b"])
            rows.append({
                "layer_a": m["layer_a"], "layer_b": m["layer_b"], "value": _f(m["value"]),
                "ci_low": _f(m["ci_low"]), "ci_high": _f(m["ci_high"]),
                "p": pvalue_text(m), "padj": p_adjusted_text(m),
                "verdict": m.get("significance") or "not tested",
                "stability": _f(s.get("stability")) if s else None,
                "stability_ci": [_f(s.get("ci_low")), _f(s.get("ci_high"))] if s else None,
                "runner_up": s.get("runner_up") if s else None,
                "runner_up_frac": _f(s.get("runner_up_frac")) if s else None,
                "n_resamples": s.get("n_resamples") if s else None,
                "stability_matches": stable_same,
                "sentence": prof.get("sentence", ""),
                "strongest": prof.get("strongest"),
            })
        if rows:
            blocks.append({"a": a, "b": b, "measure": primary, "rows": rows})
    return blocks


def _verdict_grid(profiles: list[dict[str, Any]]) -> dict[str, Any]:
    classes: list[str] = []
    for p in profiles:
        for c in p.get("classes", []):
            if c.get("name") not in classes:
                classes.append(c["name"])
    rows = []
    for p in profiles:
        by = {c.get("name"): c for c in p.get("classes", [])}
        cells = []
        for name in classes:
            c = by.get(name, {})
            cells.append({"verdict": c.get("verdict", ""), "score": c.get("score"),
                          "reason": c.get("reason", "")})
        rows.append({"a": p["model_a"], "layer_a": p["layer_a"], "b": p["model_b"],
                     "layer_b": p["layer_b"], "strongest": p.get("strongest"),
                     "cells": cells})
    return {"classes": classes, "rows": rows}


def _glance(blocks: list[dict[str, Any]], grid: dict[str, Any], agree: dict[str, Any],
            primary: str) -> list[dict[str, Any]]:
    """One row per model pair: how many layers match, how stably, in which senses."""
    out = []
    for blk in blocks:
        a, b = blk["a"], blk["b"]
        rows = blk["rows"]
        vals = [r["value"] for r in rows if math.isfinite(r["value"])]
        # stability of an argmax the permutation test did not support is no evidence of a
        # correspondence (unrelated data at d ≫ n give stable argmaxes): not counted
        stab = [r["stability"] for r in rows if r["stability"] is not None
                and r["verdict"] in ("significant", "not tested")]
        senses: dict[str, int] = {}
        prof = [r for r in grid["rows"] if r["a"] == a and r["b"] == b]
        for r in prof:
            key = r["strongest"] or "none"
            senses[key] = senses.get(key, 0) + 1
        out.append({
            "a": a, "b": b, "measure": primary, "layers": len(rows),
            "significant": sum(r["verdict"] == "significant" for r in rows),
            "tested": sum(r["verdict"] != "not tested" for r in rows),
            "mean_value": float(np.mean(vals)) if vals else None,
            "stable": sum(s >= 0.9 for s in stab), "stability_known": len(stab),
            "median_stability": float(np.median(stab)) if stab else None,
            "profiled": len(prof), "senses": senses,
        })
    return out


def _agreement_block(results: Any) -> dict[str, Any]:
    names, rho, count = agreement(results)
    return {"measures": names, "rho": rho, "count": count, "disagree": disagreements(results)}


def _all_rows(results: Any) -> dict[str, Any]:
    cols = [c for c in ("dataset", "model_a", "layer_a", "model_b", "layer_b", "measure",
                        "value", "estimate", "ci_low", "ci_high", "pvalue", "p_adjusted",
                        "significance", "calibrated", "chance", "value_in_sample", "n",
                        "measure_version", "warnings") if c in results.columns]
    numeric = {"value", "estimate", "ci_low", "ci_high", "calibrated", "chance",
               "value_in_sample"}
    warn_index: dict[str, int] = {}
    data = []
    for r in results.to_dict("records"):
        line: list[Any] = []
        for c in cols:
            v = r.get(c)
            if c == "pvalue":
                line.append(pvalue_text(r))
            elif c == "p_adjusted":
                line.append(p_adjusted_text(r))
            elif c in numeric:
                line.append(_f(v))
            elif c == "warnings":
                w = "" if v is None or (isinstance(v, float) and math.isnan(v)) else str(v)
                if r.get("degenerate"):
                    w = f"degenerate — {w}"
                line.append(warn_index.setdefault(w, len(warn_index)))
            else:
                line.append("" if v is None or (isinstance(v, float) and math.isnan(v)) else v)
        data.append(line)
    header = ["in-sample" if c == "value_in_sample" else c for c in cols]
    return {"columns": header, "data": data, "warnings": list(warn_index)}


def build_payload(results: Any, extras: dict[str, Any], *, primary: str, method: str,
                  q: float, pair_list: list[tuple[str, str]]) -> dict[str, Any]:
    """Everything the page draws (see the module docstring); ``results`` is prepared."""
    profiles_list = list(extras.get("profiles", []))
    profiles = {(p["model_a"], str(p["layer_a"]), p["model_b"], str(p["layer_b"])): p
                for p in profiles_list}
    panels = _panels(results, method, q)
    measures = _measures(results, panels)
    blocks = (_best_match_block(results, extras, primary, pair_list, profiles)
              if primary in measures else [])
    grid = _verdict_grid(profiles_list)
    agree = _agreement_block(results) if len(measures) > 1 else {}
    matrices = {}
    for meas in measures:
        names, mat, status = model_matrix(results, meas)
        if len(names) > 2 or any("different inputs" in s for row in status for s in row):
            matrices[meas] = {"models": names, "v": mat, "status": status}
    return clean({
        "primary": primary,
        "cmaps": COLOUR_MAPS,
        "measures": measures,
        "panels": panels,
        "best": blocks,
        "glance": _glance(blocks, grid, agree, primary),
        "verdicts": grid,
        "agreement": agree,
        "model_matrix": matrices,
        "probes": extras.get("probes", []),
        "probe_agreement": extras.get("probe_agreement", []),
        "stitching": extras.get("stitching", []),
        "rows": _all_rows(results),
    })
