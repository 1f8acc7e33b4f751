"""Statistics for any registered measure.

Everything here works through the generic :class:`~repscope.Measure` interface
(``prepare`` / ``compare_prepared``), so it applies to every measure in the
registry, built-in or your own.

* :func:`permutation_test` — shuffles the sample correspondence (the rows of
  ``Y``) to build the null distribution of "no relation between the paired
  samples", and returns the one-sided p-value in the *more similar* direction.
* :func:`null_calibration` / :func:`calibrated_score` — the value relative to
  that null, so that scores from different ``n``, ``d`` and measures become
  comparable (0 = chance, 1 = identical).
* :func:`bootstrap_ci` — confidence intervals by resampling samples (rows of
  ``X`` and ``Y`` together), percentile or BCa.
* :func:`heldout` — split-half / held-out versions of fitted measures (the CCA
  family, linear regression): fit on one part of the samples, evaluate on the
  rest, so that ``d`` close to ``n`` does not inflate them.

The formulas are written out in ``docs/statistics.md``.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any, NamedTuple

import numpy as np
from scipy import special

from ._array import Array, is_torch, to_float, to_numpy
from ._progress import progress_bar
from ._warning_capture import capture_warnings
from .errors import (
    DegenerateInputError,
    InputShapeError,
    InvalidParameterError,
    RepscopeError,
    RepscopeWarning,
)
from .measures.base import Measure, Prepared
from .registry import measure as _lookup

__all__ = [
    "MeasureSpec",
    "Stats",
    "PermutationTestResult",
    "NullCalibration",
    "ConfidenceInterval",
    "BootstrapResult",
    "HeldoutResult",
    "resolve_measure",
    "permutation_test",
    "permutation_null",
    "permutation_test_prepared",
    "bootstrap_ci_prepared",
    "heldout_prepared",
    "heldout_splits",
    "null_calibration",
    "calibrated_score",
    "bootstrap_ci",
    "heldout",
    "supports_heldout",
    "register_heldout",
    "heldout_measures",
    "permute_prepared",
    "capture_warnings",
    "progress_bar",
]

#: a measure given by name, as a configured instance, or as ``(name, params)``
MeasureSpec = Any

ALTERNATIVES = ("more_similar", "less_similar", "two-sided")
CI_METHODS = ("percentile", "bca", "normal")

#: default numbers of resamples when statistics are requested by name only
DEFAULT_PERMUTATIONS = 200
DEFAULT_BOOTSTRAP = 200


# --------------------------------------------------------------- measures
def resolve_measure(spec: MeasureSpec) -> Measure:
    """Turn a measure specification into a configured :class:`Measure`.

    Accepted forms: a registered name (``"cka"``), a configured instance
    (``repscope.measure("cka", kernel="rbf")``), or a pair
    ``(name, {param: value})``.
    """
    if isinstance(spec, Measure):
        return spec
    if isinstance(spec, str):
        return _lookup(spec)
    if isinstance(spec, tuple) and len(spec) == 2 and isinstance(spec[0], str):
        params = spec[1] or {}
        if not isinstance(params, Mapping):
            raise InvalidParameterError(
                f"measure parameters for {spec[0]!r} must be a mapping, got {type(params).__name__}"
            )
        return _lookup(spec[0], **dict(params))
    raise InvalidParameterError(
        "a measure must be a registered name, a repscope.Measure instance or a "
        f"(name, params) pair; got {spec!r}"
    )


# --------------------------------------------------------------- options
@dataclass(frozen=True)
class Stats:
    """Which statistics to compute alongside each value.

    Parameters
    ----------
    n_permutations : int
        Permutations for the permutation test and the null calibration (0 = off).
    n_boot : int
        Bootstrap resamples for the confidence interval (0 = off).
    level : float
        Confidence level of the interval.
    ci_method : {"percentile", "bca", "normal"}
        Bootstrap interval method.
    heldout : bool
        Also compute the held-out value for measures that support it
        (:func:`supports_heldout`); ignored for the others.
    test_fraction : float
        Fraction of samples held out (``heldout``).
    n_splits : int
        Random train/test splits averaged (``heldout``).
    alternative : {"more_similar", "less_similar", "two-sided"}
        Direction of the permutation test.
    """

    n_permutations: int = 0
    n_boot: int = 0
    level: float = 0.95
    ci_method: str = "percentile"
    heldout: bool = False
    test_fraction: float = 0.5
    n_splits: int = 1
    alternative: str = "more_similar"

    def __post_init__(self) -> None:
        for name in ("n_permutations", "n_boot", "n_splits"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 0:
                raise InvalidParameterError(f"Stats.{name} must be an integer >= 0, got {v!r}")
        if self.n_splits < 1:
            raise InvalidParameterError(f"Stats.n_splits must be >= 1, got {self.n_splits}")
        _check_level(self.level)
        _check_fraction(self.test_fraction)
        if self.ci_method not in CI_METHODS:
            raise InvalidParameterError(
                f"Stats.ci_method must be one of {CI_METHODS}, got {self.ci_method!r}"
            )
        if self.alternative not in ALTERNATIVES:
            raise InvalidParameterError(
                f"Stats.alternative must be one of {ALTERNATIVES}, got {self.alternative!r}"
            )

    @classmethod
    def parse(cls, spec: Any) -> Stats:
        """Build from ``None``, a :class:`Stats`, a mapping, or names.

        Names: ``"permutation"`` (``n_permutations=200``), ``"bootstrap"``
        (``n_boot=200``), ``"heldout"``, ``"all"`` (all three); a string or an
        iterable of strings.
        """
        if spec is None or spec is False:
            return cls()
        if isinstance(spec, Stats):
            return spec
        if isinstance(spec, Mapping):
            allowed = {f.name for f in fields(cls)}
            unknown = sorted(set(spec) - allowed)
            if unknown:
                raise InvalidParameterError(
                    f"unknown statistics option(s) {unknown}; allowed: {sorted(allowed)}"
                )
            return cls(**dict(spec))
        if isinstance(spec, str):
            names = [spec]
        elif isinstance(spec, Iterable):
            names = list(spec)
        else:
            raise InvalidParameterError(
                f"cannot interpret stats={spec!r}; use None, a name such as 'permutation', a "
                "list of names, a mapping or repscope.stats.Stats(...)"
            )
        kw: dict[str, Any] = {}
        for name in names:
            if name in ("permutation", "all"):
                kw["n_permutations"] = DEFAULT_PERMUTATIONS
            if name in ("bootstrap", "all"):
                kw["n_boot"] = DEFAULT_BOOTSTRAP
            if name in ("heldout", "all"):
                kw["heldout"] = True
            if name not in ("permutation", "bootstrap", "heldout", "all"):
                raise InvalidParameterError(
                    f"unknown statistic {name!r}; use 'permutation', 'bootstrap', 'heldout' "
                    "or 'all', or pass repscope.stats.Stats(...)"
                )
        return cls(**kw)

    @property
    def any(self) -> bool:
        """Whether any statistic is switched on."""
        return bool(self.n_permutations or self.n_boot or self.heldout)

    def as_key(self) -> dict[str, Any]:
        """The options that change results (canonical, for the results database)."""
        key: dict[str, Any] = {}
        if self.n_permutations:
            key.update(n_permutations=int(self.n_permutations), alternative=self.alternative)
        if self.n_boot:
            key.update(n_boot=int(self.n_boot), level=float(self.level), ci_method=self.ci_method)
        if self.heldout:
            key.update(
                heldout=True, test_fraction=float(self.test_fraction), n_splits=int(self.n_splits)
            )
        return key


def _check_level(level: float) -> None:
    if not isinstance(level, (int, float)) or isinstance(level, bool) or not 0 < level < 1:
        raise InvalidParameterError(f"level must be a number in (0, 1), got {level!r}")


def _check_fraction(f: float) -> None:
    if not isinstance(f, (int, float)) or isinstance(f, bool) or not 0 < f < 1:
        raise InvalidParameterError(f"test_fraction must be a number in (0, 1), got {f!r}")


def _check_count(name: str, v: Any, lo: int = 1) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < lo:
        raise InvalidParameterError(f"{name} must be an integer >= {lo}, got {v!r}")
    return int(v)


# --------------------------------------------------------------- warnings
def _merge_messages(*groups: Iterable[str]) -> tuple[str, ...]:
    seen: dict[str, None] = {}
    for g in groups:
        for m in g:
            seen.setdefault(m, None)
    return tuple(seen)




# --------------------------------------------------------------- helpers
def _rng(seed: Any) -> np.random.Generator:
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)


def _take_rows(a: Array, idx: np.ndarray) -> Array:
    if is_torch(a):
        import torch

        return a[torch.as_tensor(idx, device=a.device)]
    return a[idx]


def _take_both(a: Array, idx: np.ndarray) -> Array:
    return _take_rows(_take_rows(a, idx).T, idx).T


def _is_per_sample(v: Any, n: int) -> bool:
    if isinstance(v, (str, bytes)) or v is None:
        return False
    shape = getattr(v, "shape", None)
    if shape is not None:
        return len(shape) >= 1 and int(shape[0]) == n
    return isinstance(v, (list, tuple)) and len(v) == n and n > 1


def _per_sample_params(m: Measure, n: int) -> list[str]:
    """Names of parameters holding one value per sample (labels, weights...)."""
    return [k for k, v in m.params.items() if _is_per_sample(v, n)]


def _with_rows(m: Measure, names: list[str], idx: np.ndarray) -> Measure:
    """A copy of ``m`` whose per-sample parameters follow the row selection ``idx``."""
    if not names:
        return m
    params = dict(m.params)
    for k in names:
        v = params[k]
        params[k] = _take_rows(v, idx) if hasattr(v, "shape") else [v[i] for i in idx]
    return type(m)(**params)


def _value(m: Measure, X: Array, Y: Array) -> float:
    return to_float(m.compare_prepared(m.prepare(X, "X"), m.prepare(Y, "Y")))


# ----------------------------------------------------- prepared permutation
#: how cached quantities transform when the samples are permuted
_ROW_KEYS = frozenset({"centered", "rownorm2"})
_BOTH_KEYS = frozenset({"gram", "gram_mixed"})
# per-representation summaries that do not depend on the row order
_INVARIANT_KEYS = frozenset({"sxx", "sxx_mixed", "mean", "low_precision", "sq_frobenius"})
# (float32 centred rows, float64 shift) pairs: rows of the first element move
_ROW_PAIR_KEYS = frozenset({"centered32"})
_BOTH_TUPLE_HEADS = frozenset({"ckernel", "ukernel"})


def _cache_rule(key: Any, value: Any, n: int) -> str | None:
    if key in _ROW_PAIR_KEYS and isinstance(value, tuple) and len(value) == 2:
        return "row_pair" if tuple(getattr(value[0], "shape", ()))[:1] == (n,) else None
    shape = tuple(getattr(value, "shape", ()))
    if key in _ROW_KEYS and len(shape) in (1, 2) and shape[0] == n:
        return "rows"
    if key in _INVARIANT_KEYS:
        return "same"
    square = len(shape) == 2 and shape[0] == n and shape[1] == n
    if key in _BOTH_KEYS and square:
        return "both"
    if isinstance(key, tuple) and key and key[0] in _BOTH_TUPLE_HEADS and square:
        return "both"
    return None


def _fast_permute(p: Prepared, perm: np.ndarray) -> Prepared | None:
    cache: dict[Any, Any] = {}
    for key, value in p.cache.items():
        rule = _cache_rule(key, value, p.n)
        if rule is None:
            return None
        if rule == "rows":
            cache[key] = _take_rows(value, perm)
        elif rule == "row_pair":
            cache[key] = (_take_rows(value[0], perm), value[1])
        elif rule == "both":
            cache[key] = _take_both(value, perm)
        else:
            cache[key] = value
    return Prepared(_take_rows(p.data, perm), cache)


def permute_prepared(m: Measure, p: Prepared, perm: np.ndarray, *, exact: bool = False) -> Prepared:
    """The prepared form of ``p.data[perm]`` (rows permuted), reusing ``p`` where possible.

    If the measure defines ``permute_prepared(p, perm)`` it is used.  Otherwise
    cached quantities with a known transformation are permuted instead of
    recomputed — centred data and row norms (rows), sample × sample matrices such as Gram
    and centred kernel matrices (rows and columns: ``P K Pᵀ``) and feature ×
    feature moments (unchanged).  If any cache entry is unknown, or
    ``exact=True``, the permuted data are prepared from scratch.
    """
    perm = np.asarray(perm)
    if perm.shape != (p.n,):
        raise InputShapeError(f"perm must have shape ({p.n},), got {perm.shape}")
    hook = getattr(m, "permute_prepared", None)
    if callable(hook) and not exact:
        return hook(p, perm)
    if not exact:
        fast = _fast_permute(p, perm)
        if fast is not None:
            return fast
    return m.prepare(_take_rows(p.data, perm), "Y")


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
    n_permutations = _check_count("n_permutations", n_permutations)
    rng = _rng(seed)
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
    n_permutations = _check_count("n_permutations", n_permutations)
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
    return replace(res, warnings=_merge_messages(cw.messages, res.warnings))


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
        msgs = _merge_messages(msgs, [
            f"RepscopeWarning: {m.info.name}: the value does not change when the samples are "
            "shuffled (the measure does not see the sample correspondence here), so the "
            "permutation test is uninformative (p = 1)"
        ])
    if cal.note:
        msgs = _merge_messages(msgs, [f"RepscopeWarning: {m.info.name}: {cal.note}"])
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
    n_boot = _check_count("n_boot", n_boot, 2)
    _check_level(level)
    if method not in CI_METHODS:
        raise InvalidParameterError(f"method must be one of {CI_METHODS}, got {method!r}")
    with capture_warnings() as cw:
        px, py = m.prepare(X, "X"), m.prepare(Y, "Y")
        stat = to_float(m.compare_prepared(px, py))
    res = bootstrap_ci_prepared(
        m, px, py, stat, n_boot, level=level, seed=seed, method=method, progress=progress
    )
    return replace(res, warnings=_merge_messages(cw.messages, res.warnings))


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
    n_boot = _check_count("n_boot", n_boot, 2)
    _check_level(level)
    if method not in CI_METHODS:
        raise InvalidParameterError(f"method must be one of {CI_METHODS}, got {method!r}")
    rng = _rng(seed)
    stat = statistic
    with capture_warnings() as cw:
        n = px.n
        names = _per_sample_params(m, n)
        with capture_warnings() as base:  # what the full data already warn about
            _value(m, px.data, py.data)
        known = set(base.messages)
        vals: list[float] = []
        failed = warned = 0
        first: str | None = None
        with progress_bar(n_boot, f"{m.info.name}: bootstrap", progress) as advance:
            for _ in range(n_boot):
                idx = rng.integers(0, n, size=n)
                try:
                    with capture_warnings() as rw:
                        vals.append(_value(_with_rows(m, names, idx), _take_rows(px.data, idx),
                                           _take_rows(py.data, idx)))
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
                    _value(_with_rows(m, names, keep), _take_rows(px.data, keep),
                           _take_rows(py.data, keep))
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


# ----------------------------------------------------------------- held-out
#: signature of a held-out evaluator: (measure, X_train, Y_train, X_test, Y_test)
#: -> (held-out value, per-component held-out correlations or None)
HeldoutEvaluator = Callable[
    [Measure, np.ndarray, np.ndarray, np.ndarray, np.ndarray], tuple[float, "np.ndarray | None"]
]
_HELDOUT: dict[str, HeldoutEvaluator] = {}


def register_heldout(name: str) -> Callable[[HeldoutEvaluator], HeldoutEvaluator]:
    """Decorator registering the held-out evaluator of measure ``name``."""

    def deco(fn: HeldoutEvaluator) -> HeldoutEvaluator:
        _HELDOUT[name] = fn
        return fn

    return deco


def heldout_measures() -> list[str]:
    """Names of the measures with a held-out form."""
    return sorted(_HELDOUT)


def supports_heldout(measure: MeasureSpec) -> bool:
    """Whether :func:`heldout` can evaluate this measure."""
    m = resolve_measure(measure)
    return m.info.name in _HELDOUT


@dataclass(frozen=True)
class HeldoutResult:
    """Result of :func:`heldout`.

    Attributes
    ----------
    statistic : held-out value, averaged over the splits.
    in_sample : the usual (in-sample) value on all samples, for comparison.
    split_values : held-out value of each split.
    correlations : held-out canonical correlations of the first split (CCA
        family; ``None`` otherwise).
    n_train, n_test, n_splits, test_fraction : the design.
    measure : name of the measure.
    warnings : warnings raised while computing (deduplicated).
    """

    statistic: float
    in_sample: float
    split_values: np.ndarray = field(repr=False)
    correlations: np.ndarray | None = field(repr=False)
    n_train: int
    n_test: int
    n_splits: int
    test_fraction: float
    measure: str
    warnings: tuple[str, ...] = ()


def heldout(
    measure: MeasureSpec,
    X: Any,
    Y: Any,
    test_fraction: float = 0.5,
    *,
    seed: Any = None,
    n_splits: int = 1,
) -> HeldoutResult:
    r"""Held-out (split-half) value of a fitted measure.

    The samples are split at random into a training part and a test part of
    ``round(test_fraction · n)`` samples.  The measure's fitted quantities are
    estimated on the training part only and evaluated on the test part:

    * CCA family (``mean_cca`` …): canonical directions ``a_i, b_i`` are fitted
      on the training samples (centred with the training means); the held-out
      canonical correlations are ``ρᵢᵗᵉˢᵗ = corr(X_test a_i, Y_test b_i)`` over
      all ``min(rank X_train, rank Y_train)`` pairs and are reduced like the
      measure (mean for ``mean_cca``);
    * linear regression: coefficients fitted on the training part, ``R²`` of
      the predictions on the test part.

    On unrelated data the in-sample values approach 1 as ``d → n`` while the
    held-out values stay near 0.  ``n_splits`` random splits are averaged.
    Supported measures: :func:`heldout_measures`.
    """
    m = resolve_measure(measure)
    _check_fraction(test_fraction)
    n_splits = _check_count("n_splits", n_splits)
    fn = _HELDOUT.get(m.info.name)
    if fn is None:
        raise InvalidParameterError(
            f"{m.info.name} has no held-out form; supported: {', '.join(heldout_measures())}"
        )
    with capture_warnings() as cw:
        px, py = m.prepare(X, "X"), m.prepare(Y, "Y")
        in_sample = to_float(m.compare_prepared(px, py))
    res = heldout_prepared(m, px, py, in_sample, test_fraction, seed=seed, n_splits=n_splits)
    return replace(res, warnings=_merge_messages(cw.messages, res.warnings))


def heldout_prepared(
    m: Measure,
    px: Prepared,
    py: Prepared,
    in_sample: float,
    test_fraction: float = 0.5,
    *,
    seed: Any = None,
    n_splits: int = 1,
) -> HeldoutResult:
    """:func:`heldout` on prepared inputs whose in-sample value is known."""
    with capture_warnings() as cw:
        values, first_corr, n_train, n_test = heldout_splits(
            m, px.data, py.data, test_fraction, seed=seed, n_splits=n_splits
        )
    return HeldoutResult(
        statistic=float(np.mean(values)),
        in_sample=in_sample,
        split_values=values,
        correlations=first_corr,
        n_train=n_train,
        n_test=n_test,
        n_splits=n_splits,
        test_fraction=float(test_fraction),
        measure=m.info.name,
        warnings=tuple(cw.messages),
    )


def heldout_splits(
    m: Measure,
    X: Any,
    Y: Any,
    test_fraction: float = 0.5,
    *,
    seed: Any = None,
    n_splits: int = 1,
) -> tuple[np.ndarray, np.ndarray | None, int, int]:
    """Held-out values of ``n_splits`` random splits of validated ``(X, Y)``.

    Returns ``(values, correlations of the first split, n_train, n_test)``;
    no in-sample value and no warning capture (the building block of
    :func:`heldout` and of permutation nulls of held-out statistics).
    """
    _check_fraction(test_fraction)
    n_splits = _check_count("n_splits", n_splits)
    fn = _HELDOUT.get(m.info.name)
    if fn is None:
        raise InvalidParameterError(
            f"{m.info.name} has no held-out form; supported: {', '.join(heldout_measures())}"
        )
    rng = _rng(seed)
    xa = np.asarray(to_numpy(X), dtype=np.float64)
    ya = np.asarray(to_numpy(Y), dtype=np.float64)
    n = int(xa.shape[0])
    n_test = int(round(test_fraction * n))
    n_train = n - n_test
    need = max(m.info.min_samples, 3)
    if n_test < need or n_train < need:
        raise InvalidParameterError(
            f"{m.info.name}: a split of n={n} with test_fraction={test_fraction} leaves "
            f"{n_train} training and {n_test} test samples; each needs at least {need}"
        )
    names = _per_sample_params(m, n)
    values = np.empty(n_splits)
    first_corr: np.ndarray | None = None
    for s in range(n_splits):
        order = rng.permutation(n)
        test, train = np.sort(order[:n_test]), np.sort(order[n_test:])
        v, corr = fn(_with_rows(m, names, train), xa[train], ya[train], xa[test], ya[test])
        values[s] = v
        if s == 0:
            first_corr = corr
    return values, first_corr, n_train, n_test


# ------------------------------------------------------ held-out evaluators
def _range_eig_data(xc: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Eigenvectors and eigenvalues (descending) of ``xcᵀxc`` on its numerical range.

    Uses the smaller of the feature (d × d) and sample (n × n) cross-product
    matrices: with ``xc xcᵀ = U Λ Uᵀ`` the feature eigenvectors are
    ``V = xcᵀ U Λ^{-1/2}``, so the cost is ``O(n·d·min(n, d) + min(n, d)³)``.
    """
    n, d = xc.shape
    small = xc @ xc.T if d > n else xc.T @ xc
    w, v = np.linalg.eigh((small + small.T) / 2)
    top = float(np.max(np.abs(w))) if w.size else 0.0
    keep = w > top * max(small.shape[0], 1) * 1e-13
    if not np.any(keep):
        raise DegenerateInputError("a representation is constant on the training samples")
    w, v = w[keep][::-1], v[:, keep][:, ::-1]
    if d > n:
        v = (xc.T @ v) / np.sqrt(w)
    return v, w


