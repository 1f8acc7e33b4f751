r"""Distance correlation: the standard dCor and its bias-corrected squared estimator.

With the Euclidean distance matrices ``aᵢⱼ = ‖xᵢ − xⱼ‖`` and ``bᵢⱼ = ‖yᵢ − yⱼ‖``:

* :class:`DistanceCorrelation` (``distance_correlation``) is the distance
  correlation of Székely, Rizzo & Bakirov (2007), the V-statistic that the
  ``dcor`` package's ``distance_correlation`` computes.  Double-centre the
  distance matrices, ``Aᵢⱼ = aᵢⱼ − āᵢ· − ā·ⱼ + ā··`` (means over all n entries,
  the zero diagonal included; likewise B), then::

      dCov²ₙ(X, Y) = (1/n²) Σᵢⱼ Aᵢⱼ Bᵢⱼ,      dVar²ₙ(X) = dCov²ₙ(X, X)
      dCorₙ(X, Y)  = sqrt( dCov²ₙ(X, Y) / sqrt(dVar²ₙ(X) dVar²ₙ(Y)) )   in [0, 1].

  It is biased upwards: for *independent* samples it is clearly positive at
  small n (≈ 0.5 at n = 20, d = 5) and tends to 1 as the dimension grows with n
  fixed (Székely & Rizzo 2013).  :func:`repscope.compare` reports its chance
  level at the pair's shape and warns when it is high.
* :class:`DistanceCorrelationSqUnbiased` (``distance_correlation_sq_unbiased``)
  is the bias-corrected estimator R*ₙ of the *squared* distance correlation
  (Székely & Rizzo 2013, 2014), built on U-centred matrices; ≈ 0 for
  independent samples at any n and d, and possibly slightly negative
  (``dcor.u_distance_correlation_sqr``).  It was the measure called
  ``distance_correlation`` up to version 1 of that measure's meaning.

Both are invariant to orthogonal maps, translations and isotropic scaling of
either representation (the distances scale, and the normalisation cancels it),
not to general invertible linear maps; both cost O(n²) memory and O(n² d) time
and are differentiable (finite gradients also for coincident points).
"""

from __future__ import annotations

from typing import Any

from repscope.core.arrays import Array, namespace
from repscope.core.errors import DegenerateInputError
from repscope.measures._kernels import _safe_sqrt, distances, double_center, u_center, u_inner
from repscope.measures.base import Measure, Prepared
from repscope.measures.metadata import GEOMETRY, UNBIASED, Invariance, MeasureInfo
from repscope.measures.planning import Estimate, Plan, shape_of, subset_mean, subset_plan
from repscope.measures.registry import register

__all__ = ["DistanceCorrelation", "DistanceCorrelationSqUnbiased"]

_ORTHO_SCALE_SHIFT = frozenset({
    Invariance.PERMUTATION, Invariance.ORTHOGONAL, Invariance.ISOTROPIC_SCALING,
    Invariance.TRANSLATION,
})

_REFERENCES = (
    "Székely, Rizzo & Bakirov, Measuring and testing dependence by correlation of "
    "distances, Ann. Statist. 2007"
)

#: a centred distance matrix whose entries are all below this multiple of n·ε times the
#: largest distance is rounding noise: the centred matrix vanishes
_VANISHING = 64.0


def _vanishes(centred: Array, dist: Array) -> bool:
    """Whether the centred distance matrix is zero up to the rounding of its sums
    (relative to the largest distance, so the decision does not depend on the scale)."""
    xp = namespace(centred)
    n = int(dist.shape[0])
    tol = _VANISHING * n * 2.220446049250313e-16 * float(xp.max(dist))
    return float(xp.max(xp.abs(centred))) <= tol


@register
class DistanceCorrelation(Measure):
    r"""Distance correlation dCor of Székely, Rizzo & Bakirov (2007), the V-statistic.

    ``dCor(X, Y) = sqrt(dCov²(X, Y) / sqrt(dVar²(X) dVar²(Y)))`` with
    ``dCov²(X, Y) = (1/n²) Σᵢⱼ AᵢⱼBᵢⱼ`` on the double-centred Euclidean distance
    matrices A, B (see :mod:`repscope.measures.dcor`); the value the ``dcor``
    package's ``distance_correlation`` returns.  In [0, 1]; 1 for X = Y (and for
    representations related by a similarity transform); in the population, 0
    iff X and Y are independent.

    Bias
    ----
    The sample dCor is biased upwards, strongly so when n is small or the
    dimension large (independent Gaussians: ≈ 0.5 at n = 20, d = 5; → 1 as d
    grows with n fixed).  Read it against its chance level (``repscope.compare``
    reports it, with a warning when high) or a permutation test, or use
    ``distance_correlation_sq_unbiased`` (bias-corrected, ≈ 0 for independent data).

    Invariances
    -----------
    Orthogonal maps (hence permutations), translation and isotropic scaling of
    either side; not general invertible linear maps.

    Assumptions
    -----------
    Rows are paired samples; n >= 3.  O(n²) memory, O(n² d) time.  Differentiable
    (finite gradients also for coincident points and at dCor = 0).

    References
    ----------
    Székely, Rizzo & Bakirov, "Measuring and testing dependence by correlation
    of distances", Ann. Statist. 35(6), 2007.
    """

    info = MeasureInfo(
        name="distance_correlation",
        family="rsm",
        kind="similarity",
        value_range=(0.0, 1.0),
        symmetric=True,
        metric=False,
        invariances=_ORTHO_SCALE_SHIFT,
        assumptions="Rows are paired samples; the V-statistic dCor (as dcor.distance_correlation), "
        "biased upwards at small n or large d (compare with its chance level, or use "
        "distance_correlation_sq_unbiased); O(n^2) memory.",
        reference=_REFERENCES,
        differentiable=True,
        version=2,
        **GEOMETRY.fields(),
    )

    def _prepare(self, p: Prepared) -> None:
        xp = namespace(p.data)
        dist = distances(p.data)
        a = double_center(dist)
        if _vanishes(a, dist):  # pragma: no cover - only constant data, refused before
            raise DegenerateInputError(
                "distance_correlation: the double-centred distance matrix vanishes"
            )
        p.cache["dcor_centred"] = a
        p.cache["dcor_dvar2"] = xp.mean(a * a)

    def _compare(self, px: Prepared, py: Prepared) -> Array:
        xp = namespace(px.data)
        dcov2 = xp.mean(px.cache["dcor_centred"] * py.cache["dcor_centred"])
        r2 = dcov2 / xp.sqrt(px.cache["dcor_dvar2"] * py.cache["dcor_dvar2"])
        return xp.clip(_safe_sqrt(r2), 0.0, 1.0)


