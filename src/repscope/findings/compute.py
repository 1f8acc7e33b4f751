"""Profiles of every pair at every relative depth, and mutual kNN over populations.

:func:`profile_pairs` runs :func:`repscope.profile` once per pair × depth (the function
class at the last depth only, where both models give predictions; the softmax class
at the last depth where both give unembeddings) and writes one row per class into
the results database, skipping rows already there for the same settings.

One guard is applied on top of the profile's verdicts, and recorded (``verdict_profile``
keeps the profile's own): a class judged ``equivalent`` whose score does not exceed its
permutation null's 95 % quantile, or whose Holm-adjusted p-value exceeds α, is reported
``undetermined`` — at d close to n/2 the simulated ceiling can fall to chance level, and
"equivalent" must never be said of a pair that is not even distinguishable from
unrelated data. (Since decision rules 2 the profile itself refuses such an
``equivalent``; the guard stays as a second check, and the rules' version is part of the
settings key, so stored rows are recomputed.) The permutation class of a pair of
principal-component projections is ``undetermined`` as well (components mix units), and
a stricter class is never left ``equivalent`` beside a looser class that the guard made
``undetermined``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from repscope.findings.representations import Rep
from repscope.findings.store import ResultsStore
from repscope.inference.profile import profile

__all__ = ["ALPHA", "CLASSES", "NOT_JUDGED", "guard_verdict", "knn_rows", "profile_pairs",
           "settings_key"]

ALPHA = 0.05
#: the reason of a class that is not judged at all (its score and p-value are not used)
NOT_JUDGED = "principal components mix units: a permutation is not judged"
#: the classes the findings state, in order
CLASSES = ("permutation", "orthogonal", "linear", "neighbourhood", "function", "softmax")


def settings_key(settings: dict[str, Any]) -> str:
    """A short hash of the settings a row depends on."""
    blob = json.dumps(settings, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def guard_verdict(c: dict[str, Any], reduced: bool) -> tuple[str, str]:
    """The reported verdict and reason of one class record (see the module docstring)."""
    verdict, reason = c["verdict"], c["reason"]
    if reduced and c["name"] == "permutation":
        return "undetermined", NOT_JUDGED
    if verdict == "equivalent":
        q95 = (c.get("null") or {}).get("q95")
        p = c.get("pvalue")
        if c["score"] is None or q95 is None or c["score"] <= q95 or (p is not None
                                                                        and p > ALPHA):
            return "undetermined", ("the profile's equivalence test passed but the score is "
                                    "not above its permutation null (the margin's ceiling is "
                                    "at chance level at these shapes)")
    return verdict, reason


def _rows(ra: Rep, rb: Rep, depth: str, key: str, stats: dict[str, Any], seed: int
          ) -> list[dict[str, Any]]:
    """The profile of one pair at one depth, one row per class (``key``: the settings')."""
    (la, xa), (lb, xb) = ra.layers[depth], rb.layers[depth]
    last = depth == "last"
    outputs = ((ra.outputs, rb.outputs) if last and ra.outputs is not None
               and rb.outputs is not None else None)
    unemb = ((ra.unembedding, rb.unembedding) if last and ra.unembedding is not None
             and rb.unembedding is not None else None)
    p = profile(xa, xb, outputs=outputs, unembeddings=unemb, n_boot=stats["n_boot"],
                n_margin=stats["n_margin"], seed=seed)
    out = []
    for name, c in p.classes.items():
        d = c.to_dict()
        if name == "function" and outputs is None:
            continue
        verdict, reason = guard_verdict(d, ra.reduced or rb.reduced)
        null = d.get("null") or {}
        ci = d.get("ci") or [None, None]
        out.append({"a": ra.name, "b": rb.name, "depth": depth, "layer_a": la, "layer_b": lb,
                    "n": p.n, "dx": p.dx, "dy": p.dy, "class": name, "verdict": verdict,
                    "verdict_profile": d["verdict"], "score": d["score"], "ci_low": ci[0],
                    "ci_high": ci[1], "null_mean": null.get("mean"),
                    "null_q95": null.get("q95"), "ceiling": d["ceiling"],
                    "pvalue": d["pvalue"], "pvalue_raw": d["pvalue_raw"],
                    "p_floor": d["p_floor"],
                    "detectable": d["detectable"], "reason": reason, "settings": key})
    by_class = {r["class"]: r for r in out}
    for strict, loose in (("orthogonal", "linear"), ("permutation", "orthogonal")):
        s, lo = by_class.get(strict), by_class.get(loose)
        if s and lo and s["verdict"] == "equivalent" and lo["verdict"] != "equivalent":
            s["verdict"] = "undetermined"  # never more alike than a class containing it
            s["reason"] = f"the {loose} class, which contains it, is not judged equivalent"
    return out


def profile_pairs(store: ResultsStore, reps: dict[str, Rep], pairs: Iterable[tuple[str, str]],
                  settings: dict[str, Any], *, say: Callable[[str], None] = lambda _m: None
                  ) -> int:
    """Profile every pair at every depth not yet in ``store``; the number computed."""
    key = settings_key(settings)
    todo = [(a, b, d) for a, b in dict.fromkeys(pairs) for d in reps[a].layers
            if d in reps[b].layers and not store.has_profile(a, b, d, key)]
    for i, (a, b, d) in enumerate(todo):
        if i % 20 == 0:
            say(f"profiles {i + 1}–{min(i + 20, len(todo))} of {len(todo)}")
        store.put_profiles(_rows(reps[a], reps[b], d, key, settings, int(settings["seed"])))
    return len(todo)


def knn_rows(population: str, reps: dict[str, Rep], capability: dict[str, float],
             settings: dict[str, Any], k: int = 10) -> list[tuple[Any, ...]]:
    """Mutual kNN (k = 10, the profile's neighbourhood statistic) of every pair of
    ``reps`` at the last depth, with both models' capability."""
    from repscope.measures.registry import measure

    m = measure("mutual_knn", k=k)
    key = settings_key(settings)
    names = sorted(reps)
    out = []
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            score = float(m(reps[a].layers["last"][1], reps[b].layers["last"][1]))
            if not np.isfinite(score):
                continue
            out.append((population, a, b, score, capability[a], capability[b], key))
    return out