def _column_corr(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Pearson correlation of matching columns (0 where a column has no variance)."""
    uc = u - u.mean(axis=0)
    vc = v - v.mean(axis=0)
    num = np.sum(uc * vc, axis=0)
    den = np.sqrt(np.sum(uc * uc, axis=0) * np.sum(vc * vc, axis=0))
    out = np.zeros_like(num)
    ok = den > 0
    out[ok] = num[ok] / den[ok]
    return out


def cca_directions(
    x: np.ndarray, y: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Canonical directions fitted on ``(x, y)``.

    Returns ``(A, B, rho, mean_x, mean_y)``: columns of ``A`` (dx × k) and
    ``B`` (dy × k) are the canonical directions, ``rho`` the (training)
    canonical correlations, ``k = min(rank x̃, rank ỹ)``.
    """
    mx, my = x.mean(axis=0), y.mean(axis=0)
    xc, yc = x - mx, y - my
    vx, lx = _range_eig_data(xc)
    vy, ly = _range_eig_data(yc)
    wx, wy = vx / np.sqrt(lx), vy / np.sqrt(ly)
    u, rho, vt = np.linalg.svd((xc @ wx).T @ (yc @ wy), full_matrices=False)
    return wx @ u, wy @ vt.T, rho, mx, my


def heldout_canonical_correlations(
    x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, y_test: np.ndarray
) -> np.ndarray:
    """Correlations on the test samples of the canonical variates fitted on the training ones."""
    a, b, _, mx, my = cca_directions(x_train, y_train)
    return _column_corr((x_test - mx) @ a, (y_test - my) @ b)


@register_heldout("mean_cca")
def _heldout_mean_cca(
    m: Measure, xtr: np.ndarray, ytr: np.ndarray, xte: np.ndarray, yte: np.ndarray
) -> tuple[float, np.ndarray | None]:
    rho = heldout_canonical_correlations(xtr, ytr, xte, yte)
    return float(np.mean(rho)), rho


@register_heldout("mean_sq_cca")
def _heldout_mean_sq_cca(
    m: Measure, xtr: np.ndarray, ytr: np.ndarray, xte: np.ndarray, yte: np.ndarray
) -> tuple[float, np.ndarray | None]:
    rho = heldout_canonical_correlations(xtr, ytr, xte, yte)
    # a negative held-out correlation is a direction that failed to generalise: count 0
    return float(np.mean(np.clip(rho, 0.0, None) ** 2)), rho


@register_heldout("svcca")
def _heldout_svcca(
    m: Measure, xtr: np.ndarray, ytr: np.ndarray, xte: np.ndarray, yte: np.ndarray
) -> tuple[float, np.ndarray | None]:
    # principal components and their number are chosen on the training part
    mx, my = xtr.mean(axis=0), ytr.mean(axis=0)
    vx, wx = _range_eig_data(xtr - mx)
    vy, wy = _range_eig_data(ytr - my)
    kx, ky = int(m.n_kept(wx)), int(m.n_kept(wy))
    px_, py_ = vx[:, :kx], vy[:, :ky]
    rho = heldout_canonical_correlations(
        (xtr - mx) @ px_, (ytr - my) @ py_, (xte - mx) @ px_, (yte - my) @ py_
    )
    return float(np.mean(rho)), rho


@register_heldout("ridge_cca")
def _heldout_ridge_cca(
    m: Measure, xtr: np.ndarray, ytr: np.ndarray, xte: np.ndarray, yte: np.ndarray
) -> tuple[float, np.ndarray | None]:
    reg = float(m.params["reg"])
    mx, my = xtr.mean(axis=0), ytr.mean(axis=0)
    xc, yc = xtr - mx, ytr - my
    vx, wx = _range_eig_data(xc)
    vy, wy = _range_eig_data(yc)
    sx = (1.0 - reg) * wx + reg * wx.sum() / xtr.shape[1]
    sy = (1.0 - reg) * wy + reg * wy.sum() / ytr.shape[1]
    cxy = (xc @ vx).T @ (yc @ vy)
    u, _, vh = np.linalg.svd(cxy / np.sqrt(sx)[:, None] / np.sqrt(sy)[None, :],
                             full_matrices=False)
    a = vx @ (u / np.sqrt(sx)[:, None])
    b = vy @ (vh.T / np.sqrt(sy)[:, None])
    rho = _column_corr((xte - mx) @ a, (yte - my) @ b)
    return float(np.mean(rho)), rho


@register_heldout("pwcca")
def _heldout_pwcca(
    m: Measure, xtr: np.ndarray, ytr: np.ndarray, xte: np.ndarray, yte: np.ndarray
) -> tuple[float, np.ndarray | None]:
    a, b, _, mx, my = cca_directions(xtr, ytr)
    xc = xtr - mx
    # weights from the training fit: αᵢ = Σⱼ |⟨hᵢ, x̃ⱼ⟩|, hᵢ = X̃aᵢ (unit norm by construction)
    alpha = np.sum(np.abs(xc.T @ (xc @ a)), axis=0)
    rho = _column_corr((xte - mx) @ a, (yte - my) @ b)
    return float(np.sum(alpha * rho) / np.sum(alpha)), rho


def _lstsq_fit(xc: np.ndarray, yc: np.ndarray) -> np.ndarray:
    """Minimum-norm least-squares ``B = xc⁺ yc`` on the numerical range."""
    v, w = _range_eig_data(xc)
    return v @ (((xc @ v).T @ yc) / w[:, None])


@register_heldout("linear_regression")
def _heldout_linear_regression(
    m: Measure, xtr: np.ndarray, ytr: np.ndarray, xte: np.ndarray, yte: np.ndarray
) -> tuple[float, np.ndarray | None]:
    mx, my = xtr.mean(axis=0), ytr.mean(axis=0)
    coef = _lstsq_fit(xtr - mx, ytr - my)
    pred = (xte - mx) @ coef + my
    sst = float(np.sum((yte - yte.mean(axis=0)) ** 2))
    if sst <= 0:
        raise DegenerateInputError("linear_regression: Y is constant on the test samples")
    return 1.0 - float(np.sum((yte - pred) ** 2)) / sst, None