@register
class DistanceCorrelationSqUnbiased(Measure):
    r"""Bias-corrected squared distance correlation R*ₙ (Székely & Rizzo 2013, 2014).

    With aᵢⱼ = ‖xᵢ − xⱼ‖, bᵢⱼ = ‖yᵢ − yⱼ‖ and the U-centred matrices (i ≠ j)::

        Ãᵢⱼ = aᵢⱼ − aᵢ·/(n−2) − a·ⱼ/(n−2) + a··/((n−1)(n−2)),   Ãᵢᵢ = 0
        (Ã·B̃) = Σ_{i≠j} Ãᵢⱼ B̃ᵢⱼ / (n(n−3))             (unbiased dCov²(X, Y))
        R*(X, Y) = (Ã·B̃) / sqrt((Ã·Ã)(B̃·B̃))

    An estimate of the *squared* population distance correlation, unbiased for
    dCov²: ≈ 0 for independent data at any n and dimension (where the
    V-statistic ``distance_correlation`` tends to 1 as the dimension grows), and
    exactly 1 for ``R*(X, X)``.  It can be slightly negative and is reported as
    is (no square root).  ``dcor.u_distance_correlation_sqr`` computes the same
    quantity.  (What ``distance_correlation`` computed up to version 1 of its
    meaning.)

    Range [−1, 1]; 1 for X = Y.  Undefined (raises) when a representation's
    U-centred distance matrix vanishes, e.g. all samples equidistant.

    Invariances
    -----------
    Orthogonal maps (hence permutations), translation and isotropic scaling of
    either side; not general invertible linear maps.

    Assumptions
    -----------
    Rows are paired samples; n >= 4.  O(n²) memory, O(n² d) time.
    Differentiable (finite gradients also for coincident points).

    References
    ----------
    Székely & Rizzo, "The distance correlation t-test of independence in high
    dimension", J. Multivariate Anal. 117, 2013; "Partial distance correlation
    with methods for dissimilarities", Ann. Statist. 42(6), 2014.
    """

    info = MeasureInfo(
        name="distance_correlation_sq_unbiased",
        family="rsm",
        kind="similarity",
        value_range=(-1.0, 1.0),
        symmetric=True,
        metric=False,
        invariances=_ORTHO_SCALE_SHIFT,
        assumptions="Rows are paired samples; bias-corrected (U-statistic) estimate of the "
        "squared distance correlation, may be slightly negative; O(n^2) memory; n >= 4.",
        reference="Székely & Rizzo, J. Multivariate Anal. 2013 and Ann. Statist. 2014; "
        + _REFERENCES,
        differentiable=True,
        **UNBIASED.fields(),
    )
    #: the estimated path (beyond the budget): mean over disjoint random subsets of at most
    #: ``subset_size`` samples (:func:`repscope.measures.planning.subset_mean`)
    estimable = True
    subset_size: int = 4000
    subsets: int = 16

    def estimate_bytes(self, n: int, dx: int, dy: int) -> float | None:
        return self.exact_bytes(min(n, 200), dx, dy)

    def _estimated(self, X: Any, Y: Any, plan: Plan, seed: int, level: float) -> Estimate:
        (n, dx), dy = shape_of(X), shape_of(Y)[1]
        size, k = subset_plan(self, n, dx, dy, plan.budget, self.subset_size, self.subsets)
        return subset_mean(self, X, Y, size, k, seed, level)

    def _prepare(self, p: Prepared) -> None:
        dist = distances(p.data)
        a = u_center(dist)
        if _vanishes(a, dist):
            raise DegenerateInputError(
                "distance_correlation_sq_unbiased: the U-centred distance matrix vanishes "
                "(all samples equidistant, up to rounding); the bias-corrected distance "
                "correlation is undefined"
            )
        p.cache["u_dist"] = a
        p.cache["u_dist_norm2"] = u_inner(a, a)

    def _compare(self, px: Prepared, py: Prepared) -> Any:
        xp = namespace(px.data)
        num = u_inner(px.cache["u_dist"], py.cache["u_dist"])
        return num / xp.sqrt(px.cache["u_dist_norm2"] * py.cache["u_dist_norm2"])
