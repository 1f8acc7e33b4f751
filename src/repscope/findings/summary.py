"""Aggregates over pairs with uncertainty from resampling models, and the trends.

Pairs that share a model are not independent, so every interval here resamples
the *units* of a group (:class:`~repscope.findings.population.Group`): a bootstrap
replicate draws the units with replacement, and a pair counts ``c_a · c_b`` times
(``c_u`` the number of draws of unit ``u``; ``c_u`` when both models of the pair
have the same unit, e.g. a checkpoint and its final model).  Intervals are the
2.5 and 97.5 % percentiles of the replicates.

* :func:`cell` — one group × depth × class: verdict counts, mean score and its
  interval (a class not judged at all, as the permutation class of principal
  components, gives neither score nor p-value), the mean null and ceiling, the
  p-value of "every pair is above its null" (the largest of the pairs' unadjusted
  permutation p-values: an intersection–union test; the page's Benjamini–Hochberg
  adjustment then covers the classes and cells together) and, for unrelated pairs,
  the smallest effect the profile could have detected.
* :func:`trend` — the slope of a group's mean score against log2 of the factor's
  level (width) with units resampled jointly across levels.
* :func:`depth_order` — for checkpoints: the mean score of the first-layer minus the
  last-layer over the checkpoints before the end (positive: lower layers reach the
  final model's representation first).
* :func:`capability_alignment` — Spearman correlation over pairs between mutual kNN and
  the pair's mean capability, with a model-resampling interval and a permutation
  null (capabilities shuffled over models).

Bootstrap p-values of the trends are two-sided, ``min(1, 2 · min(P(T* ≤ 0),
P(T* ≥ 0)))`` with floor ``1/(B + 1)``; the smallest detectable effect is
``(1.96 + 0.84) · SE`` (80 % power at α = 0.05).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from scipy.stats import spearmanr

from repscope.findings.compute import NOT_JUDGED

__all__ = ["DETECT_Z", "capability_alignment", "cell", "depth_order", "trend", "unit_weights"]

DETECT_Z = 1.96 + 0.8416


def unit_weights(pairs: Sequence[tuple[str, str]], counts: dict[str, int]) -> np.ndarray:
    """Weight of each pair ``(unit_a, unit_b)`` in a replicate with unit ``counts``."""
    return np.array([counts.get(a, 0) * counts.get(b, 0) if a != b else counts.get(a, 0)
                     for a, b in pairs], dtype=float)


def _replicates(units: list[str], n_boot: int, seed: int) -> list[dict[str, int]]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n_boot):
        draw = rng.integers(0, len(units), size=len(units))
        counts: dict[str, int] = {}
        for i in draw:
            counts[units[i]] = counts.get(units[i], 0) + 1
        out.append(counts)
    return out


def _interval(values: list[float]) -> tuple[float | None, float | None]:
    if len(values) < 10:
        return None, None
    lo, hi = np.percentile(values, [2.5, 97.5])
    return float(lo), float(hi)


def _two_sided(values: list[float]) -> float | None:
    if len(values) < 10:
        return None
    v = np.asarray(values)
    tail = min(np.mean(v <= 0), np.mean(v >= 0))
    return float(min(1.0, max(2 * tail, 1 / (len(v) + 1))))


def cell(rows: list[dict[str, Any]], units: dict[tuple[str, str], tuple[str, str]],
         n_boot: int, seed: int = 0) -> dict[str, Any]:
    """Aggregate the profile rows of one group × depth × class (see the module docstring).

    ``units`` maps a pair ``(a, b)`` to its units.
    """
    counts = {v: sum(r["verdict"] == v for r in rows)
              for v in ("equivalent", "partial", "unrelated", "undetermined")}
    scored = [r for r in rows if r["score"] is not None and np.isfinite(r["score"])
              and r["reason"] != NOT_JUDGED]
    models = sorted({r["a"] for r in rows} | {r["b"] for r in rows})
    out: dict[str, Any] = {"n_pairs": len(rows), "n_models": len(models), "counts": counts,
                           "pairs": [[r["a"], r["b"]] for r in rows], "mean": None,
                           "ci_low": None, "ci_high": None, "ci_source": None,
                           "null_mean": None, "ceiling": None, "p": None, "detectable": None}
    if not scored:
        return out
    s = np.array([r["score"] for r in scored])
    out["mean"] = float(s.mean())
    out["scores"] = s.tolist()
    out["scored_pairs"] = [[r["a"], r["b"]] for r in scored]
    nulls = [r["null_mean"] for r in scored if r["null_mean"] is not None]
    ceilings = [r["ceiling"] for r in scored if r["ceiling"] is not None]
    out["null_mean"] = float(np.mean(nulls)) if nulls else None
    out["ceiling"] = float(np.mean(ceilings)) if ceilings else None
    pu = [units[(r["a"], r["b"])] for r in scored]
    unit_set = sorted({u for pair in pu for u in pair})
    if len(unit_set) >= 3 or (len(unit_set) == 2 and all(a == b for a, b in pu)):
        reps = []
        for c in _replicates(unit_set, n_boot, seed):
            w = unit_weights(pu, c)
            if w.sum() > 0:
                reps.append(float(w @ s / w.sum()))
        out["ci_low"], out["ci_high"] = _interval(reps)
        out["ci_source"] = f"resampling {len(unit_set)} models or runs"
    elif len(scored) == 1 and scored[0]["ci_low"] is not None:
        out["ci_low"], out["ci_high"] = scored[0]["ci_low"], scored[0]["ci_high"]
        out["ci_source"] = "resampling inputs (one pair: models cannot be resampled)"
    ps = [r["pvalue_raw"] for r in scored]
    if ps and all(p is not None for p in ps):
        out["p"] = float(max(ps))
    det = [r["detectable"] for r in scored if r["verdict"] == "unrelated"
           and r["detectable"] is not None]
    out["detectable"] = float(np.mean(det)) if det else None
    return out


def _slope(levels: np.ndarray, means: np.ndarray) -> float:
    x = np.log2(levels)
    return float(np.polyfit(x, means, 1)[0])


def trend(groups: list[tuple[float, list[float], list[tuple[str, str]]]], n_boot: int,
          seed: int = 0) -> dict[str, Any]:
    """Slope of the mean score against log2(level); ``groups`` holds ``(level, scores,
    units)`` per level, units shared across levels (seeds)."""
    groups = [g for g in groups if g[1]]
    if len(groups) < 2:
        return {"slope": None, "reason": "fewer than two levels with scores"}
    levels = np.array([g[0] for g in groups])
    means = np.array([np.mean(g[1]) for g in groups])
    unit_set = sorted({u for g in groups for pair in g[2] for u in pair})
    reps = []
    for c in _replicates(unit_set, n_boot, seed):
        m = []
        for _, scores, pu in groups:
            w = unit_weights(pu, c)
            if w.sum() == 0:
                break
            m.append(float(w @ np.asarray(scores) / w.sum()))
        else:
            reps.append(_slope(levels, np.array(m)))
    lo, hi = _interval(reps)
    se = float(np.std(reps)) if len(reps) >= 10 else None
    return {"levels": levels.tolist(), "means": means.tolist(), "slope": _slope(levels, means),
            "ci_low": lo, "ci_high": hi, "p": _two_sided(reps),
            "detectable": None if se is None else DETECT_Z * se, "n_units": len(unit_set),
            "n_replicates": len(reps)}


def depth_order(curves: dict[str, list[tuple[str, float]]], n_boot: int, seed: int = 0
                ) -> dict[str, Any]:
    """First minus last depth of the mean checkpoint-to-final score; ``curves[depth]``
    holds ``(run unit, score)`` for every checkpoint before the end."""
    first, last = curves.get("first", []), curves.get("last", [])
    if not first or not last:
        return {"difference": None, "reason": "no checkpoints"}
    units = sorted({u for u, _ in first} | {u for u, _ in last})

    def diff(c: dict[str, int]) -> float | None:
        wf = np.array([c.get(u, 0) for u, _ in first], float)
        wl = np.array([c.get(u, 0) for u, _ in last], float)
        if wf.sum() == 0 or wl.sum() == 0:
            return None
        return float(wf @ [s for _, s in first] / wf.sum() - wl @ [s for _, s in last]
                     / wl.sum())

    point = diff({u: 1 for u in units})
    reps = [d for d in (diff(c) for c in _replicates(units, n_boot, seed)) if d is not None]
    lo, hi = _interval(reps)
    se = float(np.std(reps)) if len(reps) >= 10 else None
    return {"difference": point, "ci_low": lo, "ci_high": hi, "p": _two_sided(reps),
            "detectable": None if se is None else DETECT_Z * se, "n_units": len(units),
            "first_mean": float(np.mean([s for _, s in first])),
            "last_mean": float(np.mean([s for _, s in last]))}


def _spearman(x: np.ndarray, y: np.ndarray, w: np.ndarray | None = None) -> float | None:
    if w is not None:
        keep = w > 0
        x, y = np.repeat(x[keep], w[keep].astype(int)), np.repeat(y[keep], w[keep].astype(int))
    if len(x) < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return None
    # average ranks for ties: pairs share mean accuracies, and resampled pairs repeat
    return float(spearmanr(x, y).statistic)


def capability_alignment(rows: list[dict[str, Any]], n_boot: int, n_perm: int = 999,
                         seed: int = 0,
                         combine: Callable[[float, float], float] = lambda a, b: (a + b) / 2
                         ) -> dict[str, Any]:
    """Spearman ρ between each pair's mutual kNN and its mean capability (see above)."""
    if len(rows) < 3:
        return {"rho": None, "reason": "fewer than three pairs"}
    knn = np.array([r["score"] for r in rows])
    cap = {r["a"]: r["cap_a"] for r in rows} | {r["b"]: r["cap_b"] for r in rows}
    models = sorted(cap)
    pairs = [(r["a"], r["b"]) for r in rows]

    def pair_cap(c: dict[str, float]) -> np.ndarray:
        return np.array([combine(c[a], c[b]) for a, b in pairs])

    rho = _spearman(pair_cap(cap), knn)
    reps = []
    for counts in _replicates(models, n_boot, seed):
        r = _spearman(pair_cap(cap), knn, unit_weights(pairs, counts))
        if r is not None:
            reps.append(r)
    rng = np.random.default_rng(seed + 1)
    null = []
    values = np.array([cap[m] for m in models])
    for _ in range(n_perm):
        shuffled = dict(zip(models, rng.permutation(values)))
        r = _spearman(pair_cap(shuffled), knn)
        null.append(0.0 if r is None else r)
    lo, hi = _interval(reps)
    p = None if rho is None else float((1 + np.sum(np.abs(null) >= abs(rho))) / (n_perm + 1))
    return {"rho": rho, "ci_low": lo, "ci_high": hi, "p": p, "n_models": len(models),
            "n_pairs": len(rows), "null_q95": float(np.quantile(np.abs(null), 0.95)),
            "detectable": float(np.quantile(np.abs(null), 0.95)),
            "knn_range": [float(knn.min()), float(knn.max())],
            "capability_range": [float(values.min()), float(values.max())]}
