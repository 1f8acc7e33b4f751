"""Statistic-difference measures: compare one summary statistic of each representation.

Each measure computes a scalar statistic ``s`` of every representation alone
and reports ``m(X, Y) = |s(X) − s(Y)|``.  Because only summaries are compared,
X and Y may have different widths, and the value is a pseudometric: symmetric,
``m(X, X) = 0`` and satisfying the triangle inequality, but 0 for any two
representations that share the statistic.  These measures characterise
*how* representations differ (norms, concentration around the mean,
spread on the sphere, intrinsic dimension); they do not align samples.

Magnitude, concentricity and uniformity are written against the array API
(NumPy or torch, differentiable); the intrinsic dimension uses NumPy
neighbour search.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from repscope.core.arrays import Array, namespace, to_float
from repscope.core.errors import DegenerateInputError
from repscope.core.validation import warn_degenerate
from repscope.measures._knn import knn
from repscope.measures.base import Measure, Prepared
from repscope.measures.metadata import MEAN, NEIGHBOURS, PAIRS, Invariance, MeasureInfo
from repscope.measures.registry import register

__all__ = [
    "ConcentricityDifference",
    "IntrinsicDimensionDifference",
    "MagnitudeDifference",
    "UniformityDifference",
    "concentricity",
    "magnitude",
    "twonn_dimension",
    "uniformity",
]

_ORTHO = frozenset({Invariance.PERMUTATION, Invariance.ORTHOGONAL})
_ORTHO_SCALE = _ORTHO | {Invariance.ISOTROPIC_SCALING}
_ORTHO_SCALE_SHIFT = _ORTHO_SCALE | {Invariance.TRANSLATION}

_PSEUDO = (
    "Compares one summary statistic per representation, so widths may differ; a pseudometric "
    "(0 whenever the statistics agree, even for unrelated representations)."
)

_BLOCK_BUDGET = 1 << 22
#: a mean this small relative to the rows is rounding noise (cosines to it are meaningless)
_ZERO_MEAN_RTOL = 1e-12


# ------------------------------------------------------------- statistics
def magnitude(x: Array) -> Array:
    """Mean Euclidean row norm ``(1/n) Σ_i ‖x_i‖₂`` (0-d backend array)."""
    xp = namespace(x)
    return xp.mean(xp.linalg.vector_norm(x, axis=1))


def _row_norms_nonzero(x: Array, what: str) -> Array:
    xp = namespace(x)
    norms = xp.linalg.vector_norm(x, axis=1)
    if bool(xp.any(norms == 0.0)):
        raise DegenerateInputError(
            f"{what} is undefined for all-zero rows (their direction is undefined)"
        )
    return norms


def concentricity(x: Array) -> Array:
    """Mean cosine similarity of the rows to the mean row, ``(1/n) Σ_i cos(x_i, x̄)``.

    Raises :class:`DegenerateInputError` for all-zero rows or a zero mean
    (‖x̄‖ <= 1e-12 × the largest row norm, i.e. zero up to rounding).
    """
    xp = namespace(x)
    norms = _row_norms_nonzero(x, "concentricity")
    mu = xp.mean(x, axis=0)
    mu_norm = xp.linalg.vector_norm(mu)
    if to_float(mu_norm) <= _ZERO_MEAN_RTOL * to_float(xp.max(norms)):
        raise DegenerateInputError(
            "concentricity is undefined when the mean representation is the zero vector "
            f"(here ‖mean‖ <= {_ZERO_MEAN_RTOL:g} × the largest row norm: rounding noise)"
        )
    cos = (x @ mu) / (norms * mu_norm)
    return xp.mean(xp.clip(cos, -1.0, 1.0))


def uniformity(x: Array, t: float = 2.0) -> Array:
    """Uniformity of the L2-normalised rows (Wang & Isola 2020).

    ``U(X) = log( (1/(n(n−1))) Σ_{i≠j} exp(−t ‖x̂_i − x̂_j‖²) )`` with
    ``x̂_i = x_i / ‖x_i‖``; in [−4t, 0] (0 when all rows point the same way,
    lower = more uniformly spread on the sphere).  Computed in row blocks
    (O(block · n) memory).  Needs n >= 2 and non-zero rows.
    """
    xp = namespace(x)
    n = int(x.shape[0])
    u = x / _row_norms_nonzero(x, "uniformity")[:, None]
    step = max(1, min(n, _BLOCK_BUDGET // n))
    total = None
    for s in range(0, n, step):
        e = min(n, s + step)
        g = u[s:e, :] @ u.T
        d2 = xp.clip(2.0 - 2.0 * g, 0.0, 4.0)
        block = xp.sum(xp.exp(-t * d2))
        # remove the i == j terms (exp of the computed self-distance, ≈ 1)
        self_d2 = xp.clip(2.0 - 2.0 * xp.sum(u[s:e, :] * u[s:e, :], axis=1), 0.0, 4.0)
        block = block - xp.sum(xp.exp(-t * self_d2))
        total = block if total is None else total + block
    return xp.log(total / (n * (n - 1)))


def twonn_dimension(x: Any) -> float:
    """TwoNN intrinsic-dimension estimate (Facco et al. 2017), maximum-likelihood form.

    With ``r1(i) < r2(i)`` the distances from i to its first and second
    nearest neighbours and ``μ_i = r2(i)/r1(i)``, a locally uniform density on
    a d-dimensional manifold gives ``μ ~ Pareto(d)`` (density ``d μ^{−d−1}``,
    μ >= 1), whose maximum-likelihood estimate is::

        d̂ = N / Σ_i log μ_i.

    Points with a duplicate (r1 = 0) are left out with a
    :class:`DegeneracyWarning`, as Facco et al. recommend; raises
    :class:`DegenerateInputError` when no usable point is left or all ratios
    are 1.
    """
    nb = knn(np.asarray(x, dtype=np.float64), 2, "euclidean", who="twonn_dimension")
    r1 = nb.distances.min(axis=1)
    r2 = nb.distances.max(axis=1)
    ok = r1 > 0.0
    if not np.all(ok):
        dropped = int(np.count_nonzero(~ok))
        warn_degenerate(
            f"twonn_dimension: {dropped} sample(s) have an exact duplicate (zero nearest-"
            "neighbour distance) and are left out of the estimate"
        )
    if np.count_nonzero(ok) < 2:
        raise DegenerateInputError(
            "twonn_dimension: fewer than 2 samples without duplicates; the intrinsic "
            "dimension is undefined"
        )
    logs = np.log(r2[ok] / r1[ok])
    total = float(np.sum(logs))
    if total <= 0.0:
        raise DegenerateInputError(
            "twonn_dimension: every sample is equidistant from its two nearest neighbours; "
            "the TwoNN estimate is infinite"
        )
    return float(np.count_nonzero(ok)) / total


# ---------------------------------------------------------------- measures
class _StatisticDifference(Measure):
    """``|s(X) − s(Y)|`` for a per-representation statistic ``s`` (cached by prepare)."""

    pair_bytes: ClassVar[float] = 0.0  # O(n·d) memory: no n × n matrix

    requires_variance = False
    warns_rank_one = False  # one summary per representation: no geometry is compared

    def _statistic(self, x: Array) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def _key(self) -> tuple[Any, ...]:
        return ("statistic", self.info.name, tuple(sorted(self.params.items())))

    def _cached(self, p: Prepared) -> Any:
        key = self._key()
        if key not in p.cache:
            p.cache[key] = self._statistic(p.data)
        return p.cache[key]

    def _prepare(self, p: Prepared) -> None:
        self._cached(p)

    def statistic(self, X: Any) -> float:
        """The statistic of one representation (validated like a measure input)."""
        return float(to_float(self._cached(self.prepare(X))))

    def _compare(self, px: Prepared, py: Prepared) -> Any:
        sx, sy = self._cached(px), self._cached(py)
        if self.info.backend == "numpy":
            return abs(float(sx) - float(sy))
        xp = namespace(px.data)
        return xp.abs(sx - sy)


@register
class MagnitudeDifference(_StatisticDifference):
    r"""Difference of mean instance magnitudes.

    ``m(X, Y) = | (1/n) Σ_i ‖x_i‖₂ − (1/n) Σ_i ‖y_i‖₂ |``.

    We use the mean row norm (the average length of an instance's
    representation).  The survey also lists the norm of the mean row,
    ‖x̄‖, and a normalised per-instance RMSE variant; the mean row norm is
    the statistic that does not cancel when instances point in different
    directions.  Invariant to orthogonal maps only (not to scaling or
    translation, which change lengths).

    References
    ----------
    Klabunde et al., "Similarity of neural network models: a survey of
    functional and representational measures", ACM Computing Surveys 2025
    (magnitude).
    """

    info = MeasureInfo(
        name="magnitude_difference",
        family="statistic",
        kind="distance",
        value_range=(0.0, float("inf")),
        symmetric=True,
        metric=True,
        invariances=_ORTHO,
        assumptions=_PSEUDO + " Scale-dependent.",
        reference="Klabunde et al., ACM Computing Surveys 2025 (magnitude)",
        differentiable=True,
        **MEAN.fields(),
    )

    def _statistic(self, x: Array) -> Any:
        return magnitude(x)


@register
class ConcentricityDifference(_StatisticDifference):
    r"""Difference of concentricities (mean cosine similarity to the mean representation).

    ``α(X) = (1/n) Σ_i cos(x_i, x̄)`` with ``x̄ = (1/n) Σ_i x_i``;
    ``m(X, Y) = |α(X) − α(Y)|`` in [0, 2].  α near 1: instances point in
    the direction of their mean (a narrow cone, "anisotropy").  Invariant to
    orthogonal maps and isotropic scaling; not to translation, which moves
    the origin the cosines are measured from.  Raises
    :class:`DegenerateInputError` for all-zero rows or a zero mean.

    References
    ----------
    Klabunde et al., ACM Computing Surveys 2025 (concentricity).
    """

    info = MeasureInfo(
        name="concentricity_difference",
        family="statistic",
        kind="distance",
        value_range=(0.0, 2.0),
        symmetric=True,
        metric=True,
        invariances=_ORTHO_SCALE,
        assumptions=_PSEUDO + " Rows and the mean row must be non-zero; origin-dependent.",
        reference="Klabunde et al., ACM Computing Surveys 2025 (concentricity)",
        differentiable=True,
        **MEAN.fields(),
    )

    def _statistic(self, x: Array) -> Any:
        return concentricity(x)


@register
class UniformityDifference(_StatisticDifference):
    r"""Difference of hypersphere uniformities (Wang & Isola 2020).

    ``U(X) = log( (1/(n(n−1))) Σ_{i≠j} exp(−t ‖x̂_i − x̂_j‖²) )`` on the
    L2-normalised rows ``x̂_i = x_i/‖x_i‖`` (pairs i ≠ j, like the paper's
    expectation over independent pairs); ``m(X, Y) = |U(X) − U(Y)|``, at most
    4t.  Invariant to orthogonal maps and isotropic scaling (rows are
    normalised); not to translation.  O(n² d) time, O(block · n) memory.

    Parameters
    ----------
    t : float, default 2
        Temperature of the Gaussian potential (the paper's default).

    References
    ----------
    Wang & Isola, "Understanding contrastive representation learning through
    alignment and uniformity on the hypersphere", ICML 2020; Klabunde et al.,
    ACM Computing Surveys 2025.
    """

    info = MeasureInfo(
        name="uniformity_difference",
        family="statistic",
        kind="distance",
        value_range=(0.0, float("inf")),
        symmetric=True,
        metric=True,
        invariances=_ORTHO_SCALE,
        assumptions=_PSEUDO + " Rows must be non-zero; value at most 4t.",
        reference="Wang & Isola, ICML 2020; Klabunde et al., ACM Computing Surveys 2025",
        differentiable=True,
        **PAIRS.fields(),
        params={"t": 2.0},
    )

    def _check_params(self) -> None:
        self._param_range("t", 1e-12)

    def _statistic(self, x: Array) -> Any:
        return uniformity(x, float(self.params["t"]))


@register
class IntrinsicDimensionDifference(_StatisticDifference):
    r"""Difference of TwoNN intrinsic-dimension estimates (Facco et al. 2017).

    ``m(X, Y) = |d̂(X) − d̂(Y)|`` with ``d̂ = N / Σ_i log(r2(i)/r1(i))``, the
    maximum-likelihood TwoNN estimate from the ratio of second to first
    nearest-neighbour distances (see :func:`twonn_dimension`).  Distance
    ratios are invariant to orthogonal maps, isotropic scaling and
    translation; anisotropic linear maps change them.  The estimator assumes
    locally uniform density on a manifold at the scale of the second
    neighbour and is biased for small n or very high dimension.

    References
    ----------
    Facco, d'Errico, Rodriguez & Laio, "Estimating the intrinsic dimension
    of datasets by a minimal neighborhood information", Scientific Reports
    7, 12140 (2017); Klabunde et al., ACM Computing Surveys 2025.
    """

    info = MeasureInfo(
        name="intrinsic_dimension_difference",
        family="statistic",
        kind="distance",
        value_range=(0.0, float("inf")),
        symmetric=True,
        metric=True,
        invariances=_ORTHO_SCALE_SHIFT,
        assumptions=_PSEUDO + " TwoNN assumes locally uniform density; duplicate points are "
        "left out (with a warning).",
        reference="Facco et al., Scientific Reports 2017",
        backend="numpy",
        **NEIGHBOURS.fields(),
    )

    requires_variance = True

    def _statistic(self, x: Array) -> Any:
        return twonn_dimension(x)
