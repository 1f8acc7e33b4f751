"""Confidence intervals over samples: the bias-corrected jackknife (default), percentile,
BCa and normal bootstrap intervals.

The estimand is the measure's population value over the input distribution,
for fixed networks.  Formulas, measured coverage and caveats: ``docs/statistics.md``.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field, replace
from typing import Any, NamedTuple

import numpy as np

from repscope.core.arrays import to_float
from repscope.core.errors import (
    InvalidParameterError,
    RepscopeError,
    RepscopeWarning,
)
from repscope.core.progress import progress_bar
from repscope.core.warning_capture import capture_warnings
from repscope.inference.intervals import (
    JACKKNIFE_GROUPS,
    bca_interval,
    normal_interval,
    percentile_interval,
)
from repscope.inference.jackknife import jackknife_prepared
from repscope.inference.options import (
    CI_METHODS,
    DEFAULT_CI_METHOD,
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

#: ``|bias| > BIAS_WARNING · SE`` is warned about
BIAS_WARNING = 0.5


# ---------------------------------------------------------------- bootstrap
class ConfidenceInterval(NamedTuple):
    low: float
    high: float


@dataclass(frozen=True)
class BootstrapResult:
    """Result of :func:`bootstrap_ci` (names follow ``scipy.stats.bootstrap``).

    Attributes
    ----------
    statistic : the plug-in value on the original samples (``value`` in result rows).
    estimate : the estimate of the population value that the interval is built
        around: bias-corrected by the jackknife (``method="jackknife"``, measures
        that allow it), else ``statistic``.  Always inside the interval for the
        jackknife and normal methods (checked and warned about for the others).
    bias : ``statistic − estimate``, the estimated bias of the plug-in value (0 when
        no correction is applied).
    confidence_interval : ``(low, high)``.
    bootstrap_distribution : the measure's values on the resamples that succeeded
        (bootstrap methods), or on the data without each jackknife group.
    standard_error : standard error of ``estimate`` (jackknife) or the standard
        deviation of the bootstrap distribution.
    level, method : as requested.
    n_boot : resamples drawn (bootstrap methods) or subsamples evaluated (jackknife).
    n_failed : resamples on which the measure raised (degenerate resample).
    warnings : warnings raised while computing (deduplicated).
    """

    statistic: float
    estimate: float
    bias: float
    confidence_interval: ConfidenceInterval
    bootstrap_distribution: np.ndarray = field(repr=False)
    standard_error: float
    level: float
    method: str
    n_boot: int
    n_failed: int = 0
    warnings: tuple[str, ...] = ()


def bootstrap_ci(
    measure: MeasureSpec,
    X: Any,
    Y: Any,
    n_boot: int = 1000,
    *,
    level: float = 0.95,
    seed: Any = None,
    method: str = DEFAULT_CI_METHOD,
    groups: int = JACKKNIFE_GROUPS,
    progress: bool = False,
) -> BootstrapResult:
    r"""Confidence interval for the measure's population value, by resampling samples.

    The estimand is the value of the measure over the whole input distribution
    (for fixed networks); the plug-in value on ``n`` samples is biased for it at
    small ``n`` (e.g. linear CKA and in-sample CCA/regression upwards).

    * ``"jackknife"`` (default): the samples are split at random into
      ``G = min(groups, n)`` groups; the measure is evaluated without each group
      and without each pair of groups (``G + G(G − 1)/2`` evaluations, 55 for
      ``G = 10``; no sample is ever duplicated).  The estimate is the grouped
      jackknife's bias-corrected value ``θ̃ = Σ_g (m_g/n)(h_g θ̂ − (h_g − 1)θ₍g₎)``
      (``h_g = n/m_g``; ``G θ̂ − (G − 1) θ̄`` for equal groups), its standard error
      the jackknife standard error of ``θ̃`` itself (``θ̃`` recomputed without each
      group), and the interval ``θ̃ ± t_{G−1, 1−α/2} SE``, clipped to the measure's
      range.  Measures that declare ``bias_correctable = False`` (fixed-``k``
      neighbourhood measures) keep ``θ̂`` as the estimate, with its jackknife SE.
      ``n_boot`` is not used (any value ≥ 2 switches the interval on).
    * ``"percentile"``: quantiles ``α/2`` and ``1 − α/2`` of ``n_boot`` bootstrap
      resamples (rows drawn with replacement);
    * ``"bca"``: bias-corrected and accelerated (Efron 1987) bootstrap
      percentiles, with the delete-one jackknife acceleration (``n`` extra
      evaluations); the percentile interval (with a warning) when undefined;
    * ``"normal"``: ``θ̂ ± z_{1−α/2} · SE`` with the bootstrap standard error.

    The bootstrap methods draw rows with replacement; duplicated rows make
    similarity measures look more alike on resamples, so at small ``n`` their
    intervals are shifted away from the population value and can exclude the
    estimate itself (a warning says so).  ``docs/statistics.md`` has the
    measured coverage of each method.

    A :class:`RepscopeWarning` is raised when ``|bias| > 0.5 · SE``: the plug-in
    value is then noticeably biased at this ``n``; report ``estimate``.

    Returns
    -------
    BootstrapResult
        ``statistic`` (plug-in value), ``estimate``, ``bias``, ``confidence_interval``,
        ``standard_error`` and the resampled values.

    Raises
    ------
    RepscopeError
        Too few samples for the jackknife's subsamples, the measure fails on a
        jackknife subsample, or on more than half of the bootstrap resamples
        (failed resamples are dropped and counted in ``n_failed``).

    References
    ----------
    Quenouille, Biometrika 1956; Tukey 1958 (the jackknife); Busing, Meijer & van der
    Leeden, Statistics and Computing 1999 (delete-m jackknife for unequal m);
    Efron & Stein, Ann. Statist. 1981; Efron & Tibshirani, An Introduction to the
    Bootstrap, 1993; Efron, "Better bootstrap confidence intervals", JASA 1987.
    """
    m = resolve_measure(measure)
    _check_args(n_boot, level, method)
    with capture_warnings() as cw:
        px, py = m.prepare(X, "X"), m.prepare(Y, "Y")
        stat = to_float(m.compare_prepared(px, py))
    res = bootstrap_ci_prepared(
        m, px, py, stat, n_boot, level=level, seed=seed, method=method, groups=groups,
        progress=progress,
    )
    for msg in _interval_notes(m, res, px.n):  # shown to the caller, and recorded
        warnings.warn(msg, RepscopeWarning, stacklevel=2)
    return replace(res, warnings=merge_messages(cw.messages, res.warnings))


def _check_args(n_boot: int, level: float, method: str) -> int:
    n_boot = check_count("n_boot", n_boot, 2)
    check_level(level)
    if method not in CI_METHODS:
        raise InvalidParameterError(f"method must be one of {CI_METHODS}, got {method!r}")
    return n_boot


def bootstrap_ci_prepared(
    m: Measure,
    px: Prepared,
    py: Prepared,
    statistic: float,
    n_boot: int,
    *,
    level: float = 0.95,
    seed: Any = None,
    method: str = DEFAULT_CI_METHOD,
    groups: int = JACKKNIFE_GROUPS,
    progress: bool = False,
) -> BootstrapResult:
    """:func:`bootstrap_ci` on prepared inputs whose value ``statistic`` is known."""
    n_boot = _check_args(n_boot, level, method)
    groups = check_count("groups", groups, 3)
    rng = as_rng(seed)
    with capture_warnings() as cw:
        if method == "jackknife":
            fit = jackknife_prepared(m, px, py, statistic, level=level, rng=rng, groups=groups,
                                     progress=progress)
            ie = fit.interval
            res = BootstrapResult(
                statistic=statistic, estimate=ie.estimate, bias=statistic - ie.estimate,
                confidence_interval=ConfidenceInterval(ie.low, ie.high),
                bootstrap_distribution=fit.deleted, standard_error=ie.standard_error,
                level=float(level), method=method, n_boot=fit.evaluations,
            )
        else:
            res = _bootstrap(m, px, py, statistic, n_boot, level, rng, method, progress)
    notes = [f"{RepscopeWarning.__name__}: {msg}" for msg in _interval_notes(m, res, px.n)]
    return replace(res, warnings=merge_messages(res.warnings, cw.messages, notes))


def _interval_notes(m: Measure, res: BootstrapResult, n: int) -> list[str]:
    """The bias warning, and the check that the interval holds its own estimate.

    Recorded in ``BootstrapResult.warnings`` (and so in result rows);
    :func:`bootstrap_ci` also raises them as :class:`RepscopeWarning`.
    """
    lo, hi = res.confidence_interval
    name = m.info.name
    out = []
    if res.bias != 0.0 and abs(res.bias) > BIAS_WARNING * res.standard_error:
        ratio = abs(res.bias) / res.standard_error if res.standard_error > 0 else float("inf")
        out.append(
            f"{name}: the plug-in value {res.statistic:.4g} is biased at n={n} "
            f"(estimated bias {res.bias:+.3g} = {ratio:.1f} SE); the interval is centred on "
            f"the bias-corrected estimate {res.estimate:.4g}"
        )
    if not lo <= res.estimate <= hi:
        out.append(
            f"{name}: the {res.method} interval [{lo:.4g}, {hi:.4g}] excludes the estimate "
            f"{res.estimate:.4g}: resampling with replacement shifts this measure; use "
            "ci_method='jackknife'"
        )
    return out


def _bootstrap(
    m: Measure,
    px: Prepared,
    py: Prepared,
    stat: float,
    n_boot: int,
    level: float,
    rng: np.random.Generator,
    method: str,
    progress: bool,
) -> BootstrapResult:
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
            stacklevel=3,
        )
    if failed * 2 > n_boot:
        raise RepscopeError(
            f"{m.info.name}: the measure failed on {failed} of {n_boot} bootstrap resamples; "
            "the data are too small or degenerate for a bootstrap"
        )
    boot = np.asarray(vals, dtype=np.float64)
    se = float(np.std(boot, ddof=1)) if boot.size > 1 else 0.0
    interval: tuple[float, float] | None = None
    if method == "bca":
        with capture_warnings():  # leave-one-out values: same regime as the data
            jack = np.array([
                value_of(with_rows(m, names, keep), take_rows(px.data, keep),
                         take_rows(py.data, keep))
                for keep in (np.delete(np.arange(n), i) for i in range(n))
            ])
        interval = bca_interval(boot, stat, jack, level)
        if interval is None:
            warnings.warn(
                f"{m.info.name}: BCa interval undefined (bootstrap distribution without "
                "spread around the estimate); using the percentile interval",
                RepscopeWarning,
                stacklevel=3,
            )
    if method == "normal" and boot.size > 1:
        interval = normal_interval(stat, se, level)
    if interval is None:
        interval = percentile_interval(boot, level)
    return BootstrapResult(
        statistic=stat, estimate=stat, bias=0.0,
        confidence_interval=ConfidenceInterval(*interval), bootstrap_distribution=boot,
        standard_error=se, level=float(level), method=method, n_boot=n_boot, n_failed=failed,
    )
