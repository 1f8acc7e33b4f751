"""Statistics for any registered measure, and the invariance profile built on them.

Everything here works through the generic :class:`~repscope.Measure` interface
(``prepare`` / ``compare_prepared``), so it applies to every measure in the
registry, built-in or your own.  One module per method:

==========================  ==============================================================
:mod:`.options`             :class:`Stats` (what to compute beside each value), measure specs
:mod:`.resampling`          paired row resampling, permuting prepared representations
:mod:`.permutation`         :func:`permutation_test`, :func:`null_calibration`
:mod:`.multiple_testing`    Benjamini–Hochberg / Holm within a family, p-value floors, m
:mod:`.bootstrap`           :func:`bootstrap_ci`: confidence intervals (jackknife default,
                            percentile, BCa, normal) around a named estimate
:mod:`.jackknife`           the bias-corrected grouped jackknife over samples
:mod:`.intervals`           interval formulas on resampled values
:mod:`.heldout`             :func:`heldout`: fitted measures evaluated on held-out samples
:mod:`.heldout_fits`        the held-out evaluators of the CCA family and regression
:mod:`.profile`             :func:`profile`: in which senses two representations agree
:mod:`.match_stability`     :func:`best_match_stability`: each layer's best match in another
                            model, and how often bootstrap resamples of the inputs agree
:mod:`.gram_resampling`     linear CKA of bootstrap resamples from full-data Gram matrices
==========================  ==============================================================

The formulas are written out in ``docs/statistics.md``.
"""

from __future__ import annotations

from repscope.inference.bootstrap import BootstrapResult, ConfidenceInterval, bootstrap_ci
from repscope.inference.heldout import (
    HeldoutResult,
    heldout,
    heldout_measures,
    register_heldout,
    supports_heldout,
)
from repscope.inference.match_stability import (
    LayerMatch,
    MatchStability,
    best_match_stability,
    match_stability_pairs,
)
from repscope.inference.multiple_testing import (
    bh_adjust,
    holm_adjust,
    permutations_for_family,
    pvalue_floor,
)
from repscope.inference.options import (
    DEFAULT_BOOTSTRAP,
    DEFAULT_PERMUTATIONS,
    MeasureSpec,
    Stats,
    resolve_measure,
)
from repscope.inference.permutation import (
    NullCalibration,
    PermutationTestResult,
    calibrated_score,
    null_calibration,
    permutation_null,
    permutation_test,
)
from repscope.inference.resampling import permute_prepared

__all__ = [
    "DEFAULT_BOOTSTRAP",
    "DEFAULT_PERMUTATIONS",
    "BootstrapResult",
    "ConfidenceInterval",
    "HeldoutResult",
    "LayerMatch",
    "MatchStability",
    "MeasureSpec",
    "NullCalibration",
    "PermutationTestResult",
    "Stats",
    "best_match_stability",
    "bh_adjust",
    "bootstrap_ci",
    "calibrated_score",
    "heldout",
    "heldout_measures",
    "holm_adjust",
    "match_stability_pairs",
    "null_calibration",
    "permutation_null",
    "permutation_test",
    "permutations_for_family",
    "permute_prepared",
    "pvalue_floor",
    "register_heldout",
    "resolve_measure",
    "supports_heldout",
]
