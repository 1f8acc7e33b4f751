"""Build a study report from a results table (and the study's extras).

``results`` is the tidy table of :class:`repscope.storage.results_db.ResultsDB`
or of a grid (columns ``model_a, layer_a, model_b, layer_b, measure, value``
and, when computed, ``ci_low, ci_high, pvalue, p_floor, calibrated, chance,
heldout, measure_version``).  ``extras`` holds what is not a pairwise measure
value: invariance profiles, best-match stability, probe accuracies, stitching
matrices, model accuracies and free-text findings (see :func:`build_report`).

What the report claims about each cell follows :mod:`repscope.views.marks`:
fitted measures are shown by their held-out value, degenerate cells are
hatched, p-values at their floor print as ``≤ 1/(m + 1)``, p-values are
adjusted within the cells of each figure, and a best-match box is never drawn
on a degenerate or not-significant cell.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np

from repscope.core.errors import RepscopeError, RepscopeWarning
from repscope.inference.multiple_testing import method_label
from repscope.report.grounding_page import grounding_context
from repscope.report.page import HtmlReport
from repscope.report.payload import build_payload
from repscope.report.sources import load_results
from repscope.views.analysis import (
    best_matches,
    measure_direction,
    measure_label,
    natural_key,
    pairs,
    with_labels,
)
from repscope.views.marks import prepare_results, resolve_label, version_warnings

__all__ = ["build_report", "write_report", "best_matches", "measure_direction", "measure_label",
           "with_labels"]


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
    results : ResultTable, pandas.DataFrame or path of a study folder
        Tidy results (one row per pair × measure).  A study folder (holding
        ``results.sqlite``) also supplies its ``extras.json`` unless
        ``extras`` is given.
    extras : dict, optional
        ``grounding`` (the JSON form of a ``repscope ground`` result: shown as the
        section "Which measure to trust"; a study folder's ``grounding/grounding.json``
        or ``grounding.json`` is found by itself), ``description`` (str), ``findings``
        (list of str), ``findings_page`` (a relative link to a ``repscope findings``
        page), ``accuracies``
        ({model: accuracy}), ``profiles`` (list of dicts with model_a, layer_a,
        model_b, layer_b, sentence, strongest, classes), ``match_stability``
        (best-match stability under resampled inputs, from
        :func:`repscope.inference.match_stability.best_match_stability`),
        ``probes`` (list of dicts model, layer, accuracy and optionally
        chance, ci_low, ci_high), ``probe_agreement`` and ``stitching`` (dicts
        with model_a, model_b, layers_a, layers_b, matrix), ``best_match_pairs``
        (list of [model_a, model_b] to tabulate; default all cross-model
        pairs), ``fitted`` and ``multiple_testing`` (``{"method": ..., "q":
        ...}``), the defaults of the arguments below.
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
        ``render()`` gives the page, ``write(path)`` writes it; ``payload`` is
        the data the page draws from; ``warnings`` list what the reader must
        know about the rows (e.g. measure versions mixed in one report), also
        shown at the top and issued as :class:`~repscope.RepscopeWarning`.
    """
    results, folder_extras = load_results(results)
    extras = dict(folder_extras if extras is None else extras)
    if results is None or len(results) == 0:
        raise RepscopeError("no results to report: run a study or a grid first")
    mt = dict(extras.get("multiple_testing") or {})
    fitted = fitted or extras.get("fitted") or "heldout"
    method = adjust or mt.get("method") or "bh"
    q = float(q if q is not None else mt.get("q", 0.05))
    results = with_labels(results)
    if "error" in results.columns:
        results = results[results["error"].isna()]
    if len(results) == 0:
        raise RepscopeError("every result row is an error: nothing to report")
    results = prepare_results(results, fitted=fitted, method=method, q=q)
    measures = sorted(results.measure.unique().tolist())
    primary = resolve_label(results, primary_measure or extras.get("primary_measure") or (
        "cka" if "cka" in measures else measures[0]))
    cross = [(a, b) for a, b in pairs(results) if a != b]
    pair_list = [tuple(p) for p in extras.get("best_match_pairs", [])] or cross
    payload = build_payload(results, extras, primary=primary, method=method, q=q,
                            pair_list=pair_list)
    notes = []
    for line in version_warnings(results):
        notes.append(line)
        warnings.warn(line, RepscopeWarning, stacklevel=2)
    models = sorted(set(results.model_a) | set(results.model_b), key=natural_key)
    inputs = ", ".join(str(int(v)) for v in sorted(results.n.dropna().unique())) \
        if "n" in results.columns else "?"
    context = {
        "description": extras.get("description", ""),
        "counts": f"{len(models)} models, {len(measures)} measures, {len(results)} comparisons; "
                  f"n = {inputs} inputs.",
        "method_notes": _method_notes(results, method, q),
        "findings": list(extras.get("findings", [])),
        "findings_page": extras.get("findings_page"),
        "accuracies": sorted((k, v) for k, v in (extras.get("accuracies") or {}).items()),
        "profiles": list(extras.get("profiles", [])),
        "adjust_label": method_label(method, q),
        "agreement_summary": _agreement_summary(payload.get("agreement") or {}),
        "grounding": grounding_context(extras.get("grounding")),
    }
    return HtmlReport(title, payload, context, notes)


def _agreement_summary(agree: dict[str, Any]) -> str:
    """One sentence: how far the measures agree on which layer pairs are more alike."""
    names = agree.get("measures") or []
    rho = np.array(agree.get("rho") or [], dtype=float)
    if len(names) < 2 or rho.size == 0:
        return ""
    iu = np.triu_indices(len(names), 1)
    vals = rho[iu]
    ok = np.isfinite(vals)
    if not ok.any():
        return "The measures share too few layer pairs to say whether they agree."
    lo = int(np.nanargmin(np.where(ok, vals, np.inf)))
    i, j = iu[0][lo], iu[1][lo]
    text = (f"Do the measures agree? Across the layer pairs they share, the median Spearman "
            f"correlation between two measures is {np.median(vals[ok]):.2f} (from "
            f"{vals[ok].min():.2f} to {vals[ok].max():.2f}, {int(ok.sum())} measure pairs); "
            f"the least agreement is between {names[i]} and {names[j]} "
            f"(ρ = {rho[i, j]:.2f}).")
    if (~ok).any():
        text += f" {int((~ok).sum())} measure pairs share too few layer pairs to compare."
    return text


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


def write_report(path: str | Path, results: Any, extras: dict[str, Any] | None = None,
                 **kwargs: Any) -> Path:
    """Build the report and write it to ``path``; returns the path.

    ``results`` is a :class:`~repscope.ResultTable`, a pandas DataFrame of
    results, or the path of a study folder (then its ``extras.json`` is used
    unless ``extras`` is given).  Keyword arguments go to :func:`build_report`.
    """
    return build_report(results, extras, **kwargs).write(path)
