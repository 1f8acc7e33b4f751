"""Group separation by training intervention (ReSi tests 3–5, Klabunde et al. 2025).

Models trained under the same condition (a label-randomisation fraction, a
shortcut's predictiveness, an augmentation strength; several seeds each)
should be more similar to each other than to models trained under another
condition.  As in the ReSi benchmark (``GroupSeparationExperiment``): for each
group g, the in-group pairs (both models in g) are the positives and the
cross-group pairs (one model in g, one outside) the negatives; pairs are
ranked by similarity (a dissimilarity ``d`` is ranked by ``−d``, which gives
the same order as ReSi's ``(max − d) / max``) and the score is the average
precision (AUPRC), averaged over groups.  Chance is about the share of
positives (e.g. 10 / 60 ≈ 0.17 for 3 groups of 5), not 0.5: :func:`chance_auprc`.
Representations are those of the last hidden layer on clean test inputs.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

__all__ = ["GROUP_TESTS", "average_precision", "chance_auprc", "describe_groups",
           "group_separation", "group_strata"]

#: test name → (description of the groups, one line for the table)
GROUP_TESTS: dict[str, str] = {
    "label_randomisation": "separates models by fraction of random labels (ReSi test 3)",
    "shortcut": "separates models by shortcut predictiveness (ReSi test 4)",
    "augmentation": "separates models by augmentation strength (ReSi test 5)",
}


def average_precision(scores: Sequence[float], positive: Sequence[bool]) -> float:
    """Average precision of ranking ``scores`` (larger = more likely positive), ties
    handled as one threshold (as ``sklearn.metrics.average_precision_score``);
    ``nan`` without positives."""
    s = np.asarray(scores, dtype=float)
    y = np.asarray(positive, dtype=bool)
    ok = np.isfinite(s)
    s, y = s[ok], y[ok]
    if not y.any():
        return math.nan
    order = np.argsort(-s, kind="stable")
    s, y = s[order], y[order]
    last = np.r_[np.flatnonzero(np.diff(s) != 0), s.size - 1]  # end of each tie block
    tp = np.cumsum(y)[last]
    precision = tp / (last + 1)
    recall = tp / y.sum()
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def chance_auprc(sizes: Sequence[int]) -> float:
    """Expected AUPRC of a random ranking ≈ the share of positives, averaged over groups."""
    vals = []
    total = sum(sizes)
    for k in sizes:
        pos, neg = k * (k - 1) / 2, k * (total - k)
        if pos:
            vals.append(pos / (pos + neg))
    return float(np.mean(vals)) if vals else math.nan


def group_separation(groups: dict[str, str], dist: Callable[[str, str], float]
                     ) -> Callable[[Sequence[str]], float]:
    """The score of one grouping (model → group label) given ``dist(a, b)`` (cached by the
    caller); the returned function scores any multiset of the grouped models (a resample:
    copies of one model are never paired with each other)."""
    values: dict[tuple[str, str], float] = {}

    def d(a: str, b: str) -> float:
        key = (a, b) if a <= b else (b, a)
        if key not in values:
            values[key] = dist(*key)
        return values[key]

    def score(models: Sequence[str]) -> float:
        members = [m for m in models if m in groups]
        per_group = []
        for g in sorted(set(groups[m] for m in members)):
            sims, pos = [], []
            for i, a in enumerate(members):
                for b in members[i + 1:]:
                    if a == b or (groups[a] != g and groups[b] != g):
                        continue
                    sims.append(-d(a, b))
                    pos.append(groups[a] == groups[b])
            per_group.append(average_precision(sims, pos))
        fin = [v for v in per_group if math.isfinite(v)]
        return float(np.mean(fin)) if fin else math.nan

    return score


def group_strata(groups: dict[str, dict[str, str]], seeds: Sequence[str]
                 ) -> list[list[str]]:
    """The resampling strata of the group tests: the models of each (test, group) that
    are not seeds (seeds are resampled with the other tests)."""
    strata: dict[tuple[str, str], list[str]] = {}
    for test, members in groups.items():
        for m, g in members.items():
            if m not in seeds:
                strata.setdefault((test, g), [])
                if m not in strata[(test, g)]:
                    strata[(test, g)].append(m)
    return list(strata.values())


def describe_groups(groups: dict[str, str]) -> dict[str, Any]:
    """Group label → number of models, and the chance AUPRC of that grouping."""
    sizes: dict[str, int] = {}
    for g in groups.values():
        sizes[g] = sizes.get(g, 0) + 1
    return {"sizes": sizes, "chance": chance_auprc(list(sizes.values()))}
