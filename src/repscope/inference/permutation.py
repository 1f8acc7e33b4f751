"""Permutation test of the sample correspondence, and the null-calibrated score.

* :func:`permutation_test` — shuffles the rows of ``Y`` to build the null
  distribution of "no relation between the paired samples" and returns the
  one-sided p-value in the *more similar* direction;
* :func:`null_calibration` / :func:`calibrated_score` — the value relative to
  that null (0 = chance, 1 = identical), comparable across ``n``, ``d`` and
  measures.

Formulas: ``docs/statistics.md``.
"""
from __future__ import annotations

import math
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
from repscope.inference.multiple_testing import pvalue_floor
from repscope.inference.options import (
    ALTERNATIVES,
    MeasureSpec,
    check_count,
    resolve_measure,
)
from repscope.inference.resampling import (
    as_rng,
    merge_messages,
    permute_prepared,
)
from repscope.measures.base import Measure, Prepared


# ---------------------------------------------------------- permutation test
class NullCalibration(NamedTuple):
    """A value relative to its permutation null (see :func:`null_calibration`)."""

    calibrated: float | None
    zscore: float | None
    null_mean: float
    null_sd: float
    note: str | None


def null_calibration(
    value: float, null_distribution: Any, *, identity: float | None, kind: str
) -> NullCalibration:
    r"""Express ``value`` relative to its permutation null.

    With null mean ``μ₀``, null standard deviation ``σ₀`` and the measure's
    value on identical inputs ``v_id`` (``MeasureInfo.identity``)::

        calibrated = (v − μ₀) / (v_id − μ₀)
        z          = s · (v − μ₀) / σ₀,    s = +1 (similarity), −1 (distance)

    ``calibrated`` is 1 for identical representations, 0 at chance (the
    typical value for unrelated samples at this ``n`` and ``d``) and negative
    below chance; the same formula serves similarities and distances.  It is
    invariant to affine rescaling of the measure, and because chance is
    estimated at the actual ``n`` and ``d`` it removes the small-sample and
    high-dimension inflation of raw scores (e.g. CKA at small ``n``, CCA at
    ``d`` close to ``n``).  ``z`` is the distance from chance in null standard
    deviations, signed so that positive means more similar than chance.

    ``calibrated`` is ``None`` (with ``note``) when ``v_id`` is undefined
    (e.g. unnormalised HSIC) or when the null mean coincides with ``v_id`` (the
    measure cannot tell paired from shuffled samples, e.g. CCA with ``d ≥ n−1``);
    ``zscore`` is ``None`` when the null has no spread.
    """
    null = np.asarray(null_distribution, dtype=np.float64).ravel()
    if null.size < 2:
        raise InvalidParameterError("the null distribution needs at least 2 values")
    if kind not in ("similarity", "distance"):
        raise InvalidParameterError(f"kind must be 'similarity' or 'distance', got {kind!r}")
    mu = float(np.mean(null))
    sd = float(np.std(null, ddof=1))
    scale = max(1.0, abs(mu), abs(value))
    note = None
    calibrated: float | None = None
    if identity is None or not math.isfinite(identity):
        note = "calibrated score undefined: the measure has no finite identity value"
    elif abs(identity - mu) <= 1e-9 * scale:
        note = (
            "calibrated score undefined: the permutation null coincides with the identity "
            "value, so the measure cannot tell paired from shuffled samples here"
        )
    else:
        calibrated = (value - mu) / (identity - mu)
    zscore: float | None = None
    if sd > 1e-12 * scale:
        zscore = (1.0 if kind == "similarity" else -1.0) * (value - mu) / sd
    return NullCalibration(calibrated, zscore, mu, sd, note)


