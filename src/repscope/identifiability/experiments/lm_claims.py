"""The paper's three claims, judged on the pairs of a population of language models.

Every statistic is a mean over model pairs, and pairs that share a model are not
independent, so the confidence intervals resample **models**, not pairs: each
replicate draws, within every width, as many seeds as there are, with
replacement; a pair's weight is the product of its two models' draw counts, and
the pair of a model with itself is left out.  95 % percentile intervals.

d_LLV and d_{f,g} are intervals themselves (``[d_llv_lower, d_llv]``,
``[d_fg_lower, d_fg_upper]``).  A claim **holds** when the CI computed with the
ends least favourable to it still supports it, is **contradicted** when the CI
computed with the most favourable ends still goes against it, and is
**inconclusive** otherwise:

(a) *close in KL, yet dissimilar*: among the pairs in the lowest third of
    (symmetrised) KL, the mean d_{f,g} exceeds ``dissimilar`` (0.1).
    Least favourable end: ``d_fg_lower`` (attained by a label subset).
(b) *close in d_LLV ⇒ similar*: the mean d_{f,g} of the pairs in the lowest third
    of d_LLV is below that of the highest third.  Least favourable: ``d_fg_upper``
    for the close pairs, ``d_fg_lower`` for the far ones.  The bound
    ``d_fg ≤ 2M·d_LLV`` is checked on ``d_fg_lower`` (the only end that can
    falsify it) and how many pairs make it non-vacuous (2M·d_LLV < 1) is reported.
(c) *wider models are closer*: the mean d_LLV (and d_{f,g}) of the seed pairs at
    the largest width is below that at the smallest.  Least favourable: upper
    ends at the largest width, lower ends at the smallest.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = ["DISSIMILAR", "judge_claims", "resample_weights"]

#: d_{f,g} above this counts as dissimilar in claim (a)
DISSIMILAR = 0.1


def resample_weights(models: list[str], widths: dict[str, int], a: np.ndarray,
                     b: np.ndarray, n_boot: int, seed: int) -> np.ndarray:
    """(n_boot, n_pairs) pair weights: models resampled with replacement within each width;
    the weight of pair (a, b) is count(a)·count(b).  Row 0 is the data (all weights 1)."""
    rng = np.random.default_rng(seed)
    index = {m: i for i, m in enumerate(models)}
    groups: dict[int, list[int]] = {}
    for m in models:
        groups.setdefault(widths[m], []).append(index[m])
    ia = np.array([index[m] for m in a])
    ib = np.array([index[m] for m in b])
    out = np.ones((n_boot + 1, len(a)))
    for r in range(1, n_boot + 1):
        counts = np.zeros(len(models))
        for members in groups.values():
            draw = rng.choice(members, size=len(members), replace=True)
            np.add.at(counts, draw, 1.0)
        out[r] = counts[ia] * counts[ib]
    return out


def _wmean(x: np.ndarray, w: np.ndarray) -> float:
    s = float(w.sum())
    return float(np.dot(w, x) / s) if s > 0 else float("nan")


def _wthird(x: np.ndarray, w: np.ndarray, low: bool) -> np.ndarray:
    """Mask of the pairs in the lowest (or highest) weighted third of ``x``."""
    keep = w > 0
    if not keep.any():
        return keep
    q = np.quantile(np.repeat(x[keep], w[keep].astype(int)), 1 / 3 if low else 2 / 3)
    return keep & (x <= q if low else x >= q)


def _interval(stat: Callable[[np.ndarray], float], weights: np.ndarray) -> dict[str, Any]:
    vals = np.array([stat(w) for w in weights])
    boot = vals[1:][np.isfinite(vals[1:])]
    lo, hi = (np.quantile(boot, [0.025, 0.975]) if boot.size else (np.nan, np.nan))
    return {"estimate": vals[0], "ci_low": float(lo), "ci_high": float(hi),
            "replicates": int(boot.size)}


def _verdict(unfav: dict[str, Any], fav: dict[str, Any], direction: str, threshold: float
             ) -> str:
    if direction == "above":
        if unfav["ci_low"] > threshold:
            return "holds"
        return "contradicted" if fav["ci_high"] < threshold else "inconclusive"
    if unfav["ci_high"] < threshold:
        return "holds"
    return "contradicted" if fav["ci_low"] > threshold else "inconclusive"


def judge_claims(pairs: Any, widths: dict[str, int], *, n_boot: int = 2000, seed: int = 0,
                 dissimilar: float = DISSIMILAR) -> dict[str, Any]:
    """Claims (a)–(c) on the same-width pairs of ``pairs`` (one K; columns ``model_a``,
    ``model_b``, ``kl_sym``, ``d_llv``, ``d_llv_lower``, ``d_fg_lower``, ``d_fg_upper``,
    ``width``) with model-resampling CIs; see the module docstring."""
    d = pairs.dropna(subset=["d_llv", "d_fg_lower", "d_fg_upper"])
    models = sorted(set(d["model_a"]) | set(d["model_b"]))
    if len(d) < 2 or not models:
        return {"error": "fewer than two same-width pairs with d_LLV and d_{f,g}"}
    w = resample_weights(models, widths, d["model_a"].to_numpy(), d["model_b"].to_numpy(),
                         n_boot, seed)
    col = {c: d[c].to_numpy(float) for c in ("kl_sym", "d_llv", "d_llv_lower", "d_fg_lower",
                                              "d_fg_upper", "width")}
    out: dict[str, Any] = {"n_pairs": int(len(d)), "n_models": len(models), "n_boot": n_boot,
                           "boot_seed": seed, "dissimilar": dissimilar}

    def close_kl(end: str) -> Callable[[np.ndarray], float]:
        return lambda wt: _wmean(col[end], wt * _wthird(col["kl_sym"], wt, True))

    unf, fav = _interval(close_kl("d_fg_lower"), w), _interval(close_kl("d_fg_upper"), w)
    out["a"] = {"claim": "models close in KL can still have dissimilar representations",
                "statistic": "mean d_{f,g} of the pairs in the lowest third of KL",
                "least_favourable": unf, "most_favourable": fav,
                "mean_kl_of_those": _interval(close_kl("kl_sym"), w)["estimate"],
                "verdict": _verdict(unf, fav, "above", dissimilar)}

    def llv_gap(close: str, far: str) -> Callable[[np.ndarray], float]:
        def stat(wt: np.ndarray) -> float:
            lo = wt * _wthird(col["d_llv"], wt, True)
            hi = wt * _wthird(col["d_llv"], wt, False)
            return _wmean(col[close], lo) - _wmean(col[far], hi)
        return stat

    unf, fav = _interval(llv_gap("d_fg_upper", "d_fg_lower"), w), _interval(
        llv_gap("d_fg_lower", "d_fg_upper"), w)
    bound = 2 * col["width"] * col["d_llv"]
    out["b"] = {"claim": "closeness in d_LLV implies similar representations",
                "statistic": "mean d_{f,g} (lowest third of d_LLV) − mean d_{f,g} (highest "
                             "third)",
                "least_favourable": unf, "most_favourable": fav,
                "verdict": _verdict(unf, fav, "below", 0.0),
                "bound_violations": int(np.sum(col["d_fg_lower"] > bound)),
                "bound_non_vacuous_pairs": int(np.sum(bound < 1.0))}
    lo_w, hi_w = float(col["width"].min()), float(col["width"].max())
    out["c"] = {"claim": "wider models are closer", "widths": [int(lo_w), int(hi_w)]}
    if lo_w == hi_w:
        out["c"]["error"] = "one width only"
        return out
    narrow, wide = col["width"] == lo_w, col["width"] == hi_w
    for name, lower, upper in (("d_llv", "d_llv_lower", "d_llv"),
                               ("d_fg", "d_fg_lower", "d_fg_upper")):
        def gap(at_wide: str, at_narrow: str) -> Callable[[np.ndarray], float]:
            return lambda wt: (_wmean(col[at_wide], wt * wide)
                               - _wmean(col[at_narrow], wt * narrow))

        unf, fav = _interval(gap(upper, lower), w), _interval(gap(lower, upper), w)
        out["c"][name] = {"statistic": f"mean {name} at width {int(hi_w)} − at {int(lo_w)}",
                          "least_favourable": unf, "most_favourable": fav,
                          "verdict": _verdict(unf, fav, "below", 0.0)}
    return out
