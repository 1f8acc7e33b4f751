"""The findings in words: one per group of pairs, one per published direction.

A finding is a dict: ``number``, ``text`` (the sentence), ``kind`` (``group`` or
``direction``), the ids of the cells or trends behind it (``evidence``) and the
pairs.  The words follow the numbers literally: "equivalent … in all N pairs" only
when every pair of the group is judged equivalent in that class; a cell or trend
whose Benjamini–Hochberg q-value exceeds 0.05 is "not shown", with the smallest
effect it could have detected; a direction "holds" only where its q-value is at most
0.05 and its sign is the published one.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from repscope.findings.compose import TREND_CLASSES, cell_id
from repscope.findings.compute import CLASSES
from repscope.findings.population import DEPTHS, Group

__all__ = ["Q_LEVEL", "direction_findings", "fmt", "group_finding", "overview"]

Q_LEVEL = 0.05
_PHRASE = {"permutation": "a permutation of units", "orthogonal": "rotation",
           "linear": "an invertible linear map", "neighbourhood": "neighbourhoods (k = 10)",
           "function": "predictions", "softmax": "the softmax family's map"}
_STAT = {"permutation": "held-out R²", "orthogonal": "held-out R²",
         "linear": "held-out R² (linear)",
         "neighbourhood": "mutual kNN", "function": "agreement", "softmax": "log-odds R²"}


def fmt(x: float | None, digits: int = 2) -> str:
    """A number for a sentence; ``n/a`` for none (never a silent NaN)."""
    if x is None or not np.isfinite(x):
        return "n/a"
    text = f"{x:.{digits}f}"
    return text[1:] if text.startswith("-") and not text.strip("-0.") else text  # no "-0.00"


def _ci(c: dict[str, Any], key: str = "mean") -> str:
    if c.get("ci_low") is None:
        return f"{fmt(c.get(key))} (no interval)"
    return f"{fmt(c.get(key))} [{fmt(c['ci_low'])}, {fmt(c['ci_high'])}]"


def _shown(c: dict[str, Any]) -> bool:
    return c.get("q") is not None and c["q"] <= Q_LEVEL


def _depth_clause(cells: dict[str, dict[str, Any]], g: Group, depth: str) -> str | None:
    same = cells.get(f"{g.key} | {depth} | same")
    if same:
        return f"{depth} layer: the same layers as the {same['same_as']} layer"
    here = {cls: cells.get(cell_id(g, depth, cls)) for cls in CLASSES}
    here = {k: v for k, v in here.items() if v}
    if not here:
        return None
    n = max(c["n_pairs"] for c in here.values())
    full = [k for k in ("permutation", "orthogonal", "linear")
            if k in here and here[k]["counts"]["equivalent"] == here[k]["n_pairs"] > 0]
    if full:
        head = (f"equivalent up to {_PHRASE[full[0]]} in all {n} pairs" if n > 1 else
                f"equivalent up to {_PHRASE[full[0]]}")
    else:
        best = max(here, key=lambda k: here[k]["counts"]["equivalent"])
        k_eq = here[best]["counts"]["equivalent"]
        head = (f"equivalent up to {_PHRASE[best]} in {k_eq} of {here[best]['n_pairs']} pairs"
                if k_eq else "no pair equivalent in any class")
    parts = [head]
    for cls in ("linear", "neighbourhood", "function", "softmax"):
        c = here.get(cls)
        if not c or c["mean"] is None or (cls == "softmax" and not _shown(c)):
            continue  # the softmax class is stated where shown (its table row always)
        s = f"{_STAT[cls]} {_ci(c)}"
        if cls in ("linear", "neighbourhood"):
            s += f" (null {fmt(c['null_mean'])}, ceiling {fmt(c['ceiling'])})"
        if _shown(c):
            s += f", every pair above its null (q = {fmt(c['q'], 3)})"
        elif c.get("q") is not None:
            det = (f"; it would have detected {fmt(c['detectable'])}"
                   if c.get("detectable") is not None and c["detectable"] > (
                       c.get("null_mean") or 0.0) else "")
            s += f", not shown above the null for every pair (q = {fmt(c['q'], 3)}{det})"
        else:
            s += ", not tested"
        parts.append(s)
    return f"{depth} layer: " + "; ".join(parts)


def group_finding(g: Group, cells: dict[str, dict[str, Any]],
                  reference: Group | None = None) -> dict[str, Any] | None:
    """The finding of one group; ``reference`` (the seeds of the base model) places the
    real networks on the same scale."""
    clauses = [c for c in (_depth_clause(cells, g, d) for d in DEPTHS) if c]
    if not clauses:
        return None
    ids = [cell_id(g, d, c) for d in DEPTHS for c in CLASSES if cell_id(g, d, c) in cells]
    models = sorted({m for a, b, _, _ in g.pairs for m in (a, b)})
    n_pairs = f"{len(g.pairs)} pair{'s' if len(g.pairs) != 1 else ''}"
    text = (f"{g.factor.capitalize()} — {g.name} ({len(models)} models, {n_pairs}): "
            + "; ".join(clauses) + ".")
    sources = {cells[i]["ci_source"] for i in ids if cells[i]["ci_source"]}
    if any("inputs" in src for src in sources):
        text += " Intervals resample inputs: one pair, so models cannot be resampled."
    elif any(src.startswith("resampling 2 ") for src in sources):
        text += " Intervals resample only two runs: read them as rough."
    if reference is not None:
        ref = cells.get(cell_id(reference, "last", "linear"))
        if ref and ref["mean"] is not None:
            text += (f" On the same scale, seeds of the base MLP reach held-out R² (linear) "
                     f"{_ci(ref)} at their last layer.")
    return {"kind": "group", "factor": g.factor, "group": g.name, "question": g.question,
            "text": text, "evidence": ids, "pairs": [[a, b] for a, b, _, _ in g.pairs]}


def _split(trends: dict[str, dict[str, Any]], keys: list[str], value: str, sign: int
           ) -> tuple[list[str], list[str], list[str]]:
    holds, reversed_, not_shown = [], [], []
    for k in keys:
        t = trends[k]
        where = f"{t['cls']} at the {t['depth']} layer"
        if t.get(value) is None:
            not_shown.append(f"{where} (not computed: {t.get('reason', 'no data')})")
        elif _shown(t):
            (holds if np.sign(t[value]) == sign else reversed_).append(
                f"{where} ({fmt(t[value], 3)} [{fmt(t['ci_low'], 3)}, {fmt(t['ci_high'], 3)}], "
                f"q = {fmt(t['q'], 3)})")
        else:
            not_shown.append(f"{where} ({fmt(t[value], 3)}, q = {fmt(t.get('q'), 3)}; "
                             f"detectable ±{fmt(t.get('detectable'), 3)})")
    return holds, reversed_, not_shown


def _verdict_text(holds: list[str], reversed_: list[str], not_shown: list[str]) -> str:
    parts = []
    if holds:
        parts.append("holds here in " + "; ".join(holds))
    if reversed_:
        parts.append("the OPPOSITE is shown in " + "; ".join(reversed_))
    if not_shown:
        parts.append("not shown in " + "; ".join(not_shown))
    if not holds:
        parts.insert(0, "does NOT hold in this population in any class tested")
    return ". ".join(p[0].upper() + p[1:] for p in parts) + "."


def direction_findings(trends: dict[str, dict[str, Any]], groups: list[Group]
                       ) -> list[dict[str, Any]]:
    """The published directions (width, bottom-up convergence, capability) and the
    language models' width trend."""
    out = []
    for factor, label, who in (
            ("width", "Wider networks are more alike across seeds (Morcos et al. 2018; "
             "Kornblith et al. 2019)", "image networks: slope of the seed pairs' mean score "
             "per doubling of width"),
            ("language models", "Wider tiny language models are more alike across seeds",
             "tiny language models: slope per doubling of width")):
        keys = [f"trend | {factor} | {d} | {c}" for d in DEPTHS for c in TREND_CLASSES
                if f"trend | {factor} | {d} | {c}" in trends]
        if not keys:
            continue
        text = f"{label} — {who}: " + _verdict_text(*_split(trends, keys, "slope", +1))
        out.append({"kind": "direction", "factor": factor, "text": text, "evidence": keys,
                    "pairs": [[a, b] for g in groups if g.factor == factor
                              and g.level is not None for a, b, _, _ in g.pairs]})
    keys = [f"time order | {c}" for c in TREND_CLASSES if f"time order | {c}" in trends]
    if keys:
        for k in keys:
            trends[k].setdefault("depth", "first minus last")
        text = ("Networks converge bottom-up during training (Raghu et al. 2017) — mean "
                "score of each checkpoint against its run's final model, first hidden layer "
                "minus last hidden layer, over the checkpoints before the end (positive: the "
                "first layer is closer to its final state): "
                + _verdict_text(*_split(trends, keys, "difference", +1)))
        out.append({"kind": "direction", "factor": "time", "text": text, "evidence": keys,
                    "pairs": [[a, b] for g in groups if g.factor == "time"
                              for a, b, _, _ in g.pairs]})
    for pop, cap in (("image", "test accuracy"), ("lm", "minus held-out loss")):
        t = trends.get(f"capability | {pop}")
        if not t or t.get("rho") is None:
            continue
        head = ("More capable models are more aligned under mutual kNN (Huh et al. 2024) — "
                f"{'image networks trained here' if pop == 'image' else 'tiny language models'}"
                f", Spearman ρ between each pair's mutual kNN (k = 10, last layer) and the "
                f"pair's mean {cap} over {t['n_pairs']} pairs of {t['n_models']} models: "
                f"ρ = {fmt(t['rho'])} [{fmt(t['ci_low'])}, {fmt(t['ci_high'])}] (resampling "
                f"models), permutation p = {fmt(t['p'], 3)}, q = {fmt(t.get('q'), 3)}; |ρ| "
                f"below {fmt(t['null_q95'])} cannot be told from chance here. ")
        if _shown(t) and t["rho"] > 0:
            head += "It holds here."
        elif _shown(t):
            head += "The OPPOSITE holds here: more capable models are less aligned."
        else:
            head += "It is NOT shown in this population."
        out.append({"kind": "direction", "factor": "capability", "text": head,
                    "evidence": [f"capability | {pop}"], "pairs": []})
    return out


def overview(cells: dict[str, dict[str, Any]], findings: list[dict[str, Any]]
             ) -> list[list[str]]:
    """One row per group finding: number, group, and per depth the strictest class in
    which every pair is equivalent (else how many pairs are linearly equivalent)."""
    rows = []
    for f in findings:
        if f["kind"] != "group":
            continue
        key = f"{f['factor']}: {f['group']}"
        row = [str(f["number"]), key]
        for depth in DEPTHS:
            if f"{key} | {depth} | same" in cells:
                row.append(f"= {cells[f'{key} | {depth} | same']['same_as']} layer")
                continue
            chain = {c: cells.get(f"{key} | {depth} | {c}") for c in
                     ("permutation", "orthogonal", "linear")}
            full = [c for c, v in chain.items() if v and v["counts"]["equivalent"]
                    == v["n_pairs"] > 0]
            lin = chain["linear"]
            if full:
                row.append(f"all equivalent up to {_PHRASE[full[0]]}")
            elif lin:
                row.append(f"{lin['counts']['equivalent']} of {lin['n_pairs']} linearly "
                           f"equivalent; R² {fmt(lin['mean'])}")
            else:
                row.append("n/a")
        rows.append(row)
    return rows