@dataclass(frozen=True)
class PermutationTestResult:
    """Result of :func:`permutation_test` (attribute names follow ``scipy.stats``).

    Attributes
    ----------
    statistic : the measure's value on the correctly paired samples.
    pvalue : ``(b + 1) / (m + 1)``, ``b`` = permuted values at least as extreme.
    p_floor : the smallest p-value ``m`` permutations can give (``1/(m + 1)``;
        two-sided ``2/(m + 1)``): at ``pvalue == p_floor`` the test only says
        ``p ≤ p_floor``.
    null_distribution : the ``m`` values under shuffled correspondence.
    n_permutations : ``m``.
    alternative : direction of the test.
    measure, kind : the measure's name and kind (similarity / distance).
    identity : value of ``m(X, X)`` used for calibration (``None`` if undefined).
    calibrated, zscore, null_mean, null_sd : see :func:`null_calibration`.
    warnings : warnings raised while computing (deduplicated).
    """

    statistic: float
    pvalue: float
    null_distribution: np.ndarray = field(repr=False)
    n_permutations: int
    alternative: str
    measure: str
    kind: str
    identity: float | None
    calibrated: float | None
    zscore: float | None
    null_mean: float
    null_sd: float
    warnings: tuple[str, ...] = ()

    @property
    def p_floor(self) -> float:
        """The p-value floor ``1/(m + 1)`` (two-sided: ``min(1, 2/(m + 1))``)."""
        return pvalue_floor(self.n_permutations, self.alternative)


def permutation_null(
    m: Measure,
    px: Prepared,
    py: Prepared,
    n_permutations: int,
    seed: Any = None,
    *,
    progress: bool = False,
) -> tuple[np.ndarray, tuple[str, ...]]:
    """Values of ``m`` with the rows of ``Y`` shuffled, from prepared inputs.

    ``X`` is prepared once; each permutation reuses ``Y``'s prepared form via
    :func:`permute_prepared`.  The first permutation is also computed from
    scratch and, if the two disagree, every permutation is recomputed from
    scratch (correctness first).  Returns the null values and the warnings
    raised while computing them.
    """
    n_permutations = check_count("n_permutations", n_permutations)
    rng = as_rng(seed)
    out = np.empty(n_permutations, dtype=np.float64)
    exact = False
    with capture_warnings() as cw, progress_bar(
        n_permutations, f"{m.info.name}: permutations", progress
    ) as advance:
        for i in range(n_permutations):
            perm = rng.permutation(px.n)
            py_perm = permute_prepared(m, py, perm, exact=exact)
            out[i] = to_float(m.compare_prepared(px, py_perm))
            if i == 0 and not exact:
                ref = to_float(m.compare_prepared(px, permute_prepared(m, py, perm, exact=True)))
                if not math.isclose(out[0], ref, rel_tol=1e-8, abs_tol=1e-10):
                    warnings.warn(
                        f"{m.info.name}: reusing the prepared cache under permutation changed "
                        f"the value ({out[0]!r} vs {ref!r}); recomputing every permutation from "
                        "scratch",
                        RepscopeWarning,
                        stacklevel=2,
                    )
                    exact = True
                    out[0] = ref
            advance(1)
    return out, tuple(cw.messages)


def _pvalue(stat: float, null: np.ndarray, kind: str, alternative: str) -> float:
    tol = 1e-12 * max(1.0, abs(stat))
    m = null.size
    hi = (int(np.sum(null >= stat - tol)) + 1) / (m + 1)  # at least as large
    lo = (int(np.sum(null <= stat + tol)) + 1) / (m + 1)  # at least as small
    more_similar, less_similar = (hi, lo) if kind == "similarity" else (lo, hi)
    if alternative == "more_similar":
        return more_similar
    if alternative == "less_similar":
        return less_similar
    return min(1.0, 2.0 * min(more_similar, less_similar))


def _identity(m: Measure) -> float | None:
    ident = m.info.identity
    return ident if ident is not None and math.isfinite(ident) else None


