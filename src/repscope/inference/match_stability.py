r"""How stable is the best-matching layer under resampling of the inputs?

For each layer ``a`` of model A, :func:`best_match_stability` finds the layer of
model B that matches it best under a measure (the largest similarity, or the
smallest distance) on all inputs, then draws ``n_resamples`` bootstrap
resamples of the inputs (rows drawn with replacement, the *same* rows for every
layer of both models) and counts how often each layer of B is the best match
on a resample.  The reported **stability** is the fraction of resamples whose
best match equals the one on all inputs, with a Wilson interval for that
fraction given the number of resamples.

What the number means, and what it does not
--------------------------------------------
The stability is a property of the *argmax* under resampling of the inputs,
for fixed networks: it says whether another draw of inputs of the same kind
would have named the same layer.  A value near 1 says the choice does not hinge
on a few inputs; a value near ``1/t`` says ``t`` layers of B are
indistinguishable at this number of inputs (the runner-up and the frequencies
name them).  It is **not** the probability that the match is "true": two layers
can be stably ranked by a measure that is blind to how they differ, and a
perfectly stable best match can still be a poor one (its value says how good).
Its interval accounts for the finite number of resamples only.

Rules
-----
* A cell whose comparison raises a :class:`~repscope.DegeneracyWarning` or a
  repscope error (on all inputs or on a resample) is never a best match — the
  rule of the report's best-match boxes (:mod:`repscope.report.marks`).  A
  resample on which every cell of a row is excluded counts for no layer, so the
  frequencies of a row can sum to less than 1.
* Values equal to a relative ``1e-12`` are tied: a resample whose best value is
  tied between ``t`` layers counts ``1/t`` for each (so two identical layers of B
  each get about half).  On all inputs the first of tied layers (in B's order) is
  the best match, as in the report.
* ``groups`` (one label per input, e.g. repeats of one stimulus) resamples whole
  groups: drawn with replacement, all rows of each drawn group together.
* Measures fitted to the samples are refused: in-sample fits (the CCA family,
  ``linear_regression``: :func:`repscope.inference.supports_heldout`) grow with
  the duplicated rows of a resample, and cross-validated ones
  (``linear_regression_cv``) would test on copies of training rows.  A custom
  measure that fits is not recognised: do not use it here.

Cost
----
Each representation is prepared once per resample and reused by every pair
(``n_resamples × (layers of A + layers of B)`` preparations and ``n_resamples ×
|A| × |B|`` comparisons).  Linear CKA (biased) takes an exact shortcut: the
centred Gram matrix of a resample is the weighted double-centring of the
full-data Gram matrix on the distinct rows drawn, so each layer's Gram matrix is
computed once and a resample costs ``O(m²)`` per layer and per pair (``m ≈
0.63 n`` distinct rows) instead of ``O(n d²)``; it is used while the Gram
matrices fit in :data:`GRAM_BUDGET` bytes, and gives the generic path's values
to rounding.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from repscope.core.arrays import Array, to_float
from repscope.core.errors import (
    InputShapeError,
    InvalidParameterError,
    RepscopeError,
)
from repscope.core.progress import progress_bar
from repscope.core.warning_capture import capture_warnings
from repscope.inference.gram_resampling import GRAM_BUDGET, GramResampler, gram_applies
from repscope.inference.heldout import supports_heldout
from repscope.inference.intervals import wilson_interval
from repscope.inference.options import MeasureSpec, check_count, check_level, resolve_measure
from repscope.inference.resampling import (
    as_rng,
    bootstrap_rows,
    group_members,
    per_sample_params,
    take_rows,
    with_rows,
)
from repscope.measures.base import Measure, Prepared
from repscope.measures.metadata import CROSS_VALIDATED, SampleRule

__all__ = [
    "DEFAULT_STABILITY_RESAMPLES",
    "GRAM_BUDGET",
    "TIE_RTOL",
    "LayerMatch",
    "MatchStability",
    "best_match_stability",
    "best_shares",
    "match_stability_pairs",
    "stability_refusal",
]

#: resamples drawn by default (bounded: the cost is this many grids of the two models)
DEFAULT_STABILITY_RESAMPLES = 50

#: values within this relative distance of the best value are tied with it
TIE_RTOL = 1e-12

Pair = tuple[str, str]


# ------------------------------------------------------------------ results
@dataclass(frozen=True)
class LayerMatch:
    """The best match of one layer of A and how often resamples agree with it.

    Attributes
    ----------
    layer_a : the layer of A.
    best_layer_b : its best-matching layer of B on all inputs (``None`` when every
        cell of the row is degenerate or failed).
    value : the measure's value of that cell on all inputs.
    stability : fraction of resamples whose best match is ``best_layer_b``.
    ci_low, ci_high : Wilson interval of ``stability`` for ``n_resamples`` resamples.
    runner_up : the other layer of B that is most often the best on a resample
        (``None`` if no other layer ever is); it can be more frequent than
        ``best_layer_b`` when the full-data choice is fragile.
    runner_up_frac : its fraction of resamples (0 when there is none).
    frequencies : fraction of resamples in which each layer of B is the best
        (every layer of B, in B's order).
    n_resamples : resamples drawn.
    """

    layer_a: str
    best_layer_b: str | None
    value: float | None
    stability: float | None
    ci_low: float | None
    ci_high: float | None
    runner_up: str | None
    runner_up_frac: float
    frequencies: dict[str, float]
    n_resamples: int

    def to_record(self) -> dict[str, Any]:
        """A JSON-serialisable dict (``None`` for undefined values)."""
        return {
            "layer_a": self.layer_a, "best_layer_b": self.best_layer_b, "value": self.value,
            "stability": self.stability, "ci_low": self.ci_low, "ci_high": self.ci_high,
            "runner_up": self.runner_up, "runner_up_frac": self.runner_up_frac,
            "frequencies": dict(self.frequencies), "n_resamples": self.n_resamples,
        }


@dataclass(frozen=True)
class MatchStability:
    """Result of :func:`best_match_stability`: one :class:`LayerMatch` per layer of A.

    Attributes
    ----------
    measure : the measure's name; ``kind`` ``"similarity"`` (best = largest) or
        ``"distance"`` (best = smallest).
    layers_a, layers_b : layer names, in the order given.
    matches : one :class:`LayerMatch` per layer of A.
    values : the ``|A| × |B|`` values on all inputs (NaN: degenerate or failed).
    n_resamples, level : resamples drawn, level of the intervals.
    grouped : whether groups of inputs were resampled together.
    path : ``"gram"`` (the linear-CKA shortcut) or ``"prepared"`` (any measure).
    """

    measure: str
    kind: str
    layers_a: tuple[str, ...]
    layers_b: tuple[str, ...]
    matches: tuple[LayerMatch, ...]
    values: np.ndarray = field(repr=False)
    n_resamples: int = DEFAULT_STABILITY_RESAMPLES
    level: float = 0.95
    grouped: bool = False
    path: str = "prepared"

    def to_records(self) -> list[dict[str, Any]]:
        """One JSON-serialisable dict per layer of A (:meth:`LayerMatch.to_record`)."""
        return [m.to_record() for m in self.matches]

    def match(self, layer_a: str) -> LayerMatch:
        """The :class:`LayerMatch` of ``layer_a``."""
        for m in self.matches:
            if m.layer_a == str(layer_a):
                return m
        raise InvalidParameterError(f"{layer_a!r} is not a layer of A ({list(self.layers_a)})")


# ------------------------------------------------------------------ checks
def stability_refusal(measure: MeasureSpec) -> str | None:
    """Why ``measure`` cannot be used for match stability, or ``None`` if it can.

    Measures fitted to the samples are refused (module docstring, "Rules").
    """
    m = resolve_measure(measure)
    name = m.info.name
    if supports_heldout(m):
        return (f"{name} is fitted to the samples it compares (in sample); bootstrap resamples "
                "repeat inputs, which inflates fitted values, so its best matches on resamples "
                "are not comparable. Use a measure that is not fitted (cka, procrustes, rsa, "
                "the k-NN measures)")
    if SampleRule(m.info.min_samples, m.info.min_samples_reason) == CROSS_VALIDATED:
        return (f"{name} is cross-validated over the samples; bootstrap resamples repeat "
                "inputs, so its folds would test on copies of training inputs. Use a measure "
                "that is not fitted (cka, procrustes, rsa, the k-NN measures)")
    return None


def _rows_of(model: str, layer: str, x: Any) -> tuple[Any, int]:
    if not hasattr(x, "shape"):
        x = np.asarray(x)
    if len(x.shape) != 2:
        raise InputShapeError(f"{model}[{layer!r}] must be 2-D (inputs × features), got shape "
                              f"{tuple(x.shape)}")
    return x, int(x.shape[0])


def _check_models(models: Mapping[str, Mapping[Any, Any]], pairs: Sequence[Pair]
                  ) -> tuple[dict[str, dict[str, Any]], int]:
    if not pairs:
        raise InvalidParameterError("pairs must name at least one (model_a, model_b) pair")
    out: dict[str, dict[str, Any]] = {}
    n: int | None = None
    first = ""
    for a, b in pairs:
        for model in (a, b):
            if model in out:
                continue
            if model not in models:
                raise InvalidParameterError(f"pair ({a!r}, {b!r}): no model {model!r} (models: "
                                            f"{', '.join(map(repr, models))})")
            layers = models[model]
            if not isinstance(layers, Mapping) or not layers:
                raise InvalidParameterError(f"{model} must be a non-empty mapping of layer "
                                            "names to arrays")
            out[model] = {}
            for layer, x in layers.items():
                x, rows = _rows_of(model, str(layer), x)
                if n is None:
                    n, first = rows, f"{model}[{str(layer)!r}]"
                elif rows != n:
                    raise InputShapeError(
                        f"{model}[{str(layer)!r}] has {rows} rows but {first} has {n}; every "
                        "layer of both models must hold the same inputs, in the same order")
                out[model][str(layer)] = x
    assert n is not None
    return out, n


# ------------------------------------------------------------------ scores
def _degenerate(messages: Sequence[str]) -> bool:
    return any("DegeneracyWarning" in msg for msg in messages)


def _prepare(m: Measure, x: Array) -> Prepared | None:
    """``m.prepare(x)``, or ``None`` when it fails or warns of degeneracy."""
    with capture_warnings() as cw:
        try:
            p = m.prepare(x, "X")
        except RepscopeError:
            return None
    return None if _degenerate(cw.messages) else p


def _compare(m: Measure, px: Prepared | None, py: Prepared | None) -> float:
    """The value of one cell; NaN when it is degenerate or fails."""
    if px is None or py is None:
        return math.nan
    with capture_warnings() as cw:
        try:
            v = to_float(m.compare_prepared(px, py))
        except RepscopeError:
            return math.nan
    return math.nan if _degenerate(cw.messages) or not math.isfinite(v) else v


def _prepared_scores(m: Measure, models: dict[str, dict[str, Any]], pairs: Sequence[Pair],
                     rows: np.ndarray | None, per_sample: list[str]) -> dict[Pair, np.ndarray]:
    """Cell values of every pair on the rows ``rows`` (all rows: ``None``), each
    representation prepared once."""
    if rows is not None:
        m = with_rows(m, per_sample, rows)
    prepared = {(model, layer): _prepare(m, x if rows is None else take_rows(x, rows))
                for model, layers in models.items() for layer, x in layers.items()}
    out = {}
    for a, b in pairs:
        out[(a, b)] = np.array([[_compare(m, prepared[(a, la)], prepared[(b, lb)])
                                 for lb in models[b]] for la in models[a]], dtype=np.float64)
    return out


def best_shares(scores: np.ndarray, kind: str) -> np.ndarray:
    """Per row, the share of the best match each column gets (ties split equally).

    ``scores`` is ``|A| × |B|`` with NaN for excluded cells; a row without a
    finite cell gets no share.  Values within :data:`TIE_RTOL` (relative) of the
    row's best are tied with it.
    """
    s = np.asarray(scores, dtype=np.float64)
    s = s if kind == "similarity" else -s
    out = np.zeros(s.shape)
    for i, row in enumerate(s):
        ok = np.isfinite(row)
        if not ok.any():
            continue
        best = float(row[ok].max())
        win = ok & (row >= best - TIE_RTOL * abs(best))
        out[i, win] = 1.0 / int(win.sum())
    return out


# ------------------------------------------------------------------ public
def best_match_stability(
    reps_a: Mapping[Any, Any],
    reps_b: Mapping[Any, Any],
    measure: MeasureSpec,
    *,
    n_resamples: int = DEFAULT_STABILITY_RESAMPLES,
    seed: Any = 0,
    groups: Any = None,
    level: float = 0.95,
    progress: bool = False,
) -> MatchStability:
    """Best-matching layer of B for each layer of A, and its stability under resampling.

    Parameters
    ----------
    reps_a, reps_b : mapping of layer name to an ``(n, d)`` array (NumPy or torch);
        every layer of both models holds the same ``n`` inputs in the same order.
    measure : a registered name, configured instance or ``(name, params)``;
        similarities are maximised and distances minimised (``info.kind``).
        Measures fitted to the samples are refused (:func:`stability_refusal`).
    n_resamples : bootstrap resamples of the inputs (the same rows for every layer).
    seed : seed or :class:`numpy.random.Generator` of the resamples.
    groups : optional label per input; rows sharing a label are resampled together.
    level : level of the Wilson interval of each stability.
    progress : show a progress bar.

    Returns
    -------
    MatchStability
        One :class:`LayerMatch` per layer of A (``to_records()`` for JSON).  The
        stability is how often the argmax survives resampling of the inputs —
        not a probability that the match is "true" (module docstring).

    Raises
    ------
    InvalidParameterError
        ``n_resamples < 1``, a fitted measure, bad ``level`` or ``groups``.
    InputShapeError
        Layers with different numbers of rows, or not 2-D.
    UnknownMeasureError
        ``measure`` is not registered.
    """
    out = match_stability_pairs({"reps_a": reps_a, "reps_b": reps_b}, [("reps_a", "reps_b")],
                                measure, n_resamples=n_resamples, seed=seed, groups=groups,
                                level=level, progress=progress)
    return out[("reps_a", "reps_b")]


def match_stability_pairs(
    models: Mapping[str, Mapping[Any, Any]],
    pairs: Sequence[Pair],
    measure: MeasureSpec,
    *,
    n_resamples: int = DEFAULT_STABILITY_RESAMPLES,
    seed: Any = 0,
    groups: Any = None,
    level: float = 0.95,
    progress: bool = False,
    path: str = "auto",
) -> dict[Pair, MatchStability]:
    """:func:`best_match_stability` for several model pairs on shared resamples.

    ``models`` maps model names to ``{layer: array}``; ``pairs`` lists
    ``(model_a, model_b)``.  Every resample draws one set of rows used by all
    layers of all models, and each representation is prepared once per
    resample for every pair it is in, so the result of each pair equals
    :func:`best_match_stability` of that pair with the same seed.  ``path``:
    ``"auto"`` (the linear-CKA Gram shortcut where it applies and fits
    :data:`GRAM_BUDGET`), ``"prepared"`` (always the generic path) or ``"gram"``
    (refused where it does not apply).
    """
    m = resolve_measure(measure)
    refusal = stability_refusal(m)
    if refusal is not None:
        raise InvalidParameterError(f"match stability: {refusal}")
    n_resamples = check_count("n_resamples", n_resamples, 1)
    check_level(level)
    if path not in ("auto", "prepared", "gram"):
        raise InvalidParameterError(f"path must be 'auto', 'prepared' or 'gram', got {path!r}")
    pairs = [(str(a), str(b)) for a, b in pairs]
    reps, n = _check_models(models, pairs)
    members = group_members(groups, n)
    rng = as_rng(seed)
    draws = [bootstrap_rows(rng, n, members) for _ in range(n_resamples)]
    per_sample = per_sample_params(m, n)
    use_gram = path == "gram" or (path == "auto" and gram_applies(m) and not per_sample
                                  and GramResampler.fits(reps, n))
    if use_gram and not gram_applies(m):
        raise InvalidParameterError(f"path='gram' applies to linear CKA (biased) only, not "
                                    f"{m!r}")
    full = _prepared_scores(m, reps, pairs, None, per_sample)
    shares = {p: np.zeros(full[p].shape) for p in pairs}
    gram = GramResampler(m, reps) if use_gram else None
    with progress_bar(n_resamples, f"{m.info.name}: match stability", progress) as advance:
        for rows in draws:
            scores = (gram.scores(rows, pairs) if gram is not None
                      else _prepared_scores(m, reps, pairs, rows, per_sample))
            for p in pairs:
                shares[p] += best_shares(scores[p], m.info.kind)
            advance(1)
    return {
        (a, b): MatchStability(
            measure=m.info.name, kind=m.info.kind, layers_a=tuple(reps[a]),
            layers_b=tuple(reps[b]),
            matches=_matches(list(reps[a]), list(reps[b]), full[(a, b)], shares[(a, b)],
                             n_resamples, level, m.info.kind),
            values=full[(a, b)], n_resamples=n_resamples, level=float(level),
            grouped=members is not None, path="gram" if use_gram else "prepared")
        for a, b in pairs
    }


def _matches(layers_a: list[str], layers_b: list[str], full: np.ndarray, shares: np.ndarray,
             r: int, level: float, kind: str) -> tuple[LayerMatch, ...]:
    best = best_shares(full, kind)
    out = []
    for i, la in enumerate(layers_a):
        freq = np.minimum(shares[i] / r, 1.0)
        tied = np.flatnonzero(best[i] > 0)
        j = int(tied[0]) if tied.size else None
        if j is None:
            stability = low = high = value = None
        else:
            k = min(float(shares[i, j]), float(r))
            stability, value = k / r, float(full[i, j])
            low, high = wilson_interval(k, r, level)
        others = freq.copy()
        if j is not None:
            others[j] = -1.0
        j2 = int(np.argmax(others))
        runner = layers_b[j2] if others[j2] > 0 else None
        out.append(LayerMatch(
            layer_a=la, best_layer_b=None if j is None else layers_b[j], value=value,
            stability=stability, ci_low=low, ci_high=high, runner_up=runner,
            runner_up_frac=float(others[j2]) if runner is not None else 0.0,
            frequencies={lb: float(f) for lb, f in zip(layers_b, freq)}, n_resamples=r))
    return tuple(out)
