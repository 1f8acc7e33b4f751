"""Bootstrap confidence intervals over samples (percentile, BCa, normal).

Formulas and caveats: ``docs/statistics.md``.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field, replace
from typing import Any, NamedTuple

import numpy as np
from scipy import special

from repscope.core.arrays import to_float
from repscope.core.errors import (
    InvalidParameterError,
    RepscopeError,
    RepscopeWarning,
)
from repscope.core.progress import progress_bar
from repscope.core.warning_capture import capture_warnings
from repscope.inference.options import (
    CI_METHODS,
    MeasureSpec,
    check_count,
    check_level,
    resolve_measure,
)
from repscope.inference.resampling import (
    as_rng,
    merge_messages,
    per_sample_params,
    take_rows,
    value_of,
    with_rows,
)
from repscope.measures.base import Measure, Prepared


# ---------------------------------------------------------------- bootstrap
class ConfidenceInterval(NamedTuple):
    low: float
    high: float


@dataclass(frozen=True)
class BootstrapResult:
    """Result of :func:`bootstrap_ci` (names follow ``scipy.stats.bootstrap``).

    Attributes
    ----------
    statistic : value on the original samples.
    confidence_interval : ``(low, high)``.
    bootstrap_distribution : values on the resamples that succeeded.
    standard_error : standard deviation of the bootstrap distribution.
    level, method, n_boot : as requested.
    n_failed : resamples on which the measure raised (degenerate resample).
    warnings : warnings raised while computing (deduplicated).
    """

    statistic: float
    confidence_interval: ConfidenceInterval
    bootstrap_distribution: np.ndarray = field(repr=False)
    standard_error: float
    level: float
    method: str
    n_boot: int
    n_failed: int = 0
    warnings: tuple[str, ...] = ()


def _bca_interval(
    boot: np.ndarray, stat: float, jack: np.ndarray, level: float
) -> tuple[float, float] | None:
    """BCa percentiles (Efron 1987); ``None`` when undefined (no spread)."""
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


def bootstrap_ci(
    measure: MeasureSpec,
    X: Any,
    Y: Any,
    n_boot: int = 1000,
    *,
    level: float = 0.95,
    seed: Any = None,
    method: str = "percentile",
    progress: bool = False,
) -> BootstrapResult:
    r"""Bootstrap confidence interval over samples.

    Each resample draws ``n`` row indices with replacement and evaluates the
    measure on ``(X[idx], Y[idx])`` (rows stay paired; per-sample parameters
    such as labels are resampled with them).  Intervals, at ``α = 1 − level``:

    * ``"percentile"``: the ``α/2`` and ``1 − α/2`` quantiles of the bootstrap
      distribution;
    * ``"bca"``: bias-corrected and accelerated (Efron 1987): quantiles at
      ``Φ(z₀ + (z₀ + z_q)/(1 − a(z₀ + z_q)))`` with ``z₀ = Φ⁻¹(share of
      resampled values below the estimate)`` and acceleration ``a`` from the
      jackknife ``a = Σ(θ̄ − θ₍ᵢ₎)³ / (6 (Σ(θ̄ − θ₍ᵢ₎)²)^{3/2})`` (costs ``n``
      extra evaluations).  Falls back to the percentile interval (with a
      warning) when the distribution has no spread;
    * ``"normal"``: ``θ̂ ± z_{1−α/2} · SE`` with the bootstrap standard error.
      Centred on the estimate, so it is robust to the upward *location* bias
      that duplicated samples give similarity measures such as CKA at d ≳ n
      (where percentile intervals can exclude the estimate); the spread of the
      resamples is still used.

    Caveat: resampling duplicates samples; neighbourhood measures (duplicates
    are each other's nearest neighbours) and measures fitted to the data (CCA
    with ``d`` near ``n``) are biased on resamples, so read their intervals
    as indicative.

    Resamples on which the measure raises a :class:`RepscopeError` (e.g. a
    degenerate resample) are dropped and counted in ``n_failed``; if more
    than half fail the call raises.

    References
    ----------
    Efron & Tibshirani, An Introduction to the Bootstrap, 1993;
    Efron, "Better bootstrap confidence intervals", JASA 1987.
    """
    m = resolve_measure(measure)
    n_boot = check_count("n_boot", n_boot, 2)
    check_level(level)
    if method not in CI_METHODS:
        raise InvalidParameterError(f"method must be one of {CI_METHODS}, got {method!r}")
    with capture_warnings() as cw:
        px, py = m.prepare(X, "X"), m.prepare(Y, "Y")
        stat = to_float(m.compare_prepared(px, py))
    res = bootstrap_ci_prepared(
        m, px, py, stat, n_boot, level=level, seed=seed, method=method, progress=progress
    )
    return replace(res, warnings=merge_messages(cw.messages, res.warnings))


def bootstrap_ci_prepared(
    m: Measure,
    px: Prepared,
    py: Prepared,
    statistic: float,
    n_boot: int,
    *,
    level: float = 0.95,
    seed: Any = None,
    method: str = "percentile",
    progress: bool = False,
) -> BootstrapResult:
    """:func:`bootstrap_ci` on prepared inputs whose value ``statistic`` is known."""
    n_boot = check_count("n_boot", n_boot, 2)
    check_level(level)
    if method not in CI_METHODS:
        raise InvalidParameterError(f"method must be one of {CI_METHODS}, got {method!r}")
    rng = as_rng(seed)
    stat = statistic
    with capture_warnings() as cw:
        n = px.n
        names = per_sample_params(m, n)
        with capture_warnings() as base:  # what the full data already warn about
            value_of(m, px.data, py.data)
        known = set(base.messages)
        vals: list[float] = []
        failed = warned = 0
        first: str | None = None
        with progress_bar(n_boot, f"{m.info.name}: bootstrap", progress) as advance:
            for _ in range(n_boot):
                idx = rng.integers(0, n, size=n)
                try:
                    with capture_warnings() as rw:
                        vals.append(value_of(with_rows(m, names, idx), take_rows(px.data, idx),
                                           take_rows(py.data, idx)))
                except RepscopeError:
                    failed += 1
                new = [w for w in rw.messages if w not in known]
                if new:
                    warned += 1
                    first = first or new[0]
                advance(1)
        if warned:  # one summary instead of one message per resample
            warnings.warn(
                f"{m.info.name}: {warned} of {n_boot} bootstrap resamples raised warnings "
                f"(resamples repeat samples), e.g. {first}",
                RepscopeWarning,
                stacklevel=2,
            )
        if failed * 2 > n_boot:
            raise RepscopeError(
                f"{m.info.name}: the measure failed on {failed} of {n_boot} bootstrap resamples; "
                "the data are too small or degenerate for a bootstrap"
            )
        boot = np.asarray(vals, dtype=np.float64)
        alpha = (1.0 - level) / 2.0
        interval: tuple[float, float] | None = None
        if method == "bca":
            with capture_warnings():  # leave-one-out values: same regime as the data
                jack = np.array([
                    value_of(with_rows(m, names, keep), take_rows(px.data, keep),
                           take_rows(py.data, keep))
                    for keep in (np.delete(np.arange(n), i) for i in range(n))
                ])
            interval = _bca_interval(boot, stat, jack, level)
            if interval is None:
                warnings.warn(
                    f"{m.info.name}: BCa interval undefined (bootstrap distribution without "
                    "spread around the estimate); using the percentile interval",
                    RepscopeWarning,
                    stacklevel=2,
                )
        if method == "normal" and boot.size > 1:
            half = float(special.ndtri(1.0 - alpha)) * float(np.std(boot, ddof=1))
            interval = (stat - half, stat + half)
        if interval is None:
            lo, hi = np.percentile(boot, [100.0 * alpha, 100.0 * (1.0 - alpha)])
            interval = (float(lo), float(hi))
    return BootstrapResult(
        statistic=stat,
        confidence_interval=ConfidenceInterval(*interval),
        bootstrap_distribution=boot,
        standard_error=float(np.std(boot, ddof=1)) if boot.size > 1 else 0.0,
        level=float(level),
        method=method,
        n_boot=n_boot,
        n_failed=failed,
        warnings=tuple(cw.messages),
    )