def permutation_test(
    measure: MeasureSpec,
    X: Any,
    Y: Any,
    n_permutations: int = 1000,
    *,
    seed: Any = None,
    alternative: str = "more_similar",
    progress: bool = False,
) -> PermutationTestResult:
    r"""Permutation test of the sample correspondence for any measure.

    Null hypothesis: the pairing of rows of ``X`` and ``Y`` carries no
    information, i.e. the value is exchangeable under shuffling the rows of
    ``Y``.  With observed value ``v`` and ``m`` values ``v₁…v_m`` under random
    row permutations ``π_k``::

        b = #{k : v_k ≥ v}   (similarity; ``≤`` for a distance)
        p = (b + 1) / (m + 1)

    which is a valid (slightly conservative) p-value for random permutations
    (Phipson & Smyth 2010).  ``alternative="less_similar"`` tests the other
    tail and ``"two-sided"`` doubles the smaller one-sided p-value (capped at
    1).  Per-sample measure parameters (e.g. labels) stay aligned with ``X``.

    Parameters
    ----------
    measure : name, :class:`Measure` or ``(name, params)``.
    X, Y : (n, dx) and (n, dy) representations of the same n inputs.
    n_permutations : number of random permutations ``m``.
    seed : seed or ``numpy.random.Generator``.
    alternative : {"more_similar", "less_similar", "two-sided"}.
    progress : show a progress bar.

    Returns
    -------
    PermutationTestResult
        Also carries the null-calibrated score (:func:`null_calibration`).

    References
    ----------
    Phipson & Smyth, "Permutation p-values should never be zero", SAGMB 2010.
    """
    m = resolve_measure(measure)
    n_permutations = check_count("n_permutations", n_permutations)
    if alternative not in ALTERNATIVES:
        raise InvalidParameterError(
            f"alternative must be one of {ALTERNATIVES}, got {alternative!r}"
        )
    with capture_warnings() as cw:
        px, py = m.prepare(X, "X"), m.prepare(Y, "Y")
        stat = to_float(m.compare_prepared(px, py))
    res = permutation_test_prepared(
        m, px, py, stat, n_permutations, seed=seed, alternative=alternative, progress=progress
    )
    return replace(res, warnings=merge_messages(cw.messages, res.warnings))


def permutation_test_prepared(
    m: Measure,
    px: Prepared,
    py: Prepared,
    statistic: float,
    n_permutations: int,
    *,
    seed: Any = None,
    alternative: str = "more_similar",
    progress: bool = False,
) -> PermutationTestResult:
    """:func:`permutation_test` on prepared inputs whose value ``statistic`` is known."""
    null, msgs = permutation_null(m, px, py, n_permutations, seed, progress=progress)
    return _permutation_result(m, statistic, null, alternative, msgs)


def _permutation_result(
    m: Measure, stat: float, null: np.ndarray, alternative: str, msgs: tuple[str, ...]
) -> PermutationTestResult:
    cal = null_calibration(stat, null, identity=_identity(m), kind=m.info.kind)
    if np.all(np.abs(null - stat) <= 1e-12 * max(1.0, abs(stat))):
        msgs = merge_messages(msgs, [
            f"RepscopeWarning: {m.info.name}: the value does not change when the samples are "
            "shuffled (the measure does not see the sample correspondence here), so the "
            "permutation test is uninformative (p = 1)"
        ])
    if cal.note:
        msgs = merge_messages(msgs, [f"RepscopeWarning: {m.info.name}: {cal.note}"])
    return PermutationTestResult(
        statistic=stat,
        pvalue=_pvalue(stat, null, m.info.kind, alternative),
        null_distribution=null,
        n_permutations=int(null.size),
        alternative=alternative,
        measure=m.info.name,
        kind=m.info.kind,
        identity=_identity(m),
        calibrated=cal.calibrated,
        zscore=cal.zscore,
        null_mean=cal.null_mean,
        null_sd=cal.null_sd,
        warnings=msgs,
    )


def calibrated_score(
    measure: MeasureSpec, X: Any, Y: Any, n_permutations: int = 200, *, seed: Any = None
) -> float:
    """The null-calibrated score of :func:`null_calibration` (raises if undefined)."""
    res = permutation_test(measure, X, Y, n_permutations, seed=seed)
    if res.calibrated is None:
        raise RepscopeError(f"{res.measure}: {'; '.join(res.warnings) or 'undefined'}")
    return res.calibrated
