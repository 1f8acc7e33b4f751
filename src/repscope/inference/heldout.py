"""Held-out (split-half) values of fitted measures: fit on some samples, evaluate on the rest.

The CCA family and linear regression fit directions or coefficients to the
data, so their in-sample values approach 1 as ``d → n`` even for unrelated
representations; the held-out values do not.  The evaluators of the built-in
measures live in :mod:`repscope.inference.heldout_fits`; :func:`register_heldout`
adds one for another measure.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from repscope.core.arrays import to_float, to_numpy
from repscope.core.errors import (
    InvalidParameterError,
)
from repscope.core.warning_capture import capture_warnings
from repscope.inference.heldout_fits import BUILTIN_EVALUATORS
from repscope.inference.options import (
    MeasureSpec,
    Stats,
    check_count,
    check_fraction,
    resolve_measure,
)
from repscope.inference.resampling import (
    as_rng,
    merge_messages,
    per_sample_params,
    with_rows,
)
from repscope.measures.base import Measure, Prepared

# ----------------------------------------------------------------- held-out
#: signature of a held-out evaluator: (measure, X_train, Y_train, X_test, Y_test)
#: -> (held-out value, per-component held-out correlations or None)
HeldoutEvaluator = Callable[
    [Measure, np.ndarray, np.ndarray, np.ndarray, np.ndarray], tuple[float, "np.ndarray | None"]
]
_HELDOUT: dict[str, HeldoutEvaluator] = dict(BUILTIN_EVALUATORS)


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


def stats_for(stats: Stats, measure: MeasureSpec) -> Stats:
    """The options that apply to ``measure``: ``heldout`` only where it has a held-out form.

    Rows are keyed by these, so a measure without a held-out form is stored
    under the same key whether or not held-out values were requested.
    """
    if stats.heldout and not supports_heldout(measure):
        return replace(stats, heldout=False)
    return stats


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
    check_fraction(test_fraction)
    n_splits = check_count("n_splits", n_splits)
    fn = _HELDOUT.get(m.info.name)
    if fn is None:
        raise InvalidParameterError(
            f"{m.info.name} has no held-out form; supported: {', '.join(heldout_measures())}"
        )
    with capture_warnings() as cw:
        px, py = m.prepare(X, "X"), m.prepare(Y, "Y")
        in_sample = to_float(m.compare_prepared(px, py))
    res = heldout_prepared(m, px, py, in_sample, test_fraction, seed=seed, n_splits=n_splits)
    return replace(res, warnings=merge_messages(cw.messages, res.warnings))


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
    check_fraction(test_fraction)
    n_splits = check_count("n_splits", n_splits)
    fn = _HELDOUT.get(m.info.name)
    if fn is None:
        raise InvalidParameterError(
            f"{m.info.name} has no held-out form; supported: {', '.join(heldout_measures())}"
        )
    rng = as_rng(seed)
    xa = np.asarray(to_numpy(X), dtype=np.float64)
    ya = np.asarray(to_numpy(Y), dtype=np.float64)
    n = int(xa.shape[0])
    n_test = int(round(test_fraction * n))
    n_train = n - n_test
    need = max(m.min_samples, 3)
    if n_test < need or n_train < need:
        raise InvalidParameterError(
            f"{m.info.name}: a split of n={n} with test_fraction={test_fraction} leaves "
            f"{n_train} training and {n_test} test samples; each needs at least {need}"
        )
    names = per_sample_params(m, n)
    values = np.empty(n_splits)
    first_corr: np.ndarray | None = None
    for s in range(n_splits):
        order = rng.permutation(n)
        test, train = np.sort(order[:n_test]), np.sort(order[n_test:])
        v, corr = fn(with_rows(m, names, train), xa[train], ya[train], xa[test], ya[test])
        values[s] = v
        if s == 0:
            first_corr = corr
    return values, first_corr, n_train, n_test
