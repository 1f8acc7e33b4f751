"""Tests with a known answer: what a good similarity measure must get right.

Each test turns one measure's values on a :class:`~repscope.grounding.zoo.GroundingZoo`
into a score that is larger when the measure does better, and can recompute
that score on any resampled multiset of the zoo's models (the uncertainty
comes from resampling *models*, not pairs: pairs that share a model are not
independent).  Similarities are negated, so every value below is a
dissimilarity ``d``.

``layer_identification`` (Kornblith et al. 2019)
    For each layer of one seed, is the same layer of another seed the most
    similar one (smallest ``d``)?  Score: the fraction of (ordered seed pair,
    layer) cases where it is.  Layers have different widths.
``sensitivity`` (Ding, Denain & Steinhardt 2021)
    Delete principal components of a layer — from the high-variance end
    (1, 4, 16, … components) and from the low-variance end (50 %, 75 %, 90 % of
    the components) — run the rest of the network on the edited activations,
    and correlate ``d(original, edited)`` with the change in accuracy.
    Score: Spearman ρ per model, averaged.  ``sensitivity_low``: the same over
    the low-variance deletions only (Ding et al.'s own test).
``specificity`` (after Ding et al.)
    Seeds leave function (nearly) unchanged; deletions that cost at least 5
    accuracy points change it.  Score: the probability that a function-changing
    deletion moves the measure more than another seed does (AUROC), per model
    and layer, averaged.
``accuracy_correlation``, ``output_correlation`` (ReSi tests 1–2, Klabunde et al. 2025)
    Over pairs of seeds, Spearman ρ between ``d`` of their last hidden layers
    and the difference of their test accuracies / the mean Jensen–Shannon
    divergence of their output distributions.
``label_randomisation``, ``shortcut``, ``augmentation`` (ReSi tests 3–5)
    Models trained under the same intervention level should be closer to each
    other than to the other levels: AUPRC of in-group against cross-group
    pairs, averaged over groups (:mod:`repscope.grounding.groups`).
``monotonicity`` (ReSi test 6)
    Within a model, ``d`` between two layers should grow with their distance
    in depth.  Score: Spearman ρ between ``d`` and |i − j| per model, averaged.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from scipy.stats import spearmanr

from repscope.core.errors import RepscopeError, RepscopeWarning
from repscope.grounding.groups import GROUP_TESTS, group_separation
from repscope.grounding.zoo import GroundingZoo

__all__ = ["TESTS", "Dissimilarity", "prepare_test", "value_key"]

#: accuracy drop that counts as a change of function (specificity)
FUNCTION_CHANGE = 0.05


class Dissimilarity:
    """``d(X, Y)`` of one measure, similarities negated, prepared forms cached by key.

    A measure error (wrong widths, too few samples, a degenerate input) gives
    ``nan`` and is counted in :attr:`failures`, never raised.
    """

    def __init__(self, measure: Any, known: dict[tuple, tuple[float, str | None]] | None = None,
                 record: Callable[[Any, Any, float, str | None], None] | None = None,
                 compute: bool = True) -> None:
        self.measure = measure
        self.sign = -1.0 if measure.info.kind == "similarity" else 1.0
        self.symmetric = bool(measure.info.symmetric)
        self._prepared: dict[Any, Any] = {}
        self.failures: dict[str, int] = {}
        self.calls = 0
        #: values already known (read from a results database): key → (value, error kind)
        self.known = dict(known or {})
        self.record, self.compute = record, compute

    def _prep(self, key: Any, x: np.ndarray) -> Any:
        if key not in self._prepared:
            self._prepared[key] = self.measure.prepare(x)
        return self._prepared[key]

    def __call__(self, kx: Any, x: np.ndarray, ky: Any, y: np.ndarray) -> float:
        self.calls += 1
        key = value_key(kx, ky)
        if key not in self.known:
            if not self.compute:
                raise RepscopeError(f"the results database lacks {self.measure.info.name} on "
                                    f"{key}: rerun repscope ground into this folder")
            value, error = self._compute(kx, x, ky, y)
            self.known[key] = (value, error)
            if self.record is not None:
                self.record(kx, ky, value, error)
        value, error = self.known[key]
        if error is not None:
            self.failures[error] = self.failures.get(error, 0) + 1
            return math.nan
        return value

    def _compute(self, kx: Any, x: np.ndarray, ky: Any, y: np.ndarray
                 ) -> tuple[float, str | None]:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RepscopeWarning)
                warnings.simplefilter("ignore", RuntimeWarning)
                v = float(self.measure.compare_prepared(self._prep(kx, x), self._prep(ky, y)))
        except RepscopeError as exc:
            return math.nan, type(exc).__name__
        return (self.sign * v if math.isfinite(v) else math.nan), None

    def forget(self, prefix: Any) -> None:
        """Drop cached forms whose key starts with ``prefix`` (edited activations)."""
        for k in [k for k in self._prepared if isinstance(k, tuple) and k[:1] == (prefix,)]:
            del self._prepared[k]


def value_key(kx: Any, ky: Any) -> tuple[str, str, str, str]:
    """``(model_a, layer_a, model_b, layer_b)`` of a dissimilarity's cache keys; an edited
    activation (``("edit", model, layer, edit)``) is layer ``"layer|edit"``."""
    def cols(k: Any) -> tuple[str, str]:
        if k[0] == "edit":
            return str(k[1]), f"{k[2]}|{k[3]}"
        return str(k[0]), str(k[1])

    return (*cols(kx), *cols(ky))


def _spearman(a: Sequence[float], b: Sequence[float]) -> float:
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    ok = np.isfinite(a) & np.isfinite(b)
    if ok.sum() < 3 or np.ptp(a[ok]) == 0 or np.ptp(b[ok]) == 0:
        return math.nan
    return float(spearmanr(a[ok], b[ok]).statistic)


def _mean(values: Sequence[float]) -> float:
    v = [x for x in values if math.isfinite(x)]
    return float(np.mean(v)) if v else math.nan


Score = Callable[[Sequence[str]], float]


# ----------------------------------------------------------- between seeds
def _cross(zoo: GroundingZoo, d: Dissimilarity) -> dict[tuple[str, str], np.ndarray]:
    """``D[(a, b)][l, m] = d(a's layer l, b's layer m)`` for every ordered pair a ≠ b."""
    out: dict[tuple[str, str], np.ndarray] = {}
    L = len(zoo.layers)
    for i, a in enumerate(zoo.models):
        for b in zoo.models[i + 1:]:
            m = np.full((L, L), np.nan)
            for p, la in enumerate(zoo.layers):
                for q, lb in enumerate(zoo.layers):
                    m[p, q] = d((a, la), zoo.reps[a][la], (b, lb), zoo.reps[b][lb])
            out[(a, b)] = m
            if d.symmetric:
                out[(b, a)] = m.T
            else:
                mt = np.full((L, L), np.nan)
                for p, la in enumerate(zoo.layers):
                    for q, lb in enumerate(zoo.layers):
                        mt[q, p] = d((b, lb), zoo.reps[b][lb], (a, la), zoo.reps[a][la])
                out[(b, a)] = mt
    return out


def _pairs(models: Sequence[str]) -> list[tuple[str, str]]:
    return [(a, b) for i, a in enumerate(models) for j, b in enumerate(models)
            if i != j and a != b]


def layer_identification(zoo: GroundingZoo, d: Dissimilarity, cache: dict) -> Score:
    cross = cache.setdefault("cross", _cross(zoo, d))

    def score(models: Sequence[str]) -> float:
        hits = []
        for a, b in _pairs(models):
            m = cross[(a, b)]
            for row in range(m.shape[0]):
                if np.isfinite(m[row]).any():
                    hits.append(float(int(np.nanargmin(m[row])) == row))
        return _mean(hits)

    return score


def _pair_correlation(zoo: GroundingZoo, d: Dissimilarity, cache: dict,
                      target: Callable[[str, str], float]) -> Score:
    cross = cache.setdefault("cross", _cross(zoo, d))
    last = len(zoo.layers) - 2  # the last hidden layer ("embedding")

    def score(models: Sequence[str]) -> float:
        pairs = [(a, b) for i, a in enumerate(models) for b in models[i + 1:] if a != b]
        return _spearman([cross[(a, b)][last, last] for a, b in pairs],
                         [target(a, b) for a, b in pairs])

    return score


def accuracy_correlation(zoo: GroundingZoo, d: Dissimilarity, cache: dict) -> Score:
    return _pair_correlation(zoo, d, cache,
                             lambda a, b: abs(zoo.accuracy(a) - zoo.accuracy(b)))


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(1, keepdims=True)


def _jsd(za: np.ndarray, zb: np.ndarray) -> float:
    p, q = _softmax(za), _softmax(zb)
    m = (p + q) / 2

    def kl(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return np.sum(np.where(x > 0, x * (np.log(np.maximum(x, 1e-300)) - np.log(y)), 0), 1)

    return float(np.mean((kl(p, m) + kl(q, m)) / 2))


def output_correlation(zoo: GroundingZoo, d: Dissimilarity, cache: dict) -> Score:
    jsd = cache.setdefault("jsd", {})

    def target(a: str, b: str) -> float:
        key = tuple(sorted((a, b)))
        if key not in jsd:
            jsd[key] = _jsd(zoo.logits[a], zoo.logits[b])
        return jsd[key]

    return _pair_correlation(zoo, d, cache, target)


# ----------------------------------------------------------- within a model
def monotonicity(zoo: GroundingZoo, d: Dissimilarity, cache: dict) -> Score:
    per_model = {}
    for m in zoo.models:
        vals, gaps = [], []
        for i, la in enumerate(zoo.layers):
            for j in range(i + 1, len(zoo.layers)):
                lb = zoo.layers[j]
                vals.append(d((m, la), zoo.reps[m][la], (m, lb), zoo.reps[m][lb]))
                gaps.append(j - i)
        per_model[m] = _spearman(vals, gaps)
    return lambda models: _mean([per_model[m] for m in models])


def _deletions(x: np.ndarray) -> list[tuple[str, np.ndarray]]:
    """Edited copies of ``x``: top principal components removed (1, 4, 16, …, ≤ half the
    rank) and bottom ones removed (50 %, 75 %, 90 % of the rank)."""
    mu = x.mean(0)
    u, s, vt = np.linalg.svd(x - mu, full_matrices=False)
    rank = int((s > s[0] * 1e-10).sum()) if s.size else 0
    out = []
    k = 1
    while k <= max(1, rank // 2):
        keep = np.ones(s.size, dtype=bool)
        keep[:k] = False
        out.append((f"top{k}", (u[:, keep] * s[keep]) @ vt[keep] + mu))
        k *= 4
    for frac in (0.5, 0.75, 0.9):
        k = int(rank * frac)
        if 0 < k < rank:
            keep = np.zeros(s.size, dtype=bool)
            keep[: rank - k] = True
            out.append((f"bottom{frac:g}", (u[:, keep] * s[keep]) @ vt[keep] + mu))
    return out


def _edits(zoo: GroundingZoo, cache: dict) -> dict[str, list[tuple[str, str, np.ndarray, float]]]:
    """Per model: (layer, edit, edited activations, accuracy change); computed once."""
    if "edits" in cache:
        return cache["edits"]
    edits: dict[str, list[tuple[str, str, np.ndarray, float]]] = {}
    for m in zoo.models:
        base = zoo.accuracy(m)
        rows = []
        for layer in zoo.layers[:-1]:
            for name, x2 in _deletions(zoo.reps[m][layer]):
                out = zoo.rerun(m, layer, x2)
                if out is None:
                    break
                acc = float((out.argmax(1) == zoo.labels).mean())
                rows.append((layer, name, x2, abs(base - acc)))
        edits[m] = rows
    cache["edits"] = edits
    return edits


def _edit_correlation(zoo: GroundingZoo, d: Dissimilarity, cache: dict,
                      keep: Callable[[str], bool]) -> Score:
    """Spearman ρ per model between d(original, edited) and the accuracy change, over the
    edits whose name ``keep`` accepts; averaged over the models."""
    edits = _edits(zoo, cache)
    dist = cache.setdefault(("edit_d", id(d)), {})
    per_model = {}
    for m, rows in edits.items():
        vals, drops = [], []
        for layer, name, x2, drop in rows:
            key = (m, layer, name)
            if key not in dist:
                dist[key] = d((m, layer), zoo.reps[m][layer], ("edit", m, layer, name), x2)
            if keep(name):
                vals.append(dist[key])
                drops.append(drop)
        d.forget("edit")
        per_model[m] = _spearman(vals, drops)
    return lambda models: _mean([per_model[m] for m in models])


def sensitivity(zoo: GroundingZoo, d: Dissimilarity, cache: dict) -> Score:
    return _edit_correlation(zoo, d, cache, lambda name: True)


def sensitivity_low(zoo: GroundingZoo, d: Dissimilarity, cache: dict) -> Score:
    """Only the deletions of the lowest-variance components (Ding et al.'s test)."""
    return _edit_correlation(zoo, d, cache, lambda name: name.startswith("bottom"))


def specificity(zoo: GroundingZoo, d: Dissimilarity, cache: dict) -> Score:
    cross = cache.setdefault("cross", _cross(zoo, d))
    edits = _edits(zoo, cache)
    dist = cache.setdefault(("edit_d", id(d)), {})
    for m, rows in edits.items():  # the sensitivity test may have filled these already
        for layer, name, x2, _ in rows:
            key = (m, layer, name)
            if key not in dist:
                dist[key] = d((m, layer), zoo.reps[m][layer], ("edit", m, layer, name), x2)
        d.forget("edit")

    def auroc(fun: list[float], seed: list[float]) -> float:
        fun = [v for v in fun if math.isfinite(v)]
        seed = [v for v in seed if math.isfinite(v)]
        if not fun or not seed:
            return math.nan
        f, s = np.asarray(fun)[:, None], np.asarray(seed)[None, :]
        return float(np.mean((f > s) + 0.5 * (f == s)))

    def score(models: Sequence[str]) -> float:
        per = []
        for m in models:
            others = [b for b in models if b != m]
            for li, layer in enumerate(zoo.layers[:-1]):
                fun = [dist[(m, lay, name)] for lay, name, _, drop in edits[m]
                       if lay == layer and drop >= FUNCTION_CHANGE]
                seed = [cross[(m, b)][li, li] for b in others]
                per.append(auroc(fun, seed))
        return _mean(per)

    return score


def _group_test(name: str) -> Callable[[GroundingZoo, Dissimilarity, dict], Score]:
    def test(zoo: GroundingZoo, d: Dissimilarity, cache: dict) -> Score:
        layer = zoo.group_layer
        return group_separation(zoo.groups[name], lambda a, b: d(
            (a, layer), zoo.reps[a][layer], (b, layer), zoo.reps[b][layer]))

    test.__name__ = name
    return test


#: name → (function, what it needs, one line for the table)
TESTS: dict[str, tuple[Callable[[GroundingZoo, Dissimilarity, dict], Score], str, str]] = {
    "layer_identification": (layer_identification, "≥ 2 seeds",
                             "same layer of another seed is the most similar (Kornblith 2019)"),
    "sensitivity": (sensitivity, "models that run from a layer, with outputs and labels",
                    "tracks the accuracy lost by deleting principal components (Ding 2021)"),
    "sensitivity_low": (sensitivity_low, "models that run from a layer, with outputs and "
                        "labels", "tracks the accuracy lost by deleting the lowest-variance "
                        "components only (Ding 2021)"),
    "specificity": (specificity, "≥ 2 seeds that run from a layer, with outputs and labels",
                    "moves more for function-changing edits than across seeds (Ding 2021)"),
    "accuracy_correlation": (accuracy_correlation, "≥ 4 seeds with outputs and labels",
                             "follows accuracy differences across seeds (ReSi test 1)"),
    "output_correlation": (output_correlation, "≥ 4 seeds with outputs and labels",
                           "follows output differences (JSD) across seeds (ReSi test 2)"),
    **{name: (_group_test(name), f"models grouped by {name.replace('_', ' ')} (≥ 2 groups, "
              "one with ≥ 2 models)", line) for name, line in GROUP_TESTS.items()},
    "monotonicity": (monotonicity, "≥ 3 layers",
                     "grows with the distance between layers (ReSi test 6)"),
}


def prepare_test(name: str, zoo: GroundingZoo, d: Dissimilarity, cache: dict) -> Score | str:
    """The score function of test ``name``, or the reason it does not apply to ``zoo``."""
    seeds, layers = len(zoo.models), len(zoo.layers)
    can_rerun = zoo.runnable
    outputs = zoo.has_labels and all(m in zoo.logits for m in zoo.models)
    needs = {"layer_identification": seeds >= 2, "accuracy_correlation": seeds >= 4 and outputs,
             "output_correlation": seeds >= 4 and outputs, "monotonicity": layers >= 3,
             "sensitivity": can_rerun and outputs, "sensitivity_low": can_rerun and outputs,
             "specificity": can_rerun and outputs and seeds >= 2}
    for g in GROUP_TESTS:
        sizes: dict[str, int] = {}
        for label in zoo.groups.get(g, {}).values():
            sizes[label] = sizes.get(label, 0) + 1
        needs[g] = len(sizes) >= 2 and max(sizes.values()) >= 2
    if not needs[name]:
        return f"skipped: needs {TESTS[name][1]}"
    return TESTS[name][0](zoo, d, cache)
