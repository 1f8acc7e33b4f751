"""The default confidence interval: a bias-corrected grouped jackknife over samples.

Subsamples are drawn *without* replacement — the samples of one group (first
level) or of two groups (second level) are left out — so no sample is ever
duplicated: U-statistics, distances between samples and neighbourhoods keep
their meaning on every subsample.  The formulas are in
:func:`repscope.inference.intervals.jackknife_interval` and ``docs/statistics.md``.
"""
from __future__ import annotations

import warnings
from typing import NamedTuple

import numpy as np

from repscope.core.errors import InsufficientSamplesError, RepscopeError, RepscopeWarning
from repscope.core.progress import progress_bar
from repscope.core.warning_capture import capture_warnings
from repscope.inference.intervals import IntervalEstimate, jackknife_groups, jackknife_interval
from repscope.inference.resampling import per_sample_params, take_rows, value_of, with_rows
from repscope.measures.base import Measure, Prepared

__all__ = ["JackknifeFit", "corrects_bias", "jackknife_prepared"]


class JackknifeFit(NamedTuple):
    """What :func:`jackknife_prepared` computed."""

    interval: IntervalEstimate
    labels: np.ndarray
    deleted: np.ndarray
    deleted2: np.ndarray | None
    bias_corrected: bool
    evaluations: int


def corrects_bias(m: Measure) -> bool:
    """Whether the interval of ``m`` is centred on a bias-corrected estimate.

    ``False`` for measures that declare ``bias_correctable = False`` (k-NN
    measures with a fixed ``k``: their neighbourhoods shrink as n grows, so
    their estimand is the expected value at this n).
    """
    return bool(getattr(m, "bias_correctable", True))


def jackknife_prepared(
    m: Measure,
    px: Prepared,
    py: Prepared,
    statistic: float,
    *,
    level: float,
    rng: np.random.Generator,
    groups: int,
    progress: bool = False,
) -> JackknifeFit:
    """Evaluate ``m`` on the jackknife subsamples of prepared inputs and form the interval.

    The ``n`` samples are split at random into ``G = min(groups, n)`` groups
    (:func:`~repscope.inference.intervals.jackknife_groups`); the measure is
    evaluated without each group and, for the bias-corrected estimate, without
    each pair of groups (``G + G(G − 1)/2`` evaluations; ``G`` when the measure
    is not bias-corrected).  Per-sample parameters follow the kept rows.
    Raises :class:`RepscopeError` if the measure fails on a subsample.
    """
    n = px.n
    correct = corrects_bias(m)
    labels = jackknife_groups(n, groups, rng)
    sizes = np.bincount(labels)
    g = sizes.size
    largest = np.sort(sizes)[::-1]
    smallest_subsample = n - int(largest[0] + (largest[1] if correct else 0))
    if g < 3 or smallest_subsample < m.min_samples:
        raise InsufficientSamplesError(
            f"{m.info.name}: n={n} samples are too few for the jackknife interval (its "
            f"subsamples keep {smallest_subsample} samples; the measure needs "
            f"{m.min_samples}); use more samples"
        )
    names = per_sample_params(m, n)
    members = [np.flatnonzero(labels == k) for k in range(g)]

    with capture_warnings() as base:  # what the full data already warn about
        value_of(m, px.data, py.data)
    known = set(base.messages)
    warned = 0
    first: str | None = None

    def value_without(drop: list[int]) -> float:
        nonlocal warned, first
        keep = np.flatnonzero(~np.isin(labels, drop))
        try:
            with capture_warnings() as cw:
                v = value_of(with_rows(m, names, keep), take_rows(px.data, keep),
                             take_rows(py.data, keep))
        except RepscopeError as exc:
            raise RepscopeError(
                f"{m.info.name}: the measure failed on a jackknife subsample of {keep.size} of "
                f"{n} samples ({exc}); the jackknife interval needs every subsample"
            ) from exc
        new = [w for w in cw.messages if w not in known]
        if new:
            warned += 1
            first = first or new[0]
        return v

    total = g + (g * (g - 1) // 2 if correct else 0)
    with progress_bar(total, f"{m.info.name}: jackknife", progress) as advance:
        deleted = np.empty(g)
        for k in range(g):
            deleted[k] = value_without([k])
            advance(1)
        deleted2: np.ndarray | None = None
        if correct:
            deleted2 = np.zeros((g, g))
            for a in range(g):
                for b in range(a + 1, g):
                    deleted2[a, b] = deleted2[b, a] = value_without([a, b])
                    advance(1)
    if warned:  # one summary instead of one message per subsample
        warnings.warn(
            f"{m.info.name}: {warned} of {total} jackknife subsamples (groups of about "
            f"{len(members[0])} samples left out) raised warnings, e.g. {first}",
            RepscopeWarning,
            stacklevel=3,
        )
    interval = jackknife_interval(
        statistic, deleted, deleted2 if deleted2 is not None else np.zeros((g, g)), labels,
        level, bias_correct=correct, value_range=m.info.value_range,
    )
    return JackknifeFit(interval, labels, deleted, deleted2, correct, total)

