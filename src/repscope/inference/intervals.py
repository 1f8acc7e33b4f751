"""Interval arithmetic on resampled values: the formulas behind every ``ci_method``.

Pure functions of the value on the data and its values on resamples or
subsamples; :mod:`repscope.inference.bootstrap` and
:mod:`repscope.inference.jackknife` evaluate the measure and call them, and
``benchmarks/coverage.py`` calls the same functions, so the coverage it
measures is the coverage of the shipped code.  Formulas: ``docs/statistics.md``.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from scipy import special
from scipy import stats as sps

from repscope.core.errors import InvalidParameterError

__all__ = [
    "JACKKNIFE_GROUPS",
    "IntervalEstimate",
    "bca_interval",
    "clip_to_range",
    "grouped_jackknife",
    "jackknife_groups",
    "jackknife_interval",
    "normal_interval",
    "percentile_interval",
    "wilson_interval",
]

#: groups of the default jackknife (1 + G + G(G−1)/2 = 56 evaluations of the measure)
JACKKNIFE_GROUPS = 10


class IntervalEstimate(NamedTuple):
    """An estimate with its standard error and interval (``low ≤ estimate ≤ high``)."""

    estimate: float
    standard_error: float
    low: float
    high: float


# --------------------------------------------------------------- bootstrap
def percentile_interval(boot: np.ndarray, level: float) -> tuple[float, float]:
    """The ``α/2`` and ``1 − α/2`` quantiles of ``boot`` (``α = 1 − level``)."""
    alpha = (1.0 - level) / 2.0
    lo, hi = np.percentile(boot, [100.0 * alpha, 100.0 * (1.0 - alpha)])
    return float(lo), float(hi)


def bca_interval(
    boot: np.ndarray, stat: float, jack: np.ndarray, level: float
) -> tuple[float, float] | None:
    """BCa percentiles (Efron 1987); ``None`` when undefined (no spread).

    ``jack`` holds the delete-one values that give the acceleration
    ``a = Σ(θ̄ − θ₍ᵢ₎)³ / (6 (Σ(θ̄ − θ₍ᵢ₎)²)^{3/2})``.
    """
    b = boot.size
    prop = (np.sum(boot < stat) + np.sum(boot <= stat)) / (2.0 * b)
    if not 0.0 < prop < 1.0:
        return None
    z0 = special.ndtri(prop)
    d = jack.mean() - jack
    den = 6.0 * np.sum(d**2) ** 1.5
    a = float(np.sum(d**3) / den) if den > 0 else 0.0
    alpha = (1.0 - level) / 2.0
    out = []
    for q in (alpha, 1.0 - alpha):
        zq = special.ndtri(q)
        adj = special.ndtr(z0 + (z0 + zq) / (1.0 - a * (z0 + zq)))
        if not math.isfinite(adj):
            return None
        out.append(float(np.percentile(boot, 100.0 * adj)))
    return out[0], out[1]


def normal_interval(stat: float, se: float, level: float) -> tuple[float, float]:
    """``stat ± z_{1−α/2} · se``."""
    half = float(special.ndtri(0.5 + level / 2.0)) * se
    return stat - half, stat + half


# ------------------------------------------------------------ proportions
def wilson_interval(successes: float, trials: int, level: float = 0.95) -> tuple[float, float]:
    r"""Wilson score interval of a proportion ``p̂ = successes / trials``.

    .. math::  \frac{\hat p + z^2/2N \pm z\sqrt{\hat p(1-\hat p)/N + z^2/4N^2}}{1 + z^2/N},
               \qquad z = z_{1-\alpha/2}

    Unlike the normal (Wald) interval it stays inside [0, 1], is not empty at
    ``p̂ = 0`` or ``1``, and covers close to ``level`` already at small ``N``
    (Brown, Cai & DasGupta, Statistical Science 2001).  ``successes`` may be
    fractional (a resample whose maximum is tied between ``t`` candidates
    counts ``1/t`` for each).

    Raises
    ------
    InvalidParameterError
        ``trials < 1``, ``successes`` outside ``[0, trials]`` or ``level`` outside (0, 1).
    """
    if isinstance(trials, bool) or not isinstance(trials, (int, np.integer)) or trials < 1:
        raise InvalidParameterError(f"trials must be an integer >= 1, got {trials!r}")
    if not (isinstance(successes, (int, float, np.integer, np.floating))
            and 0 <= successes <= trials):
        raise InvalidParameterError(f"successes must be a number in [0, {trials}], got "
                                    f"{successes!r}")
    if not 0 < level < 1:
        raise InvalidParameterError(f"level must be in (0, 1), got {level!r}")
    n = float(trials)
    p = float(successes) / n
    z = float(special.ndtri(0.5 + level / 2.0))
    denom = 1.0 + z * z / n
    centre = (p + z * z / (2.0 * n)) / denom
    half = z * math.sqrt(p * (1.0 - p) / n + z * z / (4.0 * n * n)) / denom
    low = 0.0 if p == 0.0 else max(0.0, centre - half)
    high = 1.0 if p == 1.0 else min(1.0, centre + half)
    return low, high


# --------------------------------------------------------------- jackknife
def jackknife_groups(n: int, groups: int, rng: np.random.Generator) -> np.ndarray:
    """A random partition of ``range(n)`` into ``min(groups, n)`` groups of sizes ``⌊n/G⌋`` or
    ``⌈n/G⌉``: the group label of each sample."""
    if n < 2:
        raise InvalidParameterError(f"the jackknife needs at least 2 samples, got {n}")
    g = min(int(groups), n)
    labels = np.empty(n, dtype=np.intp)
    labels[rng.permutation(n)] = np.arange(n) % g
    return labels


def grouped_jackknife(
    stat: float, deleted: np.ndarray, sizes: np.ndarray
) -> tuple[float, float]:
    """Bias-corrected estimate and variance of a delete-a-group jackknife.

    Parameters
    ----------
    stat : value on all ``N = Σ sizes`` samples.
    deleted : ``deleted[g]`` is the value without the samples of group ``g``.
    sizes : group sizes ``m_g``.

    Returns
    -------
    (estimate, variance)
        With ``h_g = N / m_g`` and pseudo-values ``p_g = h_g θ̂ − (h_g − 1) θ₍g₎`` (each
        free of a bias ``a/N``), the estimate is ``θ̃ = Σ_g (m_g/N) p_g`` and the variance
        ``(1/G) Σ_g (p_g − θ̃)² / (h_g − 1)`` (Busing, Meijer & van der Leeden 1999; for
        equal groups the usual ``G θ̂ − (G − 1) θ̄`` and ``(G − 1)/G Σ (θ₍g₎ − θ̄)²``).
    """
    deleted = np.asarray(deleted, dtype=np.float64)
    sizes = np.asarray(sizes, dtype=np.float64)
    g = deleted.size
    if g < 2 or sizes.shape != deleted.shape:
        raise InvalidParameterError("the grouped jackknife needs at least 2 groups")
    total = float(sizes.sum())
    h = total / sizes
    pseudo = h * stat - (h - 1.0) * deleted
    est = float(np.sum(sizes / total * pseudo))
    var = float(np.sum((pseudo - est) ** 2 / (h - 1.0)) / g)
    return est, var


def jackknife_interval(
    stat: float,
    deleted: np.ndarray,
    deleted2: np.ndarray,
    labels: np.ndarray,
    level: float,
    *,
    bias_correct: bool = True,
    value_range: tuple[float, float] = (-math.inf, math.inf),
) -> IntervalEstimate:
    """The default interval: bias-corrected grouped jackknife, with the SE of the correction.

    Parameters
    ----------
    stat : value on all samples.
    deleted : ``(G,)`` values without group ``g``.
    deleted2 : ``(G, G)`` values without groups ``g`` and ``h`` (diagonal unused).
    labels : group label of each sample (:func:`jackknife_groups`).
    level : confidence level.
    bias_correct : ``False`` keeps the plug-in value as the estimate (measures whose
        estimand depends on n); the interval is then ``θ̂ ± t · SE_J(θ̂)``.
    value_range : the measure's range; estimate and interval are clipped to it.

    The estimate is the grouped-jackknife bias-corrected value ``θ̃``
    (:func:`grouped_jackknife`).  Its standard error is the jackknife standard
    error *of θ̃ itself*: ``θ̃₍g₎`` is the same bias-corrected estimate computed
    without group ``g`` (from ``deleted[g]`` and ``deleted2[g, h]``), and
    ``SE² = (1/G) Σ_g (q_g − q̄)² / (h_g − 1)`` over the pseudo-values
    ``q_g = h_g θ̃ − (h_g − 1) θ̃₍g₎``.  (The SE of the plug-in value alone
    ignores the variance that the correction adds and under-covers where the
    correction is large.)  The interval is ``θ̃ ± t_{G−1, 1−α/2} · SE``.
    """
    labels = np.asarray(labels)
    sizes = np.bincount(labels).astype(np.float64)
    g = sizes.size
    deleted = np.asarray(deleted, dtype=np.float64)
    deleted2 = np.asarray(deleted2, dtype=np.float64)
    if deleted.shape != (g,) or (bias_correct and deleted2.shape != (g, g)):
        raise InvalidParameterError("jackknife values do not match the number of groups")
    if bias_correct:
        est, _ = grouped_jackknife(stat, deleted, sizes)
        sub = np.empty(g)
        for k in range(g):
            others = np.arange(g) != k
            sub[k], _ = grouped_jackknife(float(deleted[k]), deleted2[k, others], sizes[others])
        _, var = grouped_jackknife(est, sub, sizes)
    else:
        _, var = grouped_jackknife(stat, deleted, sizes)
        est = stat
    se = math.sqrt(max(var, 0.0))
    half = float(sps.t.ppf(0.5 + level / 2.0, g - 1)) * se
    return clip_to_range(IntervalEstimate(est, se, est - half, est + half), value_range)


def clip_to_range(ie: IntervalEstimate, value_range: tuple[float, float]) -> IntervalEstimate:
    """Clip estimate and interval to the measure's range (the estimand lies in it)."""
    lo_r, hi_r = value_range

    def clip(v: float) -> float:
        return float(min(max(v, lo_r), hi_r))

    return IntervalEstimate(clip(ie.estimate), ie.standard_error, clip(ie.low), clip(ie.high))
